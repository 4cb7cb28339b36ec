"""The fast .mitm reader (capture/mitm_reader.py) against the old path (FlowReader +
Flow.from_state).

Every check compares with mitmproxy's own reading of the same bytes, never with
stored results: Observations field by field, audit reports, tnetstring values,
and the text of the problem a broken file gives.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import flowfilter, http, io
from mitmproxy.flow import Flow
from mitmproxy.io import compat, tnetstring

from builders import FLOWS, ROOT, full_flows, http_flow, write_flows
from phonehome import cli
from phonehome.capture import files as captures
from phonehome.capture.files import read_capture
from phonehome.capture.mitm_reader import loads
from phonehome.capture.observe import observations_from_flow
from phonehome.model import Observation

REPO_CAPTURES = sorted({*ROOT.glob("examples/**/*.mitm"), *ROOT.glob("tests/**/*.mitm")})
OBSERVATION_FIELDS = [f.name for f in dataclasses.fields(Observation) if f.name != "flow"]


def _old_read_mitm(path: Path, fo: BinaryIO, problem: Callable[[str], None]) -> Iterator[Any]:
    """capture.files._read_mitm as it was before the fast reader: the reference."""
    count = 0
    while True:
        start = fo.tell()
        if not fo.read(1):
            return
        fo.seek(start)
        try:
            state = tnetstring.load(fo)
            flow = Flow.from_state(compat.migrate_flow(state))
        except Exception as e:  # noqa: BLE001 - as the old reader did
            problem(f"broken after {count} flow(s), near byte {start}: {e}"[:300])
            return
        count += 1
        yield flow, fo.tell()


def _fields(observation: Observation) -> dict[str, Any]:
    return {name: getattr(observation, name) for name in OBSERVATION_FIELDS}


def _memory_addresses_hidden(text: str) -> str:
    # mitmproxy's messages can show a memoryview's repr, whose address varies by run
    return re.sub(r"<memory at 0x[0-9a-f]+>", "<memory>", text)


def _read(path: Path) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """(observation fields, byte positions, problems) the audit gets from `path`."""
    problems: list[Any] = []
    observations, positions = [], []
    for flow, position in read_capture(path, problems.append):
        positions.append(position)
        observations += [_fields(o) for o in observations_from_flow(flow, source=path.name)]
    return observations, positions, [_memory_addresses_hidden(str(p)) for p in problems]


def _flowreader_observations(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fo:
        return [_fields(o) for flow in io.FlowReader(fo).stream()
                for o in observations_from_flow(flow, source=path.name)]


def _read_old(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    with monkeypatch.context() as patch:
        patch.setattr(captures, "_read_mitm", _old_read_mitm)
        return _read(path)


# --- captures covering what a flow can hold -----------------------------------


def _version_19_state() -> dict[str, Any]:
    """A flow as mitmproxy wrote it at flow format 19 (before the 19→20→21 migrations)."""
    state = http_flow(method=b"POST", content=b'{"old":true}').get_state()
    state["version"] = 19
    for connection in ("client_conn", "server_conn"):
        state[connection]["state"] = 0  # dropped by 19→20
        state[connection]["tls_version"] = "QUIC"  # renamed QUICv1 by 20→21
    return state


IPV6 = ("ipv6 host", "ipv6 host header")


def _every_kind(path: Path, names: list[str]) -> Path:
    """A capture of the flows named, twice over, then an old-format flow."""
    write_flows(path, [FLOWS[name]() for name in names] * 2)
    with path.open("ab") as fo:
        tnetstring.dump(_version_19_state(), fo)
    return path


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _every_kind(tmp_path_factory.mktemp("flows") / "every-kind.mitm", list(FLOWS))


# --- Observations: new reader == old path -------------------------------------


@pytest.mark.parametrize("name", FLOWS)
def test_each_kind_of_flow_gives_the_old_observations(tmp_path, monkeypatch, name):
    path = write_flows(tmp_path / "one.mitm", [FLOWS[name]()])
    old, new = _read_old(path, monkeypatch), _read(path)
    assert new == old
    assert new[2] == []


def test_a_capture_of_every_kind_gives_the_old_observations(every_kind, monkeypatch):
    old, new = _read_old(every_kind, monkeypatch), _read(every_kind)
    assert new == old
    assert new[0] == _flowreader_observations(every_kind)
    observations = new[0]
    assert len(observations) > len(FLOWS)
    assert observations[-1]["body"] == b'{"old":true}'  # the format-19 flow, migrated
    assert {o["kind"] for o in observations} == {"http", "websocket"}


@pytest.mark.parametrize("path", REPO_CAPTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_repo_captures_give_the_old_observations(path, monkeypatch):
    old, new = _read_old(path, monkeypatch), _read(path)
    assert new == old
    assert new[0] == _flowreader_observations(path)
    assert new[0] and new[2] == []


FILTERS = [
    "~all", "~m POST", "~u /m", "~d example", "~d '^2001:db8::1$'", "~d '^metrics'",
    "~hq user-agent", "~bq email", "~tq json", "~c 200", "~s", "~hs content-length",
    "~bs message", "~ts text", "~q", "~e", "~marked", "~comment checked", "~replay",
    "~src '127[.]0[.]0[.]1'", "~dst 'address:22'", "~http", "~websocket", "~h cookie",
    "~b binary", "~m PUT & !~c 200", "~d example | ~s",
]


def test_every_filter_sees_what_it_sees_on_the_whole_flow(every_kind):
    light = [flow for flow, _ in read_capture(every_kind)]
    full = full_flows(every_kind)
    assert [type(f) for f in light] == [type(f) for f in full]
    plain_http = [i for i, f in enumerate(full)
                  if isinstance(f, http.HTTPFlow) and f.websocket is None]
    assert len(plain_http) > 20
    for expression in FILTERS:
        matches = flowfilter.parse(expression)
        assert [bool(matches(light[i])) for i in plain_http] == \
            [bool(matches(full[i])) for i in plain_http], expression
    assert any(flowfilter.parse("~s")(full[i]) for i in plain_http)  # not all trivially False
    assert any(flowfilter.parse("~e")(full[i]) for i in plain_http)


# --- the audit report: new reader == old path ---------------------------------


def _audit_report(capture: Path, out: Path) -> dict[str, Any]:
    # One store folder for both audits: one install, one fingerprint key.
    store = out.parent / "store" / "audit.sqlite"
    code = cli.main(["audit", str(capture), "-o", str(out), "--format", "json", "-q",
                     "--store", str(store),
                     "--identity", str(ROOT / "examples" / "identity.yaml")])
    assert code == 0
    report = json.loads((out / "audit.json").read_text())
    report.pop("generated_at")
    return report


def _audit_reports(capture: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(new, old) reports of the same audit, through the new reader and the old path."""
    new = _audit_report(capture, out / "new")
    with monkeypatch.context() as patch:
        patch.setattr(captures, "_read_mitm", _old_read_mitm)
        old = _audit_report(capture, out / "old")
    return new, old


