"""The bundled vocabulary against public event lists with a stated trigger.

Every Webex event in the shared events.json and every Teams event in
fixtures/teams_events.yaml whose source states a trigger must get that trigger
from its name alone, or be listed in ACCEPTED with what it gets and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builders import FIXTURES
from phonehome.rules import load_rules

EVENTS_JSON = Path("/work/shared/webex/events.json")
TEAMS = FIXTURES / "teams_events.yaml"
_WORDS = {"in_meeting_periodic": "in_meeting", "other": None}

_JOIN_MEDIA = ("media set up at join: the name says media (a weak in_meeting); the timeline's"
               " join window makes it meeting_join (test_timeline_names)")
ACCEPTED: dict[str, tuple[str | None, str]] = {
    "client.media.capabilities": ("in_meeting", _JOIN_MEDIA),
    "client.locus.media.request": ("in_meeting", _JOIN_MEDIA),
    "client.locus.media.response": ("in_meeting", _JOIN_MEDIA),
    "client.media-engine.ready": ("in_meeting", _JOIN_MEDIA),
    "client.media.tx.start": ("in_meeting", _JOIN_MEDIA),
    "client.media.rx.start": ("in_meeting", _JOIN_MEDIA),
    "client.media.render.start": (None, "screen_share only when mediaType is share: the field"
                                        " tells, not the name (the webex rule reads it)"),
    "client.media.render.stop": (None, "as render.start"),
    "JS_SDK_CREDENTIALS_DOWNSCOPE_FAILED": ("error", "the list's sign_in is a guess; a failure"
                                                     " is an error, as for every *_FAILED"),
    "web-ha": (None, "no word in 'web-ha' (web high availability) names a moment"),
    "client log upload (autoUploadLogs)": (None, "the name does not say when; the timeline puts"
                                                 " uploads right after a leave in the leave"),
    "client.webexapp.launched": ("app_start", "a launch; the timeline makes a launch during"
                                              " setup the first launch, setup"),
    "client.startup.start": ("app_start", "the list's setup is a guess; startup is app_start"
                                          " in DESIGN.md (and in the webex pack)"),
    "client.startup.end": ("app_start", "as startup.start"),
}


def _webex() -> list[tuple[str, str | None]]:
    if not EVENTS_JSON.is_file():
        pytest.skip(f"{EVENTS_JSON} is not on this machine")
    return [(e["event"], _WORDS.get(e["trigger"], e["trigger"]))
            for e in json.loads(EVENTS_JSON.read_text())]


def _teams() -> list[tuple[str, str | None]]:
    data = yaml.safe_load(TEAMS.read_text())
    return [(name, trigger) for items in data.values() for name, trigger in items.items()]


@pytest.fixture(scope="module")
def vocabulary():
    return load_rules().vocabulary


@pytest.mark.parametrize("source", [_webex, _teams], ids=["webex-events.json", "teams-lists"])
def test_names_get_the_trigger_their_source_states(vocabulary, source):
    events = source()
    stated = [(name, trigger) for name, trigger in events if trigger is not None]
    assert len(stated) >= 60
    disagree = []
    for name, expected in stated:
        got = vocabulary.judge(name).trigger
        if got == expected:
            assert name not in ACCEPTED, f"{name} agrees now: drop it from ACCEPTED"
        elif ACCEPTED.get(name, ("-",))[0] != got:
            disagree.append((name, expected, got, vocabulary.judge(name).reason))
    assert disagree == []


def test_every_accepted_disagreement_is_a_real_event():
    names = {name for name, _ in _webex() + _teams()}
    assert set(ACCEPTED) <= names
