"""The engine end to end on a virtual clock: reports on downstream links become reports on the
selected upstreams, flows become routes, and failures move what they must."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from harness import T, World, ip, text

from mcastproxy.config import parse_config
from mcastproxy.drops import Stage
from mcastproxy.events import ConfigChanged, InterfaceDown, PacketReceived, UpstreamUsability
from mcastproxy.family import Family
from mcastproxy.moves import BRIDGE_TIMEOUT
from mcastproxy.wire.messages import GroupRecord, Leave, Query, Report


@dataclass(frozen=True)
class Fam:
    v: int
    h1: str  # subscribers on d1
    h2: str
    h3: str  # a subscriber on d2
    g1: str  # in the u1 block
    g2: str  # outside it
    s1: str
    s2: str
    g1_block: str
    h_block: str  # a subscriber prefix holding h2, not h1
    general: bytes


FAMS = {
    4: Fam(4, "10.1.0.7", "10.1.0.200", "10.2.0.9", "239.1.1.1", "239.2.2.2", "192.0.2.99",
           "192.0.2.98", "239.1.0.0/16", "10.1.0.128/25", bytes(4)),
    6: Fam(6, "fe80::d1:7", "fe80::d1:c8", "fe80::d2:9", "ff1e::1:101", "ff1e::2:202",
           "2001:db8::99", "2001:db8::98", "ff1e::1:0/112", "fe80::d1:80/121", bytes(16)),
}


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def world(f: Fam, upstream: str, *, fast_leave: bool = True, **kw: object) -> World:
    text = (
        "igmp: {version: 3}\nmld: {version: 2}\n"
        f"downstream: [{{interface: d1, fast-leave: {str(fast_leave).lower()}}}, "
        "{interface: d2}]\n"
        "upstream:\n" + upstream.format(g1_block=f.g1_block, h_block=f.h_block, s1=f.s1)
    )
    return World.make(text, **kw)  # type: ignore[arg-type]


CHANNELS = """
  candidates:
    - interface: u1
      records: [{{group: "{g1_block}"}}]
    - interface: u2
"""


def test_channel_based_selection_reports_on_the_selected_upstream(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    assert w.upstream_records("u2") == []
    w.join("d1", fam.h1, fam.g2)
    assert w.upstream_records("u2") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g2, ())]
    assert w.engine.feeders("d1", ip(fam.g1)) == {"u1": (2, frozenset())}


def test_join_reaches_the_upstream_at_once(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.now = 5.0
    w.join("d1", fam.h1, fam.g1)
    first = next(s for s in w.sent if s.interface == "u1")
    assert first.at == 5.0
    assert first.destination == ip("224.0.0.22" if fam.v == 4 else "ff02::16")


def test_source_specific_join_is_an_include(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1, fam.s1)
    assert w.upstream_records("u1") == [(T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))]
    w.leave("d1", fam.h1, fam.g1, fam.s1)
    assert w.upstream_records("u1")[-1] == (T.BLOCK_OLD_SOURCES, fam.g1, (fam.s1,))


def test_flow_is_routed_to_the_links_that_want_it(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1)
    w.flow("u1", fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    w.join("d2", fam.h3, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1", "d2"}
    # The same group arriving on an upstream that has not joined it: no route, counted.
    w.flow("u2", fam.s1, fam.g1)
    assert w.route("u2", fam.s1, fam.g1) is None
    assert w.engine.dropped["data for a group this upstream has not joined"] == 1


def test_data_seen_just_before_the_join_is_routed_at_the_join(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.flow("u1", fam.s1, fam.g1)  # the upstream router was still sending
    assert w.route("u1", fam.s1, fam.g1) is None
    w.now = 3.0
    w.join("d1", fam.h1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}


def test_fast_leave_leaves_upstream_at_once_and_removes_routes(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1)
    w.flow("u1", fam.s1, fam.g1)
    w.clear()
    w.now = 1.0
    w.leave("d1", fam.h1, fam.g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]
    assert w.sent[-1].at == 1.0
    assert w.route("u1", fam.s1, fam.g1) is None
    assert [type(r).__name__ for r in w.routes] == ["DeleteRoute"]


def test_leave_without_fast_leave_waits_for_the_last_member_queries(fam: Fam) -> None:
    w = world(fam, CHANNELS, fast_leave=False)
    w.join("d1", fam.h1, fam.g1)
    w.flow("u1", fam.s1, fam.g1)
    w.run_for(5)  # past the join's retransmission
    w.clear()
    w.leave("d1", fam.h1, fam.g1)
    # The link asks whether anyone else listens (group-specific queries) ...
    assert [q.group for q in w.queries("d1")] == [ip(fam.g1)]
    assert w.upstream_records("u1") == []
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    # ... and the upstream is left only when the Last Member Query Time (2 x 1 s) is over.
    w.run_for(1.9)
    assert w.upstream_records("u1") == []
    w.run_for(0.2)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]
    assert w.route("u1", fam.s1, fam.g1) is None


def test_another_listener_answering_keeps_the_upstream(fam: Fam) -> None:
    w = world(fam, CHANNELS, fast_leave=False)
    w.join("d1", fam.h1, fam.g1)
    w.join("d1", fam.h2, fam.g1)
    w.run_for(5)
    w.clear()
    w.leave("d1", fam.h1, fam.g1)
    assert [q.group for q in w.queries("d1")] == [ip(fam.g1)]
    w.report("d1", fam.h2, GroupRecord(T.MODE_IS_EXCLUDE, ip(fam.g1)))  # h2 answers
    w.run_for(10)
    assert w.upstream_records("u1") == []
    assert w.engine.feeders("d1", ip(fam.g1)) == {"u1": (2, frozenset())}


SUBSCRIBERS = """
  candidates:
    - interface: u1
      priority: 1
    - interface: u2
      records: [{{subscriber: "{h_block}"}}]
