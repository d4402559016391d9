"""The AMT gateway's transitions (RFC 7450 §5.2), one by one, on a virtual clock.

Each test drives a ``Gateway`` by hand (``Driver``): events in, actions out, the relay's
answers made by hand (``advertisement``, ``query``, ``data``), so every branch is reached on
purpose. Parametrized over the inner family (IGMPv3, MLDv2) and the transport's (IPv4, IPv6)
where they differ.
"""

from __future__ import annotations

import pytest
from amt_harness import (
    ANYCAST,
    CHANNEL,
    GATEWAY,
    GATEWAY_PORT,
    MAC,
    OTHER_CHANNEL,
    RELAY,
    Driver,
    advertisement,
    allow,
    block,
    current,
    data,
    make_gateway,
    query,
    sends,
    states,
)

from mcastproxy.amt.actions import GatewayState, QueryReceived, SendDatagram, StateChanged
from mcastproxy.amt.events import MembershipChanged, Refresh, Start, Stop, TimerExpired
from mcastproxy.amt.gateway import DEFAULT_QUERY_INTERVAL, Gateway, GatewayTimers
from mcastproxy.amt.inner import read_report
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    MembershipUpdate,
    RelayDiscovery,
    Request,
    Teardown,
    gateway_address_field,
)
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

FAMILIES = [Family.V4, Family.V6]
COMBOS = [(f, t) for f in FAMILIES for t in FAMILIES]
COMBO_IDS = [f"inner{f}-transport{t}" for f, t in COMBOS]
V4 = Family.V4
FIELD4 = gateway_address_field(GATEWAY[V4])

# Nonces from make_gateway's counter: the first draw, the second ...
N1, N2, N3, N4 = 0x1000, 0x1001, 0x1002, 0x1003


def started(family: Family = V4, transport: Family = V4, **kwargs: object) -> Driver:
    d = Driver(make_gateway(family, transport, **kwargs))  # type: ignore[arg-type]
    d.handle(Start())
    return d


def found(family: Family = V4, transport: Family = V4) -> Driver:
    """Started, and the relay advertised (nonce N1 was the discovery's)."""
    d = started(family, transport)
    d.receive(ANYCAST[transport], advertisement(N1, RELAY[transport]))
    return d


def established(family: Family = V4, transport: Family = V4, **query_kwargs: object) -> Driver:
    """Joined to CHANNEL, the Request (N2) answered: the tunnel is up at time 0."""
    d = found(family, transport)
    d.handle(MembershipChanged(current(family, CHANNEL[family])))
    d.receive(RELAY[transport], query(family, N2, **query_kwargs))  # type: ignore[arg-type]
    assert d.gateway.state is GatewayState.ESTABLISHED
    return d


# --- discovery (§5.2.3.4) --------------------------------------------------------------------


@pytest.mark.parametrize("transport", FAMILIES)
def test_start_sends_a_relay_discovery(transport: Family) -> None:
    d = Driver(make_gateway(V4, transport))
    actions = d.handle(Start())
    assert states(actions) == ["discovering"]
    (send,) = [a for a in actions if isinstance(a, SendDatagram)]
    assert (send.destination, send.port) == (ANYCAST[transport], AMT_PORT)
    assert sends(actions) == [RelayDiscovery(N1)]
    assert d.gateway.next_deadline() == 1.0


def test_discovery_is_retransmitted_with_the_same_nonce_and_backoff() -> None:
    d = started()  # back-off 1 s doubling, at most 8 s
    times = []
    for _ in range(6):
        actions = d.next()
        assert sends(actions) == [RelayDiscovery(N1)]
        times.append(d.now)
    assert times == [1.0, 3.0, 7.0, 15.0, 23.0, 31.0]
    assert d.gateway.status().discoveries_sent == 7


def test_an_early_timer_does_nothing() -> None:
    d = started()
    assert d.at(0.5) == []
    assert d.gateway.next_deadline() == 1.0


