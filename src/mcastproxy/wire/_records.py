"""Group Records (IGMPv3, RFC 9776 §4.2.5-§4.2.11) and Multicast Address Records (MLDv2,
RFC 9777 §5.2.5-§5.2.11): one layout, two address widths.

    Record Type (8) | Aux Data Len (8, in 32-bit words) | Number of Sources (16)
    Multicast Address (4 or 16 octets)
    Source Address [1..N] (4 or 16 octets each)
    Auxiliary Data (Aux Data Len * 4 octets)

This is the packet path, so decoding has two ways:

- The walk: record by record, two ``unpack_from`` calls each (the header, then all its
  sources at once with a ``Struct`` cached per source count). Always right; used for any
  report first seen, and for anything unusual (aux data, unknown record types, errors).
- A plan: reports repeat their shape (the number of records and each one's source count),
  so after a walk the shape is kept as a plan: one ``Struct`` for the whole list of records,
  the positions of each record's fields in its result, and the header values to expect.
  The plan is found by (message length, record count), tried, and kept only if the
  Aux Data Len and Number of Sources it unpacks are exactly those it was made for; then,
  record by record, the message has the layout the plan assumes, and the result is the walk's.
  One C call unpacks everything, with no per-record header unpacking or bounds arithmetic
  in Python: about a quarter less time for 10 records of 10 sources. A plan costs one
  ``Struct`` to make (a few µs), plans are made only for reports of at most
  ``_VECTOR_CACHE_LIMIT`` sources in all, and the cache is bounded, so a peer who keeps
  varying shapes costs the walk plus that.

Records are made with ``tuple.__new__`` rather than the NamedTuple constructor, which is a
Python-level function call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from mcastproxy.drops import Drop
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.messages import GroupRecord, RecordType

_new = tuple.__new__

RECORD_TYPES: dict[int, RecordType] = {int(member): member for member in RecordType}
"""Record Type value -> member, for the six types of RFC 9776 §4.2.13 / RFC 9777 §5.2.13."""

_VECTOR_CACHE_LIMIT = 400
"""Cache address-vector unpackers up to this many addresses: more than fit in an Ethernet MTU
of IPv4 (365). Larger counts (jumbo or reassembled packets) build their Struct each time, so
a peer cannot grow the cache without bound."""

_PLAN_CACHE_LIMIT = 256
"""Plans kept at most; the cache is emptied when full (plans are cheap to remake)."""

DECODED_LIMIT = 4096
"""Short reports kept decoded, by their bytes, at most (``igmp``, ``mld``): a few hundred
kilobytes. The cache is emptied when full, so a host sending ever new bytes costs each of its
reports one insertion and nothing more."""

AddressesUnpacker = Callable[[Any, int], tuple[bytes, ...]]
RecordsParser = Callable[[bytes, int, int, int], tuple[GroupRecord, ...]]


class AddressVectors:
    """Unpackers of n consecutive addresses of ``width`` octets, one ``Struct`` per n.

    ``get(n)`` is the cache's own ``dict.get`` (None on a miss), for the hot path;
    ``unpacker(n)`` fills the cache on a miss.
    """

    __slots__ = ("_cache", "_code", "get")

    def __init__(self, width: int) -> None:
        self._cache: dict[int, AddressesUnpacker] = {}
        self._code = f"{width}s"
        self.get = self._cache.get
        for count in range(1, 33):
            self.unpacker(count)

    def unpacker(self, count: int) -> AddressesUnpacker:
        unpack = self._cache.get(count)
        if unpack is None:
            unpack = struct.Struct(self._code * count).unpack_from
            if count <= _VECTOR_CACHE_LIMIT:
                self._cache[count] = unpack
        return unpack


def make_record_parser(width: int, vectors: AddressVectors) -> tuple[RecordsParser, RecordsParser]:
    """A parser of ``count`` records at ``offset`` of ``data``, whose message ends at ``end``,
    and the same parser without plans (the walk alone, for tests and benchmarks).

    ``end`` is ``len(data)`` (plans are looked up by it and must not read past it).
    """
    header = struct.Struct(f"!BBH{width}s")
    header_size = header.size
    unpack_header = header.unpack_from
    vectors_get = vectors.get
    vectors_unpacker = vectors.unpacker
    types_get = RECORD_TYPES.get
    types = RECORD_TYPES
    plans: dict[int, Callable[[bytes], tuple[GroupRecord, ...] | None]] = {}
    plans_get = plans.get

    def walk(
        data: bytes, offset: int, count: int, end: int, shape: list[int] | None
    ) -> tuple[GroupRecord, ...]:
        records: list[GroupRecord] = []
        append = records.append
        for _ in range(count):
            start = offset + header_size
            if start > end:
                raise WireError(Drop.TRUNCATED_GROUP_RECORD, offset)
            rtype, aux_words, nsources, group = unpack_header(data, offset)
            offset = start + width * nsources
            if offset > end:
                raise WireError(Drop.TRUNCATED_SOURCE_LIST, start)
            if nsources:
                unpack = vectors_get(nsources) or vectors_unpacker(nsources)
                sources = unpack(data, start)
            else:
                sources = ()
            if aux_words:
                aux_start = offset
                offset += aux_words << 2
                if offset > end:
                    raise WireError(Drop.TRUNCATED_AUX_DATA, aux_start)
                aux = data[aux_start:offset]
                shape = None  # plans do not carry aux data (IGMPv3/MLDv2 hosts send none)
            else:
                aux = b""
            if shape is not None:
                shape.append(nsources)
            record_type = types_get(rtype)
            # RFC 9776 §4.2.13, RFC 9777 §5.2.13: a record of an unrecognized type is
            # silently ignored, and the rest of the report processed.
            if record_type is not None:
                append(_new(GroupRecord, (record_type, group, sources, aux)))
        return tuple(records)

    def make_plan(
        offset: int, shape: list[int]
    ) -> Callable[[bytes], tuple[GroupRecord, ...] | None]:
        code = f"BBH{width}s"
        source_code = f"{width}s"
        fmt = ["!"]
        checked: list[int] = []  # positions of Aux Data Len and Number of Sources
        expected: list[int] = []
        layout: list[tuple[int, int, slice]] = []
        position = 0
        for nsources in shape:
            fmt.append(code + source_code * nsources)
            checked += (position + 1, position + 2)
            expected += (0, nsources)
            first = position + 4
            layout.append((position, position + 3, slice(first, first + nsources)))
            position = first + nsources
        unpack = struct.Struct("".join(fmt)).unpack_from
        check = itemgetter(*checked)
        want = tuple(expected)
        steps = tuple(layout)

        def plan(data: bytes) -> tuple[GroupRecord, ...] | None:
            fields = unpack(data, offset)
            if check(fields) != want:
                return None
            try:
                return tuple(
                    [
                        _new(GroupRecord, (types[fields[t]], fields[g], fields[s], b""))
                        for t, g, s in steps
                    ]
                )
            except KeyError:  # an unrecognized record type: the walk skips it
                return None

        return plan

    def parse_records(data: bytes, offset: int, count: int, end: int) -> tuple[GroupRecord, ...]:
        if count == 1 and end == offset + header_size:
            # One record without sources or aux data, ending the message: the join, leave
            # or answer as a host sends it, most of what a busy link brings.
            record_type = types_get(data[offset])
            if record_type is not None and not (data[offset + 1] or data[offset + 2]
                                                or data[offset + 3]):
                return (_new(GroupRecord, (record_type, data[offset + 4:end], (), b"")),)
        if not count:
            return ()
        key = (end << 16) | count  # the message's length and its number of records
        plan = plans_get(key)
        if plan is not None:
            records = plan(data)
            if records is not None:
                return records
        shape: list[int] = []
        records = walk(data, offset, count, end, shape)
        if (
            len(shape) == count  # no aux data seen
            and len(records) == count  # no unknown record type
            and sum(shape) <= _VECTOR_CACHE_LIMIT
        ):
            if len(plans) >= _PLAN_CACHE_LIMIT:
                plans.clear()
            plans[key] = make_plan(offset, shape)
        return records

    def walk_only(data: bytes, offset: int, count: int, end: int) -> tuple[GroupRecord, ...]:
        return walk(data, offset, count, end, None)

    return parse_records, walk_only


def make_addresses_joiner(width: int, vectors: AddressVectors) -> Callable[[Any, str], bytes]:
    """A function (addresses, what) -> the addresses joined, after checking that they are
    ``width`` octets long (``ValueError`` naming ``what`` if not: caller misuse)."""
    vectors_get = vectors.get
    vectors_unpacker = vectors.unpacker

    def join(addresses: Sequence[bytes], what: str) -> bytes:
        joined = b"".join(addresses)
        count = len(addresses)
        if count:
            if count > 0xFFFF:
                raise ValueError(f"{what}: more than 65535 addresses")
            if type(addresses) is not tuple:
                addresses = tuple(addresses)
            # Exact, and cheaper than looking at each length: cut back into width-sized
            # pieces, the joined octets give the same addresses only if each had that width.
            if len(joined) != width * count or (
                (vectors_get(count) or vectors_unpacker(count))(joined, 0) != addresses
            ):
                raise ValueError(f"{what}: every address must be {width} octets")
        return joined

    return join


def make_record_builder(
    width: int, vectors: AddressVectors
) -> Callable[[Sequence[GroupRecord]], list[bytes]]:
    """A builder of the wire form of records, as a list of byte strings to join."""
    pack_header = struct.Struct(f"!BBH{width}s").pack
    join = make_addresses_joiner(width, vectors)
    types = RECORD_TYPES

    def build_records(records: Sequence[GroupRecord]) -> list[bytes]:
        parts: list[bytes] = []
        append = parts.append
        # A plain int, checked below: compiled (mypyc), a RecordType annotation would turn a
        # record of an unknown type into a TypeError before the check says ValueError.
        record_type: int
        for record_type, group, sources, aux in records:
            if record_type not in types:
                raise ValueError(f"unknown record type {record_type!r}")
            if len(group) != width:
                raise ValueError(f"group address must be {width} octets")
            if aux:
                aux_len = len(aux)
                if aux_len & 3 or aux_len > 255 * 4:
                    raise ValueError("aux data must be a multiple of 4 octets, at most 1020")
                joined = join(sources, "record sources")
                append(pack_header(record_type, aux_len >> 2, len(sources), group))
                append(joined)
                append(aux)
            else:
                joined = join(sources, "record sources")
                append(pack_header(record_type, 0, len(sources), group))
                append(joined)
        return parts

    return build_records