"""


def test_two_subscribers_on_one_link_two_upstreams_one_feeds(fam: Fam) -> None:
    w = world(fam, SUBSCRIBERS)
    w.join("d1", fam.h1, fam.g1)  # no record: u1 by priority
    w.join("d1", fam.h2, fam.g1)  # subscriber record: u2
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    assert w.upstream_records("u2") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    w.flow("u1", fam.s1, fam.g1)
    w.flow("u2", fam.s1, fam.g1)
    # One link, one feeder: the better-ranked selection (the subscriber record); the other
    # keeps a route with no outgoing link, as hot standby.
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert w.route("u1", fam.s1, fam.g1) == frozenset()
    # The subscriber of u2 leaves: u1 feeds, u2 is left.
    w.leave("d1", fam.h2, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.upstream_records("u2")[-1] == (T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())
    assert w.route("u2", fam.s1, fam.g1) is None


RESILIENCY = """
  takeover: {takeover}
  candidates:
    - interface: u1
      priority: 10
    - interface: u2
      priority: 5
"""


@pytest.mark.parametrize("how", ["link down", "liveness"])
def test_takeover_moves_subscriptions_and_back(fam: Fam, how: str) -> None:
    w = world(fam, RESILIENCY.replace("{takeover}", "true"))
    w.join("d1", fam.h1, fam.g1)
    w.flow("u1", fam.s1, fam.g1)
    w.clear()
    if how == "link down":
        w.handle(InterfaceDown("u1"))
    else:
        w.handle(UpstreamUsability("u1", False, "no data for 100 ms"))
    assert w.upstream_records("u2") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    w.flow("u2", fam.s1, fam.g1)
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert any(log.event in ("upstream-down", "liveness") for log in w.logs)
    # u1 returns: after its hold-down (10 s by default; an override takes effect at once),
    # the subscription goes back and u2 is left.
    w.clear()
    if how == "link down":
        w.up("u1")
        w.run_for(9.9)
        joined = (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())
        assert joined not in w.upstream_records("u1")  # (a pending leave may go out)
        w.clear()
        w.run_for(0.2)
    else:
        w.handle(UpstreamUsability("u1", True, "data again"))
    assert w.upstream_records("u1")[0] == (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())
    # Make before break: u2 keeps feeding until u1 delivers, then it is left.
    assert w.upstream_records("u2") == []
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    w.flow("u1", fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.upstream_records("u2") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]
    assert w.route("u2", fam.s1, fam.g1) is None


def test_a_return_whose_data_never_comes_is_abandoned_and_the_old_upstream_kept(
    fam: Fam
) -> None:
    w = world(fam, RESILIENCY.replace("{takeover}", "true"))
    w.join("d1", fam.h1, fam.g1)
    w.handle(UpstreamUsability("u1", False, "test"))
    w.flow("u2", fam.s1, fam.g1)
    w.clear()
    w.handle(UpstreamUsability("u1", True, "test"))
    left = (T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())
    w.run_for(BRIDGE_TIMEOUT - 0.1)
    assert left not in w.upstream_records("u2")
    assert (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ()) in w.upstream_records("u1")
    w.run_for(0.2)
    # u1 never delivered: it is left, and u2, which works, keeps the subscription.
    assert left not in w.upstream_records("u2")
    assert left in w.upstream_records("u1")
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert w.engine.feeders("d1", ip(fam.g1)).keys() == {"u2"}
    assert w.engine.counts["move abandoned"] == 1


def test_leaving_while_a_return_is_bridged_leaves_both_upstreams_at_once(fam: Fam) -> None:
    w = world(fam, RESILIENCY.replace("{takeover}", "true"))
    w.join("d1", fam.h1, fam.g1)
    w.handle(UpstreamUsability("u1", False, "test"))
    w.flow("u2", fam.s1, fam.g1)
    w.handle(UpstreamUsability("u1", True, "test"))
    w.clear()
    w.leave("d1", fam.h1, fam.g1)  # fast leave
    assert w.upstream_records("u1") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]
    assert w.upstream_records("u2") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]
    assert w.engine.routes() == {}


def test_takeover_off_stays_on_the_inactive_upstream(fam: Fam) -> None:
    w = world(fam, RESILIENCY.replace("{takeover}", "false"))
    w.join("d1", fam.h1, fam.g1)
    w.clear()
    w.handle(UpstreamUsability("u1", False, "no queries"))
    assert w.upstream_records("u2") == []
    assert w.engine.feeders("d1", ip(fam.g1)) == {"u1": (2, frozenset())}
    assert w.engine.unusable == {"u1"}


ROBUST = """
  candidates:
    - interface: u1
      priority: 3
    - interface: u2
      priority: 3
