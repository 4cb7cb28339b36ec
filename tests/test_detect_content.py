"""Meeting-content detectors: titles, chat, transcripts, file/window names, participant
lists, audio levels; positives next to decoys."""

from __future__ import annotations

import pytest

from builders import make_payload, nest
from phonehome.detect import DETECTORS, Context, DetectionEngine, redact_tree

ENGINE = DetectionEngine()
BY_TYPE = {cls.type: cls() for cls in DETECTORS}


def _found(tree):
    out: dict[str, list] = {}
    for f in ENGINE.detect(make_payload(tree)):
        out.setdefault(f.type, []).append(f)
    return out


CASES = [
    # --- meeting title
    (("meeting", "title"), "Q3 budget review", "meeting_title", True),
    (("topic",), "Standup", "meeting_title", True),
    (("meetingName",), "Jane's Personal Room", "meeting_title", True),
    (("subject",), "Interview: backend role", "meeting_title", True),
    (("topic",), "webex.meetings.v1", "meeting_title", False),
    (("title",), "SCHEDULED_MEETING", "meeting_title", False),
    (("window", "title"), "Q3 Budget.xlsx - Excel", "meeting_title", False),
    (("errors", 0, "title"), "Media connection failed", "meeting_title", False),
    (("title",), "12345", "meeting_title", False),
    # --- chat
    (("chat", "text"), "Can everyone see my screen now?", "chat_message", True),
    (("user", "comments"), "The audio kept dropping during my call", "chat_message", True),
    (("message",), "Lunch at noon?", "chat_message", True),
    (("errors", 0, "message"), "Failed to fetch the meeting info", "chat_message", False),
    (("message",), "client.call.initiated", "chat_message", False),
    (("text",), "OK", "chat_message", False),
    (("body",), "eyJhbGciOiJIUzI1NiJ9", "chat_message", False),
    (("message",), "https://example.com/a/b", "chat_message", False),
    # --- transcript
    (("transcript", 0), "so the numbers for the third quarter look good", "transcript", True),
    (("captions", 0, "text"), "Hello", "transcript", True),
    (("caption",), "CAPTION_ENABLED", "transcript", False),
    (("transcriptId",), "a1b2c3d4", "transcript", False),
    # --- file and window names
    (("share", "fileName"), "Q3 Budget.xlsx", "file_name", True),
    (("shareResourceName",), "Q3 Budget.xlsx - Excel", "file_name", True),
    (("sharedWindow",), "Slack | #layoffs-planning", "file_name", True),
    (("share", "windowTitle"), "Inbox (3) - jane@example.org", "file_name", True),
    (("shareResourceType",), "APPLICATION_OR_WINDOW", "file_name", False),
    (("shareResourceName",), "APPLICATION_OR_WINDOW", "file_name", False),
    (("fileName",), "no extension here", "file_name", False),
    (("frames", 0, "filename"), "app://main.js", "file_name", False),
    (("stacktrace", "frames", 0, "filename"), "main.js", "file_name", False),
]


@pytest.mark.parametrize(("path", "value", "kind", "expected"), CASES)
def test_content_table(path, value, kind, expected):
    found = _found(nest(path, value))
    assert (kind in found) is expected, found
    for finding in found.get(kind, ()):
        assert finding.category == "meeting_content"
        assert finding.severity in ("medium", "high")
        if len(value) >= 6:
            assert value not in finding.evidence and value not in finding.reason


@pytest.mark.parametrize(("path", "value", "kind", "expected"), CASES)
def test_pure_detector_agrees(path, value, kind, expected):
    assert bool(BY_TYPE[kind].detect(value, Context.of(path))) is expected


def test_participant_list_is_one_finding_per_list():
    tree = {"meeting": {"participants": [
        {"name": "Jane Roe", "email": "jane.roe@example.org", "role": "host"},
        {"name": "Ana Lima", "email": "ana@example.org", "role": "attendee"},
        {"name": "Bo Chen", "id": "0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab"},
    ]}}
    found = _found(tree)
    (plist,) = found["participant_list"]
    assert plist.location == "$.meeting.participants"
    assert plist.evidence.startswith("5 entries")
    assert "Jane" not in plist.evidence and "jane.roe" not in plist.evidence
    # the emails and names inside are still reported one by one
    assert len(found["email"]) == 2 and len(found["person_name"]) == 3


@pytest.mark.parametrize(
    "tree",
    [
        {"attendees": ["Jane Roe", "ana@example.org"]},
        {"roster": [{"displayName": "Jane Roe"}]},
        {"invitees": [{"email": "x.y@example.org"}]},
    ],
)
def test_participant_list_shapes(tree):
    (plist,) = _found(tree)["participant_list"]
    assert plist.location == "$." + next(iter(tree))


@pytest.mark.parametrize(
    "tree",
    [
        {"participants": 5},
        {"participantCount": 5},
        {"participants": [{"id": "0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab", "role": "host"}]},
        {"participants": ["HOST", "ATTENDEE"]},
    ],
)
def test_participant_list_decoys(tree):
    assert "participant_list" not in _found(tree)


def test_audio_level_series_merges_into_one_finding():
    tree = {"intervals": [{"audioLevel": [0.1, 0.0, 0.42, 0.9]}]}
    (finding,) = _found(tree)["audio_level"]
    assert finding.location == "$.intervals[0].audioLevel"
    assert finding.evidence == "series of 4 values"
    assert finding.category == "meeting_content" and finding.severity == "medium"


@pytest.mark.parametrize(
    ("tree", "location"),
    [
        ({"micLevel": 0.42}, "$.micLevel"),
        ({"speakingLevel": 3}, "$.speakingLevel"),
        ({"levels": {"audioMeanVolume": -32.5}}, "$.levels.audioMeanVolume"),
        ({"audioAlgorithmModulesInfo": {"speechRMS": 120.5}},
         "$.audioAlgorithmModulesInfo.speechRMS"),
        ({"inputLevel": "0.31"}, "$.inputLevel"),
        ({"audioLevel": {"mean": 0.3, "max": 0.9, "timestamp": 1715250000000}}, "$.audioLevel"),
    ],
)
def test_audio_level_positives(tree, location):
    (finding,) = _found(tree)["audio_level"]
    assert finding.location == location


@pytest.mark.parametrize(
    "tree",
    [{"audioLevel": True}, {"audioLevel": "high"}, {"level": 0.4}, {"volumeName": "Macintosh HD"},
     {"audioCodec": "opus"}],
)
def test_audio_level_decoys(tree):
    assert "audio_level" not in _found(tree)


def test_redacted_tree_hides_content():
    tree = {"meeting": {"title": "Q3 budget review", "participants": ["Jane Roe", "Ana Lima"]},
            "chat": {"text": "Can everyone see my screen now?"}}
    findings = ENGINE.detect(make_payload(tree))
    out = redact_tree(tree, findings)
    text = repr(out)
    for secret in ("Q3 budget", "Jane Roe", "Ana Lima", "see my screen"):
        assert secret not in text
    assert tree["meeting"]["title"] == "Q3 budget review"  # the input is untouched