@pytest.mark.parametrize("transport", FAMILIES)
def test_an_advertisement_names_the_relay(transport: Family) -> None:
    d = started(V4, transport)
    actions = d.receive(ANYCAST[transport], advertisement(N1, RELAY[transport]))
    assert actions == [StateChanged(GatewayState.RELAY_FOUND, RELAY[transport], "relay advertised")]
    assert d.gateway.relay == RELAY[transport]
    assert d.gateway.next_deadline() is None  # nothing joined: no Request, no timer


def test_an_advertisement_may_come_from_any_address() -> None:
    # It answers a discovery sent to an anycast address: the nonce is what ties them.
    d = started()
    d.receive(RELAY[V4], advertisement(N1, RELAY[V4]))
    assert d.gateway.state is GatewayState.RELAY_FOUND


@pytest.mark.parametrize(
    ("message", "port", "reason"),
    [
        (advertisement(N1 + 7, RELAY[V4]), AMT_PORT, Drop.AMT_WRONG_NONCE),
        (advertisement(N1, RELAY[V4]), 2269, Drop.AMT_NOT_FROM_RELAY),
        (advertisement(N1, RELAY[Family.V6]), AMT_PORT, Drop.WRONG_FAMILY),
    ],
)
def test_advertisements_that_are_not_for_us(message: bytes, port: int, reason: Drop) -> None:
    d = started()
    assert d.receive(ANYCAST[V4], message, port) == []
    assert d.gateway.state is GatewayState.DISCOVERING
    assert d.gateway.dropped.by_reason() == {reason: 1}
    assert d.gateway.next_deadline() == 1.0  # the retransmission still runs


def test_an_advertisement_when_not_discovering_is_unexpected() -> None:
    d = found()
    d.receive(ANYCAST[V4], advertisement(N1, RELAY[V4]))
    assert d.gateway.dropped.by_reason() == {Drop.AMT_UNEXPECTED: 1}


def test_without_discovery_the_address_is_the_relays() -> None:
    d = Driver(make_gateway(V4, V4, discover=False))
    actions = d.handle(Start())
    assert states(actions) == ["relay found"]
    assert sends(actions) == []
    assert d.gateway.relay == RELAY[V4]


# --- Request and Membership Query (§5.2.3.5-§5.2.3.6) -----------------------------------------


@pytest.mark.parametrize(("family", "transport"), COMBOS, ids=COMBO_IDS)
def test_a_join_sends_a_request_for_the_family(family: Family, transport: Family) -> None:
    d = found(family, transport)
    actions = d.handle(MembershipChanged(current(family, CHANNEL[family])))
    assert states(actions) == ["requesting"]
    assert sends(actions) == [Request(N2, family)]
    (send,) = [a for a in actions if isinstance(a, SendDatagram)]
    assert send.destination == RELAY[transport]


def test_a_join_during_discovery_waits_for_the_relay() -> None:
    d = started()
    assert sends(d.handle(MembershipChanged(current(V4, CHANNEL[V4])))) == []
    actions = d.receive(ANYCAST[V4], advertisement(N1, RELAY[V4]))
    assert states(actions) == ["relay found", "requesting"]
    assert sends(actions) == [Request(N2, V4)]


@pytest.mark.parametrize(("family", "transport"), COMBOS, ids=COMBO_IDS)
def test_a_query_establishes_the_tunnel_and_is_answered(family: Family, transport: Family) -> None:
    d = found(family, transport)
    joined = current(family, CHANNEL[family], OTHER_CHANNEL[family])
    d.handle(MembershipChanged(joined))
    actions = d.receive(RELAY[transport], query(family, N2, qqi=30, qrv=3))
    assert states(actions) == ["established"]
    (received,) = [a for a in actions if isinstance(a, QueryReceived)]
    assert (received.query.qqi, received.query.qrv) == (30, 3)
    (update,) = sends(actions)
    assert isinstance(update, MembershipUpdate)
    assert (update.mac, update.nonce) == (MAC, N2)  # §5.1.5: echoed
    assert read_report(update.report) == (family, family.unspecified, joined[0])
    tunnel = d.gateway.status().tunnel
    assert tunnel is not None
    assert (tunnel.query_interval, tunnel.robustness) == (30.0, 3)
    assert d.gateway.next_deadline() == 30.0


