"""Bytes from the network raise WireError or parse: never anything else.

Random bytes mostly die at the checksum, so the checksum is also fixed up after random
changes, which lets garbage reach the length and record checks behind it.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import (
    addr16,
    igmp_messages,
    mld_messages,
    with_igmp_checksum,
    with_mld_checksum,
)

from mcastproxy.wire import (
    Message,
    WireError,
    build_igmp,
    build_ipv4,
    build_mld,
    inet_checksum,
    parse_igmp,
    parse_ipv4,
    parse_mld,
)

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

IGMP_TYPES = st.sampled_from([0x11, 0x12, 0x16, 0x17, 0x22])
MLD_TYPES = st.sampled_from([130, 131, 132, 143])


def _parses_or_wire_error(parse: Callable[..., object], *args: bytes) -> None:
    error: WireError | None = None
    try:
        parse(*args)
    except WireError as caught:
        error = caught
    if error is not None:
        assert error.reason
        assert 0 <= error.offset <= len(args[0])


@FUZZ
@given(st.binary(max_size=80))
def test_random_igmp_bytes(data: bytes) -> None:
    _parses_or_wire_error(parse_igmp, data)


@FUZZ
@given(IGMP_TYPES, st.binary(min_size=3, max_size=120))
def test_random_igmp_bytes_with_a_good_checksum(kind: int, rest: bytes) -> None:
    _parses_or_wire_error(parse_igmp, with_igmp_checksum(bytes([kind]) + rest))


@FUZZ
@given(st.binary(max_size=120), addr16, addr16)
def test_random_mld_bytes(data: bytes, src: bytes, dst: bytes) -> None:
    _parses_or_wire_error(parse_mld, data, src, dst)


@FUZZ
@given(MLD_TYPES, st.binary(min_size=3, max_size=200), addr16, addr16)
def test_random_mld_bytes_with_a_good_checksum(
    kind: int, rest: bytes, src: bytes, dst: bytes
) -> None:
    data = with_mld_checksum(bytes([kind]) + rest, src, dst)
    _parses_or_wire_error(parse_mld, data, src, dst)


mutations = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)


def _mutate(data: bytes, changes: list[tuple[int, int]], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, value in changes:
        if mutable:
            mutable[position % len(mutable)] = value
    if cut is not None:
        del mutable[cut % (len(mutable) + 1) :]
    return bytes(mutable)


@FUZZ
@given(igmp_messages(), mutations, st.none() | st.integers(0, 1000), st.booleans())
def test_mutated_igmp(message: Message, changes: list, cut: int | None, fix: bool) -> None:
    data = _mutate(build_igmp(message), changes, cut)
    if fix and len(data) >= 4:
        data = with_igmp_checksum(data)
    _parses_or_wire_error(parse_igmp, data)
    _parses_or_wire_error(parse_igmp, data)  # the second time through any plan


@FUZZ
@given(mld_messages(), addr16, addr16, mutations, st.none() | st.integers(0, 1000), st.booleans())
def test_mutated_mld(
    message: Message, src: bytes, dst: bytes, changes: list, cut: int | None, fix: bool
) -> None:
    data = _mutate(build_mld(message, src, dst), changes, cut)
    if fix and len(data) >= 4:
        data = with_mld_checksum(data, src, dst)
    _parses_or_wire_error(parse_mld, data, src, dst)
    _parses_or_wire_error(parse_mld, data, src, dst)


@FUZZ
@given(st.binary(max_size=80))
def test_random_ipv4_bytes(data: bytes) -> None:
    _parses_or_wire_error(parse_ipv4, data)


@FUZZ
@given(st.integers(5, 15), st.binary(min_size=60, max_size=90), st.integers(0, 0xFFFF))
def test_random_ipv4_headers_with_a_good_checksum(ihl: int, rest: bytes, total: int) -> None:
    header = bytearray(bytes([0x40 | ihl, 0]) + total.to_bytes(2, "big") + rest)
    header[6:8] = b"\0\0"  # not a fragment, so the options get walked
    size = ihl * 4
    header[10:12] = b"\0\0"
    header[10:12] = inet_checksum(bytes(header[:size])).to_bytes(2, "big")
    _parses_or_wire_error(parse_ipv4, bytes(header))


@FUZZ
@given(st.binary(max_size=40), mutations, st.none() | st.integers(0, 100))
def test_mutated_ipv4(payload: bytes, changes: list, cut: int | None) -> None:
    data = _mutate(build_ipv4(b"\x0a\0\0\x01", b"\xe0\0\0\x16", payload), changes, cut)
    _parses_or_wire_error(parse_ipv4, data)
