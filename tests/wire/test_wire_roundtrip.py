"""parse(build(m)) == m for every kind of message, drawn by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import addr4, addr16, igmp_messages, mld_messages

from mcastproxy.wire import (
    GroupRecord,
    Message,
    RecordType,
    Report,
    build_igmp,
    build_ipv4,
    build_mld,
    inet_checksum,
    parse_igmp,
    parse_ipv4,
    parse_mld,
)


@settings(max_examples=300, deadline=None)
@given(igmp_messages())
def test_igmp_round_trip(message: Message) -> None:
    data = build_igmp(message)
    assert inet_checksum(data) == 0
    assert parse_igmp(data) == message
    assert parse_igmp(data) == message  # again: the second time may go through a plan


@settings(max_examples=300, deadline=None)
@given(mld_messages(), addr16, addr16)
def test_mld_round_trip(message: Message, src: bytes, dst: bytes) -> None:
    data = build_mld(message, src, dst)
    assert parse_mld(data, src, dst) == message
    assert parse_mld(data, src, dst) == message


@settings(deadline=None)
@given(
    addr4,
    addr4,
    st.binary(max_size=100),
    st.integers(0, 255),
    st.booleans(),
    st.integers(0, 255),
    st.integers(0, 255),
)
def test_ipv4_round_trip(
    src: bytes, dst: bytes, payload: bytes, ttl: int, alert: bool, tos: int, protocol: int
) -> None:
    packet = build_ipv4(src, dst, payload, ttl=ttl, router_alert=alert, tos=tos, protocol=protocol)
    assert len(packet) == (24 if alert else 20) + len(payload)
    assert inet_checksum(packet[: 24 if alert else 20]) == 0
    parsed = parse_ipv4(packet)
    assert parsed == (src, dst, ttl, protocol, alert, payload)
    # Link-layer padding after Total Length is cut off.
    assert parse_ipv4(packet + bytes(6)).payload == payload


@pytest.mark.parametrize(("records", "sources"), [(10, 10), (1, 400), (3, 200), (60, 0)])
def test_long_reports_round_trip(records: int, sources: int) -> None:
    """Reports past 1024 octets (their checksum is shrunk first) and past the plan limits."""
    four = Report(
        3,
        tuple(
            GroupRecord(
                RecordType.ALLOW_NEW_SOURCES,
                bytes([232, 0, r >> 8, r & 0xFF]),
                tuple(bytes([10, r & 0xFF, s >> 8, s & 0xFF]) for s in range(sources)),
            )
            for r in range(records)
        ),
    )
    six = Report(
        2,
        tuple(
            GroupRecord(
                r.type,
                b"\xff\x3e" + bytes(12) + r.group[2:],
                tuple(b"\x20\x01" + bytes(10) + s for s in r.sources),
            )
            for r in four.records
        ),
    )
    src, dst = bytes(15) + b"\x01", b"\xff\x02" + bytes(13) + b"\x16"
    for _ in range(3):
        assert parse_igmp(build_igmp(four)) == four
        assert parse_mld(build_mld(six, src, dst), src, dst) == six
