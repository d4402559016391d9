"""``FrameReceiver``: IGMP and MLD addressed to routable groups, read off every link below the
IP stack, because the IP stack does not hand them to a raw socket on every kernel.

``netio.igmp`` and ``netio.mld`` tell where Linux delivers what; in short, a message to a
routable group (an IGMPv1/v2 report or an MLDv1 report to G, a group-specific query to G)
reaches a raw socket only through the kernel's multicast routing, and an IGMPv1 report (no
Router Alert) not even then. So one AF_PACKET socket per family (SOCK_DGRAM: frames arrive
without their link header) takes them from every interface (bound to interface index 0),
protocol ETH_P_IP or ETH_P_IPV6, with the filter ``netio.filters.PACKET_IGMP`` or
``PACKET_MLD``: only those to routable groups, and only what this host received. The raw
socket's filter keeps the rest, so no message is read twice.

A packet socket sees a frame before the IP stack has checked anything, so this module checks
what the stack would: the IPv4 header (``wire.parse_ipv4``: version, lengths, header
checksum, options, no fragment) or the IPv6 header chain (``netio.ipv6.parse_ipv6``). Each
failure is counted in ``dropped`` by its reason. It also sees what the stack would refuse
for reasons of its own (netfilter rules, rp_filter): those reach the daemon here.

Interfaces: a frame from an interface the ``InterfaceMap`` does not hold is not handed on
and not counted as a drop: every managed link's hosts send these, and a report on a link
the proxy does not serve is no fault of the proxy's nor the host's. ``unmanaged`` counts
them. ``listen(interface)`` also asks the interface for every multicast frame
(PACKET_MR_ALLMULTI): a NIC's multicast filter passes only the groups joined on it, and a
report to G is for a group this host has not joined (the kernel's multicast routing sets
the same on each VIF).

Each packet comes with the kernel's receive time (SO_TIMESTAMPNS), by which the two
receivers' messages are put back in arrival order (``netio.reception``), and with the
number of packets the kernel dropped because the queue was full (SO_RXQ_OVFL), counted as
``Drop.QUEUE_FULL``.
"""

from __future__ import annotations

import contextlib
import socket
from collections import Counter

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import filters, sockopts
from mcastproxy.netio.common import (
    ANCILLARY_SIZE,
    RCVBUF,
    QueueDrops,
    Received,
    Stamps,
    stamp_of,
)
from mcastproxy.netio.interfaces import InterfaceMap
from mcastproxy.netio.ipv6 import parse_ipv6
from mcastproxy.wire import WireError, parse_ipv4

PROTOCOL_IGMP = 2
RECEIVE_SIZE = 40 + 0xFFFF
"""Room for the largest IP packet without a Jumbo Payload: an IPv6 header and 65,535 octets."""
_new = tuple.__new__


class FrameReceiver:
    """A packet socket for every interface, taking the IGMP (``Family.V4``) or MLD
    (``Family.V6``) messages to routable groups that this host receives; drops are counted
    in the ``dropped`` given (the owning socket's). ``rcvbuf``: its receive buffer."""

    def __init__(
        self, family: Family, interfaces: InterfaceMap, dropped: Counter[Drop], *,
        rcvbuf: int = RCVBUF,
    ) -> None:
        self.family = Family(family)
        self.interfaces = interfaces
        self.dropped = dropped
        self.unmanaged = 0
        """Frames from interfaces not in the map: ignored, not counted as drops."""
        v4 = self.family is Family.V4
        # Protocol 0: the socket receives nothing until bound, which is after its filter is on.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        try:
            sockopts.attach_filter(s, filters.PACKET_IGMP if v4 else filters.PACKET_MLD)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_TIMESTAMPNS, 1)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_RXQ_OVFL, 1)
            sockopts.set_rcvbuf(s, rcvbuf)
            s.setblocking(False)
            sockopts.bind_packet_socket(s, sockopts.ETH_P_IP if v4 else sockopts.ETH_P_IPV6)
        except BaseException:
            s.close()
            raise
        self._sock = s
        self._queue = QueueDrops(dropped)
        self._allmulti: dict[str, int] = {}  # interface -> index asked for every multicast

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket (the kernel undoes its PACKET_MR_ALLMULTI). Idempotent."""
        self._sock.close()
        self._allmulti.clear()

    def listen(self, interface: str, index: int) -> None:
        """Have ``interface`` (at ``index``) pass every multicast frame up; again when it
        comes back as another index. Undoing it on a device that is gone is fine."""
        old = self._allmulti.get(interface)
        if old == index:
            return
        if old is not None:
            with contextlib.suppress(OSError):
                self._membership(sockopts.PACKET_DROP_MEMBERSHIP, old)
        self._membership(sockopts.PACKET_ADD_MEMBERSHIP, index)
        self._allmulti[interface] = index

    def _membership(self, option: int, index: int) -> None:
        mreq = sockopts.PACKET_MREQ.pack(index, sockopts.PACKET_MR_ALLMULTI, 0, b"")
        self._sock.setsockopt(sockopts.SOL_PACKET, option, mreq)

    def read(self, out: list[Received], stamps: Stamps, limit: int) -> int:
        """Append to ``out`` the messages of up to ``limit`` queued packets (non-blocking),
        and their arrival times to ``stamps`` (unless None); how many packets were read."""
        recvmsg = self._sock.recvmsg
        get = self.interfaces.get
        decode = self.decode
        queue = self._queue
        n = 0
        while n < limit:
            try:
                data, ancillary, _flags, address = recvmsg(RECEIVE_SIZE, ANCILLARY_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
            n += 1
            stamp = stamp_of(ancillary, queue)
            # The kernel names the interface (CPython looks its index up as it reads).
            iface = get(address[0])
            if iface is None:
                self.unmanaged += 1
                continue
            message = decode(data, iface.name, iface.index)
            if message is not None:
                out.append(message)
                if stamps is not None:
                    stamps.append(stamp)
        return n

    def decode(self, data: bytes, interface: str, index: int) -> Received | None:
        """The message in ``data`` (a packet from its IP header on) that arrived on
        ``interface``; None, counted in ``dropped``, if it is not one to hand on."""
        try:
            if self.family is Family.V4:
                src, dst, ttl, protocol, router_alert, payload = parse_ipv4(data)
                if protocol != PROTOCOL_IGMP:
                    self.dropped[Drop.NOT_IGMP] += 1
                    return None
                return _new(Received, (interface, index, src, dst, payload, ttl, router_alert))
            v6 = parse_ipv6(data)
        except WireError as e:
            self.dropped[e.reason] += 1
            return None
        return _new(Received, (interface, index, v6.src, v6.dst, v6.payload, v6.hop_limit,
                               v6.router_alert))
