"""Explicit tracking: what each subscriber asked for each group.

A subscriber is the source address of the reports (DESIGN.md: "Who the subscriber is"). Its
state for a group is a filter mode and a source set, built from its records:

    IS_IN (A), TO_IN (A)   -> INCLUDE A              IS_EX (A), TO_EX (A)  -> EXCLUDE A
    ALLOW (A)              -> INCLUDE: add A         EXCLUDE: stop excluding A
    BLOCK (A)              -> INCLUDE: remove A      EXCLUDE: exclude A too

INCLUDE of nothing means the subscriber left. Each (subscriber, group) expires [Group
Membership Interval] after its last report. The state is kept small: a ``Subscription`` with
four slots, its source set shared with every other subscription asking for the same set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mcastproxy.membership.group import ALLOW, EMPTY, EXCLUDE, INCLUDE, IS_EX, IS_IN, TO_EX, TO_IN
from mcastproxy.membership.state import FilterMode, SubscriberState

_SHARED_SETS_LIMIT = 4096  # distinct source sets kept for sharing


class Subscription:
    """One tracked (subscriber, group): its own mode and sources, and its expiry."""

    __slots__ = ("expires", "mode", "scheduled", "sources")

    def __init__(self, mode: FilterMode, sources: frozenset[bytes], expires: float) -> None:
        self.mode = mode
        self.sources = sources
        self.expires = expires
        self.scheduled = expires  # deadline of this subscription's live entry in the heap


def requested_state(
    mode: FilterMode, sources: frozenset[bytes], rtype: int, a: frozenset[bytes]
) -> tuple[FilterMode, frozenset[bytes]]:
    """A subscriber's new (mode, sources) after a record of type ``rtype`` with sources ``a``,
    from its old ones (INCLUDE, {} for a new subscriber)."""
    if rtype in (IS_IN, TO_IN):
        return INCLUDE, a
    if rtype in (IS_EX, TO_EX):
        return EXCLUDE, a
    if rtype == ALLOW:
        return mode, (sources | a) if mode is INCLUDE else (sources - a)
    return mode, (sources - a) if mode is INCLUDE else (sources | a)  # BLOCK


class SharedSets:
    """One object per distinct source set, so many subscriptions share one (bounded)."""

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[frozenset[bytes], frozenset[bytes]] = {}

    def __call__(self, sources: frozenset[bytes]) -> frozenset[bytes]:
        if not sources:
            return EMPTY
        shared = self._sets.get(sources)
        if shared is None:
            if len(self._sets) >= _SHARED_SETS_LIMIT:
                self._sets.clear()
            self._sets[sources] = shared = sources
        return shared


class SubscriberView(Mapping[bytes, SubscriberState]):
    """A live read-only view of a group's tracked subscribers."""

    __slots__ = ("_subscribers",)

    def __init__(self, subscribers: dict[bytes, Subscription]) -> None:
        self._subscribers = subscribers

    def __getitem__(self, subscriber: bytes) -> SubscriberState:
        sub = self._subscribers[subscriber]
        return SubscriberState(sub.mode, sub.sources)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)
