"""``MldSocket``: every MLD message in, with its arrival interface, and MLD out.

Reception: where Linux delivers MLD (tests/netio/test_reception.py and test_checksum.py show
it with the kernel's multicast routing active, tests/netio/test_packet_reception.py on a
kernel without it):

- ``ip6_mc_input`` delivers multicast locally if the interface has joined the group, to every
  raw ICMPv6 socket whose ICMP6_FILTER passes the type, each once. ff02::1 is always
  joined, and ff02::2 where forwarding is on; MLDv2 reports go to ff02::16 and MLDv1 Dones
  to ff02::2, so ``listen(interface)`` joins both on downstreams. Unicast MLD to this host
  (a query, say) is delivered locally too.
- MLD to a routable group (MLDv1 reports to G, multicast-address-specific queries to G on
  an upstream) depends on the kernel:
  - with multicast routing (CONFIG_IPV6_MROUTE) active (an mroute6 socket set
    mc_forwarding), ``ip6_mc_input`` also delivers locally any message with a Hop-by-Hop
    Router Alert and an MLD type, whatever its group (not link-scope ones: ip6mr looks
    only beyond). The mroute6 sockets are raw ICMPv6 sockets too, and block every type
    (``kernel.ipmr``).
  - without it, or without Router Alert, only if the interface has joined G.
  So no raw socket can be relied on for these; a packet socket (``netio.frames``) takes
  them instead, on every kernel, from every interface, before the IP stack, checking the
  header chain itself (``netio.ipv6``).
- The two are split by destination: the raw socket's filter (``netio.filters.RAW_MLD``)
  drops MLD to routable groups (ff00::/8 with a scope above 2); it starts at the ICMPv6
  message and reads the destination from the IPv6 header at SKF_NET_OFF. The packet
  socket's (``PACKET_MLD``) keeps only those. So each message is read once, on kernels with
  multicast routing (where the raw socket gets a report to G too and filters it out) and
  without.
- Looped back: the kernel's own MLD reports for the groups ``listen`` joins come back as
  input (ip6_finish_output2 loops back what goes to a group the interface has joined),
  dropped by both filters (skb->pkt_type PACKET_LOOPBACK); the packet socket keeps only what
  was received, never what was sent.
- The kernel verifies the ICMPv6 checksum of what a raw ICMPv6 socket receives (rawv6
  checks it for the ICMPv6 protocol, as it computes it on send): a message with a bad
  checksum is discarded and never returned (but counted, below). On the packet path the
  engine verifies it (``wire.parse_mld``) and counts a bad one.
- Each message comes with its hop limit and whether it carried a Hop-by-Hop Router Alert for
  MLD (RFC 2711 value 0): on the raw path from the ancillary data (IPV6_RECVHOPLIMIT,
  IPV6_RECVHOPOPTS; the kernel has checked the header's options), on the packet path from
  the header (``netio.ipv6.parse_ipv6``, which checks them). The engine drops MLD with a
  hop limit other than 1 or without Router Alert (RFC 9777 §6.2, §7.4).
- Both sockets count the packets the kernel dropped for them: the packet socket's are a full
  queue's (``Drop.QUEUE_FULL``); the raw socket's count also holds the messages the kernel
  discarded for a bad ICMPv6 checksum, and cannot be told apart
  (``Drop.QUEUE_FULL_OR_BAD_CHECKSUM``; the kernel checks the checksum before the filter,
  so with multicast routing a report to G with a bad one is counted there and by the engine).

Sending: the ICMPv6 message as given, the kernel computing its checksum (a raw ICMPv6 socket
always does, at offset 2, over the real addresses: the given one is replaced), hop limit 1
(IPV6_MULTICAST_HOPS), a Hop-by-Hop header with Router Alert value 0 (MLD, RFC 2711; a
sticky IPV6_HOPOPTS), out of the interface and from its link-local address by IPV6_PKTINFO
(RFC 9777 §5; the kernel picks one if the map has none). IPV6_MULTICAST_LOOP is off, and a
packet socket bound to one protocol never sees what the host sends.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import filters, sockopts
from mcastproxy.netio.common import RCVBUF, QueueDrops, Received, Stamps, stamp_of
from mcastproxy.netio.interfaces import InterfaceMap
from mcastproxy.netio.ipv6 import hop_by_hop_options
from mcastproxy.netio.reception import MessageSocket
from mcastproxy.wire import WireError

MLD_TYPES = (130, 131, 132, 143)  # query, v1 report, v1 done, v2 report (RFC 9777 §5)
# Where MLDv2 reports and MLDv1 Dones go: ff02::16 and ff02::2.
ROUTER_GROUPS = (Family.V6.all_v3_routers, Family.V6.all_routers)
IPV6_HOPLIMIT = 52
IPV6_RECVHOPLIMIT = 51
IPV6_RECVHOPOPTS = 53  # the Hop-by-Hop Options header arrives as an IPV6_HOPOPTS message
# Room for the packet information, the hop limit, the receive time, the kernel's drops and
# the largest Hop-by-Hop Options header (2,048 octets), so that the header is never cut off.
ANCILLARY_SIZE_MLD = (
    socket.CMSG_SPACE(sockopts.IN6_PKTINFO.size) + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(16)
    + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(2048)
)
# Hop-by-Hop Options header: next header (the kernel fills it), length 0 (8 octets), Router
# Alert (type 5, length 2, value 0: MLD, RFC 2711 §2.1), PadN of 2 octets (type 1, length 0).
HOP_BY_HOP_ROUTER_ALERT = bytes([0, 0, 5, 2, 0, 0, 1, 0])
_UNSPECIFIED = Family.V6.unspecified
_INT = struct.Struct("@i")
_new = tuple.__new__


class MldSocket(MessageSocket):
    """MLD for every interface: a raw ICMPv6 socket passing only MLD (link-scope and unicast,
    and sending) and a packet socket (MLD to routable groups) behind one descriptor;
    ``receive`` and ``send``. ``listen`` joins ff02::16 and ff02::2 on a downstream, so MLDv2
    reports and MLDv1 Dones come in. ``rcvbuf``: each socket's receive buffer."""

    def __init__(self, interfaces: InterfaceMap, *, rcvbuf: int = RCVBUF) -> None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            s.setsockopt(
                socket.IPPROTO_ICMPV6, sockopts.ICMP6_FILTER, sockopts.icmp6_filter(MLD_TYPES)
            )
            sockopts.attach_filter(s, filters.RAW_MLD)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_TIMESTAMPNS, 1)
            s.setsockopt(socket.SOL_SOCKET, sockopts.SO_RXQ_OVFL, 1)
            s.setsockopt(socket.IPPROTO_IPV6, sockopts.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPOPTS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, sockopts.IPV6_HOPOPTS, HOP_BY_HOP_ROUTER_ALERT)
            sockopts.set_rcvbuf(s, rcvbuf)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        super().__init__(Family.V6, interfaces, s, ROUTER_GROUPS, rcvbuf=rcvbuf)
        self._queue = QueueDrops(self.dropped, Drop.QUEUE_FULL_OR_BAD_CHECKSUM)
        self.send_errors: Counter[str] = Counter()
        """Sends that failed, by reason."""

    # -- receiving --------------------------------------------------------------------------

    def _read_raw(self, out: list[Received], stamps: Stamps, limit: int) -> int:
        """The raw socket's messages (non-blocking); messages from interfaces not in the map,
        or without packet information, are dropped and counted in ``dropped``."""
        recvmsg = self._sock.recvmsg
        name_of = self.interfaces.name_of
        inet_pton = socket.inet_pton
        queue = self._queue
        n = 0
        while n < limit:
            try:
                data, ancillary, _flags, addr = recvmsg(65535, ANCILLARY_SIZE_MLD)
            except (BlockingIOError, InterruptedError):
                # Also what a non-blocking read returns after the kernel discarded a
                # message with a bad checksum; the socket stays readable if more wait.
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
            n += 1
            stamp = stamp_of(ancillary, queue)
            destination, index, hop_limit, router_alert = read_ancillary(ancillary)
            if not data:
                self.dropped[Drop.EMPTY] += 1
                continue
            if index is None or destination is None:
                self.dropped[Drop.NO_PACKET_INFORMATION] += 1
                continue
            name = name_of(index)
            if name is None:
                self.dropped[Drop.UNKNOWN_INTERFACE] += 1
                continue
            source = inet_pton(socket.AF_INET6, addr[0].partition("%")[0])
            out.append(_new(Received, (name, index, source, destination, data, hop_limit,
                                       router_alert)))
            if stamps is not None:
                stamps.append(stamp)
        return n

    # -- sending ----------------------------------------------------------------------------

    def send(self, interface: str, destination: bytes, payload: bytes) -> bool:
        """Send an MLD message out of ``interface`` to ``destination``. False (counted in
        ``send_errors``) if the interface is unknown or the kernel refused."""
        iface = self.interfaces.get(interface)
        if iface is None:
            self.send_errors["unknown interface"] += 1
            return False
        info = sockopts.IN6_PKTINFO.pack(iface.link_local or _UNSPECIFIED, iface.index)
        try:
            self._sock.sendmsg(
                [payload],
                [(socket.IPPROTO_IPV6, sockopts.IPV6_PKTINFO, info)],
                0,
                (socket.inet_ntop(socket.AF_INET6, destination), 0, 0, iface.index),
            )
        except OSError as e:
            self.send_errors[e.strerror or str(e)] += 1
            return False
        return True


