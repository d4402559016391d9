"""Short reports are kept decoded by their bytes (``igmp.DECODED_SIZE``, ``mld.DECODED_SIZE``):
the same bytes give the same message, other bytes are decoded (and their checksum verified)
as ever, and the cache empties itself when full."""

from __future__ import annotations

import pytest

from mcastproxy.wire import (
    GroupRecord,
    RecordType,
    Report,
    WireError,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_mld,
)
from mcastproxy.wire import igmp as igmp_codec
from mcastproxy.wire import mld as mld_codec
from mcastproxy.wire._records import DECODED_LIMIT

TO_EX, TO_IN, IS_EX = (RecordType.CHANGE_TO_EXCLUDE_MODE, RecordType.CHANGE_TO_INCLUDE_MODE,
                       RecordType.MODE_IS_EXCLUDE)
HOST_A = bytes.fromhex("fe800000000000000000000000000007")
HOST_B = bytes.fromhex("fe800000000000000000000000000008")
ALL_MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")


def group4(i: int) -> bytes:
    return bytes((239, 7, i >> 8 & 0xFF, i & 0xFF))


def group6(i: int) -> bytes:
    return bytes.fromhex("ff3e0000000000000000000000070000")[:14] + i.to_bytes(2, "big")


@pytest.mark.parametrize("records", [
    (GroupRecord(TO_EX, group4(1)),),  # a join, as a host sends it
    (GroupRecord(TO_IN, group4(1)), GroupRecord(TO_EX, group4(2))),  # a zap
    (GroupRecord(IS_EX, group4(3), (bytes(4),) * 6),),  # at the size limit
], ids=["join", "zap", "sources"])
def test_the_same_igmp_bytes_give_the_same_message(records: tuple[GroupRecord, ...]) -> None:
    data = build_igmp(Report(3, records))
    assert len(data) <= igmp_codec.DECODED_SIZE
    first = parse_igmp(data)
    assert first == Report(3, records)
    again = parse_igmp(bytes(bytearray(data)))  # equal bytes, another object
    assert again is first


def test_longer_igmp_reports_are_decoded_each_time() -> None:
    report = Report(3, tuple(GroupRecord(TO_EX, group4(i)) for i in range(5)))
    data = build_igmp(report)
    assert len(data) > igmp_codec.DECODED_SIZE
    first = parse_igmp(data)
    assert first == report
    assert parse_igmp(data) == report
    assert parse_igmp(data) is not first


def test_bytes_that_differ_from_a_decoded_report_are_checked_afresh() -> None:
    data = build_igmp(Report(3, (GroupRecord(TO_EX, group4(4)),)))
    parse_igmp(data)
    for at in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[at] ^= 1 << bit
            with pytest.raises(WireError):
                parse_igmp(bytes(flipped))
    with pytest.raises(WireError):
        parse_igmp(data[:-4])


def test_an_mld_report_decoded_for_one_sender_is_checked_for_another() -> None:
    # The MLD checksum covers the addresses too (the pseudo-header): the same message bytes
    # from another host carry a checksum that is wrong for it.
    report = Report(2, (GroupRecord(TO_EX, group6(1)),))
    data = build_mld(report, HOST_A, ALL_MLDV2_ROUTERS)
    assert len(data) <= mld_codec.DECODED_SIZE
    first = parse_mld(data, HOST_A, ALL_MLDV2_ROUTERS)
    assert first == report
    assert parse_mld(data, HOST_A, ALL_MLDV2_ROUTERS) is first
    with pytest.raises(WireError, match="checksum"):
        parse_mld(data, HOST_B, ALL_MLDV2_ROUTERS)
    from_b = build_mld(report, HOST_B, ALL_MLDV2_ROUTERS)
    assert from_b != data  # (another checksum)
    # Kept by the octets after the checksum: every host's report of a channel is one.
    assert parse_mld(from_b, HOST_B, ALL_MLDV2_ROUTERS) is first


def test_an_mld_report_that_differs_after_its_checksum_is_decoded_afresh() -> None:
    join = Report(2, (GroupRecord(TO_EX, group6(2)),))
    leave = Report(2, (GroupRecord(TO_IN, group6(2)),))
    parse_mld(build_mld(join, HOST_A, ALL_MLDV2_ROUTERS), HOST_A, ALL_MLDV2_ROUTERS)
    assert parse_mld(build_mld(leave, HOST_B, ALL_MLDV2_ROUTERS), HOST_B,
                     ALL_MLDV2_ROUTERS) == leave
    # A forged report with a decoded one's body and any checksum: refused unless it is right.
    data = bytearray(build_mld(join, HOST_B, ALL_MLDV2_ROUTERS))
    for code in (1, 0xFF):  # the Code is ignored (RFC 9777 §5.2), but the checksum covers it
        forged = bytes(data[:1]) + bytes((code,)) + bytes(data[2:])
        with pytest.raises(WireError, match="checksum"):
            parse_mld(forged, HOST_B, ALL_MLDV2_ROUTERS)


def test_a_flood_of_ever_new_reports_empties_the_cache_rather_than_grow_it() -> None:
    first_data = build_igmp(Report(3, (GroupRecord(IS_EX, group4(0)),)))
    first = parse_igmp(first_data)
    assert parse_igmp(first_data) is first
    for i in range(1, DECODED_LIMIT + 2):  # every one new: more than the cache holds
        data = build_igmp(Report(3, (GroupRecord(TO_IN, group4(i % 65536)),
                                     GroupRecord(TO_EX, group4(i // 65536)))))
        parse_igmp(data)
    again = parse_igmp(first_data)
    assert again == first
    assert again is not first  # forgotten when the cache was emptied
