"""A rule's inline `tests:`: a request and what the rule should make of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..model import CATEGORIES, PARTIES, PURPOSES, TRIGGERS
from ..terms import MARKS
from ..yamldoc import Checker, LDict, LList, Pos

__all__ = ["Expect", "RuleTest", "read_tests"]


@dataclass(frozen=True, slots=True)
class Expect:
    match: bool
    trigger: str | None = None
    categories: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    marks: tuple[str, ...] | None = None
    purpose: str | None = None
    party: str | None = None
    organization: str | None = None
    has_organization: bool = False


@dataclass(frozen=True, slots=True)
class RuleTest:
    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    expect: Expect
    line: int



def read_tests(chk: Checker, m: LDict) -> tuple[RuleTest, ...]:
    raw = chk.member(m, "tests", LList, "a list")
    if raw is None:
        return ()
    out = []
    for index, (item, pos) in enumerate(zip(raw, raw.item_pos, strict=True)):
        test = _test(chk, item, pos, index)
        if test is not None:
            out.append(test)
    return tuple(out)


def _test(chk: Checker, t: Any, pos: Pos, index: int) -> RuleTest | None:
    if not chk.keys(t, pos, ("name", "request", "expect"), ("request", "expect"), "a test"):
        return None
    name = chk.string(t, "name") or f"test {index + 1}"
    request = t.get("request")
    rpos = chk.vpos(t, "request")
    method, url, headers, body = "GET", "", [], b""
    ok = True
    if chk.keys(request, rpos, ("method", "url", "headers", "body"), ("url",),
                    "a test request"):
        method = (chk.string(request, "method") or "GET").upper()
        url = chk.string(request, "url") or ""
        if url and not re.match(r"^(https?|wss?)://[^/\s]+", url):
            chk.err(chk.vpos(request, "url"), f"{url!r} is not an absolute http(s) URL")
            ok = False
        raw_headers = request.get("headers")
        if raw_headers is not None:
            if isinstance(raw_headers, LDict):
                for hk, hv in raw_headers.items():
                    if isinstance(hk, str) and isinstance(hv, (str, int, float)):
                        headers.append((hk, str(hv)))
                    else:
                        chk.err(raw_headers.key_pos[hk],
                                "header names and values must be strings")
            else:
                chk.err(chk.vpos(request, "headers"), "'headers' must be a mapping")
        if "body" in request:
            raw_body = request["body"]
            if isinstance(raw_body, str):
                body = raw_body.encode("utf-8")
            elif isinstance(raw_body, (dict, list)):
                body = json.dumps(raw_body, separators=(",", ":")).encode()
                if not any(k.lower() == "content-type" for k, _ in headers):
                    headers.append(("content-type", "application/json"))
            elif raw_body is not None:
                chk.err(chk.vpos(request, "body"),
                        "'body' must be a string, a mapping or a list")
    else:
        ok = False
    expect = _expect(chk, t.get("expect"), chk.vpos(t, "expect"))
    if expect is None or not ok:
        return None
    return RuleTest(name, method, url, tuple(headers), body, expect, pos.line)


def _expect(chk: Checker, e: Any, pos: Pos) -> Expect | None:
    allowed = ("match", "trigger", "categories", "events", "marks", "purpose", "party",
               "organization")
    if not chk.keys(e, pos, allowed, ("match",), "a test's 'expect'"):
        return None
    match = e.get("match")
    if not isinstance(match, bool):
        if "match" in e:
            chk.err(chk.vpos(e, "match"), "'match' must be true or false")
        return None

    def opt_list(key: str, choices: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(v for v, _ in chk.strings(e, key, choices=choices,
                                               single=False)) if key in e else None

    has_org = "organization" in e
    organization = None
    if has_org and e["organization"] is not None:
        organization = chk.string(e, "organization")
    return Expect(
        match=match, trigger=chk.string(e, "trigger", choices=TRIGGERS),
        categories=opt_list("categories", CATEGORIES), events=opt_list("events", None),
        marks=opt_list("marks", MARKS), purpose=chk.string(e, "purpose", choices=PURPOSES),
        party=chk.string(e, "party", choices=PARTIES),
        organization=organization, has_organization=has_org,
    )
