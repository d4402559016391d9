"""MLD codec: MLDv1 (RFC 2710) and MLDv2 (RFC 9777) messages, as ICMPv6 messages.

``parse_mld`` takes the ICMPv6 message (no IPv6 header: a raw ICMPv6 socket hands over just
this) with the packet's source and destination addresses, which the checksum covers through
the IPv6 pseudo-header (RFC 9777 §5.1.2, §5.2.2; RFC 8200 §8.1); ``build_mld`` is its
inverse. Layouts:

    Query (RFC 9777 §5.1; 24 octets in MLDv1, RFC 2710 §3):
        130 | Code | Checksum | Maximum Response Code | Reserved | Multicast Address (16)
        [v2: Flags(4) S(1) QRV(3) | QQIC | Number of Sources | Source Address...]
    v1 Report, Done (RFC 2710 §3):
        131 / 132 | Code | Checksum | Maximum Response Delay | Reserved | Multicast Address
    v2 Report (RFC 9777 §5.2):
        143 | Reserved | Checksum | Flags(16) | Nr of Mcast Address Records | records...

Decoding rules taken from the RFCs:
- Only types 130, 131, 132 and 143 are MLD; any other ICMPv6 type is refused as "not MLD"
  (the raw socket sees all ICMPv6 unless filtered; RFC 9777 §5: unrecognized message types
  "MUST be silently ignored").
- The checksum is verified before anything else is looked at (RFC 9777 §5.1.2, §5.2.2).
- Query version by length (RFC 9777 §8.1): 24 octets is MLDv1, 28 or more MLDv2; 25 to 27
  octets match no version and are refused.
- Octets beyond the defined fields are covered by the checksum and otherwise ignored
  (RFC 2710 §3 "Other fields", RFC 9777 §5.1.12, §5.2.12); they are never sent.
- Code and Reserved fields are sent as zero and ignored (RFC 9777 §5.1.1, §5.1.4, §5.2.1),
  and so are the Flags fields beside S (§5.1.6, §5.2.3): none is defined for us.
- Records of an unrecognized type are skipped, the rest processed (RFC 9777 §5.2.13).

Times in ``Query``: ``max_resp`` in seconds. MLDv1's Maximum Response Delay is plain
milliseconds (RFC 2710 §3); MLDv2's Maximum Response Code uses the 16-bit float form
(RFC 9777 §5.1.3), QQIC the 8-bit one (§5.1.9). Outgoing times are rounded down to a
representable value and clamped to the largest one.
"""

from __future__ import annotations

import math
import struct
from enum import IntEnum
from typing import Final

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire._records import (
    DECODED_LIMIT,
    AddressVectors,
    make_addresses_joiner,
    make_record_builder,
    make_record_parser,
)
from mcastproxy.wire.checksum import LONG, finish, pseudo_header_sum, shrink
from mcastproxy.wire.codes import IGMP_CODE_TABLE, encode_igmp_code, encode_mld_code
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.messages import GroupRecord, Leave, Message, Query, RecordType, Report


class MldType(IntEnum):
    """MLD message types, ICMPv6 types (RFC 9777 §5, RFC 2710 §3)."""

    LISTENER_QUERY = 130
    V1_LISTENER_REPORT = 131
    V1_LISTENER_DONE = 132
    V2_LISTENER_REPORT = 143


# Plain ints for the hot path.
_QUERY: Final = 130
_V1_REPORT: Final = 131
_DONE: Final = 132
_V2_REPORT: Final = 143

HEADER_SIZE: Final = 8
"""The MLDv2 Report header; every MLD message is at least this long."""
V1_SIZE: Final = 24
"""An MLDv1 message (RFC 2710 §3), and an MLDv1 query (RFC 9777 §8.1)."""
V2_QUERY_SIZE: Final = 28
"""An MLDv2 query without sources (RFC 9777 §5.1, §8.1)."""

ZERO16: Final = Family.V6.unspecified
"""::, the Multicast Address of a General Query (RFC 9777 §5.1.5)."""

_new = tuple.__new__
_from_bytes = int.from_bytes
_IS_EX = RecordType.MODE_IS_EXCLUDE

