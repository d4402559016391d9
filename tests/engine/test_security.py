"""What the proxy trusts on each kind of link, through the engine on a virtual clock: who may
be querier on a downstream link, the validity rules of every message, the bound on specific
queries, and the validity of queries on an upstream (README, "Security").

    u1 (upstream, router 192.0.2.254 / fe80::1:fe)
     |
   proxy  d1: 10.1.0.1/24, fe80::d1:1   d2: 10.2.0.1/24
     |
   hosts on d1: a subscriber 10.1.0.7 / fe80::d1:7, a forger below the proxy's address
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from harness import ADDRESSES, T, World, ip
from test_reset import FaultyRng

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import ConfigChanged, InterfaceUp
from mcastproxy.wire.messages import GroupRecord, Leave, Query, Report


@dataclass(frozen=True)
class Fam:
    v: int
    host: str
    group: str
    general: bytes
    all_systems: str
    proxy: str  # the proxy's address on d1
    forger: str  # a host below it
    router: str  # a router on d1, below it too
    upstream_router: str
    full: int  # IGMPv3 / MLDv2

    def forger_n(self, n: int) -> str:
        return f"10.0.0.{n}" if self.v == 4 else f"fe80::{n:x}"

    def forged(self) -> Query:
        """The issue's query: General, QRV 7, QQIC 31744."""
        return Query(self.full, self.general, 10.0, (), False, 7, 31744)


FAMS = {
    4: Fam(4, "10.1.0.7", "239.1.1.1", bytes(4), "224.0.0.1", ADDRESSES["d1"][0], "10.0.0.5",
           "10.0.0.9", "192.0.2.254", 3),
    6: Fam(6, "fe80::d1:7", "ff1e::1:101", bytes(16), "ff02::1", ADDRESSES["d1"][1], "fe80::5",
           "fe80::9", "fe80::1:fe", 2),
}


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def config(d1: str = "", upstream: str = "") -> str:
    return ("igmp: {version: 3}\nmld: {version: 2}\n"
            f"downstream: [{{interface: d1{', ' + d1 if d1 else ''}}}, {{interface: d2}}]\n"
            f"upstream: {{candidates: [{{interface: u1{', ' + upstream if upstream else ''}}}]}}\n")


def dropped(w: World, interface: str) -> dict[Drop, int]:
    return w.engine.dropped.by_interface().get(interface, {})


def general_queries(w: World, fam: Fam, interface: str, since: float = 0.0) -> list[float]:
    """When General Queries of ``fam`` were sent on ``interface``."""
    return [s.at for s in w.sent if s.interface == interface and isinstance(s.message, Query)
            and s.message.group == fam.general and s.at >= since]


def joined(w: World, fam: Fam) -> bool:
    return (T.CHANGE_TO_EXCLUDE_MODE, fam.group, ()) in w.upstream_records("u1")


def left(w: World, fam: Fam) -> bool:
    return (T.CHANGE_TO_INCLUDE_MODE, fam.group, ()) in w.upstream_records("u1")


# --- item 1: who may be querier -------------------------------------------------------------


def test_by_default_a_forged_query_on_a_subscriber_link_is_dropped(fam: Fam) -> None:
    """``querier: always`` (the default): a flood of the issue's query from spoofed senders
    below the proxy's address is dropped, counted, logged for the first few senders; the
    proxy stays querier and the last subscriber's leave still ends the channel."""
    w = World.make(config())
    w.join("d1", fam.host, fam.group)
    assert joined(w, fam)
    w.run_for(5)
    for n in range(1, 101):
        w.receive("d1", fam.forger_n(n), fam.forged(), fam.all_systems, ttl=1, router_alert=True)
    assert dropped(w, "d1") == {Drop.QUERY_ON_ALWAYS_QUERIER_LINK: 100}
    refused = [log for log in w.logs if log.event == "query-refused"]
    assert 1 <= len(refused) <= 64
    assert "querier: always" in refused[0].message
    # Still the querier: General Queries on schedule (startup 0 and 31.25 s, then 125 s).
    w.run_for(200)
    assert general_queries(w, fam, "d1") == [31.25, 156.25]
    # The leave is processed: last-member queries, then the upstream leave LMQT later.
    w.clear()
    w.leave("d1", fam.host, fam.group)
    assert [q.group for q in w.queries("d1")] == [ip(fam.group)]
    w.run_for(2.5)
    assert left(w, fam)


