"""Bad phonehome options through a real mitmdump: one line naming the option, no
traceback, a non-zero exit, and the line comes before the proxy would listen."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from phonehome.proxy_process import ADDON_SCRIPT, free_port, mitmdump_executable

pytestmark = pytest.mark.e2e

ERROR_LINE = re.compile(r"\b(phonehome_[a-z_]+): ")


def _run_mitmdump(tmp_path: Path, options: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [mitmdump_executable(), "--listen-host", "127.0.0.1",
            "--listen-port", str(free_port()), "--set", f"confdir={tmp_path / 'conf'}",
            "-s", str(ADDON_SCRIPT), "--set", f"phonehome_report_dir={tmp_path / 'reports'}"]
    for key, value in options.items():
        args += ["--set", f"{key}={value}"]
    # Unbuffered, so the order of lines in the merged output is the order of events.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, env=env, timeout=90,
                              cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        pytest.fail(f"mitmdump kept running with {options}; output:\n{out}")


def _setup(tmp_path: Path) -> dict[str, Path]:
    broken_pack = tmp_path / "broken-pack.yaml"
    broken_pack.write_text("pack: broken\nvendor: X\nrules:\n  - id: a\n    titel: typo\n")
    broken_identity = tmp_path / "identity.yaml"
    broken_identity.write_text("email: [unclosed\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    return {"pack": broken_pack, "identity": broken_identity, "file": a_file,
            "dir": tmp_path}


BAD = [
    ("phonehome_max_leaves", "-5", "must be at least 1"),
    ("phonehome_max_depth", "0", "must be at least 1"),
    ("phonehome_max_body", "abc", "not a whole number"),
    ("phonehome_audit_process", "maybe", "not true or false"),
    ("phonehome_formats", "xml", "unknown report format xml"),
    ("phonehome_scope", "~d (", ""),
    ("phonehome_enforce", "nuke", "not one of observe, redact, block"),
    ("phonehome_time_scale", "fast", "not a number"),
    ("phonehome_identity", "{missing}", "cannot read identity file"),
    ("phonehome_identity", "{identity}", "invalid YAML"),
    ("phonehome_rules", "{pack}", "unknown key 'titel'"),
    ("phonehome_enforce_file", "{missing}", ""),
    ("phonehome_store", "{dir}", "is a folder"),
    ("phonehome_store", "{file}/audit.sqlite", "is not a folder"),
]


@pytest.mark.parametrize(("option", "value", "reason"), BAD,
                         ids=[f"{o}={v}" for o, v, _ in BAD])
def test_a_bad_option_stops_mitmdump_with_one_line(tmp_path, option, value, reason):
    paths = _setup(tmp_path)
    value = value.format(missing=tmp_path / "missing.yaml", **paths)
    result = _run_mitmdump(tmp_path, {option: value})
    out = result.stdout
    assert result.returncode != 0, out
    assert "Traceback" not in out, out
    lines = out.splitlines()
    errors = [i for i, line in enumerate(lines) if ERROR_LINE.search(line)]
    assert len(errors) == 1, out
    line = lines[errors[0]]
    assert ERROR_LINE.search(line).group(1) == option, out
    assert reason in line, out
    listening = [i for i, line in enumerate(lines) if "proxy listening" in line]
    assert all(errors[0] < i for i in listening), out


def test_every_bad_option_gets_its_own_line(tmp_path):
    result = _run_mitmdump(tmp_path, {"phonehome_max_depth": "0",
                                      "phonehome_max_body": "12kb",
                                      "phonehome_formats": "json,xml"})
    out = result.stdout
    assert result.returncode != 0, out
    assert "Traceback" not in out, out
    named = sorted(m.group(1) for m in map(ERROR_LINE.search, out.splitlines()) if m)
    assert named == ["phonehome_formats", "phonehome_max_body", "phonehome_max_depth"], out