_unpack_v1 = struct.Struct("!4xH2x16s").unpack_from  # delay / code, multicast address
_unpack_v2_query = struct.Struct("!4xH2x16sBBH").unpack_from  # + flags, QQIC, N
_pack_v1 = struct.Struct("!BBHHH16s").pack  # type, code, checksum, delay, reserved, address
_pack_v2_query = struct.Struct("!BBHHH16sBBH").pack  # ..., flags|S|QRV, QQIC, N
_pack_v2_report_header = struct.Struct("!BBHHH").pack  # type, rsvd, checksum, flags, M

DECODED_SIZE: Final = 48
"""MLDv2 reports of at most this many octets (two records without sources, one with a
source) are kept decoded by their bytes, as ``igmp`` keeps IGMPv3 ones (up to
``DECODED_LIMIT``). Here the checksum also covers the packet's addresses (the pseudo-header),
so it is verified every time, and the cache is only asked after, by the octets after the
checksum: those are the same in every host's report of a channel, where the checksum is
not (RFC 9777 §5.2: the Code is ignored, the rest is the report)."""
_decoded: dict[bytes, Report] = {}

_WIDTH: Final = Family.V6.length
_vectors = AddressVectors(_WIDTH)
_sources_get = _vectors.get
_sources_unpacker = _vectors.unpacker
_parse_records, _walk_records = make_record_parser(_WIDTH, _vectors)
_build_records = make_record_builder(_WIDTH, _vectors)
_join_sources = make_addresses_joiner(_WIDTH, _vectors)


def parse_mld(data: bytes, src: bytes, dst: bytes) -> Message:
    """Decode an MLD message sent from ``src`` to ``dst`` (packed 16-octet addresses).

    ``WireError`` on malformed bytes, and with reason "not MLD" for other ICMPv6 types.
    """
    n = len(data)
    if not n:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    kind = data[0]
    if kind not in (130, 131, 132, 143):
        raise WireError(Drop.NOT_MLD, 0)
    if n < HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("IPv6 addresses are 16 octets")
    # RFC 9777 §5.1.2, §5.2.2: the ICMPv6 checksum, over the pseudo-header too, is verified
    # before processing (a correct sum is 0 mod 0xFFFF; the pseudo-header makes it non-zero).
    total = _from_bytes(data, "little")
    if n > LONG:
        total = shrink(total, n)
    # The pseudo-header, as checksum.pseudo_header_sum adds it (inlined: the hot path).
    total += _from_bytes(src, "little") + _from_bytes(dst, "little") + ((n & 0xFF) << 8) + (n >> 8)
    if (total + 0x3A00) % 0xFFFF:
        raise WireError(Drop.BAD_CHECKSUM, 2)
    if kind == _V2_REPORT:
        body = data[4:] if n <= DECODED_SIZE and type(data) is bytes else None
        if body is not None:
            known = _decoded.get(body)
            if known is not None:
                return known
        count = (data[6] << 8) | data[7]
        report = _new(Report, (2, _parse_records(data, HEADER_SIZE, count, n)))
        if body is not None:
            if len(_decoded) >= DECODED_LIMIT:
                _decoded.clear()
            _decoded[body] = report
        return report
    if kind == _QUERY:
        return _parse_query(data, n)
    if n < V1_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    group = data[8:24]
    if kind == _V1_REPORT:
        # RFC 9777 §8.3.2: an MLDv1 Report reads as IS_EX({}) for its address.
        return _new(Report, (1, (_new(GroupRecord, (_IS_EX, group, (), b"")),)))
    return _new(Leave, (group,))


def _parse_query(data: bytes, n: int) -> Query:
    if n == V1_SIZE:
        # RFC 9777 §8.1: a 24-octet query is MLDv1; RFC 2710 §3: delay in plain ms.
        delay, group = _unpack_v1(data)
        return _new(Query, (1, group, delay / 1000, (), False, 0, 0))
    if n < V2_QUERY_SIZE:
        # RFC 9777 §8.1: a query of 25 to 27 octets matches no version and is ignored.
        raise WireError(Drop.BAD_QUERY_LENGTH, 0)
    code, group, flags, qqic, count = _unpack_v2_query(data)
    if count:
        if V2_QUERY_SIZE + 16 * count > n:
            raise WireError(Drop.TRUNCATED_SOURCE_LIST, V2_QUERY_SIZE)
        sources = (_sources_get(count) or _sources_unpacker(count))(data, V2_QUERY_SIZE)
    else:
        sources = ()
    if code >= 32768:
        # RFC 9777 §5.1.3: Maximum Response Delay = (mant | 0x1000) << (exp + 3)
        code = ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 0x07) + 3)
    # RFC 9777 §5.1.7 S flag, §5.1.8 QRV, §5.1.9 QQIC (seconds, 8-bit float form).
    return _new(
        Query,
        (2, group, code / 1000, sources, bool(flags & 8), flags & 7, IGMP_CODE_TABLE[qqic]),
    )


