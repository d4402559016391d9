"""The classic BPF programs that share IGMP and MLD out between a family's two receivers, so
that each message reaches the daemon once.

Each family has a raw socket (fed by the IP stack) and a packet socket (``netio.frames``, fed
by every link below the IP stack); ``netio.igmp`` and ``netio.mld`` tell what the kernel
gives each. Their filters split the messages by destination, with tests that are exact
complements of each other:

=============  ==========================================================================
socket         keeps
=============  ==========================================================================
raw IGMP       destination not a routable group (224.0.0.0/24, unicast, broadcast), not
               looped back (skb->pkt_type PACKET_LOOPBACK: this host's own)
raw MLD        destination not a routable group (ff00::/8 with scope 0, 1 or 2, unicast),
               not looped back; the program starts at the ICMPv6 message, so it reads the
               IPv6 header at SKF_NET_OFF
packet IGMP    IPv4 protocol 2 to a routable group, 224.0.1.0 to 239.255.255.255
packet MLD     IPv6 to a routable group, ff00::/8 with a scope above link-local (3 to 15;
               RFC 4291 §2.7: the kernel drops scopes 0 and 1 arriving on a link), carrying
               ICMPv6 of an MLD type (130, 131, 132, 143) directly after the IPv6 header or
               after one Hop-by-Hop Options header, or a Fragment header in either place
               whose next header is ICMPv6 (kept so that it is counted, as a fragment)
=============  ==========================================================================

The packet sockets keep only what this host received (skb->pkt_type PACKET_HOST, BROADCAST or
MULTICAST), never what it sent (OUTGOING, LOOPBACK) nor frames for another host (OTHERHOST).
A kept packet is kept whole (``KEEP``, more than the largest IPv6 packet).

Offsets are from the IP header: a packet socket of type SOCK_DGRAM hands the filter the
frame without its link header; a raw IPv4 socket hands it the IPv4 header, a raw ICMPv6
socket the ICMPv6 message. A load past the end of the packet ends the program with 0: the
packet is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mcastproxy.netio import sockopts
from mcastproxy.netio.sockopts import (
    BPF_ALU_ADD_K,
    BPF_ALU_AND_K,
    BPF_ALU_LSH_K,
    BPF_JEQ_K,
    BPF_JGE_K,
    BPF_JGT_K,
    BPF_LD_B_ABS,
    BPF_LD_B_IND,
    BPF_LD_W_ABS,
    BPF_RET_K,
    BPF_TAX,
    PACKET_LOOPBACK,
    PACKET_MULTICAST,
    SKF_AD_PKTTYPE,
    SKF_NET_OFF,
)

KEEP: Final = 0x40000
"""What a filter returns for a packet it keeps: octets to keep, more than any packet has."""

PROTOCOL_IGMP: Final = 2
NEXT_HOP_BY_HOP: Final = 0
NEXT_FRAGMENT: Final = 44
NEXT_ICMPV6: Final = 58
MLD_TYPES: Final = (130, 131, 132, 143)  # query, v1 report, v1 done, v2 report (RFC 9777 §5)
SCOPE_LINK: Final = 2  # RFC 4291 §2.7: the low nibble of a multicast address's second octet

# IPv4 destinations as unsigned words: routable groups are 224.0.1.0 to 239.255.255.255.
_ROUTABLE_V4_FIRST: Final = 0xE0000100
_ROUTABLE_V4_LAST: Final = 0xEFFFFFFF
_IPV4_PROTOCOL: Final = 9
_IPV4_DESTINATION: Final = 16
_IPV6_NEXT_HEADER: Final = 6
_IPV6_DESTINATION: Final = 24
_IPV6_HEADER: Final = 40

# An instruction: (code, k) or (code, k, label if true, label if false); ("label", name)
# marks where the next instruction is. "keep" and "drop" are the program's two ends.
Line = tuple[int, int] | tuple[int, int, str, str] | tuple[str, str]


def assemble(lines: Sequence[Line]) -> tuple[bytes, ...]:
    """Classic BPF instructions from ``lines``, with the jumps resolved (forward only)."""
    labels: dict[str, int] = {}
    body: list[tuple[int, int, str | None, str | None]] = []
    for line in lines:
        if line[0] == "label":
            if line[1] in labels:
                raise ValueError(f"label {line[1]!r} twice")
            labels[str(line[1])] = len(body)
        elif len(line) == 4:
            body.append((int(line[0]), int(line[1]), str(line[2]), str(line[3])))
        else:
            body.append((int(line[0]), int(line[1]), None, None))
    labels["keep"], labels["drop"] = len(body), len(body) + 1
    body += [(BPF_RET_K, KEEP, None, None), (BPF_RET_K, 0, None, None)]
    program = []
    for at, (code, k, jt, jf) in enumerate(body):
        t = labels[jt] - at - 1 if jt is not None else 0
        f = labels[jf] - at - 1 if jf is not None else 0
        if not (0 <= t <= 255 and 0 <= f <= 255):
            raise ValueError(f"instruction {at}: a jump goes backwards or too far")
        program.append(sockopts.bpf(code, t, f, k))
    return tuple(program)


_NOT_LOOPED_BACK: list[Line] = [
    (BPF_LD_W_ABS, SKF_AD_PKTTYPE),
    (BPF_JEQ_K, PACKET_LOOPBACK, "drop", "this host's?"),
    ("label", "this host's?"),
]
# Received by this host: PACKET_HOST (0), BROADCAST (1) or MULTICAST (2).
_RECEIVED_HERE: list[Line] = [
    (BPF_LD_W_ABS, SKF_AD_PKTTYPE),
    (BPF_JGT_K, PACKET_MULTICAST, "drop", "received"),
    ("label", "received"),
]

RAW_IGMP: Final = assemble([
    *_NOT_LOOPED_BACK,
    (BPF_LD_W_ABS, _IPV4_DESTINATION),
    (BPF_JGE_K, _ROUTABLE_V4_FIRST, "from 224.0.1.0", "keep"),
    ("label", "from 224.0.1.0"),
    (BPF_JGT_K, _ROUTABLE_V4_LAST, "keep", "drop"),
])
"""The raw IGMP socket's filter: not looped back, not to a routable group."""

