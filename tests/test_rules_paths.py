"""Compiled JSONPath matching over leaf paths gives the same answers as jsonpath-ng."""

from __future__ import annotations

from typing import Any

import pytest

from builders import walk
from phonehome.rules.paths import Trie, datum_path, parse_path, walk_leaves

DOCUMENTS: dict[str, Any] = {
    "ca_batch": {"metrics": [
        {"type": ["diagnostic-event"], "eventPayload": {"event": {
            "name": "client.share.initiated", "identifiers": {"userId": "u", "orgId": "o"},
            "errors": [{"errorCode": 1, "name": "x"}]}}},
        {"eventPayload": {"event": {"name": "client.muted", "mediaType": "audio"}}},
        {"metricName": "js_sdk_join_success", "fields": {"os_version": "14"}},
    ]},
    "mqe": {"metrics": [{"eventPayload": {"event": {"intervals": [
        {"audioTransmit": [{"common": {"rtt": 1}, "streams": [{"codec": "opus"}, {"x": [1, 2]}]}],
         "intervalMetadata": {"peerReflexiveIP": "203.0.113.1", "peripherals": [
             {"name": "microphone", "information": "AirPods"}]}},
        {"audioTransmit": [], "networkType": "wifi"},
    ]}}}]},
    "nested_names": {"name": "top",
                     "a": {"name": "mid", "b": [{"name": "deep"}, {"c": {"name": 4}}]},
                     "list": [[1, 2], [3, {"name": None}]]},
    "odd_keys": {"0": {"1": "str keys"}, "x": [{"0": "a"}, "b"], "odd key": {"k": True},
                 "empty": {}, "nil": None, "zero": 0},
    "top_list": [{"a": 1}, {"a": {"b": 2}}, 3],
    "scalar": "just a string",
}

PATHS = [
    "$",
    "$.metrics",
    "$.metrics[*]",
    "$.metrics[0]",
    "$.metrics[1,2]",
    "$.metrics[5]",
    "$.metrics[*].eventPayload.event.name",
    "$.metrics[*].eventPayload.event.identifiers.*",
    "$.metrics[*].eventPayload.event.errors[*].errorCode",
    "$.metrics[*].metricName",
    "$.metrics[*].*",
    "$.metrics.*",
    "$..name",
    "$..event.name",
    "$..intervals[*].audioTransmit[*].streams[*]",
    "$..streams[*].x[1]",
    "$..[0]",
    "$..*",
    "$.*",
    "$[*]",
    "$[*].a",
    "$[*].a.b",
    "$[2]",
    "$.a..name",
    "$.a.b[*].name",
    "$.list[*][1]",
    "$.list[1][1].name",
    "$[\"odd key\"].k",
    "$.x[*].*",
    "$.empty",
    "$.nil",
    "$.zero",
    "$..intervalMetadata[\"peerReflexiveIP\",\"peripherals\"]",
    "$.metrics[*].eventPayload.event[\"name\",\"mediaType\"]",
    "$.nope.deeper",
    "$..`this`",
]

NOT_COMPILED = [
    "$.metrics[?(@.metricName)]",
    "$.metrics[-1]",
    "$.metrics[0:2]",
    "$.a.`parent`",
    "$..name.`parent`",
]


def _reference(path: str, doc: Any) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """(leaf paths under what find() found, paths of scalars find() found exactly)."""
    parsed = parse_path(path)
    found = parsed.expr.find(doc)
    under: set[tuple[Any, ...]] = set()
    exact: set[tuple[Any, ...]] = set()
    for datum in found:
        base = datum_path(datum)
        for rel, _value in walk(datum.value):
            under.add(base + rel)
        if not isinstance(datum.value, (dict, list)):
            exact.add(base)
    return under, exact


def _compiled(path: str, doc: Any) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    parsed = parse_path(path)
    assert parsed.steps is not None, f"{path} should compile"
    trie = Trie()
    trie.add(parsed.steps, "t")
    trie.freeze()
    leaf_paths = [p for p, _ in walk(doc)]
    under: set[tuple[Any, ...]] = set()
    exact: set[tuple[Any, ...]] = set()
    for position, hits in walk_leaves(trie, leaf_paths):
        for _target, depth in hits:
            under.add(leaf_paths[position])
            if depth == len(leaf_paths[position]):
                exact.add(leaf_paths[position])
    return under, exact


@pytest.mark.parametrize("doc_name", sorted(DOCUMENTS))
@pytest.mark.parametrize("path", PATHS)
def test_compiled_matches_jsonpath_ng(path: str, doc_name: str) -> None:
    doc = DOCUMENTS[doc_name]
    assert _compiled(path, doc) == _reference(path, doc)


@pytest.mark.parametrize("path", NOT_COMPILED)
def test_constructs_we_do_not_compile_fall_back(path: str) -> None:
    assert parse_path(path).steps is None


def test_the_table_is_not_trivial() -> None:
    """Most (path, document) pairs find something, so equality means something."""
    pairs = [(p, d) for p in PATHS for d in DOCUMENTS.values()]
    nonempty = sum(1 for p, d in pairs if _reference(p, d)[0])
    assert nonempty > len(pairs) // 4


def test_one_trie_many_paths_keeps_targets_apart() -> None:
    trie = Trie()
    for i, text in enumerate(["$.a.b", "$..b", "$.a.*", "$.c[0]"]):
        steps = parse_path(text).steps
        assert steps is not None
        trie.add(steps, i)
    trie.freeze()
    paths = [("a", "b"), ("a", "x"), ("c", 0), ("c", 1), ("z", "b")]
    got = {paths[pos]: sorted({t for t, _ in hits}) for pos, hits in walk_leaves(trie, paths)}
    assert got == {("a", "b"): [0, 1, 2], ("a", "x"): [2], ("c", 0): [3], ("c", 1): [],
                   ("z", "b"): [1]}


@pytest.mark.parametrize("text", ["$.a[", "$..", "$.a[?(@.b ==]", "$.a | $.b", "$.a[*"])
def test_bad_paths_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_path(text)
