"""Loading a large generated pack does work in proportion to its size: counted, not timed."""

from __future__ import annotations

import gc
from pathlib import Path

import jsonpath_ng._ply.yacc as ply_yacc
import pytest

from phonehome.rules import load_rules


def generated_pack(count: int) -> str:
    """`count` distinct rules, each with its own domain, filter, paths and globs."""
    lines = ["pack: bulk", "vendor: Bulk Vendor", "domains: [bulk.example]", "rules:"]
    for i in range(count):
        lines += [
            f"  - id: bulk-{i}",
            f"    title: Bulk rule {i}",
            "    purpose: telemetry",
            f"    match: {{domains: [h{i}.bulk.example], filter: '~m POST & ~u \"/e{i}\"'}}",
            f"    event: $.events[*].n{i}",
            f"    classify: [{{name: 'ev{i}.*', trigger: in_meeting}}]",
            f"    fields: {{'$.device.os{i}': device_info, 'query:uid{i}': identifiers}}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def big_pack(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "bulk.yaml"
    path.write_text(generated_pack(1500))
    return path


def test_the_generated_pack_loads_whole(big_pack):
    ruleset = load_rules([big_pack], include_builtin=False)
    assert len(ruleset.rules) == 1500
    assert ruleset.rules[-1].id == "bulk-1499"


def test_no_collector_pass_walks_the_growing_heap_during_a_load(big_pack):
    # Each pass of the cyclic collector walks every live object; run over and over
    # while the load's objects pile up, it made load time grow faster than the pack.
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    load_rules([], include_builtin=True)  # warm: imports and the bundled packs
    gc.callbacks.append(count)
    try:
        load_rules([big_pack], include_builtin=False)
    finally:
        gc.callbacks.remove(count)
    # A young pass scheduled just before the load may still run as it starts.
    assert len(passes) <= 1 and 2 not in passes, passes
    assert gc.isenabled()


def test_the_jsonpath_parser_is_built_once_not_per_path(big_pack, monkeypatch):
    built: list[object] = []
    real = ply_yacc.yacc

    def counting(*args, **kwargs):
        built.append(kwargs.get("module"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ply_yacc, "yacc", counting)
    ruleset = load_rules([big_pack], include_builtin=False)
    paths = {spec.ref.text for rule in ruleset.rules for spec in rule.fields
             if spec.ref.kind == "path"}
    assert len(paths) == 1500
    assert len(built) <= 1


def test_the_collector_stays_off_only_while_loading(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("pack: x\n")
    with pytest.raises(ValueError):
        load_rules([broken], include_builtin=False)
    assert gc.isenabled()
    gc.disable()
    try:
        load_rules([], include_builtin=True)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
