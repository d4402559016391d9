"""Test helpers for the AMT gateway: addresses, reports, a virtual clock, and a network joining
a ``Gateway`` to the lab's relay core (``mcastlab.amtrelay.RelayCore``) in memory.

``Net`` delivers what the gateway sends to the relay (when the relay is up and the datagram is
addressed to it) and the relay's answers back, at once, at the virtual time ``net.now``;
``net.advance(t)`` runs the gateway's timers up to ``now + t``. Everything the gateway did is
kept in ``net.actions`` and its sends, decoded, in ``net.sent``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mcastlab.amtrelay import RelayCore, udp_packet
from mcastproxy.amt.actions import Action, SendDatagram, StateChanged
from mcastproxy.amt.events import DatagramReceived, Event, TimerExpired
from mcastproxy.amt.gateway import Gateway, GatewayTimers
from mcastproxy.amt.inner import query_packet
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    AmtMessage,
    MembershipQuery,
    MulticastData,
    RelayAdvertisement,
    build_amt,
    gateway_address_field,
    parse_amt,
)
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


# The lab's addresses (mcastlab.amt_topologies): the gateway's transport end and the relay's.
GATEWAY = {Family.V4: addr("10.30.1.2"), Family.V6: addr("fd30:1::2")}
RELAY = {Family.V4: addr("10.30.2.2"), Family.V6: addr("fd30:2::2")}
ANYCAST = {Family.V4: addr("192.52.193.1"), Family.V6: addr("2001:db8:a::1")}
GATEWAY_PORT = 40000
# A channel of each inner family: (source, group).
CHANNEL = {
    Family.V4: (addr("10.0.9.1"), addr("232.1.1.1")),
    Family.V6: (addr("fd00:9::1"), addr("ff3e::8000:1")),
}
OTHER_CHANNEL = {
    Family.V4: (addr("10.0.9.2"), addr("232.1.1.2")),
    Family.V6: (addr("fd00:9::2"), addr("ff3e::8000:2")),
}


def report(family: Family, *records: GroupRecord) -> Report:
    return Report(family.newest_version, records)


def current(family: Family, *channels: tuple[bytes, bytes]) -> tuple[Report, ...]:
    """The Current-State Report of a host joined to ``channels`` (one IS_IN record a group)."""
    groups: dict[bytes, list[bytes]] = {}
    for source, group in channels:
        groups.setdefault(group, []).append(source)
    if not groups:
        return ()
    records = [GroupRecord(RecordType.MODE_IS_INCLUDE, g, tuple(s)) for g, s in groups.items()]
    return (report(family, *records),)


def allow(family: Family, channel: tuple[bytes, bytes]) -> Report:
    source, group = channel
    return report(family, GroupRecord(RecordType.ALLOW_NEW_SOURCES, group, (source,)))


def block(family: Family, channel: tuple[bytes, bytes]) -> Report:
    source, group = channel
    return report(family, GroupRecord(RecordType.BLOCK_OLD_SOURCES, group, (source,)))


def counter(start: int = 0x1000) -> Callable[[], int]:
    """Nonces for a test: 0x1000, 0x1001, ... (each call the next)."""
    numbers = itertools.count(start)
    return lambda: next(numbers)


def make_gateway(
    family: Family = Family.V4,
    transport: Family = Family.V4,
    *,
    discover: bool = True,
    initial_timeout: float = 1.0,
    max_timeout: float = 8.0,
    nonce_start: int = 0x1000,
    give_up: bool = False,
) -> Gateway:
    return Gateway(
        family, ANYCAST[transport] if discover else RELAY[transport], nonce=counter(nonce_start),
        discover=discover, timers=GatewayTimers(initial_timeout, max_timeout), name="amt0",
        give_up=give_up,
    )  # fmt: skip


def sends(actions: Iterable[Action]) -> list[AmtMessage]:
    """The AMT messages among ``actions``, decoded."""
    return [parse_amt(a.data) for a in actions if isinstance(a, SendDatagram)]


def states(actions: Iterable[Action]) -> list[str]:
    return [str(a.state) for a in actions if isinstance(a, StateChanged)]


@dataclass
class Net:
    """A gateway and a relay core on one virtual clock, joined by a lossless network."""

    gateway: Gateway
    relay: RelayCore
    endpoint: tuple[bytes, int] = (GATEWAY[Family.V4], GATEWAY_PORT)
    now: float = 0.0
    relay_up: bool = True
    actions: list[Action] = field(default_factory=list)
    sent: list[tuple[float, AmtMessage]] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)

    def handle(self, event: Event) -> None:
        self.gateway.handle(event, self.now)
        self.pump()

    def receive(self, source: bytes, port: int, data: bytes) -> None:
        """A datagram for the gateway (from anyone: a test may forge it)."""
        self.gateway.receive(source, port, data, self.now)
        self.pump()

    def pump(self) -> None:
        """Carry the gateway's sends to the relay and its answers back, until quiet; collect
        the packets it delivers."""
        self.delivered += self.gateway.pop_packets()
        while actions := self.gateway.pop_actions():
            self.actions += actions
            for action in actions:
                if not isinstance(action, SendDatagram):
                    continue
                self.sent.append((self.now, parse_amt(action.data)))
                if not self.relay_up or action.port != AMT_PORT:
                    continue
                if action.destination not in (self.relay.address, self.gateway.discovery_address):
                    continue
                for _, _, data in self.relay.receive(*self.endpoint, action.data, self.now):
                    self.gateway.handle(
                        DatagramReceived(self.relay.address, AMT_PORT, data), self.now
                    )
            self.delivered += self.gateway.pop_packets()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing the gateway's timers as they come due."""
        until = self.now + seconds
        while (deadline := self.gateway.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.handle(TimerExpired())
        self.now = until

    def stream(self, channel: tuple[bytes, bytes], count: int = 1) -> None:
        """``count`` packets of ``channel`` reach the relay, which forwards them if joined."""
        source, group = channel
        for i in range(count):
            packet = udp_packet(source, group, 5001, i.to_bytes(4, "big"))
            if not self.relay_up:
                continue
            for _, _, data in self.relay.forward(packet):
                self.gateway.handle(DatagramReceived(self.relay.address, AMT_PORT, data), self.now)
        self.pump()

    def restart_relay(self) -> None:
        """A new relay process at the same address: no tunnels, and a new secret."""
        old = self.relay
        self.relay = RelayCore(
            old.address, secret=old.secret[::-1], query_interval=old.query_interval,
            robustness=old.robustness, limit=old.limit, gateway_fields=old.gateway_fields,
        )  # fmt: skip

    def messages(self, kind: type, since: float = -1.0) -> list[AmtMessage]:
        """The gateway's sends of type ``kind`` at or after ``since``."""
        return [m for t, m in self.sent if isinstance(m, kind) and t >= since]


def make_net(
    family: Family = Family.V4,
    transport: Family = Family.V4,
    *,
    discover: bool = True,
    query_interval: int = 10,
    robustness: int = 2,
    limit: bool = False,
    gateway_fields: bool = True,
) -> Net:
    relay = RelayCore(
        RELAY[transport], secret=b"lab secret", query_interval=query_interval,
        robustness=robustness, limit=limit, gateway_fields=gateway_fields,
    )  # fmt: skip
    gateway = make_gateway(family, transport, discover=discover)
    return Net(gateway, relay, (GATEWAY[transport], GATEWAY_PORT))


# --- a relay's answers, made by hand ---------------------------------------------------------

MAC = 0xA1B2C3D4E5F6


def advertisement(nonce: int, relay: bytes) -> bytes:
    return build_amt(RelayAdvertisement(nonce, relay))


def query(
    family: Family,
    nonce: int,
    *,
    mac: int = MAC,
    qqi: int = 10,
    qrv: int = 2,
    limit: bool = False,
    gateway: tuple[int, bytes] | None = (GATEWAY_PORT, GATEWAY[Family.V4]),
) -> bytes:
    """A relay's Membership Query for Request ``nonce`` of ``family``."""
    general = Query(family.newest_version, family.unspecified, 10.0, qrv=qrv, qqi=qqi)
    source = addr("10.30.2.2") if family is Family.V4 else addr("fe80::1")
    packet = query_packet(family, source, general)
    if gateway is None:
        return build_amt(MembershipQuery(mac, nonce, packet, limit))
    port, address = gateway
    return build_amt(
        MembershipQuery(mac, nonce, packet, limit, port, gateway_address_field(address))
    )


def data(channel: tuple[bytes, bytes], payload: bytes = b"MCPL") -> bytes:
    """A Multicast Data message carrying one UDP packet of ``channel``."""
    source, group = channel
    return build_amt(MulticastData(udp_packet(source, group, 5001, payload)))


class Driver:
    """A gateway driven by hand on a virtual clock: each call returns what it did."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.now = 0.0
        self.packets: list[bytes] = []

    def handle(self, event: Event) -> list[Action]:
        self.gateway.handle(event, self.now)
        self.packets += self.gateway.pop_packets()
        return self.gateway.pop_actions()

    def receive(self, source: bytes, data: bytes, port: int = AMT_PORT) -> list[Action]:
        self.gateway.receive(source, port, data, self.now)
        self.packets += self.gateway.pop_packets()
        return self.gateway.pop_actions()

    def at(self, when: float) -> list[Action]:
        """Move the clock to ``when`` and fire the timer if it is due."""
        self.now = when
        return self.handle(TimerExpired())

    def next(self) -> list[Action]:
        """Move the clock to the next deadline and fire."""
        deadline = self.gateway.next_deadline()
        assert deadline is not None
        return self.at(deadline)
