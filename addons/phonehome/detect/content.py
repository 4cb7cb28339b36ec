"""Meeting-content detectors: titles, chat, transcripts, file and window names,
participant lists, audio levels. All are driven by key context (the JSON key
plays the part of Presidio's context words) plus a shape test on the value.
"""

from __future__ import annotations

from ..model import Scalar
from .base import (
    Context,
    Detector,
    Hit,
    compile_re2,
    is_machine_token,
    looks_like_text,
    tokens,
)
from .people import name_tokens
from .redact import redact

__all__ = [
    "MeetingTitleDetector",
    "ChatMessageDetector",
    "TranscriptDetector",
    "FileNameDetector",
    "ParticipantListDetector",
    "AudioLevelDetector",
]

_LETTER = compile_re2(r"\pL")
_ERROR_KEYS = frozenset(
    {"error", "errors", "exception", "exceptions", "err", "failure", "fault", "stack",
     "stacktrace", "frames", "log", "logs", "status", "reason", "debug", "trace", "crash",
     "crashreport", "diagnostics"}
)


def _body_like(ctx: Context) -> bool:
    return ctx.source in ("body", "query", "cookie")


class _ContentDetector(Detector):
    """What a meeting is about or what is said in it: high unless a detector says less."""

    category = "meeting_content"
    severity = "high"


class MeetingTitleDetector(_ContentDetector):
    """Meeting titles and topics under title/topic/meetingName/subject keys."""

    type = "meeting_title"
    KEYS = frozenset(
        {"title", "topic", "meetingname", "meetingtitle", "subject", "meetingtopic",
         "conferencename", "confname", "meetingsubject", "sessiontitle", "sessionname",
         "roomtitle", "spacetitle", "eventtitle", "webinartitle", "agenda"}
    )
    _NOT_UNDER = frozenset({"window", "app", "application", "page", "screen", "tab",
                            "document", "notification", "dialog", "view"}) | _ERROR_KEYS

    def applies(self, ctx: Context) -> bool:
        return (
            _body_like(ctx)
            and ctx.key in self.KEYS
            and ctx.parent not in self._NOT_UNDER
            and not (set(ctx.keys) & _ERROR_KEYS)
        )

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not 2 <= len(text) <= 1000 or _LETTER.search(text) is None:
            return None
        if is_machine_token(text):
            return None
        return self.make(text, 0.8, f"free text under key {ctx.raw_key!r}")


class ChatMessageDetector(_ContentDetector):
    """Natural-language text under message/text/chat/body/comments keys (not errors)."""

    type = "chat_message"
    KEYS = frozenset(
        {"message", "messages", "text", "chat", "chatmessage", "chattext", "body", "comment",
         "comments", "msg", "content", "feedback", "messagetext", "messagebody", "plaintext",
         "markdown", "reply", "usercomments", "usercomment", "note", "notes"}
    )
    _CHAT_PARENTS = frozenset({"chat", "chats", "messages", "conversation", "activity",
                               "comments", "thread", "user", "reply"})
    # Activity Streams (Webex conversations): {"verb": "post", "object": {"objectType":
    # "comment", "displayName": <the message>}}
    _ACTIVITY_WORDS = frozenset({"comment", "message", "reply"})
    neighbours = True

    def applies(self, ctx: Context) -> bool:
        if not _body_like(ctx) or set(ctx.keys) & _ERROR_KEYS:
            return False
        return ctx.key in self.KEYS or (ctx.key == "displayname" and ctx.parent == "object")

    def reads_neighbours(self, ctx: Context) -> bool:
        return ctx.key == "displayname"

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str) or not looks_like_text(value, 2):
            return None
        if ctx.key == "displayname":
            if not tokens(ctx.event) & self._ACTIVITY_WORDS:
                return None
            return self.make(value, 0.85, "text of a posted comment (Activity Streams object)")
        confidence = 0.75 + (0.1 if set(ctx.keys) & self._CHAT_PARENTS else 0.0)
        return self.make(value, confidence, f"natural-language text under key {ctx.raw_key!r}")


class TranscriptDetector(_ContentDetector):
    """Spoken words: transcript/caption keys."""

    type = "transcript"
    KEYS = frozenset(
        {"transcript", "transcripts", "transcription", "caption", "captions", "closedcaption",
         "closedcaptions", "subtitle", "subtitles", "utterance", "utterances", "speechtext",
         "recognizedtext", "asrtext", "spokentext", "livecaption", "livecaptions"}
    )

    def applies(self, ctx: Context) -> bool:
        return _body_like(ctx) and (ctx.key in self.KEYS or ctx.parent in self.KEYS)

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str) or not looks_like_text(value, 1):
            return None
        return self.make(value, 0.85, f"spoken text under key {ctx.raw_key!r}")