def read_ancillary(
    ancillary: list[tuple[int, int, bytes]],
) -> tuple[bytes | None, int | None, int | None, bool]:
    """(destination, interface index, hop limit, Router Alert for MLD) from what recvmsg gave
    with a message; None for what it did not give. No Hop-by-Hop Options header: no Router
    Alert (the socket asks for the header, so its absence means the packet had none)."""
    destination = index = hop_limit = None
    router_alert = False
    for level, kind, value in ancillary:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == sockopts.IPV6_PKTINFO and len(value) >= sockopts.IN6_PKTINFO.size:
            destination, index = sockopts.IN6_PKTINFO.unpack(value[: sockopts.IN6_PKTINFO.size])
        elif kind == IPV6_HOPLIMIT and len(value) >= _INT.size:
            hop_limit = _INT.unpack(value[: _INT.size])[0]
        elif kind == sockopts.IPV6_HOPOPTS:
            router_alert = router_alert or hop_by_hop_router_alert(value)
    return destination, index, hop_limit, router_alert


def hop_by_hop_router_alert(header: bytes) -> bool:
    """Whether a Hop-by-Hop Options header (RFC 8200 §4.3) holds a Router Alert option with the
    MLD value 0 (RFC 2711 §2.1). A header cut short or with a bad option: False."""
    if len(header) < 2:
        return False
    end = (header[1] + 1) * 8  # Hdr Ext Len: 8-octet units after the first 8
    if end > len(header):
        return False
    try:
        return hop_by_hop_options(header[:end])
    except WireError:
        return False
