"""The IP packets inside AMT messages (RFC 7450 §5.1.4, §5.1.5, §5.1.6).

A Membership Query carries the relay's General Query and a Membership Update the gateway's
report, each as a whole IP packet, as it would travel on a link between a host and its
querier: IGMP in IPv4 with TTL 1 and the Router Alert option (RFC 9776 §4), MLD in IPv6 with
hop limit 1 and a Hop-by-Hop Router Alert (RFC 9777 §5, RFC 2711). Multicast Data carries the
multicast packet itself, which the gateway hands to its pseudo-interface unchanged.

- ``report_packet`` / ``query_packet``: wrap an IGMPv3 / MLDv2 report or query in its IP
  packet (a report to all-v3-routers, a General Query to all-systems), with the checksums.
- ``read_query`` / ``read_report``: the other way, for the gateway and for a relay; malformed
  packets raise ``WireError`` with the reason of the codec that refused them.
- ``data_drop``: why a Multicast Data packet is not for the pseudo-interface (not multicast,
  or not of the gateway's family), or None; two octet tests, as it runs once per packet.

No I/O: the gateway core calls these, and so do the lab's relay and the tests.
"""

from __future__ import annotations

import struct
from typing import Final

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.igmp import build_igmp, parse_igmp
from mcastproxy.wire.ipv4 import PROTOCOL_IGMP, build_ipv4, parse_ipv4
from mcastproxy.wire.messages import Message, Query, Report
from mcastproxy.wire.mld import build_mld, parse_mld

IPV6_HEADER_SIZE: Final = 40
NEXT_HOP_BY_HOP: Final = 0
NEXT_ICMPV6: Final = 58
HOP_BY_HOP_ROUTER_ALERT: Final = bytes((NEXT_ICMPV6, 0, 5, 2, 0, 0, 1, 0))
"""RFC 2711 §2.1: Next Header ICMPv6, length 0 (8 octets), Router Alert (type 5, length 2)
with value 0 ("Multicast Listener Discovery message"), then a PadN of 2 octets."""

_pack_ipv6 = struct.Struct("!IHBB16s16s").pack  # version/class/flow, length, next, hops


def _ipv6(src: bytes, dst: bytes, icmpv6: bytes) -> bytes:
    payload = HOP_BY_HOP_ROUTER_ALERT + icmpv6
    return _pack_ipv6(6 << 28, len(payload), NEXT_HOP_BY_HOP, 1, src, dst) + payload


def _wrap(family: Family, source: bytes, destination: bytes, message: Message) -> bytes:
    if len(source) != family.length:
        raise ValueError(f"an {family.protocol.upper()} packet's source is {family.length} octets")
    if family is Family.V4:
        return build_ipv4(source, destination, build_igmp(message))
    return _ipv6(source, destination, build_mld(message, source, destination))


def report_packet(family: Family, source: bytes, report: Report) -> bytes:
    """An IGMPv3 (``Family.V4``) or MLDv2 report from ``source`` to all-v3-routers (224.0.0.22,
    ff02::16), as a Membership Update carries it. ``source`` may be the unspecified address,
    as from a host with no address of its own (RFC 9776 §4.2.13, RFC 9777 §5.2.13)."""
    if report.version != family.newest_version:
        raise ValueError(f"AMT carries {family.protocol.upper()} reports of version "
                         f"{family.newest_version} only")
    return _wrap(family, source, family.all_v3_routers, report)


def query_packet(family: Family, source: bytes, query: Query) -> bytes:
    """An IGMPv3 / MLDv2 General Query from ``source`` to all-systems (224.0.0.1, ff02::1), as a
    relay's Membership Query carries it."""
    if query.version != family.newest_version or query.group != family.unspecified:
        raise ValueError("AMT carries IGMPv3 / MLDv2 General Queries only")
    return _wrap(family, source, family.all_systems, query)


def _read(packet: bytes) -> tuple[Family, bytes, Message]:
    """The family, the source address and the IGMP / MLD message of an IP packet."""
    if not packet:
        raise WireError(Drop.TRUNCATED_HEADER, 0)
    version = packet[0] >> 4
    if version == 4:
        ip = parse_ipv4(packet)
        if ip.protocol != PROTOCOL_IGMP:
            raise WireError(Drop.NOT_IGMP, 9)
        return Family.V4, ip.src, parse_igmp(ip.payload)
    if version != 6:
        raise WireError(Drop.NOT_IP, 0)
    n = len(packet)
    if n < IPV6_HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_HEADER, 0)
    if IPV6_HEADER_SIZE + ((packet[4] << 8) | packet[5]) != n:
        raise WireError(Drop.BAD_PAYLOAD_LENGTH, 4)
    next_header, offset = packet[6], IPV6_HEADER_SIZE
    if next_header == NEXT_HOP_BY_HOP:  # skipped: the relay's Router Alert is not for us
        if n < offset + 8 or n < offset + (packet[offset + 1] + 1) * 8:
            raise WireError(Drop.TRUNCATED_OPTION, offset)
        next_header, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
    if next_header != NEXT_ICMPV6:
        raise WireError(Drop.NOT_MLD, 6 if offset == IPV6_HEADER_SIZE else IPV6_HEADER_SIZE)
    src, dst = packet[8:24], packet[24:40]
    return Family.V6, src, parse_mld(packet[offset:], src, dst)


def read_query(packet: bytes) -> tuple[Family, Query]:
    """The family and the General Query in the packet a Membership Query carries.

    ``WireError`` when the packet is malformed, or when it holds anything but an IGMPv3 or
    MLDv2 General Query (``Drop.AMT_NOT_GENERAL_QUERY``: RFC 7450 §5.1.4 has the relay send
    only those, the version the Request's P flag asked for).
    """
    family, _, message = _read(packet)
    if (
        not isinstance(message, Query)
        or message.version != family.newest_version
        or message.group != family.unspecified
    ):
        raise WireError(Drop.AMT_NOT_GENERAL_QUERY, 0)
    return family, message


def read_report(packet: bytes) -> tuple[Family, bytes, Report]:
    """The family, the source address and the report in the packet of a Membership Update;
    ``WireError`` if it is malformed or not an IGMPv3 / MLDv2 report."""
    family, source, message = _read(packet)
    if not isinstance(message, Report) or message.version != family.newest_version:
        raise WireError(Drop.UNKNOWN_MESSAGE, 0)
    return family, source, message


def data_drop(packet: bytes, family: Family) -> Drop | None:
    """Why a Multicast Data packet (already length-checked by ``parse_amt``) is not delivered
    to a gateway of inner ``family``, or None if it is."""
    version = packet[0] >> 4
    if version != family:
        return Drop.WRONG_FAMILY
    if version == 4:
        # 224.0.0.0/4 (RFC 5771): the destination's first octet is 1110xxxx.
        return None if packet[16] & 0xF0 == 0xE0 else Drop.AMT_DATA_NOT_MULTICAST
    return None if packet[24] == 0xFF else Drop.AMT_DATA_NOT_MULTICAST  # ff00::/8 (RFC 4291)
