"""One pseudo-interface's membership split over the relays that carry it (RFC 8777 §2.3).

Theory of operation
===================

An AMT upstream hears one host on its pseudo-interface, the proxy's upstream host side, and
rebuilds its membership (``pseudo.HostMembership``). With DRIAD, that membership goes to
several relays: a source-specific channel (S,G) to the relay of S, any-source joins (an
EXCLUDE-mode group) to the configured relay. Each relay's gateway is a host of its own at
that relay, so each is told only its part, and told changes as a host would say them.

``RelaySplit.update(groups, key_of)`` takes the whole membership and ``key_of``, which
names each source's relay (a key: ``default`` for the configured relay) or None while the
source's relay is not known yet (its channels wait). It splits the membership into each
key's part: an INCLUDE-mode group's sources by their keys, an EXCLUDE-mode group whole to
``default``. It then compares each key's part with what that key was told before and says
the difference as State-Change records (RFC 9776 §5.1 and RFC 9777 §6.1's table):

    before            after             records
    (none)            INCLUDE (B)       ALLOW (B)
    (none)            EXCLUDE (B)       TO_EX (B)
    INCLUDE (A)       INCLUDE (B)       ALLOW (B-A), BLOCK (A-B)
    INCLUDE (A)       (none)            BLOCK (A)
    INCLUDE (A)       EXCLUDE (B)       TO_EX (B)
    EXCLUDE (A)       EXCLUDE (B)       ALLOW (A-B), BLOCK (B-A)
    EXCLUDE (A)       INCLUDE (B)       TO_IN (B)
    EXCLUDE (A)       (none)            TO_IN ({})

The same holds when a source moves from one relay to another (its answer changed): BLOCK at
the old, ALLOW at the new. A report that changed nothing but carried State-Change records
is the host side retransmitting them (RFC 9776 §5.1): the records last said for those
groups are said again (``touched``), so a lost Update is repaired as the host side meant.

With one relay and no DRIAD, ``key_of`` names ``default`` for every source and the split
is the membership itself, said as the same kinds of records the host side said it with.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Final

from mcastproxy.amt.pseudo import GroupState, current_reports, pack
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

MAX_REMEMBERED: Final = 20_000
"""Groups whose last records are kept for retransmissions, over all keys."""

Part = dict[bytes, GroupState]
"""A key's part of the membership: group -> (EXCLUDE?, sources)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What to tell a key's gateway: its whole part as Current-State Reports (empty: nothing
    is joined there), and the State-Change Reports to send now."""

    current: tuple[Report, ...]
    changes: tuple[Report, ...]


def split(groups: dict[bytes, GroupState], key_of: Callable[[bytes], Hashable | None],
          default: Hashable) -> dict[Hashable, Part]:
    """``groups`` split by key (module comment); keys with nothing are left out."""
    parts: dict[Hashable, Part] = {}
    for group, (exclude, sources) in groups.items():
        if exclude:
            parts.setdefault(default, {})[group] = (True, sources)
            continue
        by: dict[Hashable, set[bytes]] = {}
        for source in sources:
            key = key_of(source)
            if key is not None:
                by.setdefault(key, set()).add(source)
        for key, mine in by.items():
            parts.setdefault(key, {})[group] = (False, frozenset(mine))
    return parts


def difference(group: bytes, before: GroupState | None,
               after: GroupState | None) -> list[GroupRecord]:
    """The State-Change records from ``before`` to ``after`` (the module comment's table)."""
    if before == after:
        return []

    def record(kind: RecordType, sources: Iterable[bytes]) -> GroupRecord:
        return GroupRecord(kind, group, tuple(sorted(sources)))

    if after is None:
        assert before is not None
        exclude, old = before
        if exclude:
            return [record(RecordType.CHANGE_TO_INCLUDE_MODE, ())]
        return [record(RecordType.BLOCK_OLD_SOURCES, old)]
    exclude, new = after
    if before is None or before[0] != exclude:
        kind = RecordType.CHANGE_TO_EXCLUDE_MODE if exclude else (
            RecordType.ALLOW_NEW_SOURCES if before is None else RecordType.CHANGE_TO_INCLUDE_MODE)
        return [record(kind, new)]
    old = before[1]
    allowed, blocked = (old - new, new - old) if exclude else (new - old, old - new)
    out = []
    if allowed:
        out.append(record(RecordType.ALLOW_NEW_SOURCES, allowed))
    if blocked:
        out.append(record(RecordType.BLOCK_OLD_SOURCES, blocked))
    return out


class RelaySplit:
    """The parts of one inner family's membership that each key was told (module comment)."""

    def __init__(self, family: Family, default: Hashable) -> None:
        self.family = Family(family)
        self.default = default
        self._told: dict[Hashable, Part] = {}
        self._last: dict[tuple[Hashable, bytes], list[GroupRecord]] = {}

    def keys(self) -> list[Hashable]:
        """The keys told something is joined there."""
        return list(self._told)

    def part(self, key: Hashable) -> Part:
        return dict(self._told.get(key, {}))

    def update(self, groups: dict[bytes, GroupState], key_of: Callable[[bytes], Hashable | None],
               touched: Iterable[bytes] = ()) -> dict[Hashable, Change]:
        """The membership is now ``groups``: what to tell each key whose part changed (or
        whose records for a ``touched`` group are said again)."""
        parts = split(groups, key_of, self.default)
        touched = frozenset(touched)
        out: dict[Hashable, Change] = {}
        for key in [*self._told, *(k for k in parts if k not in self._told)]:
            before, after = self._told.get(key, {}), parts.get(key, {})
            records: list[GroupRecord] = []
            said: set[bytes] = set()
            for group in sorted(before.keys() | after.keys()):
                diff = difference(group, before.get(group), after.get(group))
                if diff:
                    said.add(group)
                    records += diff
                    self._remember(key, group, diff)
            for group in sorted(touched - said):
                records += self._last.get((key, group), [])
            if records or before != after:
                out[key] = Change(current_reports(self.family, after),
                                  pack(self.family, records))
        self._told = parts
        return out

    def _remember(self, key: Hashable, group: bytes, records: list[GroupRecord]) -> None:
        if len(self._last) >= MAX_REMEMBERED and (key, group) not in self._last:
            self._last.clear()  # a bound, not a cache: retransmissions resume with new changes
        self._last[(key, group)] = records

    def forget(self, key: Hashable) -> None:
        """``key``'s gateway is gone: it was told nothing (its part is said again, whole,
        to a gateway made for it later)."""
        self._told.pop(key, None)
        for k in [k for k in self._last if k[0] == key]:
            del self._last[k]
