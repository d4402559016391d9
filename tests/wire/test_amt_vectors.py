"""AMT codec (RFC 7450 §5.1): one table of (message, bytes) (``amt_vectors``, written by hand
from the RFC's figures) drives both directions, truncations, additions and bit flips."""

from __future__ import annotations

import pytest
from amt_vectors import D4, GW4, IDS, Q4, R4, VECTORS, Vector

from mcastproxy.drops import Drop, Stage
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AmtMessage,
    MembershipQuery,
    MembershipUpdate,
    MulticastData,
    RelayAdvertisement,
    RelayDiscovery,
    Request,
    Teardown,
    build_amt,
    gateway_address_field,
    gateway_address_of,
    parse_amt,
    parse_multicast_data,
)
from mcastproxy.wire.errors import WireError


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_build_gives_the_vector(v: Vector) -> None:
    assert build_amt(v.message).hex() == v.hex


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_parse_gives_the_message(v: Vector) -> None:
    assert parse_amt(v.data) == v.message


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_every_truncation_is_refused(v: Vector) -> None:
    data = v.data
    for length in range(len(data)):
        cut = data[:length]
        if isinstance(v.message, RelayAdvertisement) and length == 12:
            # §5.1.2: the length says the relay address's family, so an IPv6 one cut to 12
            # octets reads as an IPv4 one: the only truncation that is a message itself.
            assert parse_amt(cut) == RelayAdvertisement(v.message.nonce, data[8:12])
            continue
        with pytest.raises(WireError) as caught:
            parse_amt(cut)
        assert caught.value.reason.stage is Stage.MALFORMED
        assert 0 <= caught.value.offset <= length


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_octets_added_are_refused(v: Vector) -> None:
    # Every message's length follows from its type and contents: nothing may follow.
    for extra in (b"\x00", b"\x01\x02\x03\x04", bytes(18)):
        longer = v.data + extra
        if isinstance(v.message, RelayAdvertisement) and len(longer) == 24:
            continue  # an IPv4 advertisement plus 12 octets is an IPv6 one
        with pytest.raises(WireError) as caught:
            parse_amt(longer)
        assert caught.value.reason in (Drop.AMT_BAD_LENGTH, Drop.BAD_TOTAL_LENGTH,
                                       Drop.BAD_PAYLOAD_LENGTH)


# Reserved bits of each type's second octet, ignored on receipt (§5.1: sent as zero).
RESERVED_SECOND_OCTET = {1: 0xFF, 2: 0xFF, 3: 0xFE, 4: 0xFC, 5: 0xFF, 6: 0xFF, 7: 0xFF}


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_every_single_bit_flip_is_refused_or_read_as_written(v: Vector) -> None:
    """No checksum guards AMT, so a flipped bit may make another valid message; then that
    message is exactly what the bytes say: it builds back to them, reserved bits aside."""
    data = v.data
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            message = parse_amt(bytes(flipped))
        except WireError:
            continue
        expected = bytearray(flipped)
        expected[1] &= ~RESERVED_SECOND_OCTET[expected[0]] & 0xFF
        if expected[0] in (1, 2, 3):  # Discovery, Advertisement, Request: 2 more reserved
            expected[2:4] = b"\0\0"
        assert build_amt(message) == bytes(expected), f"bit {bit}"


def test_reserved_fields_are_ignored() -> None:
    data = bytes.fromhex("03" "ff" "ffff" "12345678")  # Request: reserved all ones, P set
    assert parse_amt(data) == Request(0x12345678, Family.V6)
    assert parse_amt(bytes.fromhex("01ffffff00000007")) == RelayDiscovery(7)
    assert parse_amt(bytes.fromhex("06ff" + D4)) == MulticastData(bytes.fromhex(D4))
    query = parse_amt(bytes.fromhex("04fc" "000000000001" "00000002" + Q4))
    assert query == MembershipQuery(1, 2, bytes.fromhex(Q4))


@pytest.mark.parametrize("version", [1, 2, 15])
def test_other_versions_are_refused(version: int) -> None:
    for v in VECTORS:
        data = bytes([version << 4 | v.data[0]]) + v.data[1:]
        with pytest.raises(WireError) as caught:
            parse_amt(data)
        assert (caught.value.reason, caught.value.offset) == (Drop.AMT_BAD_VERSION, 0)


