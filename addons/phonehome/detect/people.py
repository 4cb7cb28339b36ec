"""Detectors for who the user is: e-mail address, phone number, personal name, organisation.

Patterns are google-re2 (linear time); phone numbers are checked with `phonenumbers`.
"""

from __future__ import annotations

from typing import Any

import phonenumbers

from ..model import Scalar
from .base import (
    ALNUM,
    Context,
    Detector,
    Hit,
    LabelledDetector,
    compile_re2,
    is_machine_token,
    text_before,
)

__all__ = [
    "EmailDetector",
    "PhoneDetector",
    "PersonNameDetector",
    "OrganizationNameDetector",
    "name_tokens",
]


# --- email ------------------------------------------------------------------

# "image@2x.png" and "icon@3x.webp" are asset names, not addresses.
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp bmp ico js mjs css map json xml html htm txt log "
    "zip gz pdf mp3 mp4 wav ttf woff woff2 exe dll so dylib".split()
)


class EmailDetector(Detector):
    type = "email"
    severity = "high"
    base_confidence = 0.85
    single_line = True
    pattern = (
        r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
        r"[A-Za-z]{2,24}\b"
    )
    prefilter = r"@[A-Za-z0-9][A-Za-z0-9-]*\.[A-Za-z0-9]"
    positive_keys = frozenset(
        {"email", "emailaddress", "mail", "useremail", "upn", "login", "sipuri", "sip",
         "contact", "from", "to", "cc", "recipient", "sender", "owner", "attendee"}
    )

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        text = value[start:end]
        local, _, domain = text.partition("@")
        if local.startswith(".") or local.endswith(".") or ".." in local or ".." in domain:
            return None
        if domain.rsplit(".", 1)[-1].lower() in _FILE_TLDS:
            return None
        if _in_userinfo(value, start):
            return None  # https://<key>@o123.ingest.sentry.io/…: a URL's user part
        return self.make(
            text, self.base_confidence + self.context_score(ctx), "email address shape"
        )


_NOT_USERINFO = frozenset("/?#@ \t\r\n\"'<>")


def _in_userinfo(value: str, start: int) -> bool:
    """Whether value[start:] begins inside the userinfo of a `scheme://user@host` URL."""
    scheme = value.rfind("://", max(0, start - 256), start)
    if scheme < 0:
        return False
    return not any(ch in _NOT_USERINFO for ch in value[scheme + 3 : start])


# --- phone ------------------------------------------------------------------

_PHONE_KEYS = frozenset(
    {"phone", "phonenumber", "tel", "telephone", "mobile", "mobilenumber", "cell", "msisdn",
     "callerid", "callednumber", "callingnumber", "dialnumber", "pstn", "pstnnumber",
     "accessnumber", "phoneno", "fax", "contactnumber", "dialin", "dialout"}
)
_PHONE_REGIONS = ("US", "GB", "DE", "FR")


