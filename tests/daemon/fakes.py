"""An in-memory host for the daemon: its interfaces, sockets, netlink and kernel, driven by a test.

``FakeNetwork`` is the host. A test brings interfaces up and down with their addresses
(``up``, ``down``, ``unplug``), as netlink would report them, and hands the daemon
``net.platform()``; the daemon then makes, through it, one ``FakeRouter`` per family (whose
interfaces exist exactly when the network's do), one ``FakePacketSocket`` per family (a test
``inject``-s IGMP/MLD messages into it and reads what the daemon ``sent``), a
``FakeHelloSocket`` per family when hellos are watched, a ``FakeInterfaceMap`` that reads the
network as ``InterfaceMap.refresh`` reads the system, and a ``FakeLinkWatcher``.

The sockets and the router wake the daemon's loop through a pipe each, as the real ones do
through their descriptors, so the daemon runs the same ``add_reader`` code in tests as in
production.
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcastproxy.drops import Drop
from mcastproxy.events import InterfaceDown, InterfaceUp
from mcastproxy.family import Family
from mcastproxy.kernel import FakeRouter
from mcastproxy.links import LinkEvent
from mcastproxy.netio import Interface, InterfaceMap, Received
from mcastproxy.platform import Platform
from mcastproxy.wire import build_igmp, build_mld, parse_igmp, parse_mld
from mcastproxy.wire.messages import Message


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@dataclass
class Device:
    """A network interface of the fake host."""

    index: int
    up: bool
    addresses: tuple[bytes, ...]

    @property
    def ipv4(self) -> bytes | None:
        return next((a for a in self.addresses if len(a) == 4), None)

    @property
    def link_local(self) -> bytes | None:
        return next((a for a in self.addresses if len(a) == 16 and a[:2] == b"\xfe\x80"), None)


class FakeNetwork:
    """The interfaces of a host, and the daemon's platform over them."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.present: set[str] = set()
        """Names of the devices that exist (the routers' ``exists``: one set, shared)."""
        self.routers: dict[Family, FakeRouter] = {}
        self.sockets: dict[Family, FakePacketSocket] = {}
        self.hellos: dict[Family, FakeHelloSocket] = {}
        self.watchers: list[FakeLinkWatcher] = []
        self._next_index = 2  # 1 is lo

    def platform(self) -> Platform:
        return Platform(router=self._router, packets=self._packets, hellos=self._hellos,
                        interfaces=lambda: FakeInterfaceMap(self), links=self._links)

    # --- the test's hands on the host --------------------------------------------------------

    def up(self, name: str, *addresses: str) -> None:
        """``name`` exists (a new device if it did not) and is up with these addresses."""
        device = self.devices.get(name)
        if device is None:
            device = self.devices[name] = Device(self._next_index, False, ())
            self._next_index += 1
            self.present.add(name)
        device.up, device.addresses = True, tuple(ip(a) for a in addresses)
        self._tell(name)

    def down(self, name: str) -> None:
        """``name`` lost its carrier; it still exists."""
        self.devices[name].up = False
        self._tell(name)

    def unplug(self, name: str) -> None:
        """``name`` is gone (a ``up`` later makes a new device, with a new index)."""
        del self.devices[name]
        self.present.discard(name)
        self._tell(name)

    def _tell(self, name: str) -> None:
        for watcher in self.watchers:
            watcher.report(name)

    def state(self, name: str) -> LinkEvent:
        device = self.devices.get(name)
        if device is None or not device.up:
            return InterfaceDown(name)
        return InterfaceUp(name, device.addresses)

    # --- the platform's factories --------------------------------------------------------------

    def _router(self, family: Family) -> FakeRouter:
        router = self.routers[family] = FakeRouter(family, existing=self.present)
        return router

    def _packets(self, family: Family, interfaces: InterfaceMap) -> FakePacketSocket:
        sock = self.sockets[family] = FakePacketSocket(family, interfaces)
        return sock

    def _hellos(self, family: Family, interfaces: InterfaceMap) -> FakeHelloSocket:
        sock = self.hellos[family] = FakeHelloSocket(family, interfaces)
        return sock

    def _links(self, names: Iterable[str], emit: Callable[[LinkEvent], None]) -> FakeLinkWatcher:
        watcher = FakeLinkWatcher(self, names, emit)
        self.watchers.append(watcher)
        return watcher


class FakeInterfaceMap(InterfaceMap):
    """An ``InterfaceMap`` whose ``refresh`` reads the fake network instead of the system."""

    def __init__(self, net: FakeNetwork) -> None:
        super().__init__()
        self._net = net

    def refresh(self, name: str) -> Interface | None:
        device = self._net.devices.get(name)
        if device is None:
            self.remove(name)
            return None
        self.set(name, device.index, ipv4=device.ipv4, link_local=device.link_local)
        return self.get(name)