"""


def test_robust_reception_joins_both_and_feeds_from_one(fam: Fam) -> None:
    w = world(fam, ROBUST)
    w.join("d1", fam.h1, fam.g1)
    assert w.upstream_records("u1") == w.upstream_records("u2") != []
    w.flow("u1", fam.s1, fam.g1)
    w.flow("u2", fam.s1, fam.g1)
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}
    assert w.route("u2", fam.s1, fam.g1) == frozenset()
    # The feeding one becomes unusable: the standby's route takes the link at once.
    w.handle(UpstreamUsability("u1", False, "silent"))
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert not w.route("u1", fam.s1, fam.g1)


SOURCE_RECORD = """
  candidates:
    - interface: u1
      records: [{{group: "{g1_block}"}}]
    - interface: u2
      records: [{{source: "{s1}", group: "{g1_block}"}}]
"""


def test_any_source_join_with_a_source_record_elsewhere(fam: Fam) -> None:
    # Draft §4.2: u1 serves the group "except the source address configured by" u2.
    w = world(fam, SOURCE_RECORD)
    w.join("d1", fam.h1, fam.g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, (fam.s1,))]
    assert w.upstream_records("u2") == [(T.ALLOW_NEW_SOURCES, fam.g1, (fam.s1,))]
    w.flow("u2", fam.s1, fam.g1)
    w.flow("u1", fam.s2, fam.g1)
    assert w.route("u2", fam.s1, fam.g1) == {"d1"}
    assert w.route("u1", fam.s2, fam.g1) == {"d1"}


def test_reports_on_an_upstream_never_create_state(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("u1", fam.h1.replace("d1", "1:1"), fam.g1)
    assert w.sent == []
    assert w.engine.dropped["not a query, on an upstream"] == 1


def test_queries_on_an_upstream_are_answered(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1)
    w.run_for(5)
    w.clear()
    querier = "192.0.2.254" if fam.v == 4 else "fe80::1:fe"
    dest = "224.0.0.1" if fam.v == 4 else "ff02::1"
    w.receive("u1", querier, Query(3 if fam.v == 4 else 2, fam.general, 10.0), dest)
    w.run_for(10)
    assert w.upstream_records("u1") == [(T.MODE_IS_EXCLUDE, fam.g1, ())]
    assert w.upstream_records("u2") == []


def test_malformed_packets_are_dropped_and_counted(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    src, dst = (ip("10.1.0.7"), ip("224.0.0.22")) if fam.v == 4 else (
        ip("fe80::7"), ip("ff02::16"))
    for payload in (b"", b"\x22\x00", b"\xff" * 40):
        w.handle(PacketReceived("d1", fam.v, src, dst, payload))
    assert sum(n for reason, n in w.engine.dropped.items() if reason.stage is Stage.MALFORMED) == 3
    assert w.sent == []


def test_older_hosts_are_proxied(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    old = 2 if fam.v == 4 else 1
    w.receive("d1", fam.h1, Report(old, (GroupRecord(T.MODE_IS_EXCLUDE, ip(fam.g1)),)), fam.g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    w.receive("d1", fam.h1, Leave(ip(fam.g1)), "224.0.0.2" if fam.v == 4 else "ff02::2")
    assert w.upstream_records("u1")[-1] == (T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())


def test_membership_expires_upstream_too(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.join("d1", fam.h1, fam.g1)
    w.run_for(5)
    w.clear()
    link = w.engine.snapshot().link("d1", Family(fam.v))
    assert link is not None
    gmi = link.timers.group_membership_interval  # after the join, the group expires
    w.run_until(gmi - 0.1)
    assert w.upstream_records("u1") == []
    w.run_for(1)
    assert w.upstream_records("u1")[0] == (T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())
    first = next(s for s in w.sent if s.interface == "u1")
    assert first.at == pytest.approx(gmi)


MIGRATION_BEFORE = """
  default: u1
  candidates:
    - interface: u1
    - interface: u2
      records: [{{group: "{g1_block}"}}]