def test_the_state_changes_are_sent_at_once_on_an_established_tunnel() -> None:
    d = established()
    joined = current(V4, CHANNEL[V4], OTHER_CHANNEL[V4])
    actions = d.handle(MembershipChanged(joined, (allow(V4, OTHER_CHANNEL[V4]),)))
    (update,) = sends(actions)
    assert isinstance(update, MembershipUpdate)
    assert (update.mac, update.nonce) == (MAC, N2)
    assert read_report(update.report)[2] == allow(V4, OTHER_CHANNEL[V4])


def test_state_changes_before_the_tunnel_are_not_sent_the_current_state_is() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4]), (allow(V4, CHANNEL[V4]),)))
    actions = d.receive(RELAY[V4], query(V4, N2))
    (update,) = sends(actions)
    assert read_report(update.report)[2] == current(V4, CHANNEL[V4])[0]  # type: ignore[union-attr]


def test_an_unanswered_request_is_retransmitted_then_the_relay_is_rediscovered() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    assert sends(d.next()) == [Request(N2, V4)]  # at 1 s: the same nonce
    assert d.now == 1.0
    assert sends(d.next()) == [Request(N2, V4)]  # at 3 s
    actions = d.next()  # at 7 s: 1 + [QRV] Requests went unanswered
    assert d.now == 7.0
    assert states(actions) == ["discovering"]
    assert sends(actions) == [RelayDiscovery(N3)]  # a fresh discovery
    assert d.gateway.next_deadline() == 8.0  # the back-off starts over


def test_without_discovery_a_silent_relay_is_asked_again_with_a_fresh_nonce() -> None:
    d = Driver(make_gateway(V4, V4, discover=False))
    d.handle(Start())
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))  # Request N1 at 0
    d.next()
    d.next()  # N1 again at 1 and 3
    actions = d.next()  # at 7: given up; a new Request, the back-off kept
    assert d.now == 7.0
    assert sends(actions) == [Request(N2, V4)]
    assert d.gateway.state is GatewayState.REQUESTING
    assert d.gateway.next_deadline() == 15.0  # 8 s: the back-off went on growing
    d.receive(RELAY[V4], query(V4, N2))
    assert d.gateway.state is GatewayState.ESTABLISHED


# --- timing (§5.2.3.7) ------------------------------------------------------------------------


def test_a_new_request_each_query_interval_refreshes_the_tunnel() -> None:
    d = established(qqi=10)
    actions = d.next()
    assert d.now == 10.0
    assert sends(actions) == [Request(N3, V4)]  # a fresh nonce
    assert d.gateway.state is GatewayState.ESTABLISHED  # data keeps flowing meanwhile
    actions = d.receive(RELAY[V4], query(V4, N3, mac=MAC + 1))
    (update,) = sends(actions)
    assert (update.mac, update.nonce) == (MAC + 1, N3)  # type: ignore[union-attr]
    assert states(actions) == []
    assert d.gateway.next_deadline() == 20.0


def test_qqic_and_qrv_zero_mean_the_defaults() -> None:
    d = established(qqi=0, qrv=0)
    tunnel = d.gateway.status().tunnel
    assert tunnel is not None
    assert (tunnel.query_interval, tunnel.robustness) == (DEFAULT_QUERY_INTERVAL, 2)
    assert d.gateway.next_deadline() == 125.0


def test_an_unanswered_refresh_ends_in_rediscovery_after_the_relays_robustness() -> None:
    d = established(qqi=10, qrv=1)
    d.next()  # 10: Request N3
    assert sends(d.next()) == [Request(N3, V4)]  # 11: once more (QRV 1)
    actions = d.next()  # 13: gone
    assert states(actions) == ["discovering"]
    assert d.gateway.relay == RELAY[V4]  # kept, with its data, until another is found


