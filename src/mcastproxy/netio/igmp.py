"""``IgmpSocket``: every IGMP message in, with its arrival interface, and IGMP out.

Reception: where Linux delivers IGMP (tests/netio/test_delivery.py shows each fact with the
kernel's multicast routing active, tests/netio/test_packet_reception.py the result on a
kernel without it):

- IGMP to 224.0.0.x (IGMPv3 reports to 224.0.0.22, IGMPv2 leaves to 224.0.0.2, queries to
  224.0.0.1) is never routed: it is delivered locally, to every raw IGMP socket, only if the
  interface has joined that group (``ip_check_mc_rcu``). 224.0.0.1 is always joined;
  224.0.0.22 and 224.0.0.2 are not (even with forwarding on), so ``listen(interface)`` joins
  them on downstreams. So is unicast or broadcast IGMP to this host.
- IGMP to a routable group (IGMPv1/v2 reports to G, group-specific queries to G on an
  upstream) depends on the kernel:
  - with multicast routing (CONFIG_IP_MROUTE) and the arrival interface a VIF, it goes to
    ``ip_mr_input``. With Router Alert, that hands it to the Router Alert chain
    (``ip_call_ra_chain``) and nowhere else: every raw IGMP socket that set
    IP_ROUTER_ALERT, and every mroute socket (MRT_INIT joins the chain). Without Router
    Alert (IGMPv1 reports, pre-RFC 2236 stacks), only to the mroute socket of the table the
    interface looks up, which a downstream has none of: no raw socket of ours ever sees it.
  - without multicast routing, or on an interface that is not a VIF, the route lookup drops
    it unless the interface has joined G, and then it is delivered locally.
  So no raw socket can be relied on for these, and RFC 9776 §9 forbids ignoring reports
  without Router Alert (old hosts send them). A packet socket (``netio.frames``) takes
  them instead, on every kernel, from every interface, before the IP stack.
- The two are split by destination: the raw socket's filter (``netio.filters.RAW_IGMP``)
  drops IGMP to routable groups, whichever path brought it (the Router Alert chain or local
  delivery); the packet socket's (``PACKET_IGMP``) keeps only those. So each message is
  read once: on a kernel with multicast routing, a report to G with Router Alert reaches the
  raw socket through the chain and is filtered out there, and the packet socket hands it
  on. The mroute sockets receive copies too, which their own filter drops
  (``kernel.ipmr``). The raw socket stays in the Router Alert chain for unicast IGMP with
  Router Alert that the host forwards (``ip_forward`` gives it to the chain).
- Looped back: the kernel's own IGMP reports for the groups ``listen`` joins come back as
  input (skb->pkt_type PACKET_LOOPBACK), which both filters drop; the packet socket
  keeps only what was received (PACKET_HOST, BROADCAST, MULTICAST), never what was sent.
- Each message is handed on with its IPv4 header's TTL and whether the header holds a Router
  Alert option (``wire.parse_ipv4``, which on the packet path also checks what the IP stack
  would have: lengths, the header checksum, no fragment): the engine drops IGMP with a TTL
  other than 1, and IGMPv2/v3 without Router Alert (RFC 9776 §4, §9).
- Both sockets count the packets the kernel dropped for a full queue (``Drop.QUEUE_FULL``;
  for the raw socket, while full, also some its filter would have refused: ``QueueDrops``).

Sending: IP_HDRINCL with ``wire.build_ipv4`` (TTL 1, TOS 0xC0, Router Alert; the kernel
fills in the identification and header checksum), the interface chosen per packet by
IP_PKTINFO's ``ipi_ifindex`` in ``sendmsg`` (raw_sendmsg takes it as the output interface
for multicast, and a route lookup with an IGMP flow and an output interface stays on it),
from the interface's IPv4 address (0.0.0.0 if it has none). IP_MULTICAST_LOOP is off, and a
packet socket bound to one protocol never sees what the host sends.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import filters, sockopts
from mcastproxy.netio.common import (
    ANCILLARY_SIZE,
    NO_STAMP,
    RCVBUF,
    TIMESPEC,
    U32,
    QueueDrops,
    Received,
    Stamps,
)
from mcastproxy.netio.interfaces import InterfaceMap
from mcastproxy.netio.reception import MessageSocket
from mcastproxy.wire import WireError, build_ipv4, parse_ipv4

# Where IGMPv3 reports and IGMPv2 Leaves go: 224.0.0.22 and 224.0.0.2.
ROUTER_GROUPS = (Family.V4.all_v3_routers, Family.V4.all_routers)
_UNSPECIFIED = Family.V4.unspecified
PROTOCOL_IGMP = 2
_IPPROTO_IP = socket.IPPROTO_IP
_SOL_SOCKET = socket.SOL_SOCKET
_IP_PKTINFO = sockopts.IP_PKTINFO
_SO_TIMESTAMPNS = sockopts.SO_TIMESTAMPNS
_SO_RXQ_OVFL = sockopts.SO_RXQ_OVFL
_INDEX = struct.Struct("@i")  # struct in_pktinfo's first member, ipi_ifindex
_new = tuple.__new__


class IgmpSocket(MessageSocket):
    """IGMP for every interface: a raw socket (link-scope and unicast IGMP, and sending) and
    a packet socket (IGMP to routable groups) behind one descriptor; ``receive`` and
    ``send``. ``listen`` joins 224.0.0.22 and 224.0.0.2 on a downstream, so IGMPv3 reports
    and IGMPv2 leaves come in. ``rcvbuf``: each socket's receive buffer."""

    def __init__(self, interfaces: InterfaceMap, *, rcvbuf: int = RCVBUF) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        try:
            sockopts.attach_filter(s, filters.RAW_IGMP)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_TIMESTAMPNS, 1)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_RXQ_OVFL, 1)
            s.setsockopt(socket.IPPROTO_IP, sockopts.IP_PKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IP, sockopts.IP_ROUTER_ALERT, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sockopts.set_rcvbuf(s, rcvbuf)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        super().__init__(Family.V4, interfaces, s, ROUTER_GROUPS, rcvbuf=rcvbuf)
        self._queue = QueueDrops(self.dropped)
        self.send_errors: Counter[str] = Counter()
        """Sends that failed, by reason."""

    # -- receiving --------------------------------------------------------------------------

    def _read_raw(self, out: list[Received], stamps: Stamps, limit: int) -> int:
        """The raw socket's packets (non-blocking). Malformed IP headers and messages from
        interfaces not in the map are dropped and counted in ``dropped``."""
        recvmsg = self._sock.recvmsg
        decode = self.decode
        saw_drops = self._queue.saw
        n = 0
        while n < limit:
            try:
                data, ancillary, _flags, _addr = recvmsg(65535, ANCILLARY_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
            n += 1
            # One pass over what came with the packet: the interface it arrived on, its
            # receive time (only wanted to merge with the packet socket's), the queue's drops.
            index = None
            stamp = NO_STAMP
            for level, kind, value in ancillary:
                if level == _IPPROTO_IP:
                    if kind == _IP_PKTINFO and len(value) >= _INDEX.size:
                        index = _INDEX.unpack_from(value)[0]
                elif level == _SOL_SOCKET:
                    if kind == _SO_TIMESTAMPNS:
                        if stamps is not None and len(value) >= TIMESPEC.size:
                            stamp = TIMESPEC.unpack_from(value)
                    elif kind == _SO_RXQ_OVFL and len(value) >= U32.size:
                        saw_drops(value)
            message = decode(data, index)
            if message is not None:
                out.append(message)
                if stamps is not None:
                    stamps.append(stamp)
        return n

    def decode(self, data: bytes, index: int | None) -> Received | None:
        """The message in ``data`` (an IPv4 packet as the raw socket reads it) that arrived on
        interface ``index``, with the header's TTL and whether it has a Router Alert option;
        None, counted in ``dropped``, if it is not one to hand on."""
        try:
            src, dst, ttl, protocol, router_alert, payload = parse_ipv4(data)
        except WireError as e:
            self.dropped[e.reason] += 1
            return None
        if protocol != PROTOCOL_IGMP:
            self.dropped[Drop.NOT_IGMP] += 1
            return None
        name = self.interfaces.name_of(index) if index is not None else None
        if name is None or index is None:
            self.dropped[Drop.UNKNOWN_INTERFACE] += 1
            return None
        return _new(Received, (name, index, src, dst, payload, ttl, router_alert))

    # -- sending ----------------------------------------------------------------------------

    def send(self, interface: str, destination: bytes, payload: bytes) -> bool:
        """Send an IGMP message out of ``interface`` to ``destination`` (TTL 1, Router Alert).
        False (counted in ``send_errors``) if the interface is unknown or the kernel refused."""
        iface = self.interfaces.get(interface)
        if iface is None:
            self.send_errors["unknown interface"] += 1
            return False
        packet = build_ipv4(iface.ipv4 or _UNSPECIFIED, destination, payload)
        info = sockopts.IN_PKTINFO.pack(iface.index, _UNSPECIFIED, _UNSPECIFIED)
        try:
            self._sock.sendmsg(
                [packet],
                [(socket.IPPROTO_IP, sockopts.IP_PKTINFO, info)],
                0,
                (socket.inet_ntoa(destination), 0),
            )
        except OSError as e:
            self.send_errors[e.strerror or str(e)] += 1
            return False
        return True
