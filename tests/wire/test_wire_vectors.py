"""One table of (message, bytes) vectors drives both directions, truncations and corruptions.

Most vectors' bytes were produced by scapy 2.8 (``scapy.layers.igmp``, ``scapy.layers.inet6``),
independently of our builder; ``test_scapy_still_builds_the_vectors`` rebuilds them with
scapy to show where they came from. The two with aux data were assembled by hand (scapy
cannot express aux data: see test_wire_scapy.py) with the reference checksum of
``wire_strategies``.
"""

from __future__ import annotations

import logging
import warnings
from typing import NamedTuple

import pytest
from wire_strategies import (
    ZERO4,
    ZERO16,
    addr,
    build,
    parse,
    ref_checksum,
    ref_pseudo_header,
    with_igmp_checksum,
    with_mld_checksum,
)

from mcastproxy.wire import (
    GroupRecord,
    Leave,
    Message,
    Query,
    RecordType,
    Report,
    WireError,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_mld,
)

IS_IN = RecordType.MODE_IS_INCLUDE
IS_EX = RecordType.MODE_IS_EXCLUDE
TO_IN = RecordType.CHANGE_TO_INCLUDE_MODE
TO_EX = RecordType.CHANGE_TO_EXCLUDE_MODE
ALLOW = RecordType.ALLOW_NEW_SOURCES
BLOCK = RecordType.BLOCK_OLD_SOURCES


class Vector(NamedTuple):
    name: str
    family: str  # "igmp" or "mld"
    message: Message
    hex: str
    src: bytes = b""  # MLD only: the IPv6 addresses the checksum covers
    dst: bytes = b""

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


LL1, LL2 = addr("fe80::1"), addr("fe80::2")

