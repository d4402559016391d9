"""Per-channel data liveness, hot-standby swaps and resilient channels, on a virtual clock.

The kernel's route counters come in as ``CountersSampled`` every 25 ms (a quarter of the
100 ms data interval configured), as the daemon samples them.
"""

from __future__ import annotations

import pytest
from harness import T, World, ip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine import FAMS, Fam

from mcastproxy.actions import DeleteRoute, SetRoute
from mcastproxy.events import CountersSampled, InterfaceDown
from mcastproxy.flowwatch import Health
from mcastproxy.moves import BRIDGE_TIMEOUT

SAMPLE = 0.025


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def make(f: Fam, upstream: str) -> World:
    text = ("igmp: {version: 3}\nmld: {version: 2}\n"
            "downstream: [{interface: d1, fast-leave: true}, {interface: d2}]\n"
            "upstream:\n" + upstream)
    return World.make(text)


class Counters:
    """Packet counts per flow, advanced for the flows that deliver, sampled every 25 ms."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.packets: dict[tuple[str, bytes, bytes], int] = {}
        self.delivering: set[tuple[str, bytes, bytes]] = set()

    def deliver(self, upstream: str, source: str, group: str, on: bool = True) -> None:
        key = (upstream, ip(source), ip(group))
        self.packets.setdefault(key, 0)
        (self.delivering.add if on else self.delivering.discard)(key)

    def run_for(self, seconds: float) -> None:
        end = self.w.now + seconds
        while self.w.now + SAMPLE <= end + 1e-9:
            self.w.run_for(SAMPLE)
            for key in self.delivering:
                self.packets[key] += 25
            routed = {k: v for k, v in self.packets.items() if k in self.w.engine.routes()}
            self.w.handle(CountersSampled(routed))


def channel_dies_on_u1(fam: Fam, upstream: str) -> tuple[World, Counters]:
    """d1 joins (s1, g1), which flows from u1 and then stops there for 200 ms."""
    w = make(fam, upstream)
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.flow("u1", fam.s1, fam.g1)
    c.deliver("u1", fam.s1, fam.g1)
    c.run_for(0.1)
    c.deliver("u1", fam.s1, fam.g1, on=False)
    c.run_for(0.2)
    return w, c


def route_changes(w: World) -> list[tuple[str, frozenset[str] | None]]:
    return [(a.table, a.oifs if isinstance(a, SetRoute) else None) for a in w.routes]


ROBUST = """
  hold-down: 1s
  candidates:
    - {interface: u1, liveness: {data: 100ms}}
    - {interface: u2, liveness: {data: 100ms}}
"""


def test_silent_feeder_swaps_to_the_standby_then_stays(fam: Fam) -> None:
    w = make(fam, ROBUST)
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    for u in ("u1", "u2"):
        w.flow(u, fam.s1, fam.g1)
        c.deliver(u, fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.route("u2", fam.s1, fam.g1) == frozenset()
    c.run_for(1.0)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}  # steady: no swap while both deliver
    w.clear()
    c.deliver("u1", fam.s1, fam.g1, on=False)
    stopped = w.now
    while not w.routes:
        c.run_for(SAMPLE)
    # u1's count stopped moving: 100 ms later (to the next sample), u2 feeds d1. The link is
    # taken from u1 before it is given to u2, so it is never fed by both.
    assert 0.1 <= w.now - stopped <= 0.1 + SAMPLE + 1e-9
    assert route_changes(w) == [("u1", frozenset()), ("u2", frozenset({"d1"}))]
    assert w.engine.flow_health()[("u1", ip(fam.s1), ip(fam.g1))] is Health.DEAD
    assert w.upstream_records("u2") == w.upstream_records("u1") == []  # no reselection
    assert w.engine.counts["channel dead"] == 1
    # u1 delivers again: back after its hold-down, as a standby (equal rank: no flap back).
    w.clear()
    c.deliver("u1", fam.s1, fam.g1)
    c.run_for(1.5)
    assert w.engine.flow_health()[("u1", ip(fam.s1), ip(fam.g1))] is Health.DELIVERING
    assert route_changes(w) == []
    # Now u2 stops: the link goes back to u1 at once.
    c.deliver("u2", fam.s1, fam.g1, on=False)
    c.run_for(0.2)
    assert route_changes(w) == [("u2", frozenset()), ("u1", frozenset({"d1"}))]


PRIORITIES = """
  hold-down: 1s
  {extra}
  candidates:
    - {{interface: u1, priority: 10, liveness: {{data: 100ms}}}}
    - {{interface: u2, priority: 5, liveness: {{data: 100ms}}}}