@pytest.mark.parametrize("kind", [0, 8, 9, 15])
def test_unknown_types_are_refused(kind: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_amt(bytes([kind]) + bytes(40))
    assert (caught.value.reason, caught.value.offset) == (Drop.UNKNOWN_TYPE, 0)


@pytest.mark.parametrize(
    ("hex_data", "reason", "offset"),
    [
        ("", Drop.TRUNCATED_MESSAGE, 0),
        ("06", Drop.TRUNCATED_MESSAGE, 0),
        ("0600", Drop.TRUNCATED_MESSAGE, 2),
        ("0600" "55" + "00" * 31, Drop.NOT_IP, 2),  # version 5
        ("0600" "44000020" + "00" * 28, Drop.BAD_HEADER_LENGTH, 2),  # IHL 4
        ("0600" "45000010" + "00" * 12, Drop.BAD_TOTAL_LENGTH, 4),  # Total Length < header
        ("0600" "45000030" + "00" * 28, Drop.BAD_TOTAL_LENGTH, 4),  # says more than is there
        ("0600" "45000018" + "00" * 28, Drop.AMT_BAD_LENGTH, 26),  # says less
        ("0600" "6000000000100000" + "00" * 40, Drop.BAD_PAYLOAD_LENGTH, 6),
        ("0600" "6000000000000000" + "00" * 40, Drop.AMT_BAD_LENGTH, 42),
        ("020000000000000100", Drop.TRUNCATED_MESSAGE, 0),
        ("02000000000000010a000001ff", Drop.AMT_BAD_LENGTH, 8),  # a 5-octet relay address
        # G set but no Gateway fields: their 18 octets are taken from the packet, cut short.
        ("0401" "000000000001" "00000002" + Q4, Drop.BAD_TOTAL_LENGTH, 14),
        ("0400" "000000000001" "00000002", Drop.TRUNCATED_MESSAGE, 12),  # no query at all
        ("07" + "00" * 28, Drop.TRUNCATED_MESSAGE, 0),
        ("07" + "00" * 30, Drop.AMT_BAD_LENGTH, 30),
        ("0100000000000001" "00", Drop.AMT_BAD_LENGTH, 8),
    ],
)
def test_specific_malformations(hex_data: str, reason: Drop, offset: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_amt(bytes.fromhex(hex_data))
    assert (caught.value.reason, caught.value.offset) == (reason, offset)


def test_a_query_with_g_set_and_a_short_packet_is_refused_at_the_packet() -> None:
    # G set: the last 18 octets are the Gateway fields, whatever the packet says, and the
    # packet must end where they start.
    data = bytes.fromhex("0401" "000000000001" "00000002" + Q4 + "9c40") + GW4
    assert parse_amt(data).gateway_port == 40000  # type: ignore[union-attr]
    with pytest.raises(WireError) as caught:
        parse_amt(data[:-1])
    assert caught.value.reason is Drop.BAD_TOTAL_LENGTH


@pytest.mark.parametrize("v", [v for v in VECTORS if isinstance(v.message, MulticastData)],
                         ids=str)
def test_parse_multicast_data_is_the_packet(v: Vector) -> None:
    assert parse_multicast_data(v.data) == v.message.packet  # type: ignore[union-attr]


def test_parse_multicast_data_refuses_other_types() -> None:
    with pytest.raises(WireError) as caught:
        parse_multicast_data(VECTORS[0].data)
    assert caught.value.reason is Drop.UNKNOWN_TYPE
    with pytest.raises(WireError) as caught:
        parse_multicast_data(bytes.fromhex("1600") + bytes.fromhex(D4))
    assert caught.value.reason is Drop.AMT_BAD_VERSION


# Builders: what the wire cannot carry is the caller's mistake -------------------------------


@pytest.mark.parametrize(
    "message",
    [
        RelayDiscovery(-1),
        RelayDiscovery(1 << 32),
        RelayAdvertisement(1, bytes(5)),
        Request(1 << 32),
        MembershipQuery(1 << 48, 1, bytes.fromhex(Q4)),
        MembershipQuery(1, 1, bytes.fromhex(Q4), False, 40000, None),
        MembershipQuery(1, 1, bytes.fromhex(Q4), False, None, GW4),
        MembershipQuery(1, 1, bytes.fromhex(Q4), False, 70000, GW4),
        MembershipUpdate(-1, 1, bytes.fromhex(R4)),
        Teardown(1, 1, 40000, bytes(4)),
    ],
)
def test_builders_refuse_what_the_wire_cannot_carry(message: AmtMessage) -> None:
    with pytest.raises(ValueError, match=r"bits|octets|together"):
        build_amt(message)


def test_build_refuses_what_is_not_amt() -> None:
    with pytest.raises(TypeError):
        build_amt(("not", "amt"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ("c0000201", "000000000000000000000000c0000201"),
        ("20010db8000000000000000000000002", "20010db8000000000000000000000002"),
    ],
)
def test_gateway_address_field(address: str, field: str) -> None:
    assert gateway_address_field(bytes.fromhex(address)).hex() == field
    assert gateway_address_of(bytes.fromhex(field)).hex() == address


def test_gateway_address_of_reads_mapped_addresses_and_leaves_loopback() -> None:
    assert gateway_address_of(bytes.fromhex("00000000000000000000ffffc0000201")).hex() == "c0000201"
    assert gateway_address_of(bytes(15) + b"\x01") == bytes(15) + b"\x01"  # ::1
    assert gateway_address_of(bytes(16)) == bytes(16)
    with pytest.raises(ValueError, match="16 octets"):
        gateway_address_of(bytes(4))
    with pytest.raises(ValueError, match="4 or 16"):
        gateway_address_field(bytes(5))
