"""A fault inside the engine never leaves it half-applied: it resets from its configuration,
says so, and goes on working (STYLE §11)."""

from __future__ import annotations

import pytest
from harness import FaultyRng, T, World, ip

from mcastproxy.actions import DeleteRoute, Log, SendPacket
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import ConfigChanged
from mcastproxy.family import Family
from mcastproxy.wire.messages import Query

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2}]
upstream:
  candidates:
    - interface: u1
      records: [{group: "239.1.0.0/16"}, {group: "ff1e::1:0/112"}]
    - interface: u2
"""

CASES = {
    4: ("10.1.0.7", "10.2.0.9", "239.1.1.1", "239.2.2.2", "192.0.2.99"),
    6: ("fe80::d1:7", "fe80::d2:9", "ff1e::1:101", "ff1e::2:202", "2001:db8::99"),
}



def faulty_world() -> tuple[World, FaultyRng]:
    """The engine with a random source that fails when armed, its interfaces up."""
    rng = FaultyRng()
    w = World(Engine(parse_config(CONFIG), rng=rng))
    for name in ("u1", "u2", "d1", "d2"):
        w.up(name)
    return w, rng


@pytest.mark.parametrize("v", [4, 6], ids=["igmp", "mld"])
def test_a_fault_resets_the_engine_which_says_so_and_keeps_working(v: int) -> None:
    h1, h3, g1, g2, s1 = CASES[v]
    w, rng = faulty_world()
    w.join("d1", h1, g1)
    w.flow("u1", s1, g1)
    assert w.route("u1", s1, g1) == {"d1"}
    w.run_for(5)
    w.clear()

    rng.armed = True
    with pytest.raises(RuntimeError, match="injected fault"):
        w.join("d2", h3, g2)
    actions = w.engine.pop_actions()
    # Nothing of the failed event goes out; every route the engine made is deleted; the
    # reset is logged with its cause; the links start again with their startup queries.
    assert DeleteRoute("u1", ip(s1), ip(g1)) in actions
    resets = [a for a in actions if isinstance(a, Log) and a.event == "engine-reset"]
    assert len(resets) == 1
    assert "injected fault" in resets[0].message
    snap = w.engine.snapshot()
    assert snap.resets == 1
    assert snap.last_error == "RuntimeError: injected fault"
    assert snap.counts["engine reset"] == 1
    assert snap.flows == ()
    assert dict(w.engine.routes()) == {}
    for link in ("d1", "d2"):
        state = snap.link(link, Family(v))
        assert state is not None
        assert state.groups == ()
        assert state.querier
    queries = [a for a in actions if isinstance(a, SendPacket) and a.interface == "d1"]
    assert queries
    assert all(isinstance(w.decode(a), Query) for a in queries)

    # The subscribers answer the startup queries: everything is learned again.
    w.clear()
    w.join("d1", h1, g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, g1, ())]
    w.flow("u1", s1, g1)
    assert w.route("u1", s1, g1) == {"d1"}


def test_an_event_that_is_not_one_is_refused_without_a_reset() -> None:
    w = World.make(CONFIG)
    with pytest.raises(TypeError, match="not an engine event"):
        w.engine.handle("joined", 0.0)  # type: ignore[arg-type]
    assert w.engine.snapshot().resets == 0


@pytest.mark.parametrize("v", [4, 6], ids=["igmp", "mld"])
def test_a_reload_that_fails_half_way_leaves_the_old_configuration_in_force(v: int) -> None:
    h1, _, g1, _, _ = CASES[v]
    w, rng = faulty_world()
    w.join("d1", h1, g1)
    w.run_for(5)
    # The new configuration has no u1: g1 moves to u2, whose join draws a report delay,
    # which fails half-way through the reload.
    without_u1 = CONFIG.partition("    - interface: u1")[0]
    moved = parse_config(without_u1 + "    - interface: u2\n")
    rng.armed = True
    with pytest.raises(RuntimeError, match="injected fault"):
        w.handle(ConfigChanged(moved))
    assert w.engine.config is not moved
    assert w.engine.config.upstream.candidates[0].records  # the old one, whole
    assert w.engine.snapshot().resets == 1
