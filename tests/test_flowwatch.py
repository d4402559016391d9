"""Per-channel data liveness from sampled route counters, on a virtual clock."""

from __future__ import annotations

from mcastproxy.flowwatch import FlowWatch, Health

F = ("u1", b"\x0a\x00\x00\x01", b"\xe8\x01\x01\x01")
G = ("u2", b"\x0a\x00\x00\x01", b"\xe8\x01\x01\x01")


def test_unwatched_upstreams_are_always_delivering() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": 1.0})
    w.add(G, 0.0)
    assert w.sample({G: 5}, 10.0) == []
    assert w.delivering(G)
    assert dict(w.flows()) == {}


def test_silence_for_the_interval_kills_then_a_return_is_held_down() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": 1.0})
    w.add(F, 0.0)
    assert w.sample({F: 3}, 0.025) == []
    assert w.sample({F: 3}, 0.1) == []  # 75 ms without a packet: not yet
    [dead] = w.sample({F: 3}, 0.125)
    assert dead.health is Health.DEAD
    assert dead.cause == "no packet for 100 ms"
    assert not w.delivering(F)
    [back] = w.sample({F: 4}, 0.5)
    assert back.health is Health.RETURNING
    assert not w.delivering(F)
    assert w.sample({F: 9}, 1.4) == []
    [ok] = w.sample({F: 12}, 1.5)
    assert ok.health is Health.DELIVERING
    assert w.delivering(F)


def test_stopping_again_within_the_hold_down_is_dead_again() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": 1.0})
    w.add(F, 0.0)
    w.sample({F: 0}, 0.2)
    w.sample({F: 1}, 0.3)
    [again] = w.sample({F: 1}, 0.4)
    assert again.health is Health.DEAD


def test_hold_down_never_keeps_a_returned_flow_a_standby() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": None})
    w.add(F, 0.0)
    w.sample({F: 0}, 0.2)
    w.sample({F: 5}, 0.3)
    for t in range(1, 100):
        w.sample({F: 5 + t}, 0.3 + t)
    assert w.health(F) is Health.RETURNING


def test_a_route_made_for_a_packet_counts_as_delivering_from_its_making() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": 1.0})
    w.add(F, 5.0)
    assert w.sample({F: 0}, 5.05) == []  # the kernel's count starts at 0 after the upcall
    assert [t.health for t in w.sample({F: 0}, 5.11)] == [Health.DEAD]


def test_unread_flows_are_left_alone_and_reconfiguring_forgets() -> None:
    w = FlowWatch({"u1": 0.1}, {"u1": 1.0})
    w.add(F, 0.0)
    assert w.sample({}, 5.0) == []
    w.configure({}, {})
    assert dict(w.flows()) == {}
