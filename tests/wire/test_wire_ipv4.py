"""The IPv4 header around IGMP (RFC 791, Router Alert RFC 2113)."""

from __future__ import annotations

import pytest
from wire_strategies import addr

from mcastproxy.wire import IPv4Packet, WireError, build_igmp, build_ipv4, inet_checksum, parse_ipv4
from mcastproxy.wire.messages import Leave

SRC, DST = addr("10.1.1.7"), addr("224.0.0.2")
PAYLOAD = build_igmp(Leave(addr("239.1.1.1")))


def _header(hex_options: str = "", *, total_extra: int = 0, fragment: int = 0x4000) -> bytes:
    """A header with the given options and a correct checksum, then PAYLOAD."""
    options = bytes.fromhex(hex_options)
    size = 20 + len(options)
    assert size % 4 == 0
    total = size + len(PAYLOAD) + total_extra
    head = bytearray(
        bytes([0x40 | size // 4, 0xC0])
        + total.to_bytes(2, "big")
        + b"\0\0"
        + fragment.to_bytes(2, "big")
        + bytes([1, 2, 0, 0])
        + SRC
        + DST
        + options
    )
    head[10:12] = inet_checksum(bytes(head)).to_bytes(2, "big")
    return bytes(head) + PAYLOAD


def test_igmp_defaults() -> None:
    # RFC 9776 §4: TTL 1, Internetwork Control, Router Alert; IP protocol 2.
    packet = build_ipv4(SRC, DST, PAYLOAD)
    assert packet[:2] == b"\x46\xc0"  # IHL 6 words; Precedence 6
    assert int.from_bytes(packet[2:4], "big") == 24 + len(PAYLOAD)
    assert packet[6:8] == b"\x40\x00"  # Don't Fragment, offset 0
    assert (packet[8], packet[9]) == (1, 2)
    assert packet[20:24] == b"\x94\x04\x00\x00"
    assert inet_checksum(packet[:24]) == 0
    assert parse_ipv4(packet) == IPv4Packet(SRC, DST, 1, 2, True, PAYLOAD)


def test_without_router_alert() -> None:
    packet = build_ipv4(SRC, DST, PAYLOAD, router_alert=False, ttl=64, tos=0, protocol=17)
    assert packet[0] == 0x45
    assert parse_ipv4(packet) == IPv4Packet(SRC, DST, 64, 17, False, PAYLOAD)


@pytest.mark.parametrize(
    ("options", "alert"),
    [
        ("", False),
        ("94040000", True),
        ("01940400", None),  # NOP then a Router Alert cut short by the header's end
        ("0194040000000000", True),  # NOP, Router Alert, End of List padding
        ("94040001", False),  # RFC 2113: values 1-65535 are reserved, not "examine"
        ("00940400", False),  # after End of List nothing is read
        ("0101010194040000", True),
        ("070704000000000194040000", True),  # Record Route, NOP, Router Alert
    ],
)
def test_options(options: str, alert: bool | None) -> None:
    data = _header(options)
    if alert is None:
        with pytest.raises(WireError):
            parse_ipv4(data)
    else:
        assert parse_ipv4(data).router_alert is alert
        assert parse_ipv4(data).payload == PAYLOAD


@pytest.mark.parametrize(
    ("data", "reason", "offset"),
    [
        (_header("94020000"), "bad router alert", 20),
        (_header("94050000"), "bad option length", 20),
        (_header("07010000"), "bad option length", 20),
        (_header("01010194"), "truncated option", 23),
        (_header(total_extra=1), "bad total length", 2),
        (_header(fragment=0x2000), "fragment", 6),  # More Fragments
        (_header(fragment=0x0001), "fragment", 6),  # an offset
        (b"\x65" + _header()[1:], "not IPv4", 0),
        (b"\x44" + _header()[1:], "bad header length", 0),
        (_header()[:19], "truncated header", 0),
    ],
)
def test_errors(data: bytes, reason: str, offset: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_ipv4(data)
    assert (caught.value.reason, caught.value.offset) == (reason, offset)


def test_header_checksum_is_verified() -> None:
    data = bytearray(build_ipv4(SRC, DST, PAYLOAD))
    data[8] = 2  # TTL 2
    with pytest.raises(WireError) as caught:
        parse_ipv4(bytes(data))
    assert (caught.value.reason, caught.value.offset) == ("bad header checksum", 10)


def test_every_truncation_is_refused() -> None:
    data = build_ipv4(SRC, DST, PAYLOAD)
    for length in range(len(data)):
        with pytest.raises(WireError):
            parse_ipv4(data[:length])


def test_trailing_padding_is_cut_off() -> None:
    # Ethernet pads short frames; the raw socket may hand the padding over.
    assert parse_ipv4(build_ipv4(SRC, DST, PAYLOAD) + bytes(18)).payload == PAYLOAD


@pytest.mark.parametrize(
    "kwargs",
    [
        {"src": bytes(16)},
        {"dst": b"\0"},
        {"ttl": 256},
        {"tos": -1},
        {"protocol": 300},
        {"payload": bytes(70000)},
    ],
    ids=str,
)
def test_build_refuses_misuse(kwargs: dict) -> None:
    arguments = {"src": SRC, "dst": DST, "payload": PAYLOAD} | kwargs
    with pytest.raises(ValueError):  # noqa: PT011
        build_ipv4(**arguments)