def test_under_elect_only_the_links_routers_take_part(fam: Fam) -> None:
    w = World.make(config(f'querier: elect, routers: ["{fam.router}"]'))
    w.receive("d1", fam.forger, fam.forged(), fam.all_systems)
    assert dropped(w, "d1") == {Drop.QUERY_NOT_FROM_LINK_ROUTER: 1}
    w.run_for(100)
    assert general_queries(w, fam, "d1") == [31.25]  # still querying
    # The trusted router, below the proxy's address, wins the election (RFC 9776 §6.6.2).
    w.receive("d1", fam.router, Query(fam.full, fam.general, 10.0), fam.all_systems)
    w.run_for(200)
    assert general_queries(w, fam, "d1", since=100) == []


def test_under_elect_ceilings_bound_the_adopted_values(fam: Fam) -> None:
    """QRV 7 and QQIC 31744 are taken as 3 and 200 s: the Other Querier Present Interval is
    3 x 200 + 10 / 2 = 605 s (not 2.6 days), after which the proxy queries again."""
    w = World.make(config("querier: elect, max-robustness: 3, max-query-interval: 200s"))
    w.run_for(40)
    w.receive("d1", fam.forger, fam.forged(), fam.all_systems)
    w.run_for(605 - 0.01)
    assert general_queries(w, fam, "d1", since=40) == []
    w.run_for(1)
    assert general_queries(w, fam, "d1", since=40) == [645.0]


def test_a_reload_to_always_takes_the_querier_role_back_at_the_next_input(fam: Fam) -> None:
    w = World.make(config("querier: elect"))
    w.receive("d1", fam.forger, Query(fam.full, fam.general, 10.0), fam.all_systems)
    w.run_for(50)
    assert general_queries(w, fam, "d1", since=1) == []
    w.handle(ConfigChanged(parse_config(config())))
    w.join("d1", fam.host, fam.group)
    assert general_queries(w, fam, "d1", since=50) == [50.0]
    w.receive("d1", fam.forger, Query(fam.full, fam.general, 10.0), fam.all_systems)
    assert dropped(w, "d1")[Drop.QUERY_ON_ALWAYS_QUERIER_LINK] == 1


# --- item 3: the validity of every message --------------------------------------------------


def join_report(fam: Fam) -> Report:
    return Report(fam.full, (GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip(fam.group)),))


def test_a_report_unicast_to_the_proxy_with_a_ttl_of_64_is_dropped(fam: Fam) -> None:
    w = World.make(config())
    w.receive("d1", fam.host, join_report(fam), fam.proxy, ttl=64, router_alert=True)
    w.receive("d1", fam.host, join_report(fam), ttl=2, router_alert=True)
    reason = Drop.TTL_NOT_ONE if fam.v == 4 else Drop.HOP_LIMIT_NOT_ONE
    assert dropped(w, "d1") == {reason: 2}
    assert not joined(w, fam)
    w.receive("d1", fam.host, join_report(fam), ttl=1, router_alert=True)
    assert joined(w, fam)


def test_messages_without_router_alert_are_dropped(fam: Fam) -> None:
    w = World.make(config())
    older = Report(2 if fam.v == 4 else 1, (GroupRecord(T.MODE_IS_EXCLUDE, ip(fam.group)),))
    w.receive("d1", fam.host, join_report(fam), ttl=1, router_alert=False)
    w.receive("d1", fam.host, older, fam.group, ttl=1, router_alert=False)
    w.receive("d1", fam.host, Leave(ip(fam.group)), ttl=1, router_alert=False)
    assert dropped(w, "d1") == {Drop.NO_ROUTER_ALERT: 3}
    assert not joined(w, fam)