_FILE_LIKE = compile_re2(r"[^/\\\s][^/\\]*\.[A-Za-z0-9]{1,8}$")
_ENUM = compile_re2(r"^[A-Z0-9_]+$")
# Words of an event name, URL path or key that make a file or window a thing shown to
# others (a share, a file transfer), or a diagnostic upload.
_SHARE_WORDS = frozenset({"share", "shared", "sharing", "screenshare", "cast", "casting",
                          "present", "presenting", "presentation", "transfer", "attachment",
                          "attachments", "attach", "attached", "whiteboard"})
# Weaker: a log upload is an upload too, so these count only where no log word is.
_TRANSFER_WORDS = frozenset({"file", "files", "upload", "uploaded", "send", "sent",
                             "download", "content"})
_LOG_WORDS = frozenset({"log", "logs", "logging", "crash", "crashes", "crashreport", "dump",
                        "minidump", "diag", "diagnostic", "diagnostics", "sysdiagnose",
                        "feedback", "trace", "traces", "error", "errors", "exception",
                        "bugreport", "problem", "report"})
_LOG_EXTENSIONS = frozenset({"log", "dmp", "mdmp", "crash", "ips", "etl", "evtx", "trace",
                             "tracev3", "hprof", "core"})
_ARCHIVE_EXTENSIONS = frozenset({"zip", "gz", "tgz", "tar", "7z", "bz2", "xz", "txt", "json"})
_TITLE_SEPARATORS = (" - ", " — ", " – ", " | ", ": ", " · ")


def _words(ctx: Context) -> frozenset[str]:
    """Words of the keys above the value and of the events and URL around it."""
    found: set[str] = set()
    for key in ctx.keys[:-1]:
        found |= tokens(key)
    return frozenset(found) | tokens(ctx.event)


def _log_archive(text: str) -> bool:
    """app-2024-05-09.log, crash_report.zip, webex-diag.tar.gz, minidump.dmp."""
    stem, _, ext = text.lower().rpartition(".")
    if ext in _LOG_EXTENSIONS:
        return True
    if ext in ("gz", "bz2", "xz"):
        stem, _, ext = stem.rpartition(".")
    return ext in _ARCHIVE_EXTENSIONS and bool(tokens(stem) & _LOG_WORDS)


class FileNameDetector(_ContentDetector):
    """File, document and window names. Meeting content only where they are shown or
    sent to others (a share, a file transfer: the key path, the event name or the URL
    says so); a log or crash archive's name is `error_logs`; elsewhere a document or
    window name is low-severity `usage_statistics` (what the user works on)."""

    type = "file_name"
    severity = "medium"
    neighbours = True
    FILE_KEYS = frozenset(
        {"filename", "documentname", "docname", "attachmentname", "sharedfilename",
         "sharedfile", "uploadfilename", "originalfilename", "shareddocument",
         "shareddocumentname", "documenttitle", "file"}
    )
    WINDOW_KEYS = frozenset(
        {"windowname", "windowtitle", "sharedwindow", "sharedwindowname", "sharedwindowtitle",
         "shareresourcename", "sharedapplication", "sharedappname", "appwindowtitle",
         "activewindow", "activewindowtitle", "sharedresourcename", "sharename"}
    )
    _STACK = frozenset({"frames", "stack", "stacktrace", "exception", "sourcemap", "crash",
                        "crashreport", "modules", "errors", "error"})

    def applies(self, ctx: Context) -> bool:
        if not _body_like(ctx) or set(ctx.keys) & self._STACK:
            return False
        if ctx.key in self.FILE_KEYS or ctx.key in self.WINDOW_KEYS:
            return True
        return ctx.key == "title" and ctx.parent in ("window", "sharedwindow", "activewindow")

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not 2 <= len(text) <= 1000 or "://" in text or _ENUM.search(text):
            return None
        words = _words(ctx)
        shared = bool((words | tokens(ctx.raw_key)) & _SHARE_WORDS)
        if ctx.key in self.FILE_KEYS:
            if _FILE_LIKE.search(text) is None:
                return None
            if _log_archive(text) or (not shared and words & _LOG_WORDS):
                return self.make(text, 0.8, "log or crash archive name: diagnostics, not "
                                 "meeting content", "low", category="error_logs")
            shared = shared or bool(words & _TRANSFER_WORDS)
            what = "file name"
        else:
            if _LETTER.search(text) is None:
                return None
            if not _titled(text):
                return None  # "Microsoft PowerPoint": the shared application, no document
            what = "window or document title"
        if shared:
            return self.make(text, 0.8, f"{what} in a share or file transfer "
                             f"(under {ctx.raw_key!r})")
        return self.make(text, 0.7, f"{what} outside any share or file transfer: what the "
                         "user works on, not meeting content", "low",
                         category="usage_statistics")


