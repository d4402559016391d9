"""The gateway from an attacker's side: whatever arrives, ``receive`` never raises, and what is
not the relay's answer to us is dropped and counted by reason, changing nothing.

RFC 7450 §6: the nonces keep an off-path host from forging a relay's answers (it would have
to guess 32 bits), and a gateway takes data from its relay's address and port only. A host
on the path can still forge; that is beyond what the protocol protects against.
"""

from __future__ import annotations

import pytest
from amt_harness import (
    CHANNEL,
    RELAY,
    Driver,
    addr,
    current,
    data,
    make_gateway,
    query,
)
from amt_strategies import amt_messages
from amt_vectors import VECTORS, Vector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gateway import N2, established, found, started

from mcastproxy.amt.actions import GatewayState, StateChanged
from mcastproxy.amt.events import MembershipChanged
from mcastproxy.drops import Drop, Stage
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    AmtMessage,
    MembershipUpdate,
    RelayDiscovery,
    Request,
    Teardown,
    build_amt,
)

V4 = Family.V4
STRANGER = addr("10.66.6.6")


def test_a_forged_query_with_the_wrong_nonce_is_dropped() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    for guess in (0, N2 + 1, 0xFFFFFFFF):
        assert d.receive(RELAY[V4], query(V4, guess)) == []
    assert d.gateway.state is GatewayState.REQUESTING
    assert d.gateway.dropped.by_reason() == {Drop.AMT_WRONG_NONCE: 3}
    assert d.gateway.next_deadline() == 1.0  # the retransmission is not disturbed


def test_a_forged_query_on_an_established_tunnel_changes_nothing() -> None:
    d = established()
    before = d.gateway.status().tunnel
    assert d.receive(RELAY[V4], query(V4, N2 + 99, mac=1, gateway=(1, STRANGER))) == []
    assert d.gateway.status().tunnel == before
    assert d.gateway.dropped.by_reason() == {Drop.AMT_WRONG_NONCE: 1}


@pytest.mark.parametrize(("source", "port"), [(STRANGER, AMT_PORT), (RELAY[V4], 2269)])
def test_a_query_with_the_right_nonce_from_elsewhere_is_dropped(source: bytes, port: int) -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    assert d.receive(source, query(V4, N2), port) == []
    assert d.gateway.state is GatewayState.REQUESTING
    assert d.gateway.dropped.by_reason() == {Drop.AMT_NOT_FROM_RELAY: 1}


@pytest.mark.parametrize(("source", "port"), [(STRANGER, AMT_PORT), (RELAY[V4], 40000)])
def test_data_not_from_the_relay_is_dropped(source: bytes, port: int) -> None:
    d = established()
    for _ in range(5):
        assert d.receive(source, data(CHANNEL[V4]), port) == []
    assert d.packets == []
    assert d.gateway.dropped.by_reason() == {Drop.AMT_NOT_FROM_RELAY: 5}


def test_data_before_any_relay_is_known_is_dropped() -> None:
    d = started()
    d.receive(RELAY[V4], data(CHANNEL[V4]))
    assert d.packets == []
    assert d.gateway.dropped.by_reason() == {Drop.AMT_NOT_FROM_RELAY: 1}


@pytest.mark.parametrize(
    ("packet_channel", "reason"),
    [
        ((addr("10.0.9.1"), addr("10.30.1.2")), Drop.AMT_DATA_NOT_MULTICAST),  # unicast inside
        ((addr("fd00:9::1"), addr("ff3e::1")), Drop.WRONG_FAMILY),  # IPv6 to an IPv4 gateway
    ],
)
def test_data_the_pseudo_interface_must_not_see_is_dropped(
    packet_channel: tuple[bytes, bytes], reason: Drop
) -> None:
    d = established()
    d.receive(RELAY[V4], data(packet_channel))
    assert d.packets == []
    assert d.gateway.dropped.by_reason() == {reason: 1}


@pytest.mark.parametrize("v", VECTORS, ids=[v.name for v in VECTORS])
def test_every_truncation_and_extension_is_dropped_and_counted_once(v: Vector) -> None:
    d = established()
    before = d.gateway.status()
    variants = [v.data[:n] for n in range(len(v.data))] + [v.data + b"\0", v.data + bytes(18)]
    for variant in variants:
        assert d.receive(RELAY[V4], variant) == []
    after = d.gateway.status()
    assert sum(after.dropped.values()) == len(variants)
    assert d.packets == []
    assert (after.state, after.tunnel) == (before.state, before.tunnel)
    for reason in after.dropped:
        # An IPv6 advertisement cut to 12 octets is a well-formed IPv4 one, not expected now.
        assert reason.stage is Stage.MALFORMED or reason is Drop.AMT_UNEXPECTED