VECTORS = [
    # IGMP (RFC 1112, RFC 2236, RFC 9776)
    Vector("igmpv1 query", "igmp", Query(1, ZERO4, 10.0), "1100eeff00000000"),
    Vector("igmpv2 general query", "igmp", Query(2, ZERO4, 10.0), "1164ee9b00000000"),
    Vector(
        "igmpv2 group-specific query", "igmp", Query(2, addr("239.1.2.3"), 1.0), "110afdf0ef010203"
    ),
    Vector(
        "igmpv3 general query qrv 2 qqi 125",
        "igmp",
        Query(3, ZERO4, 10.0, qrv=2, qqi=125),
        "1164ec1e00000000027d0000",
    ),
    Vector(
        "igmpv3 group-and-source query, S flag, QRV 7, max codes",
        "igmp",
        # Max Resp Code 0xFF: (0xF | 0x10) << 10 = 31744 tenths; QQIC 0x8A: 0x1A << 3 = 208 s.
        Query(3, addr("232.1.1.1"), 3174.4, (addr("10.0.0.1"), addr("192.0.2.9")), True, 7, 208),
        "11ff2967e80101010f8a00020a000001c0000209",
    ),
    Vector(
        "igmpv1 report",
        "igmp",
        Report(1, (GroupRecord(IS_EX, addr("224.1.1.1")),)),
        "12000cfde0010101",
    ),
    Vector(
        "igmpv2 report",
        "igmp",
        Report(2, (GroupRecord(IS_EX, addr("239.255.0.1")),)),
        "1600f9feefff0001",
    ),
    Vector("igmpv2 leave", "igmp", Leave(addr("239.255.0.1")), "1700f8feefff0001"),
    Vector(
        "igmpv3 report, three records",
        "igmp",
        Report(
            3,
            (
                GroupRecord(IS_IN, addr("232.1.1.1"), (addr("10.0.0.1"), addr("10.0.0.2"))),
                GroupRecord(TO_EX, addr("239.0.0.1")),
                GroupRecord(BLOCK, addr("232.2.2.2"), (addr("10.9.9.9"),)),
            ),
        ),
        "2200e9da0000000301000002e80101010a0000010a00000204000000ef00000106000001e80202020a090909",
    ),
    Vector(
        "igmpv3 report with aux data (hand-assembled)",
        "igmp",
        Report(
            3, (GroupRecord(ALLOW, addr("232.1.1.1"), (addr("10.0.0.1"),), b"\xde\xad\xbe\xef"),)
        ),
        "2200485b0000000105010001e80101010a000001deadbeef",
    ),
    # MLD (RFC 2710, RFC 9777)
    Vector(
        "mldv1 general query",
        "mld",
        Query(1, ZERO16, 10.0),
        "820059172710000000000000000000000000000000000000",
        LL1,
        addr("ff02::1"),
    ),
    Vector(
        "mldv1 address-specific query",
        "mld",
        Query(1, addr("ff0e::1:3"), 1.0),
        "82007d1d03e80000ff0e0000000000000000000000010003",
        LL1,
        addr("ff0e::1:3"),
    ),
    Vector(
        "mldv2 general query qrv 2 qqi 125",
        "mld",
        Query(2, ZERO16, 10.0, qrv=2, qqi=125),
        "820056962710000000000000000000000000000000000000027d0000",
        LL1,
        addr("ff02::1"),
    ),
    Vector(
        "mldv2 address-and-source query, S flag, QRV 7, max codes",
        "mld",
        # Maximum Response Code 0xFFFF: 0x1FFF << 10 = 8387584 ms; QQIC 0xFF: 31744 s.
        Query(
            2,
            addr("ff3e::8000:1"),
            8387.584,
            (addr("2001:db8::1"), addr("2001:db8::2")),
            True,
            7,
            31744,
        ),
        "82001510ffff0000ff3e00000000000000000000800000010fff000220010db8000000000000000000000001"
        "20010db8000000000000000000000002",
        LL1,
        addr("ff3e::8000:1"),
    ),
    Vector(
        "mldv1 report",
        "mld",
        Report(1, (GroupRecord(IS_EX, addr("ff3e::1234")),)),
        "83005b4400000000ff3e0000000000000000000000001234",
        LL2,
        addr("ff3e::1234"),
    ),
    Vector(
        "mldv1 done",
        "mld",
        Leave(addr("ff3e::1234")),
        "84006cb200000000ff3e0000000000000000000000001234",
        LL2,
        addr("ff02::2"),
    ),
    Vector(
        "mldv2 report, two records",
        "mld",
        Report(
            2,
            (
                GroupRecord(IS_IN, addr("ff3e::1"), (addr("2001:db8::1"), addr("2001:db8::2"))),
                GroupRecord(TO_IN, addr("ff3e::2")),
            ),
        ),
        "8f0014df0000000201000002ff3e000000000000000000000000000120010db8000000000000000000000001"
        "20010db800000000000000000000000203000000ff3e0000000000000000000000000002",
        LL2,
        addr("ff02::16"),
    ),
    Vector(
        "mldv2 report with aux data (hand-assembled)",
        "mld",
        Report(
            2,
            (GroupRecord(ALLOW, addr("ff3e::1"), (addr("2001:db8::9"),), bytes(range(1, 9))),),
        ),
        "8f0030db0000000105020001ff3e000000000000000000000000000120010db8000000000000000000000009"
        "0102030405060708",
        LL2,
        addr("ff02::16"),
    ),
]

IDS = [v.name for v in VECTORS]
BY_NAME = {v.name: v for v in VECTORS}


def _parse(v: Vector, data: bytes) -> object:
    return parse(v.family, data, v.src, v.dst)


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_build_gives_the_vector(v: Vector) -> None:
    assert build(v.family, v.message, v.src, v.dst).hex() == v.hex


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_parse_gives_the_message(v: Vector) -> None:
    assert _parse(v, v.data) == v.message
    assert _parse(v, v.data) == v.message  # a second time, through a record plan if any


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_vector_checksums_are_right_by_the_reference(v: Vector) -> None:
    covered = v.data if v.family == "igmp" else ref_pseudo_header(v.src, v.dst, len(v.data))
    if v.family == "mld":
        covered += v.data
    assert ref_checksum(covered) == 0


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_every_truncation_is_refused(v: Vector) -> None:
    data = v.data
    for length in range(len(data)):
        with pytest.raises(WireError):
            _parse(v, data[:length])


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_a_wrong_checksum_is_refused(v: Vector) -> None:
    data = bytearray(v.data)
    data[3] ^= 0x01
    with pytest.raises(WireError, match="checksum") as caught:
        _parse(v, bytes(data))
    assert caught.value.reason == "bad checksum"
    assert caught.value.offset == 2


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_every_single_bit_flip_is_refused(v: Vector) -> None:
    data = v.data
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(WireError):
            _parse(v, bytes(flipped))


