"""IGMP codec: IGMPv1 (RFC 1112), IGMPv2 (RFC 2236) and IGMPv3 (RFC 9776) messages.

``parse_igmp`` takes the IP payload (no IPv4 header) and returns a ``Query``, ``Report`` or
``Leave``; ``build_igmp`` is its inverse. Layouts:

    Query (RFC 9776 §4.1; 8 octets in v1/v2, RFC 2236 §2):
        0x11 | Max Resp Code | Checksum | Group Address
        [v3: Flags(4) S(1) QRV(3) | QQIC | Number of Sources | Source Address...]
    v1 / v2 Report, v2 Leave (RFC 1112 App. I, RFC 2236 §2):
        0x12 / 0x16 / 0x17 | unused (0) | Checksum | Group Address
    v3 Report (RFC 9776 §4.2):
        0x22 | Reserved | Checksum | Flags(16) | Number of Group Records | records...

Decoding rules taken from the RFCs:
- The checksum covers the whole payload and is verified first (RFC 9776 §4.1.2, §4.2.2).
- Query version by length (RFC 9776 §7.1): 8 octets is v1 when Max Resp Code is 0, else v2;
  12 or more is v3; 9 to 11 octets match no version and are refused.
- Octets beyond the defined fields are covered by the checksum and otherwise ignored
  (RFC 2236 §2, RFC 9776 §4.1.10, §4.2.12); they are never sent.
- Records of an unrecognized type are skipped (RFC 9776 §4.2.13); aux data is kept in the
  model though IGMPv3 defines none (§4.2.11).
- The Flags fields of the v3 query and report (§4.1.4, §4.2.3) and the report's Reserved
  octet are ignored on receipt and sent as zero: no flag is defined for us to act on, and
  the model has no place for them.
- Unknown message types are refused (the receiver "MUST silently ignore" them, RFC 9776 §4:
  the caller drops and counts).

Times in ``Query``: ``max_resp`` in seconds (the field counts tenths); an IGMPv1 query has
no Max Resp Code, and RFC 2236 §4 says it "MUST be interpreted as a value of 100 (10
seconds)", so v1 queries decode to 10.0 and are built with 0 whatever ``max_resp`` says.
An IGMPv1 query is always general (RFC 1112 App. I: the group field is "zeroed when sent,
ignored when received"), so it decodes with group 0.0.0.0. v2 codes are plain tenths
(1..255); v3 codes and QQIC use the float form of ``codes``, and ``max_resp`` is rounded
down to a representable time on the way out.
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
from mcastproxy.wire.checksum import LONG, finish, shrink
from mcastproxy.wire.codes import IGMP_CODE_TABLE, encode_igmp_code
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.messages import GroupRecord, Leave, Message, Query, RecordType, Report


class IgmpType(IntEnum):
    """IGMP message types (RFC 9776 §4, RFC 2236 §2, RFC 1112 App. I)."""

    MEMBERSHIP_QUERY = 0x11
    V1_MEMBERSHIP_REPORT = 0x12
    V2_MEMBERSHIP_REPORT = 0x16
    V2_LEAVE_GROUP = 0x17
    V3_MEMBERSHIP_REPORT = 0x22


# Plain ints for the hot path.
_QUERY: Final = 0x11
_V1_REPORT: Final = 0x12
_V2_REPORT: Final = 0x16
_LEAVE: Final = 0x17
_V3_REPORT: Final = 0x22

HEADER_SIZE: Final = 8
"""Every IGMP message starts with these 8 octets; v1/v2 messages are just these."""
V3_QUERY_SIZE: Final = 12
"""An IGMPv3 query without sources (RFC 9776 §4.1, §7.1)."""

ZERO4: Final = Family.V4.unspecified
"""0.0.0.0, the group of a General Query (RFC 9776 §4.1.3)."""

_new = tuple.__new__
_from_bytes = int.from_bytes
_IS_EX = RecordType.MODE_IS_EXCLUDE

_unpack_v3_query = struct.Struct("!B2x4sBBH").unpack_from  # at 1: code, group, flags, QQIC, N
_pack_header = struct.Struct("!BBH4s").pack  # type, code, checksum, group
_pack_v3_query = struct.Struct("!BBH4sBBH").pack  # ..., flags|S|QRV, QQIC, N
_pack_v3_report_header = struct.Struct("!BBHHH").pack  # type, rsvd, checksum, flags, M

DECODED_SIZE: Final = 40
"""IGMPv3 reports of at most this many octets (four records without sources, one with up to
six) are kept decoded by their bytes (up to ``DECODED_LIMIT``): an IGMPv3 report says
nothing of its sender, so every host answering a query for a channel, or zapping between
the same two, sends the same bytes, and a decoded message is an immutable tuple that serves
them all. The checksum covers these bytes alone: decoded once, verified once."""
_decoded: dict[bytes, Report] = {}

_WIDTH: Final = Family.V4.length
_vectors = AddressVectors(_WIDTH)
_sources_get = _vectors.get
_sources_unpacker = _vectors.unpacker
_parse_records, _walk_records = make_record_parser(_WIDTH, _vectors)
_build_records = make_record_builder(_WIDTH, _vectors)
_join_sources = make_addresses_joiner(_WIDTH, _vectors)


def parse_igmp(data: bytes) -> Message:
    """Decode an IGMP message (the IPv4 payload); raise ``WireError`` on malformed bytes."""
    n = len(data)
    if n <= DECODED_SIZE and type(data) is bytes:
        known = _decoded.get(data)
        if known is not None:
            return known  # these very bytes decoded before, their checksum with them
    if n < HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    # RFC 9776 §4.1.2, §4.2.2: verify the checksum before processing. Over a correct
    # message the ones'-complement sum is 0xFFFF: non-zero and 0 mod 0xFFFF (see checksum).
    total = _from_bytes(data, "little")
    if n > LONG:
        total = shrink(total, n)
    if total % 0xFFFF or not total:
        raise WireError(Drop.BAD_CHECKSUM, 2)
    kind = data[0]
    if kind == _V3_REPORT:
        count = (data[6] << 8) | data[7]
        report = _new(Report, (3, _parse_records(data, HEADER_SIZE, count, n)))
        if n <= DECODED_SIZE and type(data) is bytes:
            if len(_decoded) >= DECODED_LIMIT:
                _decoded.clear()
            _decoded[data] = report
        return report
    if kind == _QUERY:
        return _parse_query(data, n)
    if kind in (0x16, 0x12):  # v2 / v1 Membership Report
        # RFC 9776 §7.3.2: an old-style report reads as IS_EX({}) for its group.
        record = _new(GroupRecord, (_IS_EX, data[4:8], (), b""))
        return _new(Report, (2 if kind == _V2_REPORT else 1, (record,)))
    if kind == _LEAVE:
        return _new(Leave, (data[4:8],))
    raise WireError(Drop.UNKNOWN_TYPE, 0)


def _parse_query(data: bytes, n: int) -> Query:
    if n == HEADER_SIZE:
        code = data[1]
        if code == 0:
            # RFC 9776 §7.1: 8 octets and Max Resp Code 0 is IGMPv1; RFC 2236 §4: read as
            # 10 s; RFC 1112 App. I: its group field is ignored, the query is general.
            return _new(Query, (1, ZERO4, 10.0, (), False, 0, 0))
        # RFC 2236 §2: the v2 Max Response Time is plain tenths of a second.
        return _new(Query, (2, data[4:8], code / 10, (), False, 0, 0))
    if n < V3_QUERY_SIZE:
        # RFC 9776 §7.1: a query of 9 to 11 octets matches no version and is ignored.
        raise WireError(Drop.BAD_QUERY_LENGTH, 0)
    code, group, flags, qqic, count = _unpack_v3_query(data, 1)
    if count:
        if V3_QUERY_SIZE + 4 * count > n:
            raise WireError(Drop.TRUNCATED_SOURCE_LIST, V3_QUERY_SIZE)
        sources = (_sources_get(count) or _sources_unpacker(count))(data, V3_QUERY_SIZE)
    else:
        sources = ()
    # RFC 9776 §4.1.1 Max Resp Code (tenths), §4.1.5 S flag, §4.1.6 QRV, §4.1.7 QQIC (s).
    return _new(
        Query,
        (3, group, IGMP_CODE_TABLE[code] / 10, sources, bool(flags & 8), flags & 7,
         IGMP_CODE_TABLE[qqic]),
    )  # fmt: skip


def tenths(seconds: float) -> int:
    """Whole tenths of a second in ``seconds``, rounded down (never advertise more)."""
    if seconds < 0:
        raise ValueError(f"negative time: {seconds!r}")
    # A hair of slack: a time meant as whole units can come out just under them in binary
    # floating point (1.001 * 1000 is 1000.9999999999999).
    return math.floor(seconds * 10 + 1e-6)


def build_igmp(msg: Message) -> bytes:
    """Encode ``msg`` as an IGMP message with its checksum (the IPv4 payload).

    ``ValueError`` when the message cannot be said in the form its version names (caller
    misuse). Times that are not exactly representable are rounded down, and clamped to the
    largest the field can carry.
    """
    if isinstance(msg, Report):
        return _build_report(msg)
    if isinstance(msg, Query):
        return _build_query(msg)
    if isinstance(msg, Leave):
        (group,) = msg
        if len(group) != 4:
            raise ValueError("group address must be 4 octets")
        return finish(_pack_header(_LEAVE, 0, 0, group), b"")
    raise TypeError(f"not an IGMP message: {msg!r}")


def _build_report(msg: Report) -> bytes:
    version, records = msg
    if version == 3:
        count = len(records)
        if count > 0xFFFF:
            raise ValueError("more than 65535 group records")
        # RFC 9776 §4.2.1, §4.2.3: Reserved and Flags are zero on transmission.
        head = _pack_v3_report_header(_V3_REPORT, 0, 0, 0, count)
        return finish(head, b"".join(_build_records(records)))
    if version not in (1, 2):
        raise ValueError(f"IGMP report version must be 1, 2 or 3, not {version!r}")
    if len(records) != 1:
        raise ValueError(f"an IGMPv{version} report carries exactly one group")
    record_type, group, sources, aux = records[0]
    if record_type != _IS_EX or sources or aux:
        raise ValueError(f"an IGMPv{version} report is one MODE_IS_EXCLUDE record, no sources")
    if len(group) != 4:
        raise ValueError("group address must be 4 octets")
    return finish(_pack_header(_V2_REPORT if version == 2 else _V1_REPORT, 0, 0, group), b"")


def _build_query(msg: Query) -> bytes:
    version, group, max_resp, sources, s_flag, qrv, qqi = msg
    if len(group) != 4:
        raise ValueError("group address must be 4 octets")
    if version == 3:
        if qrv < 0:
            raise ValueError(f"negative qrv: {qrv!r}")
        # RFC 9776 §4.1.6: a Robustness Variable above 7 is sent as QRV 0.
        flags = (8 if s_flag else 0) | (qrv if qrv <= 7 else 0)
        joined = _join_sources(sources, "query sources")
        code = encode_igmp_code(tenths(max_resp))
        head = _pack_v3_query(_QUERY, code, 0, group, flags, encode_igmp_code(qqi), len(sources))
        return finish(head, joined)
    if version not in (1, 2):
        raise ValueError(f"IGMP query version must be 1, 2 or 3, not {version!r}")
    if sources or s_flag or qrv or qqi:
        raise ValueError("sources, S flag, QRV and QQI need an IGMPv3 query")
    if version == 1:
        if group != ZERO4:
            raise ValueError("an IGMPv1 query is always a General Query")
        # RFC 2236 §4: IGMPv1 routers send Max Resp Code 0, read as 10 s.
        return finish(_pack_header(_QUERY, 0, 0, ZERO4), b"")
    code = min(tenths(max_resp), 255)
    if code == 0:
        # Code 0 would make it an IGMPv1 query (RFC 9776 §7.1).
        raise ValueError("an IGMPv2 query needs max_resp of at least 0.1 s")
    return finish(_pack_header(_QUERY, code, 0, group), b"")