"""


def test_reload_keeps_running_subscriptions_where_they_are(fam: Fam) -> None:
    # The paper's smooth migration: u2's block moves to u1 by a reload; the running
    # subscription stays on u2 until it leaves; new ones go to u1.
    w = world(fam, MIGRATION_BEFORE)
    w.join("d1", fam.h1, fam.g1)
    assert w.upstream_records("u2") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    w.run_for(5)
    w.clear()
    after = w.engine.config.model_dump(by_alias=True)
    after["upstream"]["candidates"][1]["records"] = []
    after["upstream"]["candidates"][0]["records"] = [{"group": fam.g1_block}]
    text = parse_config(_yaml(after))
    w.handle(ConfigChanged(text))
    assert w.upstream_records("u1") == []
    assert w.upstream_records("u2") == []
    w.join("d2", fam.h3, fam.g1)
    assert w.upstream_records("u1") == [(T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())]
    w.leave("d1", fam.h1, fam.g1)
    assert w.upstream_records("u2") == [(T.CHANGE_TO_INCLUDE_MODE, fam.g1, ())]


def _yaml(data: dict[str, object]) -> str:
    import yaml  # noqa: PLC0415 - only this test writes YAML

    def plain(x: object) -> object:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items() if v is not None}
        if isinstance(x, list | tuple):
            return [plain(v) for v in x]
        if isinstance(x, int | float | str | bool):
            return x
        return str(x)

    return yaml.safe_dump(plain(data))


def test_general_queries_are_sent_on_downstream_links(fam: Fam) -> None:
    w = world(fam, CHANNELS)
    w.run_for(200)
    queries = [q for q in w.queries("d1") if q.group == fam.general]
    # Startup queries at 31.25 s (1/4 QI) after the first at start, then every 125 s.
    assert len(queries) >= 2
    assert all(q.version == (3 if fam.v == 4 else 2) for q in queries)
    assert w.queries("u1") == []  # never the router side on an upstream


QUERY_LIVENESS = """
  takeover: true
  hold-down: {hold}
  candidates:
    - interface: u1
      priority: 10
      liveness: {{{{link: true, queries: true}}}}
      routers: ["{router}"]
      active-interval: 2s
    - interface: u2
      priority: 5
