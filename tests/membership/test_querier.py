"""Querier election and General Queries (RFC 9776 §6.6.2, §8.5-8.7; RFC 9777 §7.6.2).

router(1) ---+--- us: router(10)      lower address wins the election
             |
          hosts
"""

from __future__ import annotations

import pytest
from membership_harness import FLAVORS, OQPI, SOURCE_FILTERING, Flavor, Harness

from mcastproxy.drops import Drop
from mcastproxy.membership import ProtocolTimers, QuerierChanged, SendQuery


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_startup_queries_then_query_interval(flavor: Flavor) -> None:
    """[Startup Query Count] = 2 queries [Startup Query Interval] = 31.25 s apart, then one
    every [Query Interval] = 125 s."""
    h = Harness(flavor)
    assert h.link.is_querier
    assert h.link.querier_address == flavor.router(10)
    h.advance(600)
    assert h.general_query_times() == [0.0, 31.25, 156.25, 281.25, 406.25, 531.25]
    for _t, o in h.log:
        if isinstance(o, SendQuery):
            q = o.query
            assert q.version == flavor.version
            assert q.max_resp == 10.0
            assert q.sources == ()
            assert o.destination == flavor.family.all_systems
            if flavor.source_filtering:
                assert (q.qrv, q.qqi, q.s_flag) == (2, 125, False)
    assert h.querier_changes() == [(0.0, QuerierChanged(True, flavor.router(10)))]