RAW_MLD: Final = assemble([
    *_NOT_LOOPED_BACK,
    (BPF_LD_B_ABS, SKF_NET_OFF + _IPV6_DESTINATION),
    (BPF_JEQ_K, 0xFF, "multicast", "keep"),
    ("label", "multicast"),
    (BPF_LD_B_ABS, SKF_NET_OFF + _IPV6_DESTINATION + 1),
    (BPF_ALU_AND_K, 0x0F),
    (BPF_JGT_K, SCOPE_LINK, "drop", "keep"),
])
"""The raw MLD socket's filter: not looped back, not to a routable group."""

PACKET_IGMP: Final = assemble([
    *_RECEIVED_HERE,
    (BPF_LD_B_ABS, _IPV4_PROTOCOL),
    (BPF_JEQ_K, PROTOCOL_IGMP, "igmp", "drop"),
    ("label", "igmp"),
    (BPF_LD_W_ABS, _IPV4_DESTINATION),
    (BPF_JGE_K, _ROUTABLE_V4_FIRST, "from 224.0.1.0", "drop"),
    ("label", "from 224.0.1.0"),
    (BPF_JGT_K, _ROUTABLE_V4_LAST, "drop", "keep"),
])
"""The IGMP packet socket's filter: received here, IGMP, to a routable group."""


def _mld_type(where: str) -> list[Line]:
    """A holds the ICMPv6 type of the message ``where``: keep an MLD one, else drop."""
    out: list[Line] = []
    for n, kind in enumerate(MLD_TYPES):
        last = n == len(MLD_TYPES) - 1
        out.append((BPF_JEQ_K, kind, "keep", "drop" if last else f"{where}: not {kind}"))
        if not last:
            out.append(("label", f"{where}: not {kind}"))
    return out


PACKET_MLD: Final = assemble([
    *_RECEIVED_HERE,
    (BPF_LD_B_ABS, _IPV6_DESTINATION),
    (BPF_JEQ_K, 0xFF, "multicast", "drop"),
    ("label", "multicast"),
    (BPF_LD_B_ABS, _IPV6_DESTINATION + 1),
    (BPF_ALU_AND_K, 0x0F),
    (BPF_JGT_K, SCOPE_LINK, "routable", "drop"),
    ("label", "routable"),
    (BPF_LD_B_ABS, _IPV6_NEXT_HEADER),
    (BPF_JEQ_K, NEXT_ICMPV6, "icmpv6", "fragment?"),
    ("label", "fragment?"),
    (BPF_JEQ_K, NEXT_FRAGMENT, "fragment", "hop-by-hop?"),
    ("label", "hop-by-hop?"),
    (BPF_JEQ_K, NEXT_HOP_BY_HOP, "hop-by-hop", "drop"),
    ("label", "icmpv6"),
    (BPF_LD_B_ABS, _IPV6_HEADER),
    *_mld_type("icmpv6"),
    ("label", "fragment"),
    (BPF_LD_B_ABS, _IPV6_HEADER),
    (BPF_JEQ_K, NEXT_ICMPV6, "keep", "drop"),
    # X = the Hop-by-Hop header's length: (Hdr Ext Len + 1) * 8 (RFC 8200 §4.3)
    ("label", "hop-by-hop"),
    (BPF_LD_B_ABS, _IPV6_HEADER + 1),
    (BPF_ALU_ADD_K, 1),
    (BPF_ALU_LSH_K, 3),
    (BPF_TAX, 0),
    (BPF_LD_B_ABS, _IPV6_HEADER),
    (BPF_JEQ_K, NEXT_ICMPV6, "icmpv6 after", "fragment after?"),
    ("label", "fragment after?"),
    (BPF_JEQ_K, NEXT_FRAGMENT, "fragment after", "drop"),
    ("label", "icmpv6 after"),
    (BPF_LD_B_IND, _IPV6_HEADER),
    *_mld_type("icmpv6 after"),
    ("label", "fragment after"),
    (BPF_LD_B_IND, _IPV6_HEADER),
    (BPF_JEQ_K, NEXT_ICMPV6, "keep", "drop"),
])
"""The MLD packet socket's filter: received here, to a routable group, MLD or an ICMPv6
fragment, after at most one Hop-by-Hop header."""