class FakeLinkWatcher:
    """Netlink as the daemon sees it: the state of each watched interface at ``start``, then
    each change of (up, addresses), reported synchronously when the test makes it."""

    def __init__(
        self, net: FakeNetwork, names: Iterable[str], emit: Callable[[LinkEvent], None]
    ) -> None:
        self.net = net
        self.names = set(names)
        self.emit = emit
        self.started = False
        self.closed = False
        self._reported: dict[str, LinkEvent] = {}

    async def start(self) -> None:
        self.started = True
        for name in sorted(self.names):
            self.report(name)

    async def close(self) -> None:
        self.closed = True

    def watch(self, names: Iterable[str]) -> None:
        self.names = set(names)
        for name in sorted(self.names):
            self.report(name)

    def report(self, name: str) -> None:
        if not self.started or self.closed or name not in self.names:
            return
        state = self.net.state(name)
        if self._reported.get(name) != state:
            self._reported[name] = state
            self.emit(state)


class _Pipe:
    """A descriptor that is readable while something waits, like a socket's."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.closed = False

    def fileno(self) -> int:
        if self.closed:
            raise ValueError("closed")
        return self._r

    def _wake(self) -> None:
        if self.closed:
            raise RuntimeError("the daemon closed this socket")
        os.write(self._w, b"x")

    def _drain(self) -> None:
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
            self.closed = True


@dataclass(frozen=True)
class Sent:
    """A packet the daemon sent: out of ``interface``, from its address, to ``destination``."""

    interface: str
    source: bytes | None
    destination: bytes
    payload: bytes


class FakePacketSocket(_Pipe):
    """The IGMP (family 4) or MLD (6) socket: the test ``inject``-s, the daemon ``receive``-s
    and ``send``-s, the test reads ``sent`` (or ``messages``, decoded)."""

    def __init__(self, family: Family, interfaces: InterfaceMap) -> None:
        super().__init__()
        self.family = family
        self.interfaces = interfaces
        self.dropped: Counter[Drop] = Counter()
        self.send_errors: Counter[str] = Counter()
        self.listening: set[str] = set()
        self.sent: list[Sent] = []
        self._queue: list[tuple[str, bytes, bytes, bytes]] = []

    # --- the test's side -------------------------------------------------------------------

    def inject(self, interface: str, source: bytes, destination: bytes, payload: bytes) -> None:
        """A packet arrives on ``interface`` (any bytes: the daemon must cope)."""
        self._queue.append((interface, source, destination, payload))
        self._wake()

    def inject_message(self, interface: str, source: str, message: Message,
                       destination: bytes | None = None) -> None:
        """A well-formed IGMP/MLD message arrives (to the v3 routers' group by default)."""
        src = ip(source)
        dst = destination if destination is not None else self.family.all_v3_routers
        v4 = self.family is Family.V4
        payload = build_igmp(message) if v4 else build_mld(message, src, dst)
        self.inject(interface, src, dst, payload)

    def messages(self, interface: str) -> list[Message]:
        """What the daemon sent on ``interface``, decoded."""
        out: list[Message] = []
        for s in self.sent:
            if s.interface != interface:
                continue
            if self.family is Family.V4:
                out.append(parse_igmp(s.payload))
            else:
                assert s.source is not None, "MLD sent with no link-local source"
                out.append(parse_mld(s.payload, s.source, s.destination))
        return out

    # --- the daemon's side (netio's surface) -------------------------------------------------

    def receive(self) -> list[Received]:
        self._drain()
        queued, self._queue = self._queue, []
        out = []
        for interface, source, destination, payload in queued:
            iface = self.interfaces.get(interface)
            if not payload:
                self.dropped[Drop.EMPTY] += 1
            elif iface is None:
                self.dropped[Drop.UNKNOWN_INTERFACE] += 1
            else:
                out.append(Received(interface, iface.index, source, destination, payload))
        return out

    def send(self, interface: str, destination: bytes, payload: bytes) -> bool:
        iface = self.interfaces.get(interface)
        if iface is None:
            self.send_errors["unknown interface"] += 1
            return False
        source = iface.ipv4 if self.family is Family.V4 else iface.link_local
        self.sent.append(Sent(interface, source, destination, payload))
        return True

    def listen(self, interface: str) -> None:
        if self.interfaces.get(interface) is None:
            raise ValueError(f"{interface} is not in the interface map")
        self.listening.add(interface)


class FakeHelloSocket(_Pipe):
    """The PIM listener of a family: the test ``inject``-s hellos heard on an upstream."""

    def __init__(self, family: Family, interfaces: InterfaceMap) -> None:
        super().__init__()
        self.family = family
        self.interfaces = interfaces
        self.dropped: Counter[Drop] = Counter()
        self.listening: set[str] = set()
        self._queue: list[tuple[str, bytes]] = []

    def inject(self, interface: str, source: str) -> None:
        self._queue.append((interface, ip(source)))
        self._wake()

    def receive(self) -> list[tuple[str, bytes]]:
        self._drain()
        queued, self._queue = self._queue, []
        out = []
        for interface, source in queued:
            if interface not in self.listening or self.interfaces.get(interface) is None:
                self.dropped[Drop.UNKNOWN_INTERFACE] += 1
            else:
                out.append((interface, source))
        return out

    def listen(self, interface: str) -> None:
        if self.interfaces.get(interface) is None:
            raise ValueError(f"{interface} is not in the interface map")
        self.listening.add(interface)
