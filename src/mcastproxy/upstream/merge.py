"""Merging many subscriptions into one interface state (RFC 4605 §4.1, RFC 9776 §3.2).

A proxy reports upstream the union of what its downstream subscriptions want, merged by the
rules a host uses for its sockets: if any subscription is in EXCLUDE mode, the result is
EXCLUDE with the sources every EXCLUDE subscription excludes and no INCLUDE one includes;
otherwise INCLUDE with every source any subscription includes.

``MergedGroup`` keeps counts rather than the subscriptions themselves, so adding or removing
one subscription costs time in its own sources only, however many share the group: the
number of EXCLUDE contributions, and per source how many INCLUDE lists and how many EXCLUDE
lists hold it.

A merge is kept per group several times over (per link, per upstream), and most groups are
joined in any-source mode, with no source at all: so a merge makes its per-source counts
only when a contribution has sources, and the states with no source (``NOTHING``,
``ANY_SOURCE``) are shared constants rather than a new tuple and set each time.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcastproxy.membership.state import FilterMode

EMPTY: frozenset[bytes] = frozenset()

InterfaceState = tuple[FilterMode, frozenset[bytes]]
"""A (filter mode, source list) pair; INCLUDE with no sources means no membership."""

NOTHING: InterfaceState = (FilterMode.INCLUDE, EMPTY)
"""No membership."""
ANY_SOURCE: InterfaceState = (FilterMode.EXCLUDE, EMPTY)
"""Every source: an any-source membership."""

_NO_COUNTS: dict[bytes, int] = {}
"""The counts of a merge with no source of a kind: shared, read, never written."""


class MergedGroup:
    """The merge of the (filter mode, sources) contributions to one group.

    The merged state is kept once computed, until a contribution that may change it comes
    or goes: a thousand subscribers of one channel joining and leaving in any-source mode
    never change it, and then reading it costs nothing.
    """

    __slots__ = ("_excluded", "_excluders", "_included", "_state")

    def __init__(self) -> None:
        self._excluders = 0  # EXCLUDE contributions
        self._excluded = _NO_COUNTS  # source -> EXCLUDE lists holding it
        self._included = _NO_COUNTS  # source -> INCLUDE lists holding it
        self._state: InterfaceState | None = None  # the merged state, while known

    def add(self, mode: FilterMode, sources: Iterable[bytes]) -> None:
        if mode is FilterMode.EXCLUDE:
            # Another EXCLUDE list changes nothing only if it is empty, the mode was EXCLUDE
            # already, and no source was excluded by all the others.
            if sources or not self._excluders or self._excluded:
                self._state = None
            self._excluders += 1
            if not sources:
                return
            counts = self._excluded
            if counts is _NO_COUNTS:
                counts = self._excluded = {}
        else:
            if not sources:
                return
            counts = self._included
            if counts is _NO_COUNTS:
                counts = self._included = {}
        for s in sources:
            n = counts.get(s, 0)
            if not n:
                self._state = None
            counts[s] = n + 1

    def remove(self, mode: FilterMode, sources: Iterable[bytes]) -> None:
        """Take back a contribution earlier ``add``-ed with the same mode and sources."""
        if mode is FilterMode.EXCLUDE:
            self._excluders -= 1
            if sources or not self._excluders or self._excluded:
                self._state = None
            counts = self._excluded
        else:
            counts = self._included
        for s in sources:
            n = counts[s] - 1
            if n:
                counts[s] = n
            else:
                del counts[s]
                self._state = None

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
        state = self._state
        if state is None:
            if self._excluders:
                n = self._excluders
                included = self._included
                excluded = frozenset(
                    s for s, c in self._excluded.items() if c == n and s not in included)
                state = (FilterMode.EXCLUDE, excluded) if excluded else ANY_SOURCE
            elif self._included:
                state = FilterMode.INCLUDE, frozenset(self._included)
            else:
                state = NOTHING
            self._state = state
        return state


def merge(states: Iterable[InterfaceState]) -> InterfaceState:
    """The merge of whole states at once (RFC 9776 §3.2)."""
    merged = MergedGroup()
    for mode, sources in states:
        merged.add(mode, sources)
    return merged.state()
