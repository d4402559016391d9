"""Reports as full as an MTU allows (RFC 9776 §4.2.16, RFC 9777 §5.2.15): the builders take
many records, give exactly the octets the record layout says, and parse back to the same."""

from __future__ import annotations

import pytest

from mcastproxy.wire import (
    GroupRecord,
    RecordType,
    Report,
    build_igmp,
    build_ipv4,
    build_mld,
    parse_igmp,
    parse_ipv4,
    parse_mld,
)

SRC6 = bytes.fromhex("fe800000000000000000000000000001")
DST6 = bytes.fromhex("ff020000000000000000000000000016")


def n4(base: int, i: int) -> bytes:
    return (base + i).to_bytes(4)


def n16(base: int, i: int) -> bytes:
    return (base + i).to_bytes(16)


def test_igmpv3_report_of_183_records_fills_an_ethernet_mtu() -> None:
    # (1500 - 24 - 8) // 8 = 183 records without sources.
    records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, n4(0xEF010000, i))
                    for i in range(183))
    payload = build_igmp(Report(3, records))
    assert len(payload) == 8 + 183 * 8 == 1472
    assert payload[6:8] == (183).to_bytes(2)  # Number of Group Records
    assert parse_igmp(payload) == Report(3, records)
    packet = build_ipv4(bytes((192, 0, 2, 1)), bytes((224, 0, 0, 22)), payload)
    assert len(packet) == 1496  # within an MTU of 1500
    assert parse_ipv4(packet).payload == payload


@pytest.mark.parametrize("rtype", [RecordType.MODE_IS_INCLUDE, RecordType.BLOCK_OLD_SOURCES])
def test_igmpv3_record_of_365_sources_fills_an_ethernet_mtu(rtype: RecordType) -> None:
    # (1500 - 24 - 8 - 8) // 4 = 365 sources: the largest piece of a split record.
    record = GroupRecord(rtype, n4(0xE8010101, 0), tuple(n4(0x0A000000, i) for i in range(365)))
    payload = build_igmp(Report(3, (record,)))
    assert 24 + len(payload) == 1500
    assert parse_igmp(payload) == Report(3, (record,))


def test_mldv2_report_of_61_records_fits_the_ipv6_minimum_mtu() -> None:
    # (1280 - 40 - 8 - 8) // 20 = 61 records without sources.
    records = tuple(GroupRecord(RecordType.MODE_IS_EXCLUDE, n16(0xFF1E << 112, i))
                    for i in range(61))
    payload = build_mld(Report(2, records), SRC6, DST6)
    assert len(payload) == 8 + 61 * 20 == 1228
    assert 40 + 8 + len(payload) <= 1280
    assert payload[6:8] == (61).to_bytes(2)  # Nr of Mcast Address Records
    assert parse_mld(payload, SRC6, DST6) == Report(2, records)


def test_mldv2_record_of_75_sources_fits_the_ipv6_minimum_mtu() -> None:
    # (1280 - 40 - 8 - 8 - 20) // 16 = 75 sources.
    record = GroupRecord(RecordType.ALLOW_NEW_SOURCES, n16(0xFF3E << 112, 1),
                         tuple(n16(0x20010DB8 << 96, i) for i in range(75)))
    payload = build_mld(Report(2, (record,)), SRC6, DST6)
    assert 40 + 8 + len(payload) == 1276  # within an MTU of 1280
    assert parse_mld(payload, SRC6, DST6) == Report(2, (record,))