@pytest.mark.parametrize("v", [v for v in VECTORS if v.family == "mld"], ids=str)
def test_mld_checksum_covers_the_pseudo_header(v: Vector) -> None:
    with pytest.raises(WireError, match="checksum"):
        parse_mld(v.data, addr("fe80::99"), v.dst)
    with pytest.raises(WireError, match="checksum"):
        parse_mld(v.data, v.src, addr("ff02::99"))


def _length_sets_version(v: Vector) -> bool:
    """An 8-octet IGMP query or a 24-octet MLD query: more octets would make it v3 / v2."""
    if not isinstance(v.message, Query):
        return False
    return v.message.version <= (2 if v.family == "igmp" else 1)


EXTENSIBLE = [v for v in VECTORS if not _length_sets_version(v)]


@pytest.mark.parametrize("v", EXTENSIBLE, ids=[v.name for v in EXTENSIBLE])
def test_additional_octets_are_ignored(v: Vector) -> None:
    # RFC 2236 §2, RFC 2710 §3, RFC 9776 §4.1.10 §4.2.12, RFC 9777 §5.1.12 §5.2.12: octets
    # past the defined fields count in the checksum and are otherwise ignored.
    longer = v.data + b"\x01\x02\x03\x04\x05"
    if v.family == "igmp":
        longer = with_igmp_checksum(longer)
    else:
        longer = with_mld_checksum(longer, v.src, v.dst)
    assert _parse(v, longer) == v.message


