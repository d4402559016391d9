"""IGMP and MLD wire codecs.

Pairs of functions, bytes in and out, no I/O:

- ``parse_igmp`` / ``build_igmp``: IGMPv1/v2/v3 messages (the IPv4 payload).
- ``parse_mld`` / ``build_mld``: MLDv1/v2 messages (the ICMPv6 message), with the packet's
  addresses for the checksum's pseudo-header.
- ``parse_ipv4`` / ``build_ipv4``: the IPv4 header around IGMP, with Router Alert.
- ``decode_igmp_code`` / ``encode_igmp_code``, ``decode_mld_code`` / ``encode_mld_code``:
  the floating-point time codes; ``inet_checksum``: RFC 1071.
- ``parse_amt`` / ``build_amt``: the seven AMT messages (RFC 7450 §5.1), in ``amt``.

Malformed bytes raise ``WireError`` (a ``ValueError`` with ``reason`` and ``offset``) and
nothing else; a message the wire cannot carry raises ``ValueError`` from the builders.
The message model is in ``messages``.
"""

from __future__ import annotations

from mcastproxy.wire.amt import AMT_PORT, AmtMessage, build_amt, parse_amt
from mcastproxy.wire.checksum import icmpv6_checksum, inet_checksum
from mcastproxy.wire.codes import (
    IGMP_CODE_MAX,
    MLD_CODE_MAX,
    decode_igmp_code,
    decode_mld_code,
    encode_igmp_code,
    encode_mld_code,
)
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.igmp import IgmpType, build_igmp, parse_igmp
from mcastproxy.wire.ipv4 import IPv4Packet, build_ipv4, parse_ipv4
from mcastproxy.wire.messages import Address, GroupRecord, Leave, Message, Query, RecordType, Report
from mcastproxy.wire.mld import MldType, build_mld, parse_mld

__all__ = [
    "AMT_PORT",
    "IGMP_CODE_MAX",
    "MLD_CODE_MAX",
    "Address",
    "AmtMessage",
    "GroupRecord",
    "IPv4Packet",
    "IgmpType",
    "Leave",
    "Message",
    "MldType",
    "Query",
    "RecordType",
    "Report",
    "WireError",
    "build_amt",
    "build_igmp",
    "build_ipv4",
    "build_mld",
    "decode_igmp_code",
    "decode_mld_code",
    "encode_igmp_code",
    "encode_mld_code",
    "icmpv6_checksum",
    "inet_checksum",
    "parse_amt",
    "parse_igmp",
    "parse_ipv4",
    "parse_mld",
]
