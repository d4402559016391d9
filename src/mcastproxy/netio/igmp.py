"""``IgmpSocket``: every IGMP message in, with its arrival interface, and IGMP out.

Reception: what Linux delivers where (measured on the lab's proxy topology, with the
kernel adapter's tables active; tests/netio/test_delivery.py shows each fact, and
tests/netio/test_reception.py the result):

- IGMP to a routable group with Router Alert (IGMPv2 reports to G, group-specific queries
  to G on an upstream) arriving on a VIF interface goes to ``ip_mr_input``, which hands it
  to the Router Alert chain (``ip_call_ra_chain``) and nowhere else: to every raw IGMP
  socket that set IP_ROUTER_ALERT, and to every mroute socket (MRT_INIT joins the chain).
  A raw socket without IP_ROUTER_ALERT never sees it.
- IGMP to 224.0.0.x (IGMPv3 reports to 224.0.0.22, IGMPv2 leaves to 224.0.0.2, queries to
  224.0.0.1) is never routed: it is delivered locally, to every raw IGMP socket, only if
  the interface has joined that group. 224.0.0.1 is always joined; 224.0.0.22 and 224.0.0.2
  are not (even with forwarding on), so ``listen(interface)`` joins them on downstreams.
- The two paths never both deliver one packet, so one raw IGMP socket with
  IP_ROUTER_ALERT receives each message exactly once. The mroute sockets receive copies
  too, which their BPF filter drops (``kernel.ipmr``).
- The kernel's own IGMP reports for the groups ``listen`` joins come back as input
  (looped back, skb->pkt_type PACKET_LOOPBACK), and a BPF filter drops them.
- Each message is handed on with its IPv4 header's TTL and whether the header holds a Router
  Alert option (``wire.parse_ipv4``): the engine drops IGMP with a TTL other than 1, and
  IGMPv2/v3 without Router Alert (RFC 9776 §4, §9).
- Not received: IGMP without Router Alert to a routable group (IGMPv1 reports, and
  pre-RFC 2236 stacks): ``ip_mr_input`` gives those only to the mroute socket of the
  table the arrival interface looks up, which a downstream interface has none of.

Sending: IP_HDRINCL with ``wire.build_ipv4`` (TTL 1, TOS 0xC0, Router Alert; the kernel
fills in the identification and header checksum), the interface chosen per packet by
IP_PKTINFO's ``ipi_ifindex`` in ``sendmsg`` (raw_sendmsg takes it as the output interface
for multicast, and a route lookup with an IGMP flow and an output interface stays on it),
from the interface's IPv4 address (0.0.0.0 if it has none). IP_MULTICAST_LOOP is off.
"""

from __future__ import annotations

import socket
from collections import Counter

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import sockopts
from mcastproxy.netio.common import (
    ANCILLARY_SIZE,
    MAX_PER_RECEIVE,
    NOT_LOOPED_BACK,
    RCVBUF,
    ListeningSocket,
    Received,
)
from mcastproxy.netio.interfaces import InterfaceMap
from mcastproxy.wire import WireError, build_ipv4, parse_ipv4

# Where IGMPv3 reports and IGMPv2 Leaves go: 224.0.0.22 and 224.0.0.2.
ROUTER_GROUPS = (Family.V4.all_v3_routers, Family.V4.all_routers)
_UNSPECIFIED = Family.V4.unspecified
PROTOCOL_IGMP = 2


class IgmpSocket(ListeningSocket):
    """One raw IGMP socket for every interface: ``receive`` and ``send``. ``listen`` joins
    224.0.0.22 and 224.0.0.2 on a downstream, so IGMPv3 reports and IGMPv2 leaves come in."""

    def __init__(self, interfaces: InterfaceMap) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        try:
            sockopts.attach_filter(s, NOT_LOOPED_BACK)
            s.setsockopt(socket.IPPROTO_IP, sockopts.IP_PKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IP, sockopts.IP_ROUTER_ALERT, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sockopts.set_rcvbuf(s, RCVBUF)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        super().__init__(Family.V4, interfaces, s, ROUTER_GROUPS)
        self.send_errors: Counter[str] = Counter()
        """Sends that failed, by reason."""

    # -- receiving --------------------------------------------------------------------------

    def receive(self) -> list[Received]:
        """Every IGMP message queued now (non-blocking). Malformed IP headers and messages
        from interfaces not in the map are dropped and counted in ``dropped``."""
        out: list[Received] = []
        recvmsg = self._sock.recvmsg
        pktinfo = sockopts.IN_PKTINFO.unpack
        for _ in range(MAX_PER_RECEIVE):
            try:
                data, ancillary, _flags, _addr = recvmsg(65535, ANCILLARY_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
            index = None
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IP and kind == sockopts.IP_PKTINFO:
                    index = pktinfo(value[: sockopts.IN_PKTINFO.size])[0]
            message = self.decode(data, index)
            if message is not None:
                out.append(message)
        return out

    def decode(self, data: bytes, index: int | None) -> Received | None:
        """The message in ``data`` (an IPv4 packet as a raw socket reads it) that arrived on
        interface ``index``, with the header's TTL and whether it has a Router Alert option;
        None, counted in ``dropped``, if it is not one to hand on."""
        try:
            packet = parse_ipv4(data)
        except WireError as e:
            self.dropped[e.reason] += 1
            return None
        if packet.protocol != PROTOCOL_IGMP:
            self.dropped[Drop.NOT_IGMP] += 1
            return None
        name = self.interfaces.name_of(index) if index is not None else None
        if name is None or index is None:
            self.dropped[Drop.UNKNOWN_INTERFACE] += 1
            return None
        return Received(name, index, packet.src, packet.dst, packet.payload, packet.ttl,
                        packet.router_alert)

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