def test_the_webex_session_audit_report_is_the_old_one(tmp_path, monkeypatch):
    new, old = _audit_reports(ROOT / "examples" / "webex-session.mitm", tmp_path, monkeypatch)
    assert new["flows"] == old["flows"]
    assert new == old
    assert len(new["flows"]) == 90


def test_an_audit_report_of_every_kind_of_flow_is_the_old_one(tmp_path, monkeypatch):
    capture = _every_kind(tmp_path / "every-kind.mitm", list(FLOWS))
    new, old = _audit_reports(capture, tmp_path, monkeypatch)
    assert new["flows"] == old["flows"]
    assert new == old


@pytest.mark.parametrize("name", IPV6)
def test_an_audit_report_of_an_ipv6_flow_is_the_old_one(tmp_path, monkeypatch, name):
    capture = write_flows(tmp_path / "ipv6.mitm", [FLOWS[name]()])
    new, old = _audit_reports(capture, tmp_path, monkeypatch)
    assert new == old


# --- truncated and corrupt files: the same flows, then the same problem -------


def _record_starts(path: Path) -> list[int]:
    starts, size = [], path.stat().st_size
    with path.open("rb") as fo:
        while fo.tell() < size:
            starts.append(fo.tell())
            tnetstring.load(fo)
    return starts


