"""The capture's packet filter: IGMP in IPv4, MLD in IPv6 behind its Hop-by-Hop header."""

from __future__ import annotations

import socket
import struct

from mcastlab.packets import extract

IGMPV3_REPORT = bytes.fromhex("2200f9fb0000000104000000ef010101")
MLDV2_REPORT = bytes.fromhex("8f0000000000000104000000" + "ff1e" + "00" * 12 + "0001")


def ipv4(payload: bytes, proto: int = 2, options: bytes = b"\x94\x04\x00\x00") -> bytes:
    ihl = (20 + len(options)) // 4
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0xC0,
        ihl * 4 + len(payload),
        0,
        0,
        1,
        proto,
        0,
        socket.inet_aton("10.0.0.2"),
        socket.inet_aton("224.0.0.22"),
    )
    return hdr + options + payload


def ipv6(payload: bytes, chain: list[tuple[int, bytes]], last: int = 58) -> bytes:
    """An IPv6 packet with extension headers ``chain`` [(type, 6+8k option octets)]."""
    body = b""
    types = [t for t, _ in chain] + [last]
    for i, (_, opts) in enumerate(chain):
        body += bytes([types[i + 1], (len(opts) + 2) // 8 - 1]) + opts
    body += payload
    first = types[0]
    hdr = struct.pack(
        "!IHBB16s16s",
        0x60000000,
        len(body),
        first,
        1,
        socket.inet_pton(socket.AF_INET6, "fe80::2"),
        socket.inet_pton(socket.AF_INET6, "ff02::16"),
    )
    return hdr + body


ROUTER_ALERT_HBH = (0, b"\x05\x02\x00\x00\x01\x00")  # Router Alert (MLD), PadN


def test_igmp_with_router_alert_option() -> None:
    pkt = ipv4(IGMPV3_REPORT)
    assert extract(pkt + b"trailer") == (
        4,
        socket.inet_aton("10.0.0.2"),
        socket.inet_aton("224.0.0.22"),
        IGMPV3_REPORT,
    )


def test_mld_behind_hop_by_hop() -> None:
    fam, src, dst, msg = extract(ipv6(MLDV2_REPORT, [ROUTER_ALERT_HBH]))  # type: ignore[misc]
    assert (fam, msg) == (6, MLDV2_REPORT)
    assert socket.inet_ntop(socket.AF_INET6, src) == "fe80::2"
    assert socket.inet_ntop(socket.AF_INET6, dst) == "ff02::16"


def test_mld_behind_several_extension_headers() -> None:
    chain = [ROUTER_ALERT_HBH, (60, b"\x01\x0c" + bytes(12))]
    assert extract(ipv6(MLDV2_REPORT, chain)) is not None


def test_other_traffic_is_ignored() -> None:
    assert extract(ipv4(b"\x00" * 8, proto=17)) is None  # UDP
    echo = bytes([128]) + bytes(7)  # ICMPv6 echo request, not MLD
    assert extract(ipv6(echo, [ROUTER_ALERT_HBH])) is None
    assert extract(ipv6(b"\x00" * 8, [], last=17)) is None
    assert extract(b"\x45" + bytes(10)) is None  # too short


def test_truncated_headers_are_ignored() -> None:
    pkt = ipv6(MLDV2_REPORT, [ROUTER_ALERT_HBH])
    assert extract(pkt[:44]) is None  # payload length says more than is there
    v4 = bytearray(ipv4(IGMPV3_REPORT))
    v4[0] = 0x43  # IHL 12 octets: impossible
    assert extract(bytes(v4)) is None
