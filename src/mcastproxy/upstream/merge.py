"""Merging many subscriptions into one interface state (RFC 4605 §4.1, RFC 9776 §3.2).

A proxy reports upstream the union of what its downstream subscriptions want, merged by the
rules a host uses for its sockets: if any subscription is in EXCLUDE mode, the result is
EXCLUDE with the sources every EXCLUDE subscription excludes and no INCLUDE one includes;
otherwise INCLUDE with every source any subscription includes.

``MergedGroup`` keeps counts rather than the subscriptions themselves, so adding or removing
one subscription costs time in its own sources only, however many share the group: the
number of EXCLUDE contributions, and per source how many INCLUDE lists and how many EXCLUDE
lists hold it.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcastproxy.membership.state import FilterMode

EMPTY: frozenset[bytes] = frozenset()

InterfaceState = tuple[FilterMode, frozenset[bytes]]
"""A (filter mode, source list) pair; INCLUDE with no sources means no membership."""


class MergedGroup:
    """The merge of the (filter mode, sources) contributions to one group."""

    __slots__ = ("_excluded", "_excluders", "_included")

    def __init__(self) -> None:
        self._excluders = 0  # EXCLUDE contributions
        self._excluded: dict[bytes, int] = {}  # source -> EXCLUDE lists holding it
        self._included: dict[bytes, int] = {}  # source -> INCLUDE lists holding it

    def add(self, mode: FilterMode, sources: Iterable[bytes]) -> None:
        counts = self._count(mode)
        for s in sources:
            counts[s] = counts.get(s, 0) + 1

    def remove(self, mode: FilterMode, sources: Iterable[bytes]) -> None:
        """Take back a contribution earlier ``add``-ed with the same mode and sources."""
        counts = self._included if mode is FilterMode.INCLUDE else self._excluded
        if mode is FilterMode.EXCLUDE:
            self._excluders -= 1
        for s in sources:
            n = counts[s] - 1
            if n:
                counts[s] = n
            else:
                del counts[s]

    def _count(self, mode: FilterMode) -> dict[bytes, int]:
        if mode is FilterMode.EXCLUDE:
            self._excluders += 1
            return self._excluded
        return self._included

    def wants(self, source: bytes) -> bool:
        """Whether the merged state forwards ``source``; cheaper than ``state()``."""
        if source in self._included:
            return True
        return bool(self._excluders) and self._excluded.get(source, 0) < self._excluders

    @property
    def empty(self) -> bool:
        return not self._excluders and not self._included

    def state(self) -> InterfaceState:
        """The merged interface state (RFC 9776 §3.2)."""
        if self._excluders:
            n = self._excluders
            included = self._included
            return FilterMode.EXCLUDE, frozenset(
                s for s, c in self._excluded.items() if c == n and s not in included
            )
        return FilterMode.INCLUDE, frozenset(self._included) if self._included else EMPTY


def merge(states: Iterable[InterfaceState]) -> InterfaceState:
    """The merge of whole states at once (RFC 9776 §3.2)."""
    merged = MergedGroup()
    for mode, sources in states:
        merged.add(mode, sources)
    return merged.state()