def test_refresh_asks_at_once() -> None:
    d = established(qqi=100)
    d.now = 5.0
    assert sends(d.handle(Refresh())) == [Request(N3, V4)]
    assert sends(d.handle(Refresh())) == []  # one outstanding is enough
    assert d.gateway.next_deadline() == 6.0


def test_refresh_before_the_tunnel_does_nothing() -> None:
    d = found()
    assert d.handle(Refresh()) == []


def test_a_duplicate_query_is_answered_again() -> None:
    d = established()
    actions = d.receive(RELAY[V4], query(V4, N2))
    assert [type(m) for m in sends(actions)] == [MembershipUpdate]
    assert d.gateway.dropped.by_reason() == {}


def test_a_late_duplicate_leaves_the_newer_request_standing() -> None:
    # The relay answered the tunnel's Request twice (it was sent again); the second answer
    # comes after the next Request (N3) is out. Taken, it would cancel N3, and N3's query
    # would then be refused as a nonce never sent.
    d = established(qqi=10)
    assert sends(d.next()) == [Request(N3, V4)]  # 10 s: the refresh
    assert d.receive(RELAY[V4], query(V4, N2)) == []
    assert d.gateway.next_deadline() == 11.0  # N3's retransmission still armed
    actions = d.receive(RELAY[V4], query(V4, N3, mac=MAC + 1))
    (update,) = sends(actions)
    assert (update.mac, update.nonce) == (MAC + 1, N3)  # type: ignore[union-attr]
    assert d.gateway.dropped.by_reason() == {}
    assert d.gateway.status().queries_accepted == 2


# --- Teardown (§5.2.3.8) ----------------------------------------------------------------------


def test_the_last_leave_tears_the_tunnel_down() -> None:
    d = established()
    actions = d.handle(MembershipChanged((), (block(V4, CHANNEL[V4]),)))
    update, teardown = sends(actions)
    assert read_report(update.report)[2] == block(V4, CHANNEL[V4])  # type: ignore[union-attr]
    assert teardown == Teardown(MAC, N2, GATEWAY_PORT, FIELD4)
    assert states(actions) == ["relay found"]
    assert d.gateway.next_deadline() is None
    # A join again: a new Request, a new tunnel.
    assert sends(d.handle(MembershipChanged(current(V4, CHANNEL[V4])))) == [Request(N3, V4)]


def test_the_last_leave_while_requesting_stops_asking() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    actions = d.handle(MembershipChanged(()))
    assert sends(actions) == []
    assert states(actions) == ["relay found"]
    assert d.gateway.next_deadline() is None


def test_stop_sends_a_teardown_and_ends_everything() -> None:
    d = established()
    actions = d.handle(Stop())
    assert sends(actions) == [Teardown(MAC, N2, GATEWAY_PORT, FIELD4)]
    assert states(actions) == ["stopped"]
    assert d.gateway.next_deadline() is None
    assert d.receive(RELAY[V4], data(CHANNEL[V4])) == []
    assert d.packets == []
    assert d.gateway.dropped.by_reason() == {Drop.AMT_UNEXPECTED: 1}
    assert d.handle(Stop()) == []
    assert d.at(100.0) == []
    with pytest.raises(RuntimeError, match="starts once"):
        d.handle(Start())


def test_without_gateway_fields_there_is_nothing_to_tear_down_with() -> None:
    d = established(gateway=None)
    assert sends(d.handle(Stop())) == []


def test_a_changed_gateway_address_tears_the_old_one_down() -> None:
    # A NAT between gateway and relay gave us a new port: the relay sent the new one back.
    d = established()
    d.next()  # 10: Request N3
    actions = d.receive(RELAY[V4], query(V4, N3, mac=MAC + 1, gateway=(40001, GATEWAY[V4])))
    teardown, update = sends(actions)
    assert teardown == Teardown(MAC, N2, GATEWAY_PORT, FIELD4)  # the old one's
    assert (update.mac, update.nonce) == (MAC + 1, N3)  # type: ignore[union-attr]