def test_scapy_still_builds_the_vectors() -> None:
    """Where the vectors came from: scapy builds the same bytes from the same fields."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("scapy").setLevel(logging.ERROR)
        from scapy.layers.igmp import IGMP, IGMPv3_MQ  # noqa: PLC0415
        from scapy.layers.inet6 import ICMPv6MLDone, ICMPv6MLQuery2, IPv6  # noqa: PLC0415

    assert (
        bytes(IGMP(type=0x11, mrcode=10, gaddr="239.1.2.3")).hex()
        == BY_NAME["igmpv2 group-specific query"].hex
    )
    scapy_v3 = IGMPv3_MQ(
        mrcode=31744, gaddr="232.1.1.1", s=1, qrv=7, qqic=0x8A, srcaddrs=["10.0.0.1", "192.0.2.9"]
    )
    assert (
        bytes(scapy_v3).hex()
        == BY_NAME["igmpv3 group-and-source query, S flag, QRV 7, max codes"].hex
    )
    done = IPv6(src="fe80::2", dst="ff02::2") / ICMPv6MLDone(mladdr="ff3e::1234")
    assert bytes(done)[40:].hex() == BY_NAME["mldv1 done"].hex
    query = IPv6(src="fe80::1", dst="ff3e::8000:1") / ICMPv6MLQuery2(
        mrd=0xFFFF, mladdr="ff3e::8000:1", S=1, QRV=7, QQIC=0xFF,
        sources=["2001:db8::1", "2001:db8::2"],
    )  # fmt: skip
    assert (
        bytes(query)[40:].hex()
        == BY_NAME["mldv2 address-and-source query, S flag, QRV 7, max codes"].hex
    )


# Specific rules -------------------------------------------------------------------------


@pytest.mark.parametrize("length", [9, 10, 11])
def test_igmp_query_of_9_to_11_octets_is_refused(length: int) -> None:
    # RFC 9776 §7.1: "Query Messages that do not match any of the above conditions (e.g.,
    # a Query of length 10 octets) MUST be silently ignored."
    data = with_igmp_checksum(bytes.fromhex("1164000000000000") + bytes(length - 8))
    with pytest.raises(WireError) as caught:
        parse_igmp(data)
    assert caught.value.reason == "bad query length"


@pytest.mark.parametrize("length", [25, 26, 27])
def test_mld_query_of_25_to_27_octets_is_refused(length: int) -> None:
    # RFC 9777 §8.1: only 24 (MLDv1) or at least 28 (MLDv2) octets make a query.
    data = with_mld_checksum(bytes([130]) + bytes(length - 1), LL1, addr("ff02::1"))
    with pytest.raises(WireError) as caught:
        parse_mld(data, LL1, addr("ff02::1"))
    assert caught.value.reason == "bad query length"


def test_igmpv1_query_group_is_ignored() -> None:
    # RFC 1112 App. I: the v1 query's group field is "ignored when received".
    data = with_igmp_checksum(bytes.fromhex("11000000e0010101"))
    assert parse_igmp(data) == Query(1, ZERO4, 10.0)


def test_unknown_igmp_type_is_refused() -> None:
    data = with_igmp_checksum(bytes.fromhex("1300000000000000"))  # DVMRP
    with pytest.raises(WireError) as caught:
        parse_igmp(data)
    assert (caught.value.reason, caught.value.offset) == ("unknown type", 0)


@pytest.mark.parametrize("icmpv6_type", [1, 128, 129, 133, 135, 151])
def test_other_icmpv6_types_are_not_mld(icmpv6_type: int) -> None:
    data = with_mld_checksum(bytes([icmpv6_type]) + bytes(23), LL1, LL2)
    with pytest.raises(WireError) as caught:
        parse_mld(data, LL1, LL2)
    assert caught.value.reason == "not MLD"


def test_igmp_unknown_record_types_are_skipped() -> None:
    # RFC 9776 §4.2.13: "Unrecognized Record Type values MUST be silently ignored."
    data = with_igmp_checksum(
        bytes.fromhex("220000000000000307000001e80101010a00000100000000e8020202")
        + bytes.fromhex("02000000e8030303")
    )
    expected = Report(3, (GroupRecord(IS_EX, addr("232.3.3.3")),))
    assert parse_igmp(data) == expected
    assert parse_igmp(data) == expected


def test_mld_unknown_record_types_are_skipped() -> None:
    # RFC 9777 §5.2.13: ignored, "with the rest of the report being processed".
    group1, group2 = addr("ff3e::1"), addr("ff3e::2")
    data = with_mld_checksum(
        bytes.fromhex("8f00000000000002") + bytes.fromhex("09000000") + group1
        + bytes.fromhex("05000000") + group2,
        LL2, addr("ff02::16"),
    )  # fmt: skip
    expected = Report(2, (GroupRecord(ALLOW, group2),))
    for _ in range(2):
        assert parse_mld(data, LL2, addr("ff02::16")) == expected


def test_flags_and_reserved_fields_are_ignored() -> None:
    # RFC 9776 §4.1.4 §4.2.1 §4.2.3: Reserved and Flags are ignored on reception.
    query = with_igmp_checksum(bytes.fromhex("1164000000000000f27d0000"))
    assert parse_igmp(query) == Query(3, ZERO4, 10.0, (), False, 2, 125)
    report = with_igmp_checksum(bytes.fromhex("22ff0000ffff000104000000ef000001"))
    assert parse_igmp(report) == Report(3, (GroupRecord(TO_EX, addr("239.0.0.1")),))


@pytest.mark.parametrize(
    ("hex_data", "reason", "offset"),
    [
        ("22000000000000020400000aef000001", "truncated source list", 16),
        ("220000000000000204000000ef0000010400", "truncated group record", 16),
        ("220000000000000105020001ef0000010a000001deadbeef", "truncated aux data", 20),
        ("1164000000000000000000030a0000010a000002", "truncated source list", 12),
    ],
)
def test_igmp_errors_say_where(hex_data: str, reason: str, offset: int) -> None:
    with pytest.raises(WireError) as caught:
        parse_igmp(with_igmp_checksum(bytes.fromhex(hex_data)))
    assert (caught.value.reason, caught.value.offset) == (reason, offset)
    assert str(caught.value) == f"{reason} at offset {offset}"
    assert isinstance(caught.value, ValueError)


def test_plans_check_the_shape_they_guess() -> None:
    """Two reports of the same length and record count but different source counts."""
    group, s1, s2, s3 = addr("232.0.0.1"), addr("10.0.0.1"), addr("10.0.0.2"), addr("10.0.0.3")
    first = Report(3, (GroupRecord(IS_IN, group, (s1,)), GroupRecord(IS_IN, group, (s2, s3))))
    second = Report(3, (GroupRecord(IS_IN, group, (s1, s2)), GroupRecord(IS_IN, group, (s3,))))
    one, two = build_igmp(first), build_igmp(second)
    assert len(one) == len(two)
    for _ in range(3):
        assert parse_igmp(one) == first
        assert parse_igmp(two) == second
    # A plan for a known shape meets an unknown record type: the walk takes over.
    unknown = bytearray(one)
    unknown[8] = 0x42
    assert parse_igmp(with_igmp_checksum(bytes(unknown))) == Report(3, (first.records[1],))


# Caller misuse: ValueError from the builders ----------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Report(2, ()),
        Report(2, (GroupRecord(IS_EX, ZERO4), GroupRecord(IS_EX, ZERO4))),
        Report(1, (GroupRecord(IS_EX, ZERO4, (ZERO4,)),)),
        Report(2, (GroupRecord(TO_EX, ZERO4),)),
        Report(4, ()),
        Report(3, (GroupRecord(IS_EX, bytes(16)),)),
        Report(3, (GroupRecord(IS_EX, ZERO4, (bytes(3), bytes(5))),)),
        Report(3, (GroupRecord(IS_EX, ZERO4, (bytes(16),)),)),
        Report(3, (GroupRecord(IS_EX, ZERO4, (), b"abc"),)),
        Report(3, (GroupRecord(7, ZERO4),)),  # type: ignore[arg-type]  # no such record type
        Query(1, addr("239.1.1.1"), 10.0),
        Query(2, ZERO4, 0.0),
        Query(2, ZERO4, 10.0, qrv=2),
        Query(1, ZERO4, 10.0, (addr("10.0.0.1"),)),
        Query(4, ZERO4, 10.0),
        Query(3, ZERO4, -1.0),
        Query(3, ZERO4, 10.0, qrv=-1),
        Leave(bytes(16)),
    ],
    ids=str,
)
def test_build_igmp_refuses_what_the_wire_cannot_say(message: Message) -> None:
    with pytest.raises(ValueError) as caught:  # noqa: PT011 (any caller-misuse message)
        build_igmp(message)
    assert not isinstance(caught.value, WireError)


@pytest.mark.parametrize(
    "message",
    [
        Report(1, ()),
        Report(1, (GroupRecord(IS_IN, ZERO16),)),
        Report(3, ()),
        Report(2, (GroupRecord(IS_EX, ZERO4),)),
        Query(1, ZERO16, 1.0, s_flag=True),
        Query(3, ZERO16, 1.0),
        Query(2, ZERO4, 1.0),
        Leave(ZERO4),
    ],
    ids=str,
)
def test_build_mld_refuses_what_the_wire_cannot_say(message: Message) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build_mld(message, LL1, LL2)
    with pytest.raises(ValueError):  # noqa: PT011
        build_mld(Leave(ZERO16), ZERO4, LL2)


def test_times_round_down_and_clamp() -> None:
    # Largest representable not above: 130 tenths -> 128 (code 0x80).
    assert parse_igmp(build_igmp(Query(3, ZERO4, 13.0))).max_resp == 12.8
    assert parse_igmp(build_igmp(Query(3, ZERO4, 1e9, qqi=10**9))) == Query(
        3, ZERO4, 3174.4, qqi=31744
    )
    assert parse_igmp(build_igmp(Query(2, ZERO4, 99.0))).max_resp == 25.5
    assert parse_igmp(build_igmp(Query(2, ZERO4, 0.35))).max_resp == 0.3
    # 70007 ms is between codes for 70000 (0x9117: 0x1117 << 4) and 70016: round down.
    q = parse_mld(build_mld(Query(2, ZERO16, 70.007), LL1, LL2), LL1, LL2)
    assert q.max_resp == 70.0
    assert parse_mld(build_mld(Query(1, ZERO16, 100.0), LL1, LL2), LL1, LL2).max_resp == 65.535
    # RFC 9776 §4.1.6 / RFC 9777 §5.1.8: a Robustness Variable above 7 goes out as QRV 0.
    assert parse_igmp(build_igmp(Query(3, ZERO4, 1.0, qrv=9))).qrv == 0
