"""A burst of reports in one engine pass (``Engine.handle_burst``): the same state as the
reports one by one, what changed upstream reported together, and a fault mid-burst resetting
the engine as a single event's would.

    u1 -- proxy -- d1: hosts 10.1.0.10 .. 10.1.0.59
"""

from __future__ import annotations

import pytest
from harness import FaultyRng, T, World, ip

from mcastproxy.actions import SendPacket
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived
from mcastproxy.wire import build_igmp
from mcastproxy.wire.messages import GroupRecord, Report

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream: {candidates: [{interface: u1}]}
"""
ALL_V3_ROUTERS = ip("224.0.0.22")


def report(host: str, group: str, join: bool = True) -> PacketReceived:
    kind = T.CHANGE_TO_EXCLUDE_MODE if join else T.CHANGE_TO_INCLUDE_MODE
    payload = build_igmp(Report(3, (GroupRecord(kind, ip(group)),)))
    return PacketReceived("d1", 4, ip(host), ALL_V3_ROUTERS, payload)


def burst() -> list[PacketReceived]:
    events = [report(f"10.1.0.{10 + i}", f"239.1.0.{1 + i % 10}") for i in range(50)]
    return [*events, report("10.1.0.10", "239.1.0.1", join=False)]


def state(engine: Engine) -> tuple[object, ...]:
    snap = engine.snapshot()
    return (tuple((u.interface, tuple((g.group, g.filter_mode, g.sources) for g in u.groups))
                  for u in snap.upstreams),
            tuple((ln.interface, tuple((g.group, tuple(sorted(s.address for s in g.subscribers)))
                                       for g in ln.groups)) for ln in snap.links))


def upstream_reports(actions: list[object]) -> int:
    return sum(isinstance(a, SendPacket) and a.interface == "u1" for a in actions)


def test_a_burst_leaves_the_state_one_by_one_would_with_fewer_upstream_reports() -> None:
    one, many = World.make(CONFIG), World.make(CONFIG)
    sent_one = 0
    for ev in burst():
        sent_one += upstream_reports(one.handle(ev))
    many.engine.handle_burst(burst(), many.now)
    sent_many = upstream_reports(many.engine.pop_actions())
    assert state(many.engine) == state(one.engine)
    assert len(many.engine.snapshot().upstreams[0].groups) == 10
    assert 0 < sent_many < sent_one  # the burst's records travel together



def test_a_fault_mid_burst_resets_the_engine_and_it_goes_on() -> None:
    rng = FaultyRng()
    engine = Engine(parse_config(CONFIG), rng=rng)
    for name, addr in (("u1", "192.0.2.1"), ("d1", "10.1.0.1"), ("d2", "10.2.0.1")):
        engine.handle(InterfaceUp(name, (ip(addr),)), 0.0)
    engine.pop_actions()
    rng.armed = True
    with pytest.raises(RuntimeError, match="injected fault"):
        engine.handle_burst(burst(), 1.0)
    assert engine.resets == 1
    assert engine.snapshot().upstreams[0].groups == ()  # nothing of the burst half kept
    engine.handle_burst(burst(), 2.0)
    assert len(engine.snapshot().upstreams[0].groups) == 10


def test_something_that_is_not_an_event_is_refused_before_anything_changes() -> None:
    w = World.make(CONFIG)
    before = state(w.engine)
    with pytest.raises(TypeError):
        w.engine.handle_burst([report("10.1.0.12", "239.1.0.2"), "nope"], w.now)  # type: ignore[list-item]
    assert state(w.engine) == before
    assert w.engine.resets == 0
