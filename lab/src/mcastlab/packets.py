"""Packet taps for the lab: ``AF_PACKET`` sockets with kernel timestamps and a BPF filter.

One tap serves the capture (``mcastlab.capture``) and the benchmarks' programs in the
namespaces: a ``SOCK_DGRAM`` packet socket (frames arrive without their link header, so
offset 0 is the IP header) bound to one interface, or with no interface to every interface
of the namespace at once, with ``SO_TIMESTAMPNS``: every packet carries the kernel's
timestamp (``CLOCK_REALTIME``, taken in ``__netif_receive_skb`` for a packet coming in and
in ``dev_queue_xmit_nit`` for one going out). A classic BPF filter keeps only what is
wanted, before it is queued, so a tap costs nothing while other traffic goes by:

========  =====================================================================
filter    keeps
========  =====================================================================
``ctl``   IGMP (IPv4 protocol 2) and what may be MLD (IPv6 whose first header is
          ICMPv6, Hop-by-Hop, Routing or Destination Options)
``data``  the same and UDP
``out``   ``ctl``, packets the namespace sends only
``in``    ``ctl``, packets the namespace receives only
``off``   nothing
========  =====================================================================

``extract`` then finds the IGMP or MLD message in a packet, ``udp_payload`` the datagram
of a multicast UDP packet.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Any

from mcastproxy.netio import sockopts

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_ALLMULTI = 2
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4  # sockaddr_ll.sll_pkttype of a packet this host sent
SO_TIMESTAMPNS = 35  # linux/asm-generic/socket.h; SCM_TIMESTAMPNS is the same number
SO_SNDBUFFORCE = 32

IPPROTO_IGMP = 2
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
# IPv6 extension headers with the generic (next header, length in 8-octet units - 1) form.
_IPV6_EXT_HEADERS = frozenset({0, 43, 60})  # Hop-by-Hop, Routing, Destination Options
MLD_TYPES = frozenset({130, 131, 132, 143})  # query, v1 report, v1 done, v2 report

FILTERS = ("ctl", "data", "out", "in", "off")
"""The filters a tap can have (see the table above)."""

DEFAULT_RCVBUF = 32 << 20


# -- classic BPF --------------------------------------------------------------------------------

_NEVER = 0x1FF  # compared with one octet: never equal


def _assemble(prog: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """``(code, k[, jt label, jf label])`` and ``("label", name)`` into instructions; the
    labels "accept" and "drop" are the program's two ends."""
    labels: dict[str, int] = {}
    body: list[tuple[Any, ...]] = []
    for ins in prog:
        if ins[0] == "label":
            labels[ins[1]] = len(body)
        else:
            body.append(ins)
    body += [(sockopts.BPF_RET_K, 0xFFFF), (sockopts.BPF_RET_K, 0)]
    labels["accept"], labels["drop"] = len(body) - 2, len(body) - 1
    out = []
    for i, ins in enumerate(body):
        code, k = ins[0], ins[1]
        jt = labels[ins[2]] - i - 1 if len(ins) > 2 else 0
        jf = labels[ins[3]] - i - 1 if len(ins) > 3 else 0
        out.append(sockopts.bpf(code, jt, jf, k))
    return out


def bpf_program(kind: str) -> list[bytes]:
    """The classic BPF program of the filter ``kind`` (one of ``FILTERS``)."""
    if kind not in FILTERS:
        raise ValueError(f"filter {kind!r}: one of {', '.join(FILTERS)}")
    if kind == "off":
        return [sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0)]
    udp = IPPROTO_UDP if kind == "data" else _NEVER
    ld_b, ld_w, jeq = sockopts.BPF_LD_B_ABS, sockopts.BPF_LD_W_ABS, sockopts.BPF_JEQ_K
    prog: list[tuple[Any, ...]] = []
    if kind in ("out", "in"):
        prog.append((ld_w, sockopts.SKF_AD_PKTTYPE))
        if kind == "out":
            prog.append((jeq, PACKET_OUTGOING, "ver", "drop"))
        else:
            prog.append((jeq, PACKET_OUTGOING, "drop", "ver"))
    prog += [
        ("label", "ver"),
        (ld_b, 0), (0x54, 0xF0),  # BPF_ALU | BPF_AND | BPF_K: the version nibble
        (jeq, 0x40, "v4", "v6?"),
        ("label", "v4"), (ld_b, 9), (jeq, IPPROTO_IGMP, "accept", "v4udp"),
        ("label", "v4udp"), (jeq, udp, "accept", "drop"),
        ("label", "v6?"), (jeq, 0x60, "v6", "drop"),
        ("label", "v6"), (ld_b, 6), (jeq, 0, "accept", "v6icmp"),
        ("label", "v6icmp"), (jeq, IPPROTO_ICMPV6, "accept", "v6rt"),
        ("label", "v6rt"), (jeq, 43, "accept", "v6dst"),
        ("label", "v6dst"), (jeq, 60, "accept", "v6udp"),
        ("label", "v6udp"), (jeq, udp, "accept", "drop"),
    ]
    return _assemble(prog)