def _valid_phone(text: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


class PhoneDetector(Detector):
    """International numbers (+CC…) anywhere; national numbers only under phone keys."""

    type = "phone"
    severity = "high"
    numeric = True
    base_confidence = 0.8
    single_line = True
    pattern = r"\+[1-9][0-9 ().-]{6,20}[0-9]"
    prefilter = r"\+[1-9][0-9 ().-]{6}"
    positive_keys = _PHONE_KEYS

    def accept(self, value: str, start: int, end: int, ctx: Context) -> Hit | None:
        prev = text_before(value, start)
        nxt = value[end : end + 1]
        # Inside base64 ("…ab+12345678…") or a longer number: not a phone.
        if (prev and (prev in ALNUM or prev in "/=+")) or (nxt and (nxt in ALNUM or nxt in "/=")):
            return None
        text = value[start:end]
        digits = sum(ch.isdigit() for ch in text)
        if not 8 <= digits <= 15 or not _valid_phone(text, None):
            return None
        return self.make(
            text, self.base_confidence + self.context_score(ctx), "valid international number"
        )

    def applies(self, ctx: Context) -> bool:
        return ctx.key in _PHONE_KEYS and ctx.source != "url"

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        text = str(value).strip()
        if text.startswith("tel:"):
            text = text[4:]
        digits = sum(ch.isdigit() for ch in text)
        if not 6 <= digits <= 15 or len(text) > 32:
            return None
        if text.startswith("+"):
            valid = _valid_phone(text, None)
        else:
            valid = any(_valid_phone(text, region) for region in _PHONE_REGIONS)
        if not valid:
            return None
        return self.make(text, 0.9, f"valid phone number under key {ctx.raw_key!r}")


# --- person name ------------------------------------------------------------

_NAME_KEYS = frozenset(
    {"displayname", "fullname", "realname", "firstname", "lastname", "givenname", "surname",
     "familyname", "middlename", "nickname", "callername", "organizername", "sendername",
     "authorname", "attendeename", "participantname", "ownername", "speakername",
     "presentername", "contactname", "hostdisplayname", "userdisplayname", "personname"}
)
_SINGLE_TOKEN_KEYS = frozenset(
    {"firstname", "lastname", "givenname", "surname", "familyname", "middlename", "nickname"}
)
_PERSON_PARENTS = frozenset(
    {"user", "owner", "host", "organizer", "sender", "author", "actor", "attendee",
     "participant", "person", "contact", "creator", "speaker", "caller", "callee",
     "presenter", "member", "profile", "me", "self", "from", "to", "participants",
     "attendees", "members", "invitees", "panelists", "speakers", "contacts", "people",
     "users", "cohosts", "cohost", "invitee", "panelist"}
)
_NAME_TOKEN = compile_re2(r"^\pL[\pL\pM'’.-]*$")
_CAPITALIZED = compile_re2(r"^\p{Lu}")


def name_tokens(value: str) -> list[str] | None:
    """The words of a plausible personal name, or None."""
    text = value.strip()
    if not 2 <= len(text) <= 80 or "@" in text or any(ch.isdigit() for ch in text):
        return None
    tokens = text.split()
    if not 1 <= len(tokens) <= 5 or not all(_NAME_TOKEN.search(t) for t in tokens):
        return None
    return tokens


_LABELLED_NAME_PATTERN = (
    r"(?:[Dd]isplay[ _]?[Nn]ame|[Ff]ull[ _]?[Nn]ame|[Uu]ser[ _]?[Nn]ame|[Rr]eal[ _]?[Nn]ame)"
    r"[\"']?[ \t]*[:=][ \t]*[\"']?([A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ'’-]+"
    r"(?:[ \t][A-ZÀ-ÖØ-Þ][A-Za-zÀ-ÖØ-öø-ÿ'’-]+){1,3})"
)


class PersonNameDetector(LabelledDetector):
    """Names from key context (displayName, fullName, firstName…, `name` under a person)
    and "displayName: First Last" labels inside free-text log lines."""

    type = "person_name"
    severity = "medium"
    pattern = _LABELLED_NAME_PATTERN
    prefilter = r"[Nn]ame[\"']?[ \t]*[:=]"

    def labelled(self, m: Any, span: str, ctx: Context) -> Hit | None:
        if ctx.source in ("url", "header"):
            return None
        name = m.group(1)
        if name_tokens(name) is None or name.isupper():
            return None
        return self.make(name, 0.75, "a personal name labelled in free text")

    def applies(self, ctx: Context) -> bool:
        if ctx.source in ("url", "header"):
            return False
        key = ctx.key
        if key in _NAME_KEYS or key.endswith(("displayname", "fullname")):
            return True
        if key == "username":
            return True
        return key == "name" and ctx.parent in _PERSON_PARENTS

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        tokens = name_tokens(value)
        if tokens is None or is_machine_token(value.strip()):
            return None
        key = ctx.key
        if key == "username" or key == "name":
            # Only "First Last": a bare login or an object's name is not a person.
            if not 2 <= len(tokens) <= 4 or not all(_CAPITALIZED.search(t) for t in tokens):
                return None
            confidence = 0.75
        elif key in _SINGLE_TOKEN_KEYS:
            confidence = 0.8
        else:
            confidence = 0.85 if len(tokens) >= 2 else 0.7
        return self.make(value.strip(), confidence, f"a personal name under key {ctx.raw_key!r}")


# --- organisation -------------------------------------------------------------

_ORG_KEYS = frozenset(
    {"orgname", "organizationname", "organisationname", "organization", "organisation",
     "tenantname", "tenantdisplayname", "companyname", "company", "employer",
     "orgdisplayname", "organizationdisplayname", "customername", "accountorgname"}
)
_NOT_ORG_PARENTS = frozenset({"sdk", "app", "application", "vendor", "publisher", "library",
                              "manufacturer", "client", "product", "lib", "framework"})
_NOT_ORGS = frozenset({"", "unknown", "null", "none", "n/a", "undefined", "default",
                       "personal", "consumer", "free", "guest", "test", "other"})
_HAS_LETTER = compile_re2(r"\pL")


class OrganizationNameDetector(Detector):
    """The user's employer or tenant name (orgName, tenantName, companyName …): it
    narrows who the user is and names their employer."""

    type = "organization_name"
    severity = "medium"

    def applies(self, ctx: Context) -> bool:
        return (ctx.key in _ORG_KEYS and ctx.source in ("body", "query")
                and ctx.parent not in _NOT_ORG_PARENTS)

    def inspect(self, value: Scalar, ctx: Context) -> Hit | None:
        if not isinstance(value, str):
            return None
        text = value.strip()
        if not 2 <= len(text) <= 120 or text.lower() in _NOT_ORGS or "@" in text:
            return None
        if _HAS_LETTER.search(text) is None or "://" in text:
            return None
        if " " not in text and is_machine_token(text) and not text.isalpha():
            return None  # an org id, an enum, a uuid
        if text.isupper() and "_" in text:
            return None  # ORG_TYPE_ENTERPRISE
        return self.make(text, 0.8, f"organisation or tenant name under key {ctx.raw_key!r}")