def test_a_new_relay_found_tears_the_old_ones_tunnel_down() -> None:
    d = established(qqi=10, qrv=1)
    d.next()
    d.next()
    d.next()  # rediscovering, discovery nonce N4
    other = RELAY[V4][:3] + b"\x09"
    actions = d.receive(ANYCAST[V4], advertisement(N4, other))
    teardown, request = (a for a in actions if isinstance(a, SendDatagram))
    assert teardown.destination == RELAY[V4]
    assert isinstance(sends([teardown])[0], Teardown)
    assert request.destination == other


def test_a_leave_during_rediscovery_tears_down_when_the_relay_is_back() -> None:
    d = established(qqi=10, qrv=1)
    for _ in range(3):
        d.next()  # the refresh unanswered: rediscovering (discovery nonce N4)
    assert sends(d.handle(MembershipChanged(()))) == []  # no relay to tell now
    actions = d.receive(ANYCAST[V4], advertisement(N4, RELAY[V4]))
    assert sends(actions) == [Teardown(MAC, N2, GATEWAY_PORT, FIELD4)]
    assert d.gateway.state is GatewayState.RELAY_FOUND


# --- L flag (§5.1.4) ----------------------------------------------------------------------


def test_a_relay_taking_no_new_gateways_is_not_used() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    assert d.receive(RELAY[V4], query(V4, N2, limit=True)) == []
    assert d.gateway.state is GatewayState.REQUESTING
    assert d.gateway.dropped.by_reason() == {Drop.AMT_RELAY_FULL: 1}


def test_the_l_flag_does_not_end_a_tunnel_that_is_up() -> None:
    d = established()
    d.next()
    actions = d.receive(RELAY[V4], query(V4, N3, limit=True))
    assert [type(m) for m in sends(actions)] == [MembershipUpdate]


# --- Multicast Data (§5.1.6) --------------------------------------------------------------


@pytest.mark.parametrize(("family", "transport"), COMBOS, ids=COMBO_IDS)
def test_data_from_the_relay_is_delivered_in_order(family: Family, transport: Family) -> None:
    d = established(family, transport)
    for i in range(3):
        assert d.receive(RELAY[transport], data(CHANNEL[family], bytes([i]))) == []
    assert [p[-1] for p in d.packets] == [0, 1, 2]
    status = d.gateway.status()
    assert status.data_delivered == 3
    assert status.data_octets == sum(map(len, d.packets))


def test_data_keeps_flowing_while_the_relay_is_rediscovered() -> None:
    d = established(qqi=10, qrv=1)
    for _ in range(3):
        d.next()
    assert d.gateway.state is GatewayState.DISCOVERING
    d.receive(RELAY[V4], data(CHANNEL[V4]))
    assert len(d.packets) == 1


# --- misuse raises, before anything changes -------------------------------------------------


def test_a_report_of_another_version_is_refused() -> None:
    d = established()
    old = Report(2, (GroupRecord(RecordType.MODE_IS_EXCLUDE, CHANNEL[V4][1]),))
    with pytest.raises(ValueError, match="version 3"):
        d.handle(MembershipChanged((old,)))
    assert d.gateway.status().joined


def test_other_events_are_refused() -> None:
    d = started()
    with pytest.raises(TypeError):
        d.handle("start")  # type: ignore[arg-type]


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="report_source"):
        Gateway(V4, RELAY[V4], nonce=lambda: 1, report_source=bytes(16))
    with pytest.raises(ValueError, match="4 or 16"):
        Gateway(V4, bytes(5), nonce=lambda: 1)
    with pytest.raises(ValueError, match="timeouts"):
        GatewayTimers(2.0, 1.0)


def test_report_source_is_the_reports_source() -> None:
    source = bytes([10, 200, 0, 1])
    gateway = Gateway(V4, RELAY[V4], nonce=lambda: 5, discover=False, report_source=source)
    d = Driver(gateway)
    d.handle(Start())
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    (update,) = sends(d.receive(RELAY[V4], query(V4, 5)))
    assert read_report(update.report)[1] == source  # type: ignore[union-attr]


def test_timer_events_with_no_deadline_do_nothing() -> None:
    d = found()
    assert d.handle(TimerExpired()) == []
