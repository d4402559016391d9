"""The IPv4 header around IGMP, for raw sends and receives (RFC 791), with the Router Alert
option (RFC 2113).

IGMP messages go out with TTL 1, IP Precedence of Internetwork Control (TOS 0xC0) and the
Router Alert option (RFC 9776 §4), which ``build_ipv4`` does by default; the header has
identification 0 and Don't Fragment set, as Linux sends its own IGMP, and its checksum.

``parse_ipv4`` reads what a raw IPv4 socket hands over: the header as received (Linux keeps
Total Length in network order), then the payload. It checks version, header length, total
length against the data (trailing link-layer padding is cut off), the header checksum and
the options' lengths, and refuses fragments: a fragment is not a whole IGMP message, and the
kernel reassembles before raw delivery anyway.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from mcastproxy.drops import Drop
from mcastproxy.wire.checksum import fold
from mcastproxy.wire.errors import WireError

PROTOCOL_IGMP: Final = 2
"""IP protocol number of IGMP (RFC 9776 §4)."""

TOS_INTERNETWORK_CONTROL: Final = 0xC0
"""IP Precedence 6, Internetwork Control (RFC 9776 §4)."""

ROUTER_ALERT: Final = b"\x94\x04\x00\x00"
"""RFC 2113 §2.1: type 148 (copied, class 0, number 20), length 4, value 0 ("Router shall
examine packet")."""

OPTION_END: Final = 0  # RFC 791: End of Option List
OPTION_NOP: Final = 1  # RFC 791: No Operation
OPTION_ROUTER_ALERT: Final = 148

HEADER_SIZE: Final = 20
"""An IPv4 header without options."""

_DONT_FRAGMENT: Final = 0x4000
_pack_header = struct.Struct("!BBHHHBBH4s4s").pack
_from_bytes = int.from_bytes
_new = tuple.__new__


class IPv4Packet(NamedTuple):
    """What ``parse_ipv4`` read: addresses packed, ``router_alert`` whether the header
    carries a Router Alert option asking routers to examine the packet (value 0)."""

    src: bytes
    dst: bytes
    ttl: int
    protocol: int
    router_alert: bool
    payload: bytes


def build_ipv4(
    src: bytes,
    dst: bytes,
    payload: bytes,
    *,
    ttl: int = 1,
    router_alert: bool = True,
    tos: int = TOS_INTERNETWORK_CONTROL,
    protocol: int = PROTOCOL_IGMP,
) -> bytes:
    """An IPv4 packet: header (with checksum, and Router Alert if asked) then ``payload``."""
    if len(src) != 4 or len(dst) != 4:
        raise ValueError("IPv4 addresses are 4 octets")
    if not (0 <= ttl <= 255 and 0 <= tos <= 255 and 0 <= protocol <= 255):
        raise ValueError("ttl, tos and protocol are octets")
    header_size = HEADER_SIZE + 4 if router_alert else HEADER_SIZE
    total = header_size + len(payload)
    if total > 0xFFFF:
        raise ValueError(f"packet of {total} octets is too long for IPv4")
    head = _pack_header(
        0x40 | (header_size >> 2), tos, total, 0, _DONT_FRAGMENT, ttl, protocol, 0, src, dst
    )
    if router_alert:
        head += ROUTER_ALERT
    # RFC 791: the header checksum covers the header only (see checksum for the byte order).
    checksum = fold(_from_bytes(head, "little")).to_bytes(2, "little")
    return b"".join((head[:10], checksum, head[12:], payload))


def parse_ipv4(data: bytes) -> IPv4Packet:
    """Read an IPv4 packet as a raw socket delivers it; ``WireError`` on malformed bytes."""
    # Octet by octet rather than one struct call: compiled (mypyc), indexing bytes is a
    # machine operation and a struct's tuple of ten is not; in Python the two cost the same.
    n = len(data)
    if n < HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_HEADER, 0)
    version_ihl = data[0]
    if version_ihl >> 4 != 4:
        raise WireError(Drop.NOT_IPV4, 0)
    header_size = (version_ihl & 0x0F) << 2
    if header_size < HEADER_SIZE:
        raise WireError(Drop.BAD_HEADER_LENGTH, 0)
    if header_size > n:
        raise WireError(Drop.TRUNCATED_HEADER, 0)
    total = (data[2] << 8) | data[3]
    if total < header_size or total > n:
        raise WireError(Drop.BAD_TOTAL_LENGTH, 2)
    header = data[:header_size]
    checked = _from_bytes(header, "little")
    if checked % 0xFFFF or not checked:
        raise WireError(Drop.BAD_HEADER_CHECKSUM, 10)
    if data[6] & 0x3F or data[7]:  # More Fragments, or a Fragment Offset (0x3FFF)
        raise WireError(Drop.FRAGMENT, 6)
    if header_size == HEADER_SIZE:
        router_alert = False
    elif header_size == HEADER_SIZE + 4 and header[HEADER_SIZE:] == ROUTER_ALERT:
        router_alert = True  # the usual case, without walking
    else:
        router_alert = _walk_options(header, header_size)
    return _new(IPv4Packet, (data[12:16], data[16:20], data[8], data[9], router_alert,
                             data[header_size:total]))


def _walk_options(header: bytes, end: int) -> bool:
    """Check the options' lengths (RFC 791 §3.1); True if a Router Alert says value 0."""
    router_alert = False
    offset = HEADER_SIZE
    while offset < end:
        kind = header[offset]
        if kind == OPTION_END:
            break
        if kind == OPTION_NOP:
            offset += 1
            continue
        if offset + 1 >= end:
            raise WireError(Drop.TRUNCATED_OPTION, offset)
        length = header[offset + 1]
        if length < 2 or offset + length > end:
            raise WireError(Drop.BAD_OPTION_LENGTH, offset)
        if kind == OPTION_ROUTER_ALERT:
            if length != 4:
                raise WireError(Drop.BAD_ROUTER_ALERT, offset)
            # RFC 2113 §2.1: value 0 asks routers to examine the packet; 1-65535 are
            # reserved, and a reserved value does not ask anything of us.
            if header[offset + 2] == 0 and header[offset + 3] == 0:
                router_alert = True
        offset += length
    return router_alert