def test_truncated_and_oversized_data_are_counted_by_reason() -> None:
    d = established()
    good = data(CHANNEL[V4])
    d.receive(RELAY[V4], good[:1])  # only a type
    d.receive(RELAY[V4], good[:-1])  # the packet says one octet more
    d.receive(RELAY[V4], good + b"\0")  # one octet after the packet
    assert d.packets == []
    assert d.gateway.dropped.by_reason() == {
        Drop.TRUNCATED_MESSAGE: 1, Drop.BAD_TOTAL_LENGTH: 1, Drop.AMT_BAD_LENGTH: 1,
    }  # fmt: skip
    assert all(r.stage is Stage.MALFORMED for r in d.gateway.dropped.by_reason())


@pytest.mark.parametrize(
    "message",
    [RelayDiscovery(1), Request(N2), MembershipUpdate(1, N2, data(CHANNEL[V4])[2:]),
     Teardown(1, N2, 1, bytes(16))],
    ids=["discovery", "request", "update", "teardown"],
)
def test_what_only_a_relay_receives_is_dropped(message: AmtMessage) -> None:
    d = established()
    assert d.receive(RELAY[V4], build_amt(message)) == []
    assert d.gateway.dropped.by_reason() == {Drop.AMT_NOT_FOR_GATEWAY: 1}


def test_a_query_carrying_garbage_is_dropped_with_the_inner_codecs_reason() -> None:
    d = found()
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    good = bytearray(query(V4, N2))
    good[-18 - 5] ^= 0xFF  # inside the IGMP message (before the Gateway fields): bad checksum
    assert d.receive(RELAY[V4], bytes(good)) == []
    assert d.gateway.dropped.by_reason() == {Drop.BAD_CHECKSUM: 1}
    assert d.receive(RELAY[V4], query(Family.V6, N2)) == []  # an MLD query to an IGMP gateway
    assert d.gateway.dropped.by_reason()[Drop.WRONG_FAMILY] == 1
    assert d.gateway.state is GatewayState.REQUESTING


def test_anything_before_start_is_unexpected() -> None:
    d = Driver(make_gateway())
    d.receive(RELAY[V4], query(V4, N2))
    d.receive(RELAY[V4], b"")
    assert d.gateway.dropped.by_reason() == {Drop.AMT_UNEXPECTED: 2}


SOURCES = st.sampled_from([RELAY[V4], STRANGER, addr("192.52.193.1")])
PORTS = st.sampled_from([AMT_PORT, 2269, 40000])
DATAGRAMS = st.one_of(
    st.binary(max_size=120),
    amt_messages.map(build_amt),
    st.builds(query, st.just(V4), st.sampled_from([N2, N2 + 1])),
    st.builds(data, st.sampled_from([CHANNEL[V4], (STRANGER, STRANGER)])),
)


def _accounted(d: Driver) -> tuple[int, int, int, int]:
    status = d.gateway.status()
    return (sum(status.dropped.values()), status.data_delivered, status.queries_accepted,
            len(d.packets))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["started", "found", "requesting", "established"]),
       st.lists(st.tuples(SOURCES, PORTS, DATAGRAMS), max_size=12))
def test_random_datagrams_never_raise_and_each_is_accounted_for_once(
    where: str, datagrams: list[tuple[bytes, int, bytes]]
) -> None:
    """Each datagram is dropped and counted, or delivered, or an answer the gateway took; and
    nothing from anywhere but the relay's address and port is delivered or taken."""
    if where == "requesting":
        d = found()
        d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    else:
        d = {"started": started, "found": found, "established": established}[where]()
    for source, port, datagram in datagrams:
        dropped, delivered, queries, packets = _accounted(d)
        actions = d.receive(source, datagram, port)
        dropped2, delivered2, queries2, packets2 = _accounted(d)
        advertised = sum(isinstance(a, StateChanged) and a.why == "relay advertised"
                         for a in actions)
        assert (dropped2 - dropped) + (delivered2 - delivered) + (queries2 - queries) + (
            advertised) == 1
        assert packets2 - packets == delivered2 - delivered
        if (source, port) != (RELAY[V4], AMT_PORT):
            assert (delivered2, queries2) == (delivered, queries)
