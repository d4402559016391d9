"""Who may be querier on a link, and how far another querier's values are adopted
(RFC 9776 §6.6.2, §4.1.6, §4.1.7, §9.1; RFC 9777 §7.6.2, §10.1).

   forger: host(1)    lower than us ----+
   router(1)          lower than us ----+---- us: router(10)
   router(20)         higher than us ---+
                                       hosts

The forged query of the issue: from an address below ours, QRV 7 and QQIC 31744 (the largest
Query Interval the wire can say), which under the plain election silences us for
7 x 31744 s, about 2.6 days, while as a non-querier we ignore leaves.
"""

from __future__ import annotations

import pytest
from membership_harness import FLAVORS, LMQT, SOURCE_FILTERING, Flavor, Harness, ip

from mcastproxy.drops import Drop
from mcastproxy.membership import (
    ProtocolTimers,
    QuerierChanged,
    QuerierMode,
    QuerierPolicy,
    QueryRefused,
)

ALWAYS = QuerierPolicy(QuerierMode.ALWAYS)


def forger(flavor: Flavor) -> bytes:
    """A host on the link with an address below ours (router(10))."""
    return ip("10.1.1.2") if flavor.family == 4 else ip("fe80::2")


def forged(flavor: Flavor):
    """The issue's query: General, QRV 7, QQIC 31744 where the version carries them."""
    if flavor.source_filtering:
        return flavor.general_query(qrv=7, qqi=31744)
    return flavor.general_query()


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_under_always_a_forged_query_is_dropped_and_leaves_still_end_groups(flavor: Flavor) -> None:
    h = Harness(flavor, querier=ALWAYS)
    g, host, forger_ = flavor.group(), flavor.host(1), forger(flavor)
    assert forger_ < flavor.router(10)
    h.receive(flavor.join(g), host, at=1)
    out = h.receive(forged(flavor), forger_, at=5)
    assert out == [QueryRefused(forger_, Drop.QUERY_ON_ALWAYS_QUERIER_LINK)]
    assert h.link.dropped == {Drop.QUERY_ON_ALWAYS_QUERIER_LINK: 1}
    assert h.link.is_querier
    assert h.link.querier_address == flavor.router(10)
    assert h.link.timers == ProtocolTimers()  # nothing adopted
    # An older-version query (IGMPv1 / MLDv1) does not lower the version in use either.
    h.receive(flavor.general_query(version=1), forger_, at=6)
    assert h.link.operating_version == flavor.version
    # The leave is processed as querier: Q(G) at once, the group gone LMQT later.
    h.receive(flavor.leave(g), host, at=10)
    h.advance(10 + LMQT)
    assert [t for t, q in h.specific_queries()] == [10.0, 11.0]
    assert h.link.group_state(g) is None
    # General Queries keep their schedule: startup at 0 and 31.25, then every 125 s.
    h.advance(160)
    assert h.general_query_times() == [0.0, 31.25, 156.25]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_under_always_every_query_from_another_address_is_dropped(flavor: Flavor) -> None:
    """Specific queries too (a forged Q(G) would lower a group's timers), from any address."""
    h = Harness(flavor, querier=ALWAYS)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=1)
    timer = h.link.group_state(g).group_timer
    for n in range(50):  # a flood, from many spoofed senders
        h.receive(flavor.specific_query(g, max_resp=0.1), flavor.host(100 + n), at=2)
    h.receive(flavor.general_query(), flavor.router(20), at=3)
    assert h.link.group_state(g).group_timer == timer
    assert h.link.dropped == {Drop.QUERY_ON_ALWAYS_QUERIER_LINK: 51}
    assert h.link.is_querier


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_under_elect_with_routers_only_they_take_part(flavor: Flavor) -> None:
    policy = QuerierPolicy(QuerierMode.ELECT, frozenset({flavor.router(1), flavor.router(20)}))
    h = Harness(flavor, querier=policy)
    # Untrusted, though lower: dropped, counted, we stay querier.
    out = h.receive(forged(flavor), forger(flavor), at=5)
    assert out == [QueryRefused(forger(flavor), Drop.QUERY_NOT_FROM_LINK_ROUTER)]
    assert h.link.is_querier
    # A trusted router above us loses the election, ...
    assert h.receive(flavor.general_query(), flavor.router(20), at=6) == []
    assert h.link.is_querier
    # ... one below us wins it.
    assert h.receive(flavor.general_query(), flavor.router(1), at=7) == [
        QuerierChanged(False, flavor.router(1))]
    assert not h.link.is_querier
    assert h.link.querier_address == flavor.router(1)
    assert h.link.dropped == {Drop.QUERY_NOT_FROM_LINK_ROUTER: 1}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_under_elect_a_family_with_no_router_listed_elects_no_one_else(flavor: Flavor) -> None:
    """Routers listed for the other family only: this family's queries are all refused."""
    other = "10.9.9.9" if flavor.family == 6 else "fe80::9"
    h = Harness(flavor, querier=QuerierPolicy(QuerierMode.ELECT, frozenset({ip(other)})))
    h.receive(flavor.general_query(), flavor.router(1), at=1)
    assert h.link.is_querier
    assert h.link.dropped == {Drop.QUERY_NOT_FROM_LINK_ROUTER: 1}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_ceilings_bound_what_a_non_querier_adopts(flavor: Flavor) -> None:
    """QRV 7 and QQIC 31744 from the elected querier are taken as 4 and 300 s: the Other
    Querier Present Interval is 4 * 300 + 10 / 2 = 1205 s instead of 2.6 days."""
    policy = QuerierPolicy(QuerierMode.ELECT, max_robustness=4, max_query_interval=300.0)
    h = Harness(flavor, querier=policy)
    h.receive(forged(flavor), flavor.router(1), at=10)
    assert not h.link.is_querier
    assert (h.link.timers.robustness, h.link.timers.query_interval) == (4, 300.0)
    assert h.link.timers.other_querier_present_interval == 1205.0
    assert h.link.timers.group_membership_interval == 4 * 300 + 2 * 10
    h.advance(10 + 1205 - 0.001)
    assert not h.link.is_querier
    h.advance(10 + 1205)
    assert h.link.is_querier
    assert h.link.timers == ProtocolTimers()
    # Values under the ceilings are adopted as they are.
    h.receive(flavor.general_query(qrv=3, qqi=60), flavor.router(1), at=1300)
    assert (h.link.timers.robustness, h.link.timers.query_interval) == (3, 60.0)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_ceiling_never_lowers_a_value_below_the_links_own(flavor: Flavor) -> None:
    own = ProtocolTimers(robustness=6, query_interval=600.0)
    policy = QuerierPolicy(QuerierMode.ELECT, max_robustness=4, max_query_interval=300.0)
    h = Harness(flavor, timers=own, querier=policy)
    h.receive(forged(flavor), flavor.router(1), at=10)
    assert (h.link.timers.robustness, h.link.timers.query_interval) == (6, 600.0)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_without_a_policy_the_rfc_election_adopts_everything(flavor: Flavor) -> None:
    """The default ``QuerierPolicy()`` is RFC 9776 §6.6.2 unchanged: the attack works."""
    h = Harness(flavor)
    h.receive(forged(flavor), forger(flavor), at=10)
    assert not h.link.is_querier
    assert h.link.timers.other_querier_present_interval == 7 * 31744 + 5


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_new_policy_that_refuses_the_querier_takes_over_at_once(flavor: Flavor) -> None:
    h = Harness(flavor)
    h.receive(flavor.general_query(), flavor.router(1), at=10)
    assert not h.link.is_querier
    h.reconfigure(ALWAYS, None, at=20)
    assert h.link.is_querier
    assert h.general_query_times()[-1] == 20.0
    assert h.querier_changes()[-1] == (20.0, QuerierChanged(True, flavor.router(10)))
    # A new policy that still trusts the querier changes nothing.
    h2 = Harness(flavor)
    h2.receive(flavor.general_query(), flavor.router(1), at=10)
    trusting = QuerierPolicy(QuerierMode.ELECT, frozenset({flavor.router(1)}))
    h2.reconfigure(trusting, None, at=20)
    assert not h2.link.is_querier
    assert h2.link.querier_policy == trusting