def test_truncations_give_the_old_flows_and_problem(tmp_path, monkeypatch, every_kind):
    data = every_kind.read_bytes()
    starts = _record_starts(every_kind)
    cuts = {len(data) - 1} | set(range(16, starts[1], 211))  # 16: past the first length prefix
    for start in starts[1:]:
        cuts |= {start - 1, start, start + 1, start + 2, start + 5}
    cuts |= set(range(starts[3] + 7, starts[5], 97))  # inside a few flows
    path = tmp_path / "cut.mitm"
    for cut in sorted(cuts):
        path.write_bytes(data[:cut])
        old, new = _read_old(path, monkeypatch), _read(path)
        assert new == old, cut
        if cut not in starts:  # a cut between flows is a clean end
            assert len(new[2]) == 1 and "broken after" in new[2][0], cut


@pytest.mark.parametrize(("where", "replacement"), [
    ("length prefix", b"x"),
    ("length prefix", b"9"),
    ("length prefix", b"-"),
    ("type tag", b"?"),
    ("type tag", b"#"),
    ("middle", b"#" * 40),
    ("middle", b"1:" * 20),
    ("between flows", b"junk"),
])
def test_corruptions_give_the_old_flows_and_problem(tmp_path, monkeypatch, every_kind,
                                                    where, replacement):
    data = bytearray(every_kind.read_bytes())
    starts = _record_starts(every_kind)
    if where == "length prefix":
        at = starts[4] + 1
        data[at:at + 1] = replacement
    elif where == "type tag":
        at = starts[5] - 1
        data[at:at + 1] = replacement
    elif where == "middle":
        at = (starts[6] + starts[7]) // 2
        data[at:at + len(replacement)] = replacement
    else:
        data[starts[3]:starts[3]] = replacement
    path = tmp_path / "corrupt.mitm"
    path.write_bytes(bytes(data))
    old, new = _read_old(path, monkeypatch), _read(path)
    assert new == old
    assert len(new[2]) == 1 and "broken after" in new[2][0]


# --- the tnetstring parser: mitmproxy's values and mitmproxy's errors ---------

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.binary(max_size=40) | st.text(max_size=20))
_KEYS = st.text(max_size=12) | st.binary(max_size=12) | st.integers()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)
_STRUCTURE = b"0123456789:,;#^!~]}-+ _"


def _outcome(parse: Callable[[bytes], Any], data: bytes) -> tuple[str, str]:
    """("value", its repr) or ("error", the exception type): repr tells 1 from True."""
    try:
        return "value", repr(parse(data))
    except Exception as e:  # noqa: BLE001 - the type is the outcome
        return "error", type(e).__name__


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_parser_gives_mitmproxys_values(value):
    data = tnetstring.dumps(value)
    assert repr(loads(data)) == repr(tnetstring.loads(data))
    assert repr(loads(data + b"trailing junk")) == repr(tnetstring.loads(data))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, st.data())
def test_parser_fails_where_mitmproxy_fails(value, draw):
    data = bytearray(tnetstring.dumps(value))
    for _ in range(draw.draw(st.integers(1, 3), label="edits")):
        at = draw.draw(st.integers(0, len(data) - 1), label="at")
        if draw.draw(st.booleans(), label="truncate"):
            del data[at:]
            break
        data[at] = draw.draw(st.sampled_from(_STRUCTURE) | st.integers(0, 255), label="byte")
    assert _outcome(loads, bytes(data)) == _outcome(tnetstring.loads, bytes(data))


@pytest.mark.parametrize("data", [
    b"", b"0", b"0:", b"0:~", b"1:~", b"-1:~", b"-2:ab,", b"+3:abc,", b" 3:abc,", b"0_3:abc,",
    b"3 :abc,", b"00:,", b"4:true!", b"4:True!", b"3:1.5^", b"3:1_0#", b"2:\xc3\xa9;",
    b"1:\xff;", b"8:1:a0:~1:b}", b"6:0:]0:~}", b"5:1:a,]", b"9:1:a,-1:b]", b"3:0:~]x",
    b"12:" + b"9" * 12 + b",",
])
def test_parser_edge_cases_match_mitmproxy(data):
    assert _outcome(loads, data) == _outcome(tnetstring.loads, data)