@pytest.mark.parametrize("flavor", [FLAVORS[0], FLAVORS[3]], ids=str)
def test_configured_startup_values(flavor: Flavor) -> None:
    timers = ProtocolTimers(
        robustness=3, query_interval=60, startup_query_interval=5, last_member_query_count=1
    )
    h = Harness(flavor, timers=timers)
    h.advance(200)
    assert h.general_query_times() == [0.0, 5.0, 10.0, 70.0, 130.0, 190.0]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_lower_querier_silences_us_until_other_querier_present_interval(flavor: Flavor) -> None:
    h = Harness(flavor)
    other = flavor.router(1)
    out = h.receive(flavor.general_query(), other, at=50)
    assert out == [QuerierChanged(False, other)]
    assert not h.link.is_querier
    assert h.link.querier_address == other
    h.advance(50 + OQPI - 0.001)
    assert h.general_query_times() == [0.0, 31.25]
    # Other Querier Present Interval = 2 * 125 + 10 / 2 = 255 s later, we take over and
    # query at once, then every Query Interval (no second startup sequence).
    h.advance(50 + OQPI + 300)
    assert h.general_query_times() == [0.0, 31.25, 305.0, 430.0, 555.0]
    assert h.link.is_querier
    assert h.querier_changes()[-1] == (305.0, QuerierChanged(True, flavor.router(10)))


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_active_lower_querier_keeps_us_silent(flavor: Flavor) -> None:
    h = Harness(flavor)
    for t in range(10, 1000, 125):
        h.receive(flavor.general_query(), flavor.router(1), at=t)
    h.advance(1000)
    assert h.general_query_times() == [0.0]
    assert not h.link.is_querier


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_higher_querier_does_not_silence_us(flavor: Flavor) -> None:
    h = Harness(flavor)
    assert h.receive(flavor.general_query(), flavor.router(20), at=5) == []
    assert h.link.is_querier
    h.advance(160)
    assert h.general_query_times() == [0.0, 31.25, 156.25]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_specific_query_from_lower_address_is_no_election(flavor: Flavor) -> None:
    """RFC 9776 §6.6.2 elects on General Queries."""
    h = Harness(flavor)
    h.receive(flavor.specific_query(flavor.group()), flavor.router(1), at=5)
    assert h.link.is_querier


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_no_address_no_querier_until_set_address(flavor: Flavor) -> None:
    h = Harness(flavor, own=None)
    h.advance(100)
    assert h.log == []
    assert not h.link.is_querier
    assert h.link.querier_address is None
    assert h.link.next_deadline() is None
    out = h.set_address(flavor.router(10), at=100)
    assert QuerierChanged(True, flavor.router(10)) in out
    h.advance(200)
    assert h.general_query_times() == [100.0, 131.25]
    # Losing the address stops querying.
    assert h.set_address(None, at=200) == [QuerierChanged(False, None)]
    h.advance(1000)
    assert h.general_query_times() == [100.0, 131.25]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_set_address_while_another_querier_is_lower(flavor: Flavor) -> None:
    h = Harness(flavor, own=None)
    h.receive(flavor.general_query(), flavor.router(5), at=1)
    assert h.link.querier_address == flavor.router(5)
    h.set_address(flavor.router(10), at=2)
    assert not h.link.is_querier
    # An address below the current querier's wins at once.
    h.set_address(flavor.router(1), at=3)
    assert h.link.is_querier
    assert h.general_query_times() == [3.0]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_address_change_while_querier(flavor: Flavor) -> None:
    h = Harness(flavor)
    assert h.set_address(flavor.router(11), at=1) == [QuerierChanged(True, flavor.router(11))]
    assert h.set_address(flavor.router(11), at=2) == []
    assert h.link.querier_address == flavor.router(11)


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_own_and_unspecified_queries_are_dropped(flavor: Flavor) -> None:
    h = Harness(flavor)
    h.receive(flavor.general_query(), flavor.router(10), at=1)
    h.receive(flavor.general_query(), flavor.unspecified, at=1)
    assert h.link.is_querier
    assert h.link.dropped == {
        Drop.FROM_OWN_ADDRESS: 1,
        Drop.QUERY_SOURCE_UNSPECIFIED: 1,
    }


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_non_querier_adopts_querier_robustness_and_interval(flavor: Flavor) -> None:
    """§4.1.6 / §4.1.7: QRV and QQI of the querier; the Other Querier Present Interval
    follows (3 * 60 + 10 / 2 = 185 s), and our own values return when we take over."""
    h = Harness(flavor)
    h.receive(flavor.general_query(qrv=3, qqi=60), flavor.router(1), at=10)
    assert (h.link.timers.robustness, h.link.timers.query_interval) == (3, 60.0)
    assert h.link.timers.effective_last_member_query_count == 3
    h.advance(10 + 185)
    assert h.link.is_querier
    assert h.general_query_times()[-1] == 195.0
    assert h.link.timers == ProtocolTimers()
    # QRV/QQI of zero mean "use the default".
    h.receive(flavor.general_query(qrv=0, qqi=0), flavor.router(1), at=200)
    assert h.link.timers == ProtocolTimers()


def test_start_twice_is_misuse() -> None:
    h = Harness(FLAVORS[0])
    with pytest.raises(RuntimeError):
        h.link.start(1.0)


def test_robustness_above_seven_is_sent_as_qrv_zero() -> None:
    """RFC 9776 §4.1.6: "If the querier's [Robustness Variable] exceeds 7 ... the QRV is set
    to zero"."""
    h = Harness(SOURCE_FILTERING[0], timers=ProtocolTimers(robustness=8))
    assert [q.qrv for _, q in h.queries()] == [0]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_adopted_shorter_group_membership_interval_is_honoured(flavor: Flavor) -> None:
    """The querier's QRV 1 and QQI 30 make GMI 1 * 30 + 2 * 10 = 50 s: a refresh after the
    adoption expires after 50 s, earlier than the timers set before it."""
    h = Harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    h.receive(flavor.join(g), host, at=0)
    h.receive(flavor.general_query(qrv=1, qqi=30), flavor.router(1), at=1)
    assert h.link.timers.group_membership_interval == 50.0
    h.receive(flavor.join(g), host, at=2)
    h.advance(51.999)
    assert h.link.group_state(g).group_timer == 52.0
    assert h.link.subscriber(g, host) is not None
    h.advance(52)
    assert h.link.group_state(g) is None
    assert h.link.subscriber(g, host) is None
