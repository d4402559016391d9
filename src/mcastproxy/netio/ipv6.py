"""The IPv6 header in front of an MLD message, read from a frame the IP stack has not seen
(RFC 8200): the counterpart of ``wire.ipv4`` for the packet socket (``netio.frames``).

A raw ICMPv6 socket gets the ICMPv6 message after the kernel has checked the header chain,
and the rest as ancillary data; ``parse_ipv6`` does that checking for a packet socket and
hands on the same four facts the raw path does (``netio.mld``): source, destination, hop
limit, and whether a Hop-by-Hop Router Alert with the MLD value 0 was present (RFC 2711).

What it checks, each failure a ``WireError`` with its ``Drop``:

- version 6 and a whole fixed header (40 octets); a Payload Length that the frame holds
  (octets beyond it are link-layer padding, cut off). A Payload Length of 0 (a Jumbo
  Payload, RFC 2675) is refused: MLD is never sent as one;
- at most one extension header, Hop-by-Hop Options (RFC 8200 §4.3; MLD carries it for its
  Router Alert, RFC 9777 §5), whole, its options' lengths within it, a Router Alert of
  length 2 (RFC 2711 §2.1), and no option that RFC 8200 §4.2 says to discard the packet for
  (an unrecognised type whose two high-order bits are not 00);
- no Fragment header (RFC 8200 §4.5): MLD messages are never fragmented (an MLDv2 report
  that does not fit is sent as several, RFC 9777 §5.2.15), and reassembling is the IP
  stack's job, not a listener's;
- then ICMPv6 of an MLD type (130, 131, 132, 143), at least its 4-octet header.

The ICMPv6 checksum is the engine's to verify (``wire.parse_mld``), as for any message.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from mcastproxy.drops import Drop
from mcastproxy.wire import WireError

HEADER_SIZE: Final = 40
NEXT_HOP_BY_HOP: Final = 0
NEXT_FRAGMENT: Final = 44
NEXT_ICMPV6: Final = 58
MLD_TYPES: Final = frozenset({130, 131, 132, 143})  # RFC 9777 §5
OPTION_PAD1: Final = 0
OPTION_PADN: Final = 1
OPTION_ROUTER_ALERT: Final = 5  # RFC 2711 §2.1: type 5, length 2, value 0 for MLD
_KNOWN_OPTIONS: Final = frozenset({OPTION_PAD1, OPTION_PADN, OPTION_ROUTER_ALERT})
_header = struct.Struct("!IHBB16s16s")


class IPv6Packet(NamedTuple):
    """What ``parse_ipv6`` read: addresses packed; ``router_alert`` whether a Hop-by-Hop
    Router Alert with the MLD value 0 was present; ``payload`` the ICMPv6 message."""

    src: bytes
    dst: bytes
    hop_limit: int
    router_alert: bool
    payload: bytes


def parse_ipv6(data: bytes) -> IPv6Packet:
    """Read an IPv6 packet carrying MLD; ``WireError`` on anything else or malformed bytes."""
    n = len(data)
    if n < HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_HEADER, 0)
    first, length, next_header, hop_limit, src, dst = _header.unpack_from(data)
    if first >> 28 != 6:
        raise WireError(Drop.NOT_IPV6, 0)
    end = HEADER_SIZE + length
    if not length or end > n:
        raise WireError(Drop.BAD_PAYLOAD_LENGTH, 4)
    offset = HEADER_SIZE
    router_alert = False
    if next_header == NEXT_HOP_BY_HOP:
        if offset + 2 > end:
            raise WireError(Drop.TRUNCATED_HEADER, offset)
        size = (data[offset + 1] + 1) * 8  # Hdr Ext Len: 8-octet units after the first 8
        if offset + size > end:
            raise WireError(Drop.TRUNCATED_HEADER, offset)
        router_alert = hop_by_hop_options(data[offset : offset + size], offset)
        next_header = data[offset]
        offset += size
    if next_header == NEXT_FRAGMENT:
        raise WireError(Drop.FRAGMENT, offset)
    if next_header != NEXT_ICMPV6 or offset + 4 > end or data[offset] not in MLD_TYPES:
        raise WireError(Drop.NOT_MLD, offset)
    return IPv6Packet(src, dst, hop_limit, router_alert, data[offset:end])


def hop_by_hop_options(header: bytes, at: int = 0) -> bool:
    """Check a whole Hop-by-Hop Options header (RFC 8200 §4.2, §4.3) and say whether it holds
    a Router Alert with the MLD value 0 (RFC 2711 §2.1); ``WireError`` (offsets from ``at``)
    if an option overruns it, a Router Alert is not 2 octets long, or an option is one to
    discard the packet for."""
    router_alert = False
    offset = 2
    end = len(header)
    while offset < end:
        kind = header[offset]
        if kind == OPTION_PAD1:
            offset += 1
            continue
        if offset + 2 > end:
            raise WireError(Drop.TRUNCATED_OPTION, at + offset)
        length = header[offset + 1]
        if offset + 2 + length > end:
            raise WireError(Drop.BAD_OPTION_LENGTH, at + offset)
        if kind == OPTION_ROUTER_ALERT:
            if length != 2:
                raise WireError(Drop.BAD_ROUTER_ALERT, at + offset)
            # RFC 2711 §2.1: 0 is MLD; 1 (RSVP), 2 (Active Networks) and the rest are not.
            router_alert = router_alert or not (header[offset + 2] or header[offset + 3])
        elif kind not in _KNOWN_OPTIONS and kind >> 6:
            # RFC 8200 §4.2: the two high-order bits of an unrecognised type say what to do;
            # 00 is "skip over", anything else "discard the packet".
            raise WireError(Drop.UNRECOGNIZED_OPTION, at + offset)
        offset += 2 + length
    return router_alert