def test_mld_from_a_global_source_is_dropped() -> None:
    w = World.make(config())
    w.receive("d1", "2001:db8::7", join_report(FAMS[6]), ttl=1, router_alert=True)
    assert dropped(w, "d1") == {Drop.SOURCE_NOT_LINK_LOCAL: 1}
    assert not joined(w, FAMS[6])


@pytest.mark.parametrize(("setting", "v1_taken", "v2_taken"),
                         [("", True, False), ("require-router-alert: true", False, False),
                          ("require-router-alert: false", True, True)])
def test_require_router_alert(setting: str, v1_taken: bool, v2_taken: bool) -> None:
    """IGMPv1 (RFC 1112) never has Router Alert: exempt by default, refused with ``true``;
    ``false`` takes IGMPv2 without it too."""
    fam = FAMS[4]
    for version, taken in ((1, v1_taken), (2, v2_taken)):
        w = World.make(config(setting))
        report = Report(version, (GroupRecord(T.MODE_IS_EXCLUDE, ip(fam.group)),))
        w.receive("d1", fam.host, report, fam.group, ttl=1, router_alert=False)
        assert joined(w, fam) is taken, (setting, version)
        assert dropped(w, "d1") == ({} if taken else {Drop.NO_ROUTER_ALERT: 1})


def test_verify_source_subnet() -> None:
    fam = FAMS[4]
    w = World.make(config("verify-source-subnet: true"), up=("u1", "d2"))
    w.up("d1", (24, 64))
    for forged in ("10.9.9.9", "10.1.1.7", "192.0.2.7"):
        w.receive("d1", forged, join_report(fam), ttl=1, router_alert=True)
    assert dropped(w, "d1") == {Drop.SOURCE_NOT_IN_SUBNET: 3}
    assert not joined(w, fam)
    w.receive("d1", "0.0.0.0", join_report(fam), ttl=1, router_alert=True)  # RFC 9776 §4.2.13
    assert joined(w, fam)
    w.receive("d1", fam.host, join_report(fam), ttl=1, router_alert=True)
    assert dropped(w, "d1") == {Drop.SOURCE_NOT_IN_SUBNET: 3}
    # MLD has no subnet rule (its sources are link-local).
    w.receive("d1", FAMS[6].host, join_report(FAMS[6]), ttl=1, router_alert=True)
    assert joined(w, FAMS[6])


def test_verify_source_subnet_without_prefix_lengths_says_it_cannot() -> None:
    fam = FAMS[4]
    w = World.make(config("verify-source-subnet: true"), up=("u1", "d2"))
    w.up("d1")  # the prefix lengths are not known
    assert [log.event for log in w.logs] == ["verify-source-subnet"]
    w.receive("d1", "10.9.9.9", join_report(fam), ttl=1, router_alert=True)
    assert joined(w, fam)


def test_the_subnets_survive_an_engine_reset() -> None:
    fam = FAMS[4]
    rng = FaultyRng()
    w = World(Engine(parse_config(config("verify-source-subnet: true")), rng=rng))
    for name in ("u1", "d2"):
        w.up(name)
    w.up("d1", (24, 64))
    rng.armed = True
    with pytest.raises(RuntimeError, match="injected fault"):
        w.join("d1", fam.host, fam.group)
    assert w.engine.resets == 1
    w.receive("d1", "10.9.9.9", join_report(fam), ttl=1, router_alert=True)
    assert dropped(w, "d1") == {Drop.SOURCE_NOT_IN_SUBNET: 1}


def test_values_a_socket_does_not_give_pass(fam: Fam) -> None:
    w = World.make(config("require-router-alert: true"))
    w.join("d1", fam.host, fam.group)  # no TTL, no Router Alert said
    assert joined(w, fam)
    assert dropped(w, "d1") == {}


# --- item 3: queries on an upstream -----------------------------------------------------------


