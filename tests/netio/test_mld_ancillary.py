"""What the MLD socket reads beside each message, without a socket: the packet information, the
hop limit and the Hop-by-Hop Options header's Router Alert (RFC 2711, RFC 8200 §4.3), as
recvmsg hands them over; forged, truncated and padded headers."""

from __future__ import annotations

import socket
import struct

import pytest

from mcastproxy.netio import sockopts
from mcastproxy.netio.mld import (
    ANCILLARY_SIZE_MLD,
    HOP_BY_HOP_ROUTER_ALERT,
    IPV6_HOPLIMIT,
    hop_by_hop_router_alert,
    read_ancillary,
)

V3_ROUTERS = socket.inet_pton(socket.AF_INET6, "ff02::16")
PKTINFO = (socket.IPPROTO_IPV6, sockopts.IPV6_PKTINFO, sockopts.IN6_PKTINFO.pack(V3_ROUTERS, 7))


def hop_limit(n: int) -> tuple[int, int, bytes]:
    return (socket.IPPROTO_IPV6, IPV6_HOPLIMIT, struct.pack("@i", n))


def hop_options(header: bytes) -> tuple[int, int, bytes]:
    return (socket.IPPROTO_IPV6, sockopts.IPV6_HOPOPTS, header)


def header(options: bytes) -> bytes:
    """A Hop-by-Hop Options header around ``options`` (padded to 8-octet units with Pad1)."""
    body = bytes([58, 0]) + options
    body += bytes(-len(body) % 8)
    return bytes([body[0], len(body) // 8 - 1]) + body[2:]


RA_MLD = bytes([5, 2, 0, 0])


@pytest.mark.parametrize(
    ("hbh", "alert"),
    [
        (HOP_BY_HOP_ROUTER_ALERT, True),  # what the proxy itself sends: RA, PadN
        (header(RA_MLD), True),
        (header(bytes([1, 0]) + RA_MLD), True),  # PadN first
        (header(bytes([0, 0]) + RA_MLD), True),  # Pad1, Pad1
        (header(bytes([5, 2, 0, 1])), False),  # RFC 2711: value 1 is RSVP, not MLD
        (header(bytes([5, 2, 0, 2])), False),  # value 2 is Active Networks
        (header(bytes([5, 3, 0, 0, 0])), False),  # a Router Alert of the wrong length
        (header(bytes([1, 4, 0, 0, 0, 0])), False),  # padding only
        (header(b""), False),
        (header(bytes([7, 6]) + bytes(6) + RA_MLD), True),  # another option first
        (header(RA_MLD)[:6], False),  # cut short: Hdr Ext Len says more than there is
        (header(bytes([1, 200])), False),  # an option longer than the header
        (bytes([58, 0, 5]) + bytes(5), False),  # a Router Alert of length 0
        (b"", False),
        (b"\x3a", False),
        (bytes([58, 1]) + bytes(14), False),  # 16 octets of Pad1
    ],
)
def test_router_alert_in_a_hop_by_hop_header(hbh: bytes, alert: bool) -> None:
    assert hop_by_hop_router_alert(hbh) is alert


def test_ancillary_of_a_well_formed_mld_message() -> None:
    got = read_ancillary([PKTINFO, hop_limit(1), hop_options(HOP_BY_HOP_ROUTER_ALERT)])
    assert got == (V3_ROUTERS, 7, 1, True)


@pytest.mark.parametrize(
    ("ancillary", "expected"),
    [
        ([PKTINFO, hop_limit(255)], (V3_ROUTERS, 7, 255, False)),  # no Hop-by-Hop header
        ([PKTINFO, hop_limit(64), hop_options(header(bytes([5, 2, 0, 1])))],
         (V3_ROUTERS, 7, 64, False)),
        ([hop_options(HOP_BY_HOP_ROUTER_ALERT)], (None, None, None, True)),
        ([], (None, None, None, False)),
        # Truncated values are ignored, never raised on.
        ([(socket.IPPROTO_IPV6, sockopts.IPV6_PKTINFO, b"\xff\x02"), (*hop_limit(1)[:2], b"")],
         (None, None, None, False)),
        # Another level, or another option at this level, is not ours.
        ([(socket.IPPROTO_IP, sockopts.IPV6_HOPOPTS, HOP_BY_HOP_ROUTER_ALERT), PKTINFO],
         (V3_ROUTERS, 7, None, False)),
        # Two headers (a forged packet): any with the MLD Router Alert counts.
        ([hop_options(header(b"")), hop_options(HOP_BY_HOP_ROUTER_ALERT)],
         (None, None, None, True)),
    ],
)
def test_ancillary_forged_and_truncated(ancillary: list, expected: tuple) -> None:
    assert read_ancillary(ancillary) == expected


def test_the_buffer_holds_the_largest_hop_by_hop_header() -> None:
    largest = socket.CMSG_SPACE(255 * 8 + 8)
    needed = socket.CMSG_SPACE(sockopts.IN6_PKTINFO.size) + socket.CMSG_SPACE(4) + largest
    assert needed <= ANCILLARY_SIZE_MLD
