"""``MldSocket``: every MLD message in, with its arrival interface, and MLD out.

Reception (measured on the lab's proxy topology with the ip6mr tables active; see
tests/netio/test_reception.py and test_checksum.py):

- ip6mr does not deliver MLD specially: ``ip6_mc_input`` delivers an MLD message (Hop-by-Hop
  Router Alert with value 0 and an MLD type) locally whatever its group when multicast
  forwarding is on, and other multicast to groups the interface has joined; locally means
  to every raw ICMPv6 socket whose ICMP6_FILTER passes the type, each once. The mroute6
  sockets are raw ICMPv6 sockets too, and block every type (``kernel.ipmr``).
- So MLDv1 reports (to the group) and queries arrive anyway; MLDv2 reports go to ff02::16
  and MLDv1 Done to ff02::2, link-scope groups that ip6mr does not look at: they arrive only
  where those are joined. Forwarding joins ff02::2 but not ff02::16; ``listen(interface)``
  joins both on downstreams.
- The kernel's own MLD reports for those joins come back as input (looped back by
  ip6_finish_output2, since the interface has joined the group), dropped by a BPF filter on
  skb->pkt_type == PACKET_LOOPBACK.
- The kernel verifies the ICMPv6 checksum of what a raw ICMPv6 socket receives (rawv6
  checks it for the ICMPv6 protocol, as it computes it on send): a message with a bad
  checksum is discarded in recvmsg and never returned.
- Each message comes with its hop limit (IPV6_RECVHOPLIMIT) and its Hop-by-Hop Options header
  if it had one (IPV6_RECVHOPOPTS), from which ``router_alert`` says whether it carried a
  Router Alert for MLD (RFC 2711 value 0): the engine drops MLD with a hop limit other than 1
  or without it (RFC 9777 §6.2, §7.4). The kernel has checked the header's option lengths.

Sending: the ICMPv6 message as given, the kernel computing its checksum (a raw ICMPv6 socket
always does, at offset 2, over the real addresses: the given one is replaced), hop limit 1
(IPV6_MULTICAST_HOPS), a Hop-by-Hop header with Router Alert value 0 (MLD, RFC 2711; a
sticky IPV6_HOPOPTS), out of the interface and from its link-local address by IPV6_PKTINFO
(RFC 9777 §5; the kernel picks one if the map has none). IPV6_MULTICAST_LOOP is off.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import sockopts
from mcastproxy.netio.common import (
    MAX_PER_RECEIVE,
    NOT_LOOPED_BACK,
    RCVBUF,
    ListeningSocket,
    Received,
)
from mcastproxy.netio.interfaces import InterfaceMap

MLD_TYPES = (130, 131, 132, 143)  # query, v1 report, v1 done, v2 report (RFC 9777 §5)
# Where MLDv2 reports and MLDv1 Dones go: ff02::16 and ff02::2.
ROUTER_GROUPS = (Family.V6.all_v3_routers, Family.V6.all_routers)
IPV6_HOPLIMIT = 52
IPV6_RECVHOPLIMIT = 51
IPV6_RECVHOPOPTS = 53  # the Hop-by-Hop Options header arrives as an IPV6_HOPOPTS message
OPTION_PAD1 = 0
OPTION_ROUTER_ALERT = 5  # RFC 2711 §2.1: type 5, length 2, value 0 for MLD
# Room for the packet information, the hop limit and the largest Hop-by-Hop Options header
# (2,048 octets), so that the header is never cut off.
ANCILLARY_SIZE_MLD = (
    socket.CMSG_SPACE(sockopts.IN6_PKTINFO.size) + socket.CMSG_SPACE(4) + socket.CMSG_SPACE(2048)
)
# Hop-by-Hop Options header: next header (the kernel fills it), length 0 (8 octets), Router
# Alert (type 5, length 2, value 0: MLD, RFC 2711 §2.1), PadN of 2 octets (type 1, length 0).
HOP_BY_HOP_ROUTER_ALERT = bytes([0, 0, 5, 2, 0, 0, 1, 0])
_UNSPECIFIED = Family.V6.unspecified
_INT = struct.Struct("@i")


class MldSocket(ListeningSocket):
    """One raw ICMPv6 socket passing only MLD, for every interface. ``listen`` joins ff02::16
    and ff02::2 on a downstream, so MLDv2 reports and MLDv1 Dones come in."""

    def __init__(self, interfaces: InterfaceMap) -> None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            s.setsockopt(
                socket.IPPROTO_ICMPV6, sockopts.ICMP6_FILTER, sockopts.icmp6_filter(MLD_TYPES)
            )
            sockopts.attach_filter(s, NOT_LOOPED_BACK)
            s.setsockopt(socket.IPPROTO_IPV6, sockopts.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPOPTS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, sockopts.IPV6_HOPOPTS, HOP_BY_HOP_ROUTER_ALERT)
            sockopts.set_rcvbuf(s, RCVBUF)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        super().__init__(Family.V6, interfaces, s, ROUTER_GROUPS)
        self.send_errors: Counter[str] = Counter()
        """Sends that failed, by reason."""

    # -- receiving --------------------------------------------------------------------------

    def receive(self) -> list[Received]:
        """Every MLD message queued now (non-blocking); messages from interfaces not in the
        map, or without packet information, are dropped and counted in ``dropped``."""
        out: list[Received] = []
        recvmsg = self._sock.recvmsg
        name_of = self.interfaces.name_of
        inet_pton = socket.inet_pton
        for _ in range(MAX_PER_RECEIVE):
            try:
                data, ancillary, _flags, addr = recvmsg(65535, ANCILLARY_SIZE_MLD)
            except (BlockingIOError, InterruptedError):
                # Also what a non-blocking read returns after the kernel discarded a
                # message with a bad checksum; the socket stays readable if more wait.
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
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
            out.append(Received(name, index, source, destination, data, hop_limit, router_alert))
        return out

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
    MLD value 0 (RFC 2711 §2.1). A header cut short or with a bad option length: False."""
    if len(header) < 2:
        return False
    end = (header[1] + 1) * 8  # Hdr Ext Len: 8-octet units after the first 8
    if end > len(header):
        return False
    offset = 2
    while offset < end:
        kind = header[offset]
        if kind == OPTION_PAD1:
            offset += 1
            continue
        if offset + 2 > end:
            return False
        length = header[offset + 1]
        if offset + 2 + length > end:
            return False
        if kind == OPTION_ROUTER_ALERT and length == 2 and not any(header[offset + 2 : offset + 4]):
            return True
        offset += 2 + length
    return False
