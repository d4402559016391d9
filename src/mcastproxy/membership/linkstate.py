"""What the parts of a ``RouterLink`` share: the link's state, its timers and its heaps.

Theory of operation
===================

``RouterLink`` (``router``) is the router part of RFC 9776 §6-7 (IGMP) or RFC 9777 §7-8 (MLD)
on one link. It is built in layers, each a module of one job and each a class built on the
one below, so that a layer calls only what lies under it:

- ``linkstate.LinkState`` (here): the state every layer reads, declared once, and the few
  helpers they all need: the timers in force (RFC 9776 §8), the link's next wake-up, a
  group's place in the timer heap;
- ``explicit.ExplicitTracking``: what each subscriber asked for (explicit tracking), and the
  sessions it begins and ends;
- ``queries.LastMemberQueries``: the querier's last-member queries (§6.6.3), their rate bound
  and the merged General Query that stands in for them;
- ``intake.RecordIntake``: what the link hears: queries (§6.6.1), reports and leaves (§6.4,
  §7.3, the SSM rules of RFC 4604);
- ``static.StaticGroups``: the operator's static groups (RFC 8652 ``static-group``);
- ``router.RouterLink``: the public surface, timers running out, read-only views.

Timers: every deadline lives in the state it belongs to (a float on the group, the source
record, the subscription). Two heaps index them for ``next_deadline()`` and
``handle_timers()``: one entry per group (its earliest timer) and one per tracked
subscription. Entries are never removed eagerly; each state object remembers the deadline of
its one live entry (``scheduled``) and the heaps are checked against the state when read, so
a heap can hold an entry that is too early (it is re-pushed at the right time) or stale (it
is discarded), never one that hides a real deadline. A refresh moves no heap entry at all.
``_due`` is a lower bound of every deadline (maybe stale): an input at or after it runs the
timers first.

The attributes are declared here and set by ``RouterLink.__init__``: one instance dictionary
for all the layers, so the report path pays no indirection for the split.
"""

from __future__ import annotations

from collections import Counter
from heapq import heappush

from mcastproxy.admission import Admission
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership.addresses import AddressRanges, AddressTest
from mcastproxy.membership.group import Group
from mcastproxy.membership.outputs import Output
from mcastproxy.membership.querier import Querier
from mcastproxy.membership.ssmmap import SsmMap
from mcastproxy.membership.statistics import MessageCounts
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.membership.tracking import SharedSets


class LinkState:
    """The state of one link's router side, shared by its layers (see the module's comment)."""

    _family: Family
    _alen: int  # 4: IGMP, which has rules of its own (IGMPv1, v2 hosts); 16: MLD
    _full: int  # the version with source filtering
    _ssm: AddressRanges
    _ssm_aware: bool  # checked first on the report path
    _is_multicast: AddressTest
    _fast_leave: bool
    _sessions: bool  # say when a subscriber's sessions begin and end (``explicit``)
    _unspecified: bytes
    _outputs: list[Output]  # the same list object for the link's lifetime
    _changed_groups: dict[bytes, None]
    # (group, subscriber) of each subscriber whose state changed, in order: kept apart from
    # the outputs, as plain pairs, for the report path (``RouterLink.pop_changes``).
    _changed_subscribers: list[tuple[bytes, bytes]]
    _dropped: Counter[Drop]
    _stats: MessageCounts  # RFC 8652 statistics
    _querier: Querier
    _timers: ProtocolTimers
    _gmi: float  # [Group Membership Interval], kept at hand for the report path
    _lmqi: float
    _lmqc: int
    _lmqt: float
    _due: float  # no timer can be due before this (a lower bound, maybe stale)
    _groups: dict[bytes, Group]
    _group_heap: list[tuple[float, bytes]]
    _subscription_heap: list[tuple[float, bytes, bytes]]
    _retransmitting: set[bytes]  # groups with specific queries pending
    _shared_sets: SharedSets
    _admission: Admission | None
    _ssm_map: SsmMap | None
    # Static groups (``static``): group -> sources (None: any source).
    _static: dict[bytes, frozenset[bytes] | None]

    def _check_address(self, address: bytes | None) -> None:
        if address is not None and (not isinstance(address, bytes) or len(address) != self._alen):
            raise ValueError(f"address must be {self._alen} packed octets, not {address!r}")


    def _use_timers(self, timers: ProtocolTimers) -> None:
        """Keep at hand the values the report path needs from the timers in force."""
        self._timers = timers
        self._gmi = timers.group_membership_interval
        self._lmqi = timers.last_member_query_interval
        self._lmqc = timers.effective_last_member_query_count
        self._lmqt = timers.last_member_query_time

    def _sync_querier(self) -> None:
        """After the querier acted: the timers it put in force, its next deadline."""
        if self._querier.timers is not self._timers:
            self._use_timers(self._querier.timers)
        self._due = min(self._due, self._querier.next_deadline())


    def _reschedule(self, g: Group) -> None:
        wake = g.next_wake()
        if wake < g.scheduled:
            g.scheduled = wake
            heappush(self._group_heap, (wake, g.address))
            self._due = min(self._due, wake)