"""


def test_a_dead_channel_alone_is_taken_over_by_the_next_upstream(fam: Fam) -> None:
    w = make(fam, PRIORITIES.format(extra=""))
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.join("d1", fam.h1, fam.g2, fam.s1)
    for g in (fam.g1, fam.g2):
        w.flow("u1", fam.s1, g)
        c.deliver("u1", fam.s1, g)
    c.run_for(0.5)
    assert w.upstream_records("u2") == []
    w.clear()
    c.deliver("u1", fam.s1, fam.g1, on=False)
    c.run_for(0.2)
    # Only g1 moves: joined on u2, left on u1; g2 stays on u1.
    assert w.upstream_records("u2")[0] == (T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))
    assert w.upstream_records("u1")[0] == (T.BLOCK_OLD_SOURCES, fam.g1, (fam.s1,))
    assert (fam.g2 in {r[1] for r in w.upstream_records("u1")}) is False
    assert w.route("u1", fam.s1, fam.g2) == {"d1"}
    assert w.engine.counts["channel takeover"] == 1
    # u2's data arrives: routed to d1.
    w.flow("u2", fam.s1, fam.g1)
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}


def test_a_channel_moved_off_is_tried_again_after_the_hold_down(fam: Fam) -> None:
    w, c = channel_dies_on_u1(fam, PRIORITIES.format(extra=""))  # dead on u1: moved to u2
    w.flow("u2", fam.s1, fam.g1)
    c.deliver("u2", fam.s1, fam.g1)
    w.clear()
    c.run_for(0.8)  # u1's hold-down (1 s) not over yet
    joined = (T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))
    assert joined not in w.upstream_records("u1")
    c.run_for(0.2)
    # Tried again on u1: joined there, while u2 keeps feeding until u1 delivers.
    assert joined in w.upstream_records("u1")
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    w.flow("u1", fam.s1, fam.g1)
    c.deliver("u1", fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert (T.BLOCK_OLD_SOURCES, fam.g1, (fam.s1,)) in w.upstream_records("u2")


def test_a_retry_that_does_not_deliver_keeps_the_channel_where_it_works(fam: Fam) -> None:
    w, c = channel_dies_on_u1(fam, PRIORITIES.format(extra=""))
    w.flow("u2", fam.s1, fam.g1)
    c.deliver("u2", fam.s1, fam.g1)
    c.run_for(1.0 + BRIDGE_TIMEOUT + 0.1)  # retried at 1 s; u1 silent: abandoned
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u2"}
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert w.engine.counts["move abandoned"] == 1


def test_a_retry_completes_when_the_old_upstream_stops_delivering_meanwhile(fam: Fam) -> None:
    w, c = channel_dies_on_u1(fam, PRIORITIES.format(extra=""))
    w.flow("u2", fam.s1, fam.g1)
    c.deliver("u2", fam.s1, fam.g1)
    c.run_for(1.1)  # retried on u1 at 1 s, bridged: u2 keeps feeding meanwhile
    assert w.engine.bridged() == {ip(fam.g1)}
    c.deliver("u2", fam.s1, fam.g1, on=False)  # then u2 falls silent too
    w.clear()
    c.run_for(BRIDGE_TIMEOUT)
    # Nothing works either way: the move is completed (selection decides), not abandoned
    # back onto the upstream that went silent.
    assert w.engine.bridged() == frozenset()
    assert "move abandoned" not in w.engine.counts
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u1"}
    assert (T.BLOCK_OLD_SOURCES, fam.g1, (fam.s1,)) in w.upstream_records("u2")


def test_nobody_asking_forgets_a_dead_channel(fam: Fam) -> None:
    never = PRIORITIES.format(extra="hold-down: never").replace("  hold-down: 1s\n", "")
    w, _ = channel_dies_on_u1(fam, never)
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u2"}
    w.leave("d1", fam.h1, fam.g1, fam.s1)  # fast leave: nobody asks any more
    w.clear()
    w.join("d1", fam.h1, fam.g1, fam.s1)
    assert w.upstream_records("u1") == [(T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))]


def test_takeover_off_a_dead_channel_stays(fam: Fam) -> None:
    w = make(fam, PRIORITIES.format(extra="takeover: false"))
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.flow("u1", fam.s1, fam.g1)
    c.deliver("u1", fam.s1, fam.g1)
    c.run_for(0.2)
    w.clear()
    c.deliver("u1", fam.s1, fam.g1, on=False)
    c.run_for(0.5)
    assert w.upstream_records("u2") == []
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.engine.flow_health()[("u1", ip(fam.s1), ip(fam.g1))] is Health.DEAD


def test_resilient_channel_has_a_standby_and_fails_over_by_a_swap(fam: Fam) -> None:
    w = make(fam, PRIORITIES.format(extra=f'resilient: [{{group: "{fam.g1_block}"}}]'))
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.join("d1", fam.h1, fam.g2, fam.s1)
    # g1 is resilient: joined on u2 as well; g2 is not.
    assert w.upstream_records("u2") == [(T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))]
    for u in ("u1", "u2"):
        w.flow(u, fam.s1, fam.g1)
        c.deliver(u, fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.route("u2", fam.s1, fam.g1) == frozenset()
    c.run_for(0.2)
    # u1's link goes: a swap, no join needed.
    w.clear()
    w.handle(InterfaceDown("u1"))
    assert route_changes(w)[:2] == [("u1", frozenset()), ("u2", frozenset({"d1"}))]
    # g2 is joined on u2 now (a takeover by join); g1 needed no new join there.
    assert (T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,)) not in w.upstream_records("u2")
    assert (T.ALLOW_NEW_SOURCES, fam.g2, (fam.s1,)) in w.upstream_records("u2")
    # u1 back: after the hold-down it is joined again and, once its data flows, it feeds,
    # with u2 kept as standby.
    w.clear()
    w.up("u1")
    c.run_for(1.1)
    assert (T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,)) in w.upstream_records("u1")
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}  # until u1's data is there
    w.clear()
    w.flow("u1", fam.s1, fam.g1)
    # Resolved empty first (its queued packets were delivered by u2), then the swap.
    assert route_changes(w) == [("u1", frozenset()), ("u2", frozenset()),
                                ("u1", frozenset({"d1"}))]
    assert w.upstream_records("u2") == []  # the standby stays joined


def test_late_route_does_not_deliver_stale_queued_packets(fam: Fam) -> None:
    w = make(fam, PRIORITIES.format(extra=""))
    w.flow("u1", fam.s1, fam.g1)  # data before anyone asked: no route, remembered
    w.run_for(2.0)
    w.clear()
    w.join("d1", fam.h1, fam.g1, fam.s1)
    assert route_changes(w) == [("u1", frozenset()), ("u1", frozenset({"d1"}))]


def test_fresh_queued_packets_of_a_new_channel_go_out_at_once(fam: Fam) -> None:
    w = make(fam, PRIORITIES.format(extra=""))
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.clear()
    w.flow("u1", fam.s1, fam.g1)
    assert route_changes(w) == [("u1", frozenset({"d1"}))]


def test_leaving_forgets_the_watched_flows(fam: Fam) -> None:
    w = make(fam, ROBUST)
    c = Counters(w)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    for u in ("u1", "u2"):
        w.flow(u, fam.s1, fam.g1)
        c.deliver(u, fam.s1, fam.g1)
    c.run_for(0.1)
    w.clear()
    w.leave("d1", fam.h1, fam.g1, fam.s1)
    assert {type(a) for a in w.routes} == {DeleteRoute}
    assert w.engine.flow_health() == {}


def test_an_upstream_back_lifts_its_per_channel_takeovers(fam: Fam) -> None:
    w, c = channel_dies_on_u1(fam, PRIORITIES.format(extra=""))
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u2"}
    w.flow("u2", fam.s1, fam.g1)
    c.deliver("u2", fam.s1, fam.g1)
    # u1 fails and comes back as a whole: after its hold-down the channel returns to it.
    w.handle(InterfaceDown("u1"))
    w.up("u1")
    c.run_for(1.1)
    # Joined on u1 again; u2 stays until u1 delivers (make before break).
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u1", "u2"}
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    w.flow("u1", fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u1"}


LIVENESS_PROPERTIES = """
  hold-down: 0.5s
  resilient: [{{group: "{block}"}}]
  candidates:
    - {{interface: u1, priority: 5, liveness: {{data: 100ms}}}}
    - {{interface: u2, priority: 5, liveness: {{data: 100ms}}}}
    - {{interface: u3, priority: 1, liveness: {{data: 100ms}}}}
