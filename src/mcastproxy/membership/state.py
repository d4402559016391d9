"""Read-only views of the router state, and the reasons inputs are dropped.

- ``FilterMode``: INCLUDE / EXCLUDE (RFC 9776 §6.2.1 Router Filter Mode).
- ``GroupState``: a snapshot of one group's state on the link: filter mode, Group Timer,
  source records with their Source Timers, Group Compatibility Mode.
- ``SubscriberState``: what one subscriber asked for a group: filter mode and sources.
- ``DropReason``: why an input from the link was dropped or ignored (counted, never raised).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
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
    2 (MLD) when there is none.
    """

    group: bytes
    filter_mode: FilterMode
    group_timer: float | None
    sources: Mapping[bytes, float | None]
    compatibility_mode: int

    @property
    def requested_list(self) -> frozenset[bytes]:
        """The sources to forward with a running timer: the INCLUDE list, or in EXCLUDE mode
        the "Requested List" X (RFC 9776 §6.2.1)."""
        return frozenset(s for s, t in self.sources.items() if t is not None)

    @property
    def exclude_list(self) -> frozenset[bytes]:
        """EXCLUDE mode's "Exclude List" Y: the sources not to forward (timers at zero)."""
        return frozenset(s for s, t in self.sources.items() if t is None)


class DropReason(StrEnum):
    """Why an input was dropped or ignored; ``RouterLink.dropped`` counts them."""

    UNKNOWN_MESSAGE = "unknown_message"  # not a Query, Report or Leave
    WRONG_FAMILY = "wrong_family"  # an address of the other family's length
    VERSION_INVALID = "version_invalid"  # e.g. IGMP version 4, MLD version 3
    FROM_OWN_ADDRESS = "from_own_address"  # our own query or report, looped back
    SOURCE_INVALID = "source_invalid"  # IPv4 sender that is multicast or broadcast
    SOURCE_NOT_LINK_LOCAL = "source_not_link_local"  # MLD from outside fe80::/10
    QUERY_SOURCE_UNSPECIFIED = "query_source_unspecified"  # a query from 0.0.0.0 / ::
    NOT_MULTICAST = "not_multicast"  # the group is not a multicast address
    LINK_LOCAL_SCOPE = "link_local_scope"  # 224.0.0.0/24, ff02::/16 and smaller scopes
    UNKNOWN_RECORD_TYPE = "unknown_record_type"  # RFC 9776 §4.2.12: silently ignored
    RECORD_INVALID_FOR_VERSION = "record_invalid_for_version"  # old report with odd records
    IGNORED_FOR_OLDER_VERSION = "ignored_for_older_version"  # §7.3: BLOCK, v1 Leave, ...
    # RFC 9776 §6.4 / RFC 9777 §7.4 (RFC 4604), for a group in the SSM address range:
    SSM_EXCLUDE_MODE = "ssm_exclude_mode"  # an IS_EX or TO_EX record
    SSM_OLDER_VERSION = "ssm_older_version"  # IGMPv1/v2 or MLDv1 report, Leave or Done
