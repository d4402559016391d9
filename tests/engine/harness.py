"""A virtual-clock harness around the engine: interfaces, reports in, decoded actions out."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from mcastproxy.actions import Action, DeleteRoute, Log, SendPacket, SetRoute
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import Event, InterfaceUp, NewFlow, PacketReceived, TimerExpired
from mcastproxy.wire import build_igmp, build_mld, parse_igmp, parse_mld
from mcastproxy.wire.messages import GroupRecord, Leave, Message, Query, RecordType, Report

T = RecordType


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def text(addr: bytes) -> str:
    return str(ipaddress.ip_address(addr))


class Rng:
    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


# Each interface gets an IPv4 address and an IPv6 link-local address derived from its name.
ADDRESSES = {
    "u1": ("192.0.2.1", "fe80::1:1"), "u2": ("198.51.100.1", "fe80::2:1"),
    "u3": ("203.0.113.1", "fe80::3:1"),
    "d1": ("10.1.0.1", "fe80::d1:1"), "d2": ("10.2.0.1", "fe80::d2:1"),
}
V3_ROUTERS = {4: ip("224.0.0.22"), 6: ip("ff02::16")}


@dataclass
class Sent:
    at: float
    interface: str
    destination: bytes
    message: Message


@dataclass
class World:
    engine: Engine
    now: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    routes: list[SetRoute | DeleteRoute] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)

    @classmethod
    def make(cls, yaml: str, up: tuple[str, ...] = ("u1", "u2", "d1", "d2"),
             rng: float = 0.5) -> World:
        world = cls(Engine(parse_config(yaml), rng=Rng(rng)))
        for name in up:
            world.up(name)
        world.clear()
        return world

    def decode(self, a: SendPacket) -> Message:
        if a.family == 4:
            return parse_igmp(a.payload)
        return parse_mld(a.payload, ip(ADDRESSES[a.interface][1]), a.destination)

    def handle(self, event: Event) -> list[Action]:
        self.engine.handle(event, self.now)
        actions = self.engine.pop_actions()
        for a in actions:
            if isinstance(a, SendPacket):
                self.sent.append(Sent(self.now, a.interface, a.destination, self.decode(a)))
            elif isinstance(a, SetRoute | DeleteRoute):
                self.routes.append(a)
            elif isinstance(a, Log):
                self.logs.append(a)
        return actions

    def up(self, name: str, prefix_lengths: tuple[int, ...] = ()) -> None:
        v4, v6 = ADDRESSES[name]
        self.handle(InterfaceUp(name, (ip(v4), ip(v6)), prefix_lengths))

    def clear(self) -> None:
        self.sent.clear()
        self.routes.clear()
        self.logs.clear()

    def receive(self, interface: str, source: str, message: Message,
                destination: str | None = None, *, ttl: int | None = None,
                router_alert: bool | None = None) -> None:
        """``message`` arrives from ``source``; ``ttl`` / ``router_alert`` as the socket says
        (None: it does not)."""
        src = ip(source)
        if len(src) == 4:
            dst = ip(destination) if destination else V3_ROUTERS[4]
            payload = build_igmp(message)
            family = 4
        else:
            dst = ip(destination) if destination else V3_ROUTERS[6]
            payload = build_mld(message, src, dst)
            family = 6
        self.handle(PacketReceived(interface, family, src, dst, payload, ttl, router_alert))

    def report(self, interface: str, source: str, *records: GroupRecord) -> None:
        version = 3 if "." in source else 2
        self.receive(interface, source, Report(version, records))

    def join(self, interface: str, source: str, group: str, *sources: str) -> None:
        """An ASM join (TO_EX{}) or, with sources, a source-specific one (ALLOW)."""
        if sources:
            rec = GroupRecord(T.ALLOW_NEW_SOURCES, ip(group), tuple(ip(s) for s in sources))
        else:
            rec = GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip(group))
        self.report(interface, source, rec)

    def leave(self, interface: str, source: str, group: str, *sources: str) -> None:
        if sources:
            rec = GroupRecord(T.BLOCK_OLD_SOURCES, ip(group), tuple(ip(s) for s in sources))
        else:
            rec = GroupRecord(T.CHANGE_TO_INCLUDE_MODE, ip(group))
        self.report(interface, source, rec)

    def flow(self, upstream: str, source: str, group: str) -> None:
        self.handle(NewFlow(upstream, ip(source), ip(group)))

    def run_until(self, end: float) -> None:
        while (d := self.engine.next_deadline()) is not None and d <= end:
            assert d >= self.now - 1e-9, f"deadline {d} in the past (now {self.now})"
            self.now = max(d, self.now)
            self.handle(TimerExpired())
        self.now = end

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # --- what was sent -----------------------------------------------------------------

    def upstream_records(self, interface: str) -> list[tuple[T, str, tuple[str, ...]]]:
        """The group records sent on an upstream, in order, as text."""
        return [
            (T(r.type), text(r.group), tuple(text(s) for s in r.sources))
            for s in self.sent
            if s.interface == interface and isinstance(s.message, Report)
            for r in s.message.records
        ]

    def queries(self, interface: str) -> list[Query]:
        return [s.message for s in self.sent
                if s.interface == interface and isinstance(s.message, Query)]

    def leaves(self, interface: str) -> list[Leave]:
        return [s.message for s in self.sent
                if s.interface == interface and isinstance(s.message, Leave)]

    def route(self, upstream: str, source: str, group: str) -> frozenset[str] | None:
        return self.engine.routes().get((upstream, ip(source), ip(group)))


class FaultyRng:
    """The engine's random source, made to fail once when armed: a fault deep inside the
    handling of an event (the upstream's report delay is drawn after the shares moved)."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self) -> float:
        if self.armed:
            self.armed = False
            raise RuntimeError("injected fault")
        return 0.5