"""

_ops = st.one_of(
    st.tuples(st.just("join"), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("leave"), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("flow"), st.sampled_from(("u1", "u2", "u3")), st.integers(0, 1)),
    st.tuples(st.just("deliver"), st.sampled_from(("u1", "u2", "u3")), st.integers(0, 1),
              st.booleans()),
    st.tuples(st.just("link"), st.sampled_from(("u1", "u2", "u3")), st.booleans()),
    st.tuples(st.just("time"), st.sampled_from([0.05, 0.2, 1.0])),
)


@pytest.mark.parametrize("v", [4, 6], ids=["igmp", "mld"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: profile
@given(steps=st.lists(_ops, max_size=30))
def test_random_failures_never_feed_a_link_twice(v: int, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    f = FAMS[v]
    w = make(f, LIVENESS_PROPERTIES.format(block=f.g1_block))
    w.up("u3")
    c = Counters(w)
    groups, subs = (f.g1, f.g2), (("d1", f.h1), ("d2", f.h3))
    for op in steps:
        if op[0] == "join":
            w.join(*subs[op[1]], groups[op[2]], f.s1)
        elif op[0] == "leave":
            w.leave(*subs[op[1]], groups[op[2]], f.s1)
        elif op[0] == "flow":
            w.flow(op[1], f.s1, groups[op[2]])
            c.deliver(op[1], f.s1, groups[op[2]])
        elif op[0] == "deliver":
            c.deliver(op[1], f.s1, groups[op[2]], on=op[3])
        elif op[0] == "link":
            if op[2]:
                w.up(op[1])
            else:
                w.handle(InterfaceDown(op[1]))
        else:
            c.run_for(op[1])
        fed: set[tuple[bytes, str]] = set()
        for (_u, _s, group), oifs in w.engine.routes().items():
            for link in oifs:
                assert (group, link) not in fed, ("fed twice", link)
                fed.add((group, link))
    for link, host in subs:
        for g in groups:
            w.leave(link, host, g, f.s1)
    c.run_for(3.0)  # d2 has no fast leave: its last-member queries run first
    assert w.engine.routes() == {}
    assert w.engine.flow_health() == {}
