"""The bundled rule packs are found from a checkout and from an installed wheel alike."""

from __future__ import annotations

import subprocess
import sys

import pytest

from builders import ROOT
from phonehome.bundled import builtin_rules_dir


def test_checkout_finds_the_repository_rules():
    assert builtin_rules_dir() == ROOT / "rules"


@pytest.mark.e2e
def test_an_installed_wheel_carries_and_finds_its_rules(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                    "-w", str(tmp_path / "dist")], check=True, timeout=600,
                   capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("phonehome-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=600, capture_output=True)
    probe = (
        "import phonehome.bundled as p, phonehome.rules as r;"
        "d = p.builtin_rules_dir(); print(d);"
        "print(sorted(pack.id for pack in r.load_rules().packs))"
    )
    # Run from an empty folder with only the installed copy first on the path.
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(target),
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    folder, packs = result.stdout.strip().splitlines()
    assert folder == str(target / "phonehome" / "_rules")
    assert packs == "['generic', 'teams', 'trackers', 'webex']"