def set_filter(sock: socket.socket, kind: str) -> None:
    """Replace the tap's filter with ``kind`` (one of ``FILTERS``)."""
    sockopts.attach_filter(sock, bpf_program(kind))


def packet_socket(
    iface: str | None, kind: str = "ctl", *, rcvbuf: int = DEFAULT_RCVBUF
) -> socket.socket:
    """A non-blocking tap on ``iface`` (None: every interface of the namespace) with the
    filter ``kind``, kernel timestamps, and every multicast frame the interface sees."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    try:
        # The filter first, so that nothing unfiltered is queued before it.
        set_filter(s, kind)
        sockopts.set_rcvbuf(s, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if iface is not None:
            s.bind((iface, ETH_P_ALL))
            # struct packet_mreq { int mr_ifindex; u16 mr_type, mr_alen; u8 mr_address[8]; }
            mreq = struct.pack("=iHH8s", socket.if_nametoindex(iface), PACKET_MR_ALLMULTI, 0,
                               b"")
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        # Flush what the socket queued before the filter applied (the window is tiny).
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                s.recv(65535)
    except BaseException:
        s.close()
        raise
    return s


def kernel_time(anc: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's timestamp (ns, ``CLOCK_REALTIME``) in a packet's ancillary data."""
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack_from("=qq", cdata)
            return sec * 1_000_000_000 + nsec
    return None


def statistics(sock: socket.socket) -> tuple[int, int]:
    """(packets, drops) of the tap since the last call (``PACKET_STATISTICS`` resets them)."""
    return struct.unpack("=II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))


# -- what is in a packet ---------------------------------------------------------------------


def extract(packet: bytes) -> tuple[int, bytes, bytes, bytes] | None:
    """(family, source, destination, IGMP or ICMPv6 message) of an IGMP or MLD packet, else None.

    ``packet`` starts at the IP header; addresses are packed. Malformed or truncated headers
    give None: the capture keeps what is recognisably IGMP or MLD and leaves judging the
    message itself to the codecs.
    """
    if len(packet) < 20:
        return None
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        total = int.from_bytes(packet[2:4], "big")
        frag = int.from_bytes(packet[6:8], "big") & 0x1FFF
        if packet[9] != IPPROTO_IGMP or ihl < 20 or frag or total > len(packet) or total < ihl:
            return None
        return 4, packet[12:16], packet[16:20], packet[ihl:total]
    if version == 6 and len(packet) >= 40:
        end = 40 + int.from_bytes(packet[4:6], "big")
        if end > len(packet):
            return None
        nh, off = packet[6], 40
        while nh in _IPV6_EXT_HEADERS:
            if off + 2 > end:
                return None
            nh, off = packet[off], off + (packet[off + 1] + 1) * 8
        if nh != IPPROTO_ICMPV6 or off >= end or packet[off] not in MLD_TYPES:
            return None
        return 6, packet[8:24], packet[24:40], packet[off:end]
    return None


def udp_payload(packet: bytes) -> tuple[int, bytes, bytes] | None:
    """(family, group, UDP payload) of a UDP packet to a multicast group, else None."""
    v = packet[0] >> 4 if packet else 0
    if v == 4 and len(packet) >= 28 and packet[9] == IPPROTO_UDP and packet[16] >= 224:
        ihl = (packet[0] & 0x0F) * 4
        return 4, packet[16:20], packet[ihl + 8:]
    if v == 6 and len(packet) >= 48 and packet[6] == IPPROTO_UDP and packet[24] == 0xFF:
        return 6, packet[24:40], packet[48:]
    return None


def udp_port(packet: bytes) -> int | None:
    """The destination port of a UDP packet (IPv4, or IPv6 with no extension header)."""
    v = packet[0] >> 4 if packet else 0
    off = (packet[0] & 0x0F) * 4 if v == 4 else 40 if v == 6 else None
    if off is None or len(packet) < off + 4:
        return None
    return int.from_bytes(packet[off + 2:off + 4], "big")