def _titled(text: str) -> bool:
    """A window title that names a document or page: "Q3.xlsx - Excel", "Inbox (3) - …",
    "Slack | #general"; not a bare application name."""
    if any(sep in text for sep in _TITLE_SEPARATORS) or _FILE_LIKE.search(text):
        return True
    return any(not ch.isalnum() and ch not in " .&+'’-" for ch in text) or len(text.split()) > 3


_EMAILISH = compile_re2(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class ParticipantListDetector(_ContentDetector):
    """Names or emails inside participants/attendees/roster arrays: one finding per list."""

    type = "participant_list"
    LIST_KEYS = frozenset(
        {"participants", "attendees", "attendeelist", "participantlist", "roster",
         "invitees", "panelists", "members", "attendeeslist", "participantslist", "cohosts"}
    )
    ITEM_KEYS = frozenset(
        {"name", "displayname", "fullname", "email", "emailaddress", "username", "firstname",
         "lastname", "mail", "sipuri", "participantname", "attendeename"}
    )

    def applies(self, ctx: Context) -> bool:
        if not _body_like(ctx):
            return False
        index = ctx.ancestor(self.LIST_KEYS)
        if index is None:
            return False
        own = index == len(ctx.keys) - 1
        return (own and ctx.in_list) or (not own and ctx.key in self.ITEM_KEYS)

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not (_EMAILISH.search(text) or name_tokens(text)) or is_machine_token(text):
            return None
        index = ctx.ancestor(self.LIST_KEYS)
        if index is None:
            return None
        return self.make(text, 0.85, "names or addresses of meeting participants",
                         group=ctx.group_at(index))

    @staticmethod
    def merge(texts: list[str]) -> tuple[str, str]:
        """(raw value, evidence) for one list: "3 entries: J*** R***, j***@e***.org, …"."""
        shown = [redact("email" if "@" in t else "person_name", t) for t in texts[:3]]
        more = ", …" if len(texts) > 3 else ""
        noun = "entry" if len(texts) == 1 else "entries"
        return "\n".join(texts), f"{len(texts)} {noun}: " + ", ".join(shown) + more


class AudioLevelDetector(_ContentDetector):
    """Microphone activity: numbers under audioLevel/micLevel/… keys (series merge)."""

    type = "audio_level"
    severity = "medium"
    numeric = True
    KEYS = frozenset(
        {"audiolevel", "audiolevels", "miclevel", "miclevels", "microphonelevel",
         "inputlevel", "inputlevels", "speakinglevel", "audioinputlevel", "volume",
         "audiomeanvolume", "audiomeangain", "speechrms", "avrrms", "maxrms", "speechlength",
         "voicelevel", "voiceactivity", "vadlevel", "rmslevel", "micvolume", "inputvolume",
         "vadretentiononmute", "speechlevel"}
    )
    _SUFFIXES = ("audiolevel", "miclevel", "inputlevel", "speakinglevel", "micvolume")

    def _is_audio_key(self, key: str) -> bool:
        return key in self.KEYS or key.endswith(self._SUFFIXES)

    def applies(self, ctx: Context) -> bool:
        if not _body_like(ctx):
            return False
        return self._is_audio_key(ctx.key) or self._is_audio_key(ctx.parent)

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return None
        elif not isinstance(value, (int, float)):
            return None
        own = self._is_audio_key(ctx.key)
        if not own and ctx.negative:
            return None  # a timestamp or count beside the levels
        if own and not ctx.in_list:
            return self.make(str(value), 0.8, f"audio level under key {ctx.raw_key!r}")
        # A series (list items) or fields of an audio-level object: one finding for all.
        index = len(ctx.keys) - 1 if own else len(ctx.keys) - 2
        return self.make(str(value), 0.8, f"audio level series under key "
                         f"{ctx.keys[index]!r}", group=ctx.group_at(index))

    @staticmethod
    def merge(texts: list[str]) -> tuple[str, str]:
        """(raw value, evidence) for a series: "series of 12 values"."""
        return ",".join(texts), f"series of {len(texts)} values"