def millis(seconds: float) -> int:
    """Whole milliseconds in ``seconds``, rounded down (never advertise more)."""
    if seconds < 0:
        raise ValueError(f"negative time: {seconds!r}")
    # A hair of slack, as in igmp.tenths: 1.001 * 1000 is 1000.9999999999999.
    return math.floor(seconds * 1000 + 1e-6)


def build_mld(msg: Message, src: bytes, dst: bytes) -> bytes:
    """Encode ``msg`` as an MLD message from ``src`` to ``dst``, with its checksum.

    ``ValueError`` when the message cannot be said in the form its version names (caller
    misuse). Times that are not exactly representable are rounded down, and clamped to the
    largest the field can carry.
    """
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("IPv6 addresses are 16 octets")
    if isinstance(msg, Report):
        head, rest = _build_report(msg)
    elif isinstance(msg, Query):
        head, rest = _build_query(msg)
    elif isinstance(msg, Leave):
        (group,) = msg
        if len(group) != 16:
            raise ValueError("multicast address must be 16 octets")
        head, rest = _pack_v1(_DONE, 0, 0, 0, 0, group), b""
    else:
        raise TypeError(f"not an MLD message: {msg!r}")
    return finish(head, rest, pseudo_header_sum(src, dst, len(head) + len(rest)))


def _build_report(msg: Report) -> tuple[bytes, bytes]:
    version, records = msg
    if version == 2:
        count = len(records)
        if count > 0xFFFF:
            raise ValueError("more than 65535 multicast address records")
        # RFC 9777 §5.2.1, §5.2.3: Reserved and Flags are zero on transmission.
        head = _pack_v2_report_header(_V2_REPORT, 0, 0, 0, count)
        return head, b"".join(_build_records(records))
    if version != 1:
        raise ValueError(f"MLD report version must be 1 or 2, not {version!r}")
    if len(records) != 1:
        raise ValueError("an MLDv1 report carries exactly one multicast address")
    record_type, group, sources, aux = records[0]
    if record_type != _IS_EX or sources or aux:
        raise ValueError("an MLDv1 report is one MODE_IS_EXCLUDE record, no sources")
    if len(group) != 16:
        raise ValueError("multicast address must be 16 octets")
    return _pack_v1(_V1_REPORT, 0, 0, 0, 0, group), b""


def _build_query(msg: Query) -> tuple[bytes, bytes]:
    version, group, max_resp, sources, s_flag, qrv, qqi = msg
    if len(group) != 16:
        raise ValueError("multicast address must be 16 octets")
    if version == 2:
        if qrv < 0:
            raise ValueError(f"negative qrv: {qrv!r}")
        # RFC 9777 §5.1.8: a Robustness Variable above 7 is sent as QRV 0.
        flags = (8 if s_flag else 0) | (qrv if qrv <= 7 else 0)
        joined = _join_sources(sources, "query sources")
        code = encode_mld_code(millis(max_resp))
        qqic = encode_igmp_code(qqi)
        return _pack_v2_query(_QUERY, 0, 0, code, 0, group, flags, qqic, len(sources)), joined
    if version != 1:
        raise ValueError(f"MLD query version must be 1 or 2, not {version!r}")
    if sources or s_flag or qrv or qqi:
        raise ValueError("sources, S flag, QRV and QQI need an MLDv2 query")
    # RFC 2710 §3: plain milliseconds, 16 bits.
    return _pack_v1(_QUERY, 0, 0, min(millis(max_resp), 0xFFFF), 0, group), b""
