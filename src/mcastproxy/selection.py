"""Upstream selection (draft-asaeda-pim-multiif-igmpmldproxy-07 §3-§5).

For a membership (subscriber H, source S or any, group G), which candidate upstream
interface(s) it is requested from, and why. The rules, in order:

1. A candidate's address prefix record (§4.1) matches when each of its non-null prefixes
   contains H, S, G (null is a wildcard; a record with a source prefix cannot match an
   any-source membership, and one with a subscriber prefix cannot match an unknown subscriber).
2. Matching records rank: those with a subscriber prefix first (§4.1); then by channel part
   (source and group) over (source only) over (group only) over neither (§4.2); then longer
   prefixes over shorter, comparing subscriber, then source, then group prefix length.
3. The best-ranked record wins. When several candidates hold it, the highest interface priority
   wins (§4.3); equal priorities select all of them, for robust reception (§3.3).
4. No record matches: the candidates configured with no records compete by priority (§4.3).
5. Still nothing: the default upstream (§4.4); with none configured, the candidate with the
   highest interface address of the membership's family.
6. Takeover (§5.1). On: unusable candidates are skipped and the rules walked again; when the
   default is unusable, the usable candidate with the highest priority takes its role; when
   nothing is usable, the answer of the rules without takeover stands. Off: the answer stands
   even when unusable, and the result says so (accounting policies need that).

The rank of a record depends only on its shape (which prefixes it has and their lengths), so
records are compiled per family into one hash table per shape, keyed by the masked (H, S, G),
and shapes are probed best rank first: the first hit decides ("tuple space search",
Srinivasan et al., SIGCOMM 1999). A lookup costs one AND and one dict probe per shape, whatever
the number of records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import NamedTuple

from mcastproxy.config import Candidate, Config, Record
from mcastproxy.family import Family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Rule(StrEnum):
    """Which rule of the draft decided a selection."""

    RECORD = "address-prefix-record"  # §4.1, §4.2 (and §4.3 among candidates sharing it)
    PRIORITY = "interface-priority"  # §4.3: candidates with no records
    DEFAULT = "default-upstream"  # §4.4: the configured default
    HIGHEST_ADDRESS = "highest-address"  # §4.4: no default configured
    TAKEOVER_PRIORITY = "takeover-priority"  # §5.1: the default is unusable
    NONE = "no-upstream"  # no candidate can serve this family


class Selection(NamedTuple):
    """The answer: the chosen upstream interface(s) and what decided it.

    ``record`` is the deciding record (tied candidates hold identical ones), ``priority`` the
    winners' priority when priority decided, ``outranked`` the candidates that held the same
    record with a lower priority, ``skipped`` the unusable candidates passed over (takeover on),
    ``inactive`` the selected candidates that are unusable (takeover off, or nothing usable).
    """

    upstreams: tuple[str, ...]
    rule: Rule
    record: Record | None = None
    priority: int | None = None
    outranked: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return describe(self)

    @property
    def rank(self) -> tuple[int, tuple[int, ...], int]:
        """Orders selections made for different subscribers of one link, best highest: the
        better-ranked selection feeds the link (one link is fed by one upstream)."""
        record_rank = _rank(self.record) if self.record is not None else ()
        return _RULE_ORDER[self.rule], record_rank, self.priority or 0


_RULE_ORDER = {
    Rule.RECORD: 4,
    Rule.PRIORITY: 3,
    Rule.DEFAULT: 2,
    Rule.TAKEOVER_PRIORITY: 1,
    Rule.HIGHEST_ADDRESS: 1,
    Rule.NONE: 0,
}


class _Entry(NamedTuple):
    """The candidates holding one record (identical prefixes), best priority first."""

    holders: tuple[Candidate, ...]
    record: Record
    plain: Selection  # the answer when every holder is usable, made once at compile time


class _Shape(NamedTuple):
    rank: tuple[int, int, int, int, int]
    mask: int
    table: dict[int, _Entry]  # masked (H, S, G) -> the record's entry


class _Family:
    """Compiled records of one address family."""

    def __init__(self, family: Family, holders: Iterable[tuple[Candidate, Record]]) -> None:
        self.family = family
        self.width = width = family.width
        grouped: dict[tuple[int, int, int, int, int], dict[int, list[Candidate]]] = {}
        records: dict[tuple[tuple[int, ...], int], Record] = {}
        for cand, rec in holders:
            rank, key = _rank(rec), self._value(rec)
            grouped.setdefault(rank, {}).setdefault(key, []).append(cand)
            records[rank, key] = rec
        shapes: dict[tuple[int, int, int, int, int], _Shape] = {}
        for rank, table in grouped.items():
            rec = records[rank, next(iter(table))]
            shape = shapes[rank] = _Shape(rank, self._mask(rec), {})
            for key, cands in table.items():
                best_first = tuple(sorted(cands, key=lambda c: -c.priority))
                rec = records[rank, key]
                plain = _by_priority(best_first, Rule.RECORD, rec, best_first)
                shape.table[key] = _Entry(best_first, rec, plain)
        ordered = sorted(shapes.values(), key=lambda s: s.rank, reverse=True)
        # Source-bearing records indexed by (subscriber, group) alone, for any-source joins.
        source_bits = ((1 << width) - 1) << width
        self.by_channel: list[tuple[bool, int, dict[int, list[_Entry]]]] = []
        for shape in ordered:
            if shape.rank[1] & 2:
                without = shape.mask & ~source_bits
                index: dict[int, list[_Entry]] = {}
                for key, entry in shape.table.items():
                    index.setdefault(key & without, []).append(entry)
                self.by_channel.append((bool(shape.rank[0]), without, index))
        # Probe lists by what the membership knows: [subscriber known][source known].
        self.probes = [
            [
                [
                    s
                    for s in ordered
                    if (h_known or not s.rank[0]) and (s_known or not s.rank[1] & 2)
                ]
                for s_known in (False, True)
            ]
            for h_known in (False, True)
        ]

    def _mask(self, rec: Record) -> int:
        w = self.width
        full = (1 << w) - 1

        def prefix_mask(net: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> int:
            return 0 if net is None else (full >> net.prefixlen) ^ full

        return (
            (prefix_mask(rec.subscriber) << 2 * w)
            | (prefix_mask(rec.source) << w)
            | prefix_mask(rec.group)
        )

    def _value(self, rec: Record) -> int:
        w = self.width

        def net_int(net: ipaddress.IPv4Network | ipaddress.IPv6Network | None) -> int:
            return 0 if net is None else int(net.network_address)

        return (net_int(rec.subscriber) << 2 * w) | (net_int(rec.source) << w) | net_int(rec.group)


def _rank(rec: Record) -> tuple[int, int, int, int, int]:
    # The channel part ranks (source and group) 3 > (source only) 2 > (group only) 1 > none 0.
    channel = (2 if rec.source else 0) + (1 if rec.group else 0)
    return (
        1 if rec.subscriber else 0,
        channel,
        rec.subscriber.prefixlen if rec.subscriber else -1,
        rec.source.prefixlen if rec.source else -1,
        rec.group.prefixlen if rec.group else -1,
    )


class Selector:
    """Selection compiled from a configuration and the candidates' interface addresses.

    ``addresses`` gives each candidate's addresses for the §4.4 fallback; a candidate's
    ``address`` field in the configuration is used where the mapping has none. Build a new
    Selector when either changes: it is immutable.
    """

    def __init__(
        self, config: Config, addresses: Mapping[str, Iterable[IPAddress]] | None = None
    ) -> None:
        self.config = config
        self.candidates = config.upstream.candidates
        self.takeover = config.upstream.takeover
        self.default = config.upstream.default
        self._names = frozenset(c.interface for c in self.candidates)
        # Compiled per family, found by the group's address length (4 or 16 octets).
        self._families = {
            f.length: _Family(
                f, ((c, r) for c in self.candidates for r in c.records if r.family is f)
            )
            for f in Family
        }
        # Whether some record of the family (by address length) names subscribers: if none,
        # the subscriber makes no difference to any selection.
        self._by_subscriber = {
            f.length: any(r.subscriber for c in self.candidates for r in c.records
                          if r.family is f)
            for f in Family
        }
        # §4.3: candidates with no records at all, best priority first.
        self._recordless = tuple(
            sorted((c for c in self.candidates if not c.records), key=lambda c: -c.priority)
        )
        known = addresses or {}
        self._address = {
            f: {
                c.interface: max(
                    (a for a in (*known.get(c.interface, ()), *c.address) if a.version == f),
                    default=None,
                )
                for c in self.candidates
            }
            for f in Family
        }
        self._plain: dict[Family, Selection] = {}
        self._taken_over: dict[tuple[Family, frozenset[str]], Selection] = {}

    def by_subscriber(self, address_length: int) -> bool:
        """Whether selection for groups of this address length (4 or 16 octets) can depend
        on the subscriber."""
        return self._by_subscriber[address_length]

    def select(
        self,
        subscriber: bytes | None,
        source: bytes | None,
        group: bytes,
        unusable: frozenset[str] = frozenset(),
    ) -> Selection:
        """Select for (subscriber, source, group); addresses are packed bytes, None is unknown/any.

        ``unusable`` names the candidates that are down or inactive (§5.1).
        """
        fam = self._families[len(group)]
        w = fam.width
        x = int.from_bytes(group)
        if source is not None:
            x |= int.from_bytes(source) << w
        if subscriber is not None:
            x |= int.from_bytes(subscriber) << 2 * w
        probes = fam.probes[subscriber is not None][source is not None]
        if not unusable:
            for shape in probes:
                entry = shape.table.get(x & shape.mask)
                if entry is not None:
                    return entry.plain
            return self._fallback(fam.family)
        if not self.takeover or self._names <= unusable:
            return _mark_inactive(self.select(subscriber, source, group), unusable)
        skipped: list[str] = []
        for shape in probes:
            entry = shape.table.get(x & shape.mask)
            if entry is None:
                continue
            usable = tuple(c for c in entry.holders if c.interface not in unusable)
            skipped += (c.interface for c in entry.holders if c.interface in unusable)
            if usable:
                return _by_priority(usable, Rule.RECORD, entry.record, entry.holders,
                                    tuple(skipped))
        return self._fallback_takeover(fam.family, unusable)

    def source_records(
        self, subscriber: bytes | None, group: bytes, unusable: frozenset[str] = frozenset()
    ) -> list[tuple[Network, tuple[str, ...]]]:
        """The source prefixes that records give (subscriber, group), each with the upstreams
        that hold the record (the highest-priority usable holders).

        An any-source join of ``group`` may see sources these records send to other
        upstreams than its own selection (draft §4.2: the group's upstream serves the group
        "except the source address configured by the prior interface").
        """
        fam = self._families[len(group)]
        w = fam.width
        x = int.from_bytes(group)
        if subscriber is not None:
            x |= int.from_bytes(subscriber) << 2 * w
        out = []
        for needs_subscriber, mask, index in fam.by_channel:
            if needs_subscriber and subscriber is None:
                continue
            for entry in index.get(x & mask, ()):
                usable = tuple(c for c in entry.holders if c.interface not in unusable)
                holders = usable or entry.holders
                top = holders[0].priority
                ups = tuple(c.interface for c in holders if c.priority == top)
                assert entry.record.source is not None
                out.append((entry.record.source, ups))
        return out

    # §4.3-§4.4, all candidates usable. Cached: it depends on the family alone.
    def _fallback(self, family: Family) -> Selection:
        sel = self._plain.get(family)
        if sel is None:
            sel = self._plain[family] = self._fallback_among(family, self.candidates, ())
        return sel

    def _fallback_takeover(self, family: Family, unusable: frozenset[str]) -> Selection:
        # Depends on the family and the unusable set alone, which change rarely: cached.
        key = (family, unusable)
        sel = self._taken_over.get(key)
        if sel is None:
            sel = self._taken_over[key] = self._walk_fallback(family, unusable)
        return sel

    def _walk_fallback(self, family: Family, unusable: frozenset[str]) -> Selection:
        usable = tuple(c for c in self.candidates if c.interface not in unusable)
        skipped = tuple(c.interface for c in self.candidates if c.interface in unusable)
        sel = self._fallback_among(family, usable, skipped)
        if sel.rule is not Rule.NONE:
            return sel
        # §5.1: the default is unusable (or, with none, no usable candidate's address is
        # known); the usable candidate of highest priority takes its role (ties go to the
        # highest address, as §4.4 breaks them).
        best = max(
            usable,
            key=lambda c: (c.priority, _address_key(self._address[family].get(c.interface))),
        )
        return Selection((best.interface,), Rule.TAKEOVER_PRIORITY, None, best.priority,
                         skipped=skipped)

    def _fallback_among(
        self, family: Family, cands: tuple[Candidate, ...], skipped: tuple[str, ...]
    ) -> Selection:
        names = {c.interface for c in cands}
        recordless = tuple(c for c in self._recordless if c.interface in names)
        if recordless:
            return _by_priority(recordless, Rule.PRIORITY, None, recordless, skipped)
        if self.default is not None and self.default in names:
            return Selection((self.default,), Rule.DEFAULT, skipped=skipped)
        if self.default is not None:
            return Selection((), Rule.NONE, skipped=skipped)  # the default is unusable
        addressed = [
            (addr, c.interface)
            for c in cands
            if (addr := self._address[family].get(c.interface)) is not None
        ]
        if not addressed:
            return Selection((), Rule.NONE, skipped=skipped)
        return Selection((max(addressed)[1],), Rule.HIGHEST_ADDRESS, skipped=skipped)


def _address_key(addr: IPAddress | None) -> int:
    return -1 if addr is None else int(addr)


def _by_priority(
    usable: tuple[Candidate, ...],
    rule: Rule,
    record: Record | None,
    holders: tuple[Candidate, ...],
    skipped: tuple[str, ...] = (),
) -> Selection:
    """The highest-priority candidates of ``usable`` (sorted best first); ties select all."""
    top = usable[0].priority
    winners = tuple(c.interface for c in usable if c.priority == top)
    outranked = tuple(c.interface for c in holders if c.priority < top)
    return Selection(winners, rule, record, top, outranked, skipped)


def _mark_inactive(sel: Selection, unusable: frozenset[str]) -> Selection:
    inactive = tuple(u for u in sel.upstreams if u in unusable)
    return sel._replace(inactive=inactive) if inactive else sel


_CHANNEL = {3: "channel (source and group)", 2: "source", 1: "group", 0: "no channel"}


def describe(sel: Selection) -> str:
    """The selection in words a network operator reads."""
    names = ", ".join(sel.upstreams) or "none"
    nomatch = "no record of a usable candidate matches" if sel.skipped else "no record matches"
    if sel.rule is Rule.RECORD:
        assert sel.record is not None
        kind = "subscriber-based" if sel.record.subscriber else "channel-based"
        text = f"{names}: record {sel.record.describe()} matches ({kind}, draft §4.1-§4.2)"
    elif sel.rule is Rule.PRIORITY:
        text = f"{names}: {nomatch}; candidates with no records compete by priority (§4.3)"
    elif sel.rule is Rule.DEFAULT:
        text = f"{names}: {nomatch} and no record-less candidate; default upstream (§4.4)"
    elif sel.rule is Rule.HIGHEST_ADDRESS:
        text = (f"{names}: {nomatch}, no record-less candidate and no default; "
                "the candidate with the highest interface address (§4.4)")
    elif sel.rule is Rule.TAKEOVER_PRIORITY:
        text = (f"{names}: the rules select no usable upstream; the usable candidate with the "
                "highest priority takes over (§5.1)")
    else:
        text = "none: no candidate upstream can serve this membership"
    if sel.priority is not None and (len(sel.upstreams) > 1 or sel.outranked):
        text += f"; priority {sel.priority}"
        if sel.outranked:
            text += f" beats {', '.join(sel.outranked)}"
    if len(sel.upstreams) > 1:
        text += "; equal priorities: all are joined for robust reception (§3.3)"
    if sel.skipped:
        text += f"; takeover skipped unusable {', '.join(sel.skipped)} (§5.1)"
    if sel.inactive:
        text += f"; {', '.join(sel.inactive)} unusable but kept (takeover off or none usable)"
    return text


class Channels:
    """Whether (subscriber, source, group) falls under any of some records, matched as rule 1
    matches them (the ``resilient`` channels). Few records: a scan."""

    def __init__(self, records: Iterable[Record]) -> None:
        self._records: list[tuple[int, tuple[tuple[int, int] | None, ...]]] = []
        for rec in records:
            width = rec.family.width
            self._records.append((rec.family.length, tuple(
                None if net is None else (int(net.network_address),
                                          ((1 << width) - 1) ^ ((1 << width) - 1 >> net.prefixlen))
                for net in (rec.subscriber, rec.source, rec.group))))
        # Whether some record names subscribers (else the subscriber never matters).
        self.by_subscriber = any(prefixes[0] is not None for _, prefixes in self._records)

    def __bool__(self) -> bool:
        return bool(self._records)


    def match(self, subscriber: bytes | None, source: bytes | None, group: bytes) -> bool:
        values = (subscriber, source, group)
        for size, prefixes in self._records:
            if len(group) != size:
                continue
            for prefix, value in zip(prefixes, values, strict=True):
                if prefix is not None and (
                    value is None or int.from_bytes(value) & prefix[1] != prefix[0]):
                    break
            else:
                return True
        return False