def upstream_reports_after_query(fam: Fam, source: str, ttl: int | None,
                                 router_alert: bool | None) -> tuple[int, dict[Drop, int]]:
    """(reports the upstream's host side sent in answer to a General Query, drops on u1)."""
    w = World.make(config())
    w.join("d1", fam.host, fam.group)
    w.run_for(10)
    w.clear()
    w.receive("u1", source, Query(fam.full, fam.general, 1.0), fam.all_systems, ttl=ttl,
              router_alert=router_alert)
    w.run_for(5)
    return len(w.upstream_records("u1")), dropped(w, "u1")


def test_upstream_queries_need_ttl_1(fam: Fam) -> None:
    assert upstream_reports_after_query(fam, fam.upstream_router, 1, True) == (1, {})
    reason = Drop.TTL_NOT_ONE if fam.v == 4 else Drop.HOP_LIMIT_NOT_ONE
    assert upstream_reports_after_query(fam, fam.upstream_router, 2, True) == (0, {reason: 1})
    assert upstream_reports_after_query(fam, fam.upstream_router, 64, True) == (0, {reason: 1})


def test_upstream_mld_queries_need_router_alert_and_a_link_local_source() -> None:
    fam = FAMS[6]
    assert upstream_reports_after_query(fam, fam.upstream_router, 1, False) == (
        0, {Drop.NO_ROUTER_ALERT: 1})
    assert upstream_reports_after_query(fam, "2001:db8::fe", 1, True) == (
        0, {Drop.SOURCE_NOT_LINK_LOCAL: 1})
    # IGMP queries are not asked for Router Alert (no host rule does; IGMPv1 never has it).
    assert upstream_reports_after_query(FAMS[4], FAMS[4].upstream_router, 1, False) == (1, {})


# --- item 6: the bound on specific queries ---------------------------------------------------


def test_specific_queries_beyond_the_rate_are_merged_and_counted(fam: Fam) -> None:
    w = World.make(config("specific-query-rate: 5"))
    base = ip(fam.group)
    groups = [bytes(base[:-1]) + bytes([n]) for n in range(1, 41)]
    for g in groups:
        w.report("d1", fam.host, GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, g))
    w.run_for(10)
    w.clear()
    w.report("d1", fam.host, *(GroupRecord(T.CHANGE_TO_INCLUDE_MODE, g) for g in groups))
    specific = [q for q in w.queries("d1") if q.group not in (bytes(4), bytes(16))]
    assert len(specific) == 5
    assert w.engine.counts["specific queries merged"] == 35
    w.run_for(3.5)
    assert len({r[1] for r in w.upstream_records("u1") if r[0] is T.CHANGE_TO_INCLUDE_MODE}) == 40


def test_prefix_lengths_go_one_per_address() -> None:
    addresses = (ip("10.1.0.1"), ip("fe80::d1:1"))
    assert InterfaceUp("d1", addresses).prefix_lengths == ()
    assert InterfaceUp("d1", addresses, (24, 64)).prefix_lengths == (24, 64)
    with pytest.raises(ValueError, match="one length per address"):
        InterfaceUp("d1", addresses, (24,))


# --- a reload reaches running links whole: timers and fast leave too ----------------------


def test_a_reload_gives_a_running_link_its_new_timers_and_fast_leave(fam: Fam) -> None:
    w = World.make(config())
    w.run_until(200.0)  # past the startup queries: one General Query every 125 s
    w.join("d1", fam.host, fam.group)
    w.handle(ConfigChanged(parse_config(config(
        d1="fast-leave: true, timers: {query-interval: 20s}"))))
    w.run_until(265.0)
    later = general_queries(w, fam, "d1", since=200.0)
    assert len(later) == 3, later  # every 20 s now, the first no later than 20 s away
    assert later[0] <= 221.0
    # Fast leave: the only subscriber's leave ends the group at once, no query round.
    assert not left(w, fam)
    w.leave("d1", fam.host, fam.group)
    assert left(w, fam)
