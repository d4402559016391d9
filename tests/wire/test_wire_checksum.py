"""The Internet checksum (RFC 1071) against a word-by-word reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import ref_checksum, ref_pseudo_header

from mcastproxy.wire import icmpv6_checksum, inet_checksum


def test_known_values() -> None:
    # RFC 1071 §3 example words: 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry).
    assert inet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert inet_checksum(b"") == 0xFFFF
    assert inet_checksum(bytes(7)) == 0xFFFF
    assert inet_checksum(b"\xff\xff") == 0  # negative zero sums to 0xFFFF
    assert inet_checksum(b"\x01") == 0xFEFF  # an odd octet is padded on the right


@settings(deadline=None)
@given(st.binary(max_size=600))
def test_matches_the_reference(data: bytes) -> None:
    assert inet_checksum(data) == ref_checksum(data)


@settings(deadline=None)
@given(st.binary(min_size=4, max_size=600))
def test_data_with_its_checksum_sums_to_zero(data: bytes) -> None:
    data = data[:2] + b"\0\0" + data[2:]
    checksum = inet_checksum(data)
    filled = data[:2] + checksum.to_bytes(2, "big") + data[4:]
    assert inet_checksum(filled) == 0 or not any(data)


@settings(deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.binary(max_size=600),
)
def test_icmpv6_matches_the_reference(src: bytes, dst: bytes, data: bytes) -> None:
    assert icmpv6_checksum(src, dst, data) == ref_checksum(
        ref_pseudo_header(src, dst, len(data)) + data
    )


@settings(deadline=None, max_examples=40)
@given(st.integers(1000, 70_000), st.integers(0, 255))
def test_long_data_matches_the_reference(size: int, seed: int) -> None:
    # Past 1024 octets the sum is shrunk before the modulo: check that path too.
    data = bytes((i * 131 + seed) & 0xFF for i in range(size))
    assert inet_checksum(data) == ref_checksum(data)
    src, dst = data[:16], data[16:32]
    assert icmpv6_checksum(src, dst, data) == ref_checksum(
        ref_pseudo_header(src, dst, len(data)) + data
    )
