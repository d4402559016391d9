"""Hypothesis strategies and helpers shared by the wire tests.

Times are drawn as codes and decoded the way the codecs do (``code / 10`` seconds for IGMP,
``ms / 1000`` for MLD), so that every drawn message is one the wire can carry exactly and
``parse(build(m)) == m`` must hold.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from mcastproxy.wire import (
    GroupRecord,
    Leave,
    Message,
    Query,
    RecordType,
    Report,
    build_igmp,
    build_mld,
    decode_igmp_code,
    decode_mld_code,
    parse_igmp,
    parse_mld,
)

ZERO4 = bytes(4)
ZERO16 = bytes(16)


def addr(text: str) -> bytes:
    """Packed address from text."""
    return ipaddress.ip_address(text).packed


def text(packed: bytes) -> str:
    """Text of a packed address."""
    return str(ipaddress.ip_address(packed))


def ref_checksum(data: bytes) -> int:
    """RFC 1071 §4.1, word by word: an independent reference for the tests."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ref_pseudo_header(src: bytes, dst: bytes, length: int) -> bytes:
    """The IPv6 pseudo-header for ICMPv6 (RFC 8200 §8.1)."""
    return src + dst + length.to_bytes(4, "big") + b"\0\0\0\x3a"


def with_igmp_checksum(data: bytes) -> bytes:
    """``data`` with a correct IGMP checksum (reference implementation)."""
    data = data[:2] + b"\0\0" + data[4:]
    return data[:2] + ref_checksum(data).to_bytes(2, "big") + data[4:]


def with_mld_checksum(data: bytes, src: bytes, dst: bytes) -> bytes:
    """``data`` with a correct ICMPv6 checksum for ``src`` -> ``dst`` (reference)."""
    data = data[:2] + b"\0\0" + data[4:]
    checksum = ref_checksum(ref_pseudo_header(src, dst, len(data)) + data)
    return data[:2] + checksum.to_bytes(2, "big") + data[4:]


MLD_SRC = addr("fe80::2")
MLD_DST = addr("ff02::16")


def parse(family: str, data: bytes, src: bytes = MLD_SRC, dst: bytes = MLD_DST) -> object:
    return parse_igmp(data) if family == "igmp" else parse_mld(data, src, dst)


def build(family: str, msg: Message, src: bytes = MLD_SRC, dst: bytes = MLD_DST) -> bytes:
    return build_igmp(msg) if family == "igmp" else build_mld(msg, src, dst)


addr4 = st.binary(min_size=4, max_size=4)
addr16 = st.binary(min_size=16, max_size=16)
record_types = st.sampled_from(list(RecordType))
aux_data = st.integers(0, 3).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))


def records(address: st.SearchStrategy[bytes], *, aux: bool = True) -> st.SearchStrategy:
    return st.builds(
        GroupRecord,
        record_types,
        address,
        st.lists(address, max_size=6).map(tuple),
        aux_data if aux else st.just(b""),
    )


def igmp_queries() -> st.SearchStrategy[Query]:
    v1 = st.just(Query(1, ZERO4, 10.0))
    v2 = st.builds(lambda g, c: Query(2, g, c / 10), addr4, st.integers(1, 255))
    v3 = st.builds(
        lambda g, c, s, f, r, q: Query(3, g, decode_igmp_code(c) / 10, tuple(s), f, r,
                                       decode_igmp_code(q)),
        addr4, st.integers(0, 255), st.lists(addr4, max_size=8), st.booleans(),
        st.integers(0, 7), st.integers(0, 255),
    )  # fmt: skip
    return st.one_of(v1, v2, v3)


def igmp_reports(*, aux: bool = True) -> st.SearchStrategy[Report]:
    old = st.builds(
        lambda v, g: Report(v, (GroupRecord(RecordType.MODE_IS_EXCLUDE, g),)),
        st.sampled_from([1, 2]),
        addr4,
    )
    v3 = st.builds(Report, st.just(3), st.lists(records(addr4, aux=aux), max_size=8).map(tuple))
    return st.one_of(old, v3)


def igmp_messages(*, aux: bool = True) -> st.SearchStrategy:
    return st.one_of(igmp_queries(), igmp_reports(aux=aux), st.builds(Leave, addr4))


def mld_queries() -> st.SearchStrategy[Query]:
    v1 = st.builds(lambda g, ms: Query(1, g, ms / 1000), addr16, st.integers(0, 0xFFFF))
    v2 = st.builds(
        lambda g, c, s, f, r, q: Query(2, g, decode_mld_code(c) / 1000, tuple(s), f, r,
                                       decode_igmp_code(q)),
        addr16, st.integers(0, 0xFFFF), st.lists(addr16, max_size=6), st.booleans(),
        st.integers(0, 7), st.integers(0, 255),
    )  # fmt: skip
    return st.one_of(v1, v2)


def mld_reports(*, aux: bool = True) -> st.SearchStrategy[Report]:
    v1 = st.builds(lambda g: Report(1, (GroupRecord(RecordType.MODE_IS_EXCLUDE, g),)), addr16)
    v2 = st.builds(Report, st.just(2), st.lists(records(addr16, aux=aux), max_size=6).map(tuple))
    return st.one_of(v1, v2)


def mld_messages(*, aux: bool = True) -> st.SearchStrategy:
    return st.one_of(mld_queries(), mld_reports(aux=aux), st.builds(Leave, addr16))
