"""Respelled event names for sessions no pack was tuned to."""

from __future__ import annotations

import pytest

from phonehome.simulate.spelling import respell, respeller
from phonehome.simulate.timeline import extra_steps


@pytest.mark.parametrize(("style", "spelled"), [
    ("snake", "client_share_floor_grant_request"),
    ("camel", "clientShareFloorGrantRequest"),
    ("pascal", "ClientShareFloorGrantRequest"),
    ("kebab", "client-share-floor-grant-request"),
    ("desktop", "desktop.share.floor.grant.request"),
])
def test_respell_keeps_the_words(style, spelled):
    assert respell("client.share.floor-grant.request", style) == spelled


def test_respell_refuses_an_unknown_style():
    with pytest.raises(ValueError, match="unknown spelling style"):
        respell("a.b", "shouting")


def test_respeller_is_stable_per_name_and_respells_about_the_fraction():
    names = [f"client.event{i}.start" for i in range(400)]
    spell = respeller(3, 0.5)
    first = [spell(n) for n in names]
    assert first == [spell(n) for n in names]
    changed = sum(a != b for a, b in zip(first, names, strict=True))
    assert 120 < changed < 280
    assert [respeller(3, 0.0)(n) for n in names] == names
    assert all(respeller(3, 1.0)(n) != n for n in names)


def test_extra_steps_go_in_their_trigger_phase():
    steps = extra_steps({"shutdown": ["client.terminate.app"], "setup": []})
    assert [(s.phase, s.at > 1500) for s in steps] == [("shutdown", True)]
    with pytest.raises(ValueError, match="no phase"):
        extra_steps({"teatime": ["x"]})
