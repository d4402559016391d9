"""The floating-point time codes (RFC 9776 §4.1.1 §4.1.7, RFC 9777 §5.1.3 §5.1.9)."""

from __future__ import annotations

import bisect
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastproxy.wire import (
    IGMP_CODE_MAX,
    MLD_CODE_MAX,
    decode_igmp_code,
    decode_mld_code,
    encode_igmp_code,
    encode_mld_code,
)

IGMP_VALUES = [decode_igmp_code(code) for code in range(256)]
MLD_VALUES = [decode_mld_code(code) for code in range(65536)]


def test_known_igmp_codes() -> None:
    assert decode_igmp_code(0) == 0
    assert decode_igmp_code(127) == 127
    assert decode_igmp_code(0x80) == 128  # (0 | 0x10) << 3
    assert decode_igmp_code(0x8A) == 208  # (0xA | 0x10) << 3
    assert decode_igmp_code(0xFF) == IGMP_CODE_MAX == 31744  # (0xF | 0x10) << 10
    assert encode_igmp_code(125) == 125
    assert encode_igmp_code(130) == 0x80  # 128 is the largest not above 130


def test_known_mld_codes() -> None:
    assert decode_mld_code(10000) == 10000
    assert decode_mld_code(0x7FFF) == 32767
    assert decode_mld_code(0x8000) == 32768  # (0 | 0x1000) << 3
    assert decode_mld_code(0xFFFF) == MLD_CODE_MAX == 8387584  # 0x1FFF << 10
    assert encode_mld_code(32769) == 0x8000


def test_every_code_has_a_distinct_value_increasing_with_it() -> None:
    # Monotonic in the code, hence encode(decode(code)) == code for every code.
    assert sorted(set(IGMP_VALUES)) == IGMP_VALUES
    assert sorted(set(MLD_VALUES)) == MLD_VALUES
    assert all(encode_igmp_code(value) == code for code, value in enumerate(IGMP_VALUES))
    assert all(encode_mld_code(value) == code for code, value in enumerate(MLD_VALUES))


def test_every_igmp_value_encodes_to_the_largest_code_not_above_it() -> None:
    for value in range(IGMP_CODE_MAX + 300):
        code = encode_igmp_code(value)
        assert code == bisect.bisect_right(IGMP_VALUES, value) - 1


@settings(deadline=None)
@given(st.integers(0, 0xFF))
def test_igmp_decode_encode_decode(code: int) -> None:
    assert decode_igmp_code(encode_igmp_code(decode_igmp_code(code))) == decode_igmp_code(code)


@settings(deadline=None)
@given(st.integers(0, 0xFFFF))
def test_mld_decode_encode_decode(code: int) -> None:
    assert decode_mld_code(encode_mld_code(decode_mld_code(code))) == decode_mld_code(code)


@settings(deadline=None)
@given(st.integers(0, MLD_CODE_MAX * 2))
def test_mld_encodes_the_largest_value_not_above(value: int) -> None:
    code = encode_mld_code(value)
    assert code == bisect.bisect_right(MLD_VALUES, value) - 1
    assert decode_mld_code(code) <= value
    if code < 0xFFFF:
        assert decode_mld_code(code + 1) > value


@settings(deadline=None)
@given(st.integers(0, IGMP_CODE_MAX * 2), st.integers(0, IGMP_CODE_MAX * 2))
def test_igmp_encoding_is_monotonic(a: int, b: int) -> None:
    if a <= b:
        assert encode_igmp_code(a) <= encode_igmp_code(b)


@pytest.mark.parametrize("function", [encode_igmp_code, encode_mld_code])
def test_negative_times_are_refused(function: Callable[[int], int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        function(-1)


@pytest.mark.parametrize(("function", "code"), [(decode_igmp_code, 256), (decode_mld_code, -1)])
def test_codes_out_of_range_are_refused(function: Callable[[int], int], code: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        function(code)
