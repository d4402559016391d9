"""Read-only views of the router state.

- ``FilterMode``: INCLUDE / EXCLUDE (RFC 9776 §6.2.1 Router Filter Mode).
- ``GroupState``: a snapshot of one group's state on the link: filter mode, Group Timer,
  source records with their Source Timers, Group Compatibility Mode.
- ``SubscriberState``: what one subscriber asked for a group: filter mode and sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple


class FilterMode(IntEnum):
    """Router Filter Mode (RFC 9776 §6.2.1); the values are the record types IS_IN/IS_EX."""

    INCLUDE = 1
    EXCLUDE = 2


class SubscriberState(NamedTuple):
    """One subscriber's own requested state for a group (explicit tracking).

    INCLUDE: ``sources`` are the sources it wants (never empty: INCLUDE of nothing means it
    left). EXCLUDE: it wants every source except ``sources``.
    """

    filter_mode: FilterMode
    sources: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class GroupState:
    """A snapshot of the state of one group on the link (RFC 9776 §6.2.1).

    ``group_timer`` and each value of ``sources`` are absolute deadlines on the caller's
    clock; ``None`` is a timer that is not running (a Group Timer in INCLUDE mode, a Source
    Timer at zero in EXCLUDE mode). ``compatibility_mode`` is the Group Compatibility Mode of
    RFC 9776 §7.3.2 / Multicast Address Compatibility Mode of RFC 9777 §8.3.2: the version of
    the oldest host heard for the group within [Older Host Present Interval], or 3 (IGMP) /
    2 (MLD) when there is none. ``up_since`` and ``source_up_since`` are times on the same
    clock.
    """

    group: bytes
    filter_mode: FilterMode
    group_timer: float | None
    sources: Mapping[bytes, float | None]
    compatibility_mode: int
    # RFC 8652: when the group state was made (``up-time``) and each source record; the last
    # host whose report joined or refreshed the group (``last-reporter``; None: none known).
    up_since: float | None = None
    source_up_since: Mapping[bytes, float] = field(default_factory=dict)
    last_reporter: bytes | None = None

    @property
    def requested_list(self) -> frozenset[bytes]:
        """The sources to forward with a running timer: the INCLUDE list, or in EXCLUDE mode
        the "Requested List" X (RFC 9776 §6.2.1)."""
        return frozenset(s for s, t in self.sources.items() if t is not None)

    @property
    def exclude_list(self) -> frozenset[bytes]:
        """EXCLUDE mode's "Exclude List" Y: the sources not to forward (timers at zero)."""
        return frozenset(s for s, t in self.sources.items() if t is None)