"""
ROUTERS = {4: ("192.0.2.254", "192.0.2.66"), 6: ("fe80::1:fe", "fe80::1:66")}


def _query(w: World, fam: Fam, source: str) -> None:
    dest = "224.0.0.1" if fam.v == 4 else "ff02::1"
    w.receive("u1", source, Query(3 if fam.v == 4 else 2, fam.general, 1.0), dest)


@pytest.mark.parametrize("hold", ["3s", "never"])
def test_silent_upstream_router_triggers_takeover(fam: Fam, hold: str) -> None:
    router, forger = ROUTERS[fam.v]
    w = world(fam, QUERY_LIVENESS.format(hold=hold, router=router))
    w.join("d1", fam.h1, fam.g1)
    assert w.upstream_records("u1")[0] == (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ())
    for _ in range(3):  # the router queries: u1 stays
        w.run_for(1.0)
        _query(w, fam, router)
    # A host on the link forging queries cannot keep u1 alive (draft §7).
    w.clear()
    for _ in range(3):
        w.run_for(1.0)
        _query(w, fam, forger)
    assert (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ()) in w.upstream_records("u2")
    assert w.engine.unusable == {"u1"}
    assert w.engine.dropped["query from a router not configured for the upstream"] == 3
    assert sum(log.event == "liveness-rejected" for log in w.logs) == 1  # said once
    # The router speaks again: after the hold-down u1 takes back (unless "never").
    w.clear()
    for _ in range(5):
        _query(w, fam, router)
        w.run_for(1.0)
    back = (T.CHANGE_TO_EXCLUDE_MODE, fam.g1, ()) in w.upstream_records("u1")
    assert back == (hold != "never")
    assert w.engine.unusable == frozenset()


def test_choosing_the_feeder_does_not_grow_with_the_members(fam: Fam) -> None:
    # Robust reception: both upstreams carry the flow, so every join on d1 decides again
    # which one feeds it. Without subscriber records every member selects alike: the
    # decision asks selection a bounded number of times, however many members there are.
    w = world(fam, ROBUST)
    w.join("d1", fam.h1, fam.g1)
    w.flow("u1", fam.s1, fam.g1)
    w.flow("u2", fam.s1, fam.g1)
    base = int.from_bytes(ip(fam.h1))
    for i in range(1, 300):
        w.join("d1", text((base + i).to_bytes(len(ip(fam.h1)))), fam.g1)
    calls = 0
    select = w.engine._candidates.selector.select

    def counting(*args: object) -> object:
        nonlocal calls
        calls += 1
        return select(*args)  # type: ignore[arg-type]

    w.engine._candidates.selector.select = counting  # type: ignore[method-assign]
    w.join("d1", text((base + 400).to_bytes(len(ip(fam.h1)))), fam.g1)
    assert calls <= 4
    assert w.route("u1", fam.s1, fam.g1) == {"d1"}


ROUTERS_ONLY = """
  candidates:
    - interface: u1
      routers: ["{router}"]
"""


def test_a_query_from_a_host_that_is_not_a_router_changes_nothing_upstream(fam: Fam) -> None:
    # An older-version query from a forger on the upstream link would switch the host side
    # to IGMPv2/MLDv1, turning a source-specific join into an any-source one; and a General
    # Query would be answered. From an address that is not one of the routers: neither.
    router, forger = ROUTERS[fam.v]
    w = world(fam, ROUTERS_ONLY.format(router=router))
    w.join("d1", fam.h1, fam.g1, fam.s1)
    w.run_for(5)
    w.clear()
    dest = "224.0.0.1" if fam.v == 4 else "ff02::1"
    older = Query(2, fam.general, 1.0) if fam.v == 4 else Query(1, fam.general, 1.0)
    for _ in range(3):
        w.receive("u1", forger, older, dest)
        w.receive("u1", forger, Query(3 if fam.v == 4 else 2, fam.general, 1.0), dest)
    w.run_for(15)
    assert w.sent == []  # no answer, no downgrade
    assert w.engine.dropped["query from a router not configured for the upstream"] == 6
    w.join("d1", fam.h1, fam.g1, fam.s2)
    assert w.upstream_records("u1") == [(T.ALLOW_NEW_SOURCES, fam.g1, (fam.s2,))]
    # The configured router's query is answered as ever.
    w.clear()
    w.receive("u1", router, Query(3 if fam.v == 4 else 2, fam.general, 1.0), dest)
    w.run_for(2)
    assert w.upstream_records("u1")
