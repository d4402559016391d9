"""What the IGMP, MLD and PIM sockets share: the received record, the receive loop's limits,
the kernel's receive time and queue drops of each packet, and one raw socket listening on
the interfaces it is told to."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple, Self

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import sockopts
from mcastproxy.netio.interfaces import InterfaceMap

RCVBUF = 4 << 20
"""Receive buffer of a socket: a zap of 10,000 subscribers queues ~10,000 small reports."""

MAX_PER_RECEIVE = 10_000
"""Packets one ``receive()`` takes at most, so one busy socket cannot starve the loop."""

ANCILLARY_SIZE = 128
"""Room for IP_PKTINFO, SO_TIMESTAMPNS and SO_RXQ_OVFL messages (88 octets on 64 bits)."""

# Drop what this host sent itself (skb->pkt_type PACKET_LOOPBACK): the kernel's own IGMP/MLD
# reports for the groups the sockets join (224.0.0.22, ff02::16 ...) come back as input on
# that interface, and so would our sends if IP(V6)_MULTICAST_LOOP were on.
NOT_LOOPED_BACK = (
    sockopts.bpf(sockopts.BPF_LD_W_ABS, 0, 0, sockopts.SKF_AD_PKTTYPE),
    sockopts.bpf(sockopts.BPF_JEQ_K, 0, 1, sockopts.PACKET_LOOPBACK),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0xFFFF),
)


class Received(NamedTuple):
    """An IGMP message (the IPv4 payload) or an MLD message (the ICMPv6 message) received on
    ``interface`` (index ``ifindex``), with the packet's addresses (packed), its TTL / hop
    limit, and whether it carried a Router Alert option asking routers to examine it (IPv4:
    RFC 2113 value 0; IPv6: a Hop-by-Hop Router Alert with the MLD value 0, RFC 2711); each
    None when not known.

    A NamedTuple, as the wire's messages are: one is made per packet, a tuple costs a
    quarter of a frozen dataclass to make (``tuple.__new__``), and the daemon unpacks it."""

    interface: str
    ifindex: int
    source: bytes
    destination: bytes
    payload: bytes
    ttl: int | None = None
    router_alert: bool | None = None


Stamp = tuple[int, int]
"""The kernel's receive time of a packet (SO_TIMESTAMPNS: seconds, nanoseconds), taken as
the link handed it up, before the IP stack or a packet socket saw it."""
NO_STAMP: Stamp = (0, 0)
Stamps = list[Stamp] | None
"""Where a reader puts the receive time of each message it hands on, in the same order; None
when no one needs them (only one of a family's two sockets had anything: nothing to merge)."""
TIMESPEC = struct.Struct("@qq")
"""SCM_TIMESTAMPNS: struct timespec (seconds, nanoseconds)."""
U32 = struct.Struct("@I")
"""SO_RXQ_OVFL: the socket's running count of drops."""


class QueueDrops:
    """Packets the kernel dropped for a socket (its receive queue was full), counted in
    ``dropped`` as ``reason`` as they show: with SO_RXQ_OVFL on, every packet queued after
    the first such drop carries the socket's running 32-bit total, so drops show with the
    next packet the socket takes.

    While a raw socket's queue is full, Linux (6.18 at least) counts what reaches it before
    running its filter, so the count then also holds packets the filter would have refused
    (this host's own looped-back reports, say): it says how much was lost at most."""

    __slots__ = ("_dropped", "_reason", "_total")

    def __init__(self, dropped: Counter[Drop], reason: Drop = Drop.QUEUE_FULL) -> None:
        self._dropped = dropped
        self._reason = reason
        self._total = 0

    def saw(self, value: bytes) -> None:
        total = U32.unpack_from(value)[0]
        new = (total - self._total) & 0xFFFFFFFF
        if new:
            self._dropped[self._reason] += new
            self._total = total


def stamp_of(ancillary: list[tuple[int, int, bytes]], queue: QueueDrops | None = None) -> Stamp:
    """The receive time in a packet's ancillary data (``NO_STAMP`` if none); a queue-drop
    total there goes to ``queue``."""
    stamp = NO_STAMP
    for level, kind, value in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == sockopts.SO_TIMESTAMPNS and len(value) >= TIMESPEC.size:
            stamp = TIMESPEC.unpack_from(value)
        elif kind == sockopts.SO_RXQ_OVFL and queue is not None and len(value) >= U32.size:
            queue.saw(value)
    return stamp


class Memberships:
    """The link-scope groups one socket joins on each interface it listens on.

    Joined by interface index, and joined again when an interface comes back as another
    index (hot-plug, PPPoE). A leave that fails is fine: the device went with its groups.
    """

    def __init__(self, sock: socket.socket, family: Family, groups: Sequence[bytes]) -> None:
        self._sock = sock
        self._family = family
        self._groups = tuple(groups)
        self._joined: dict[str, int] = {}  # interface -> index the groups were joined at

    def join(self, interface: str, index: int) -> None:
        old = self._joined.get(interface)
        if old == index:
            return
        if old is not None:
            self._set(old, join=False)
        self._set(index, join=True)
        self._joined[interface] = index

    def clear(self) -> None:
        """Forget them all (the socket was closed, and its memberships with it)."""
        self._joined.clear()

    def _set(self, index: int, *, join: bool) -> None:
        v4 = self._family is Family.V4
        if v4:
            level = socket.IPPROTO_IP
            option = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
        else:
            level = socket.IPPROTO_IPV6
            option = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
        for group in self._groups:
            if v4:
                value = sockopts.IP_MREQN.pack(group, Family.V4.unspecified, index)
            else:
                value = sockopts.IPV6_MREQ.pack(group, index)
            try:
                self._sock.setsockopt(level, option, value)
            except OSError:
                if join:
                    raise


class ListeningSocket:
    """One raw socket for every interface, with link-scope ``groups`` joined on each
    interface ``listen``-ed to (again when it comes back as another index)."""

    def __init__(
        self, family: Family, interfaces: InterfaceMap, sock: socket.socket, groups: Sequence[bytes]
    ) -> None:
        self.family = Family(family)
        self.interfaces = interfaces
        self.dropped: Counter[Drop] = Counter()
        """Packets received and not returned, by reason."""
        self._sock = sock
        self._memberships = Memberships(sock, self.family, groups)

    def fileno(self) -> int:
        """The socket's descriptor (for ``add_reader``)."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket (its memberships go with it). Idempotent."""
        self._sock.close()
        self._memberships.clear()

    def listen(self, interface: str) -> None:
        """Join the groups on ``interface``; call again when it comes back as another index."""
        iface = self.interfaces.get(interface)
        if iface is None:
            raise ValueError(f"{interface} is not in the interface map")
        self._memberships.join(interface, iface.index)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.close()
