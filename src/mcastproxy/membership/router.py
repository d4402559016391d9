"""The multicast router side of IGMPv3 / MLDv2 on one downstream link, with explicit tracking.

Theory of operation
===================

One ``RouterLink`` is the router part of RFC 9776 §6-7 (IGMP) or RFC 9777 §7-8 (MLD) for one
link and one address family. It is sans-I/O: messages come in through ``receive()`` already
decoded (``mcastproxy.wire.messages``), time is the ``now`` argument of every call, what the
link wants sent or re-read comes out of ``pop_outputs()``, and ``next_deadline()`` says when
``handle_timers()`` must next be called. Nothing here reads a clock or sleeps.

State, per link:

- Querier election (RFC 9776 §6.6.2, RFC 9777 §7.6.2). We start as querier and send
  [Startup Query Count] General Queries [Startup Query Interval] apart, then one every
  [Query Interval]. A General Query from a lower address (IPv4 numerically, IPv6 the
  link-local compared as octets; both are a comparison of the packed bytes) makes us a
  non-querier until the Other Querier Present timer runs out. A non-querier adopts the
  querier's QRV and QQI (§4.1.6, §4.1.7) and sends no queries. Without an address of our own
  we cannot be querier.
- The version in use (RFC 9776 §7.3.1, RFC 9777 §8.3.1): the configured querier version,
  lowered while an older General Query has been heard within the Older Version Querier
  Present timeout. Below IGMPv3 / MLDv2 there is no source filtering, so records are
  reduced to their whole-group meaning (join, leave) and queries use the old format.

State, per group (RFC 9776 §6.2): the Router Filter Mode, the Group Timer (EXCLUDE mode only)
and the source records, each with a Source Timer. In INCLUDE mode every source record has a
running timer; in EXCLUDE mode the records with a running timer are the Requested List X
(forwarded) and those at zero are the Exclude List Y (not forwarded). Records change the
state by the tables of §6.4.1 (current-state: IS_IN, IS_EX) and §6.4.2 (state-change: ALLOW,
BLOCK, TO_IN, TO_EX), implemented row by row in ``group.Group.apply_record``. Timers run out
(``Group.expire``): an INCLUDE source is deleted, an EXCLUDE source moves to Y, and an expired
Group Timer switches the group to INCLUDE with the sources still running, or deletes it
(§6.5). The tables' "Send Q(G)" and "Send Q(G,X)" lower the timers to the Last Member Query
Time and send [Last Member Query Count] Group-Specific or Group-and-Source-Specific Queries
[Last Member Query Interval] apart (§6.6.3); a non-querier instead lowers its timers when it
hears the querier's queries with the S flag clear (§6.6.1). Older hosts (§7.3.2): an IGMPv1/v2
or MLDv1 report starts the group's Older Host Present timer; while it runs, BLOCK is ignored,
TO_EX(A) is read as TO_EX({}), and with IGMPv1 hosts Leave and TO_IN are ignored.

Explicit tracking (``tracking``): each subscriber (the source address of its reports; 0.0.0.0
and :: are not tracked) has its own filter mode and source set per group, built from its records and
expiring [Group Membership Interval] after its last report. Per group we keep counts over the
tracked subscribers (how many are in EXCLUDE mode, how many include or exclude each source),
so "does any tracked subscriber still want this source?" is O(1) whatever the number of
subscribers. With fast leave on, a state-change record from a tracked subscriber never causes
last-member queries: what no tracked subscriber wants any more is dropped at once, the rest
is kept as it is. When the router state forgets something by its own timers (nobody answered
the queries), the tracked subscribers that claimed it are forgotten too.

Timers: every deadline lives in the state it belongs to (a float on the group, the source
record, the subscription). Two heaps index them for ``next_deadline()`` and
``handle_timers()``: one entry per group (its earliest timer) and one per tracked
subscription. Entries are never removed eagerly; each state object remembers the deadline of
its one live entry (``scheduled``) and the heaps are checked against the state when read, so
a heap can hold an entry that is too early (it is re-pushed at the right time) or stale (it
is discarded), never one that hides a real deadline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from heapq import heappop, heappush

from mcastproxy.membership.addresses import (
    MAX_QUERY_SOURCES,
    is_ipv6_link_local,
    is_link_local_scope,
    is_multicast,
    unspecified,
)
from mcastproxy.membership.group import (
    ALLOW,
    BLOCK,
    EMPTY,
    EXCLUDE,
    INCLUDE,
    IS_EX,
    IS_IN,
    NEVER,
    OFF,
    TO_EX,
    TO_IN,
    Group,
)
from mcastproxy.membership.outputs import (
    GroupChanged,
    Output,
    QuerierChanged,
    SendQuery,
    SubscriberChanged,
)
from mcastproxy.membership.state import DropReason, FilterMode, GroupState, SubscriberState
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.membership.tracking import (
    SharedSets,
    SubscriberView,
    Subscription,
    requested_state,
)
from mcastproxy.wire.messages import Leave, Message, Query, Report

_NEXT_DEADLINE_BUDGET = 64  # heap entries next_deadline() checks per heap and call


class RouterLink:
    """The router side of IGMP (``family=4``) or MLD (``family=6``) on one downstream link.

    ``version`` is the configured querier version: IGMP 1, 2 or 3; MLD 1 or 2.
    ``own_address`` is our address on the link (IPv4, or the IPv6 link-local); without one we
    cannot be querier. ``fast_leave`` drops state at once when the last tracked subscriber
    stops wanting it, instead of sending last-member queries.
    """

    def __init__(
        self,
        timers: ProtocolTimers,
        family: int,
        version: int,
        own_address: bytes | None = None,
        fast_leave: bool = False,
    ) -> None:
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        self._alen = 4 if family == 4 else 16
        self._full = 3 if family == 4 else 2  # the version with source filtering
        if version not in range(1, self._full + 1):
            name = "IGMP" if family == 4 else "MLD"
            raise ValueError(f"{name} version must be 1 to {self._full}, not {version!r}")
        self._check_address(own_address)
        self._family = family
        self._version = version
        self._configured = timers
        self._use_timers(timers)
        self._own = own_address
        self._fast_leave = fast_leave
        self._unspecified = unspecified(self._alen)

        self._started = False
        self._is_querier = False
        self._querier: bytes | None = None
        self._other_querier_until = OFF
        self._next_general_query = OFF
        self._startup_left = 0
        # RFC 9776 §7.3.1: older querier version -> Older Version Querier Present deadline.
        self._older_querier_until: dict[int, float] = {}
        self._operating_version = version

        self._due = NEVER  # no timer can be due before this (a lower bound, maybe stale)
        self._groups: dict[bytes, Group] = {}
        self._group_heap: list[tuple[float, bytes]] = []
        self._subscription_heap: list[tuple[float, bytes, bytes]] = []
        self._retransmitting: set[bytes] = set()
        self._shared_sets = SharedSets()

        self._outputs: list[Output] = []
        self._changed_groups: dict[bytes, None] = {}
        self._dropped: Counter[DropReason] = Counter()

    # ==== the surface ==========================================================================

    def start(self, now: float) -> None:
        """Begin operating: become querier (if we have an address) and send startup queries."""
        if self._started:
            raise RuntimeError("RouterLink.start() called twice")
        self._started = True
        if self._own is not None and self._other_querier_until == OFF:
            self._become_querier(now, startup=True)

    def receive(self, message: Message, source_address: bytes, now: float) -> None:
        """Process a Query, Report or Leave heard on the link from ``source_address``.

        Timers due at or before ``now`` are processed first. Bad input is counted in
        ``dropped``, never raised.
        """
        if now >= self._due:
            self.handle_timers(now)
        if isinstance(message, Report):
            self._receive_report(message, source_address, now)
        elif isinstance(message, Query):
            self._receive_query(message, source_address, now)
        elif isinstance(message, Leave):
            self._receive_leave(message, source_address, now)
        else:
            self._dropped[DropReason.UNKNOWN_MESSAGE] += 1

    def set_address(self, address: bytes | None, now: float) -> None:
        """Our address on the link changed (``None``: we have none, so cannot be querier)."""
        self._check_address(address)
        self._run_due(now)
        previous = self._own
        self._own = address
        if address is None:
            if self._is_querier:
                self._stop_querying(None)
                self._outputs.append(QuerierChanged(False, None))
            return
        if not self._started:
            return
        if self._is_querier:
            if address != previous:
                self._querier = address
                self._outputs.append(QuerierChanged(True, address))
        elif self._other_querier_until == OFF or (
            self._querier is not None and address < self._querier
        ):
            # RFC 9776 §6.6.2: every router starts as querier; a lower-addressed one wins.
            self._become_querier(now, startup=True)

    def handle_timers(self, now: float) -> None:
        """Process every timer due at or before ``now``."""
        # Querier election and the version in use (RFC 9776 §6.6.2, §7.3.1).
        if self._other_querier_until != OFF and self._other_querier_until <= now:
            self._other_querier_until = OFF
            self._querier = None
            if self._own is not None and self._started:
                # §6.6.2: "After its Other-Querier-Present Timer expires, it should begin
                # sending General Queries."
                self._become_querier(now, startup=False)
        if self._older_querier_until:
            for version, until in list(self._older_querier_until.items()):
                if until <= now:
                    del self._older_querier_until[version]
            self._operating_version = min(self._older_querier_until, default=self._version)
            self._operating_version = min(self._operating_version, self._version)
        if self._is_querier and OFF < self._next_general_query <= now:
            self._send_general_query(now)

        heap = self._group_heap
        groups = self._groups
        while heap and heap[0][0] <= now:
            deadline, address = heappop(heap)
            group = groups.get(address)
            if group is None or group.scheduled != deadline:
                continue  # stale entry
            group.scheduled = NEVER
            self._expire_group(group, now)

        sheap = self._subscription_heap
        while sheap and sheap[0][0] <= now:
            deadline, address, host = heappop(sheap)
            group = groups.get(address)
            sub = group.subscribers.get(host) if group is not None else None
            if sub is None or sub.scheduled != deadline:
                continue  # stale entry
            if sub.expires <= now:
                # No report from this subscriber for [Group Membership Interval].
                self._remove_subscription(group, host, sub)  # type: ignore[arg-type]
            else:
                sub.scheduled = sub.expires
                heappush(sheap, (sub.expires, address, host))
        self._due = self._earliest()

    def next_deadline(self) -> float | None:
        """When ``handle_timers()`` must next be called, or ``None`` if nothing is scheduled.

        Exact as a rule; after a burst of refreshes or deletions it may be earlier than
        needed (never later): the heap entries are checked against the state a bounded
        number at a time, so this call stays cheap, and the rest happens in
        ``handle_timers()`` when they come up.
        """
        best = NEVER
        if self._other_querier_until != OFF:
            best = self._other_querier_until
        if self._is_querier and OFF < self._next_general_query < best:
            best = self._next_general_query
        for until in self._older_querier_until.values():
            best = min(best, until)

        budget = _NEXT_DEADLINE_BUDGET
        heap = self._group_heap
        while heap:
            deadline, address = heap[0]
            group = self._groups.get(address)
            if budget == 0:
                best = min(best, deadline)
                break
            budget -= 1
            if group is None or group.scheduled != deadline:
                heappop(heap)  # stale
                continue
            wake = group.next_wake()
            if wake > deadline:  # the group's timers moved later since the entry was made
                heappop(heap)
                group.scheduled = wake
                if wake != NEVER:
                    heappush(heap, (wake, address))
                continue
            best = min(best, deadline)
            break

        budget = _NEXT_DEADLINE_BUDGET
        sheap = self._subscription_heap
        while sheap:
            deadline, address, host = sheap[0]
            if budget == 0:
                best = min(best, deadline)
                break
            budget -= 1
            group = self._groups.get(address)
            sub = group.subscribers.get(host) if group is not None else None
            if sub is None or sub.scheduled != deadline:
                heappop(sheap)  # stale
                continue
            if sub.expires > deadline:  # refreshed since: move the entry
                heappop(sheap)
                sub.scheduled = sub.expires
                heappush(sheap, (sub.expires, address, host))
                continue
            best = min(best, deadline)
            break
        return None if best == NEVER else best

    def pop_outputs(self) -> list[Output]:
        """What happened since the last call, in order (queries to send, subscribers that
        changed), then a ``GroupChanged`` for each group that changed (each named once)."""
        out = self._outputs
        self._outputs = []
        if self._changed_groups:
            out += [GroupChanged(g) for g in self._changed_groups]
            self._changed_groups = {}
        return out

    def _use_timers(self, timers: ProtocolTimers) -> None:
        """Put ``timers`` in force (the configured ones, or with the querier's QRV/QQI), and
        keep the values the report path needs at hand."""
        self._timers = timers
        self._gmi = timers.group_membership_interval
        self._lmqi = timers.last_member_query_interval
        self._lmqc = timers.effective_last_member_query_count
        self._lmqt = timers.last_member_query_time

    # ==== read-only queries ===================================================================

    @property
    def family(self) -> int:
        return self._family

    @property
    def version(self) -> int:
        """The configured querier version."""
        return self._version

    @property
    def operating_version(self) -> int:
        """The version in use: the configured one, or an older one heard recently (§7.3.1)."""
        return self._operating_version

    @property
    def own_address(self) -> bytes | None:
        return self._own

    @property
    def fast_leave(self) -> bool:
        return self._fast_leave

    @property
    def is_querier(self) -> bool:
        return self._is_querier

    @property
    def querier_address(self) -> bytes | None:
        """The current querier's address: ours, another router's, or ``None`` if unknown."""
        return self._querier

    @property
    def timers(self) -> ProtocolTimers:
        """The timers in force: the configured ones, or with the querier's QRV and QQI."""
        return self._timers

    @property
    def dropped(self) -> Mapping[DropReason, int]:
        """Inputs dropped or ignored, by reason."""
        return dict(self._dropped)

    def groups(self) -> tuple[bytes, ...]:
        """The groups with state on the link."""
        return tuple(self._groups)

    def group_state(self, group: bytes) -> GroupState | None:
        """A snapshot of ``group``'s state, or ``None`` if it has none."""
        g = self._groups.get(group)
        if g is None:
            return None
        return GroupState(
            group=group,
            filter_mode=g.mode,
            group_timer=None if g.group_timer == OFF else g.group_timer,
            sources={s: (None if t == OFF else t) for s, t in g.sources.items()},
            compatibility_mode=self._group_compatibility(g),
        )

    def forwarded(self, group: bytes) -> tuple[FilterMode, frozenset[bytes]]:
        """The forwarding suggestion of RFC 9776 §6.3 for ``group``.

        (INCLUDE, S): forward exactly the sources S (nothing if S is empty or the group has
        no state). (EXCLUDE, Y): forward every source except Y, the sources whose timers are
        at zero.
        """
        g = self._groups.get(group)
        if g is None:
            return INCLUDE, EMPTY
        if g.mode is INCLUDE:
            return INCLUDE, frozenset(g.sources)
        return EXCLUDE, frozenset(s for s, t in g.sources.items() if t == OFF)

    def wants(self, group: bytes, source: bytes) -> bool:
        """Whether traffic from ``source`` to ``group`` is to be forwarded onto the link."""
        g = self._groups.get(group)
        if g is None:
            return False
        timer = g.sources.get(source)
        if g.mode is INCLUDE:
            return timer is not None
        return timer != OFF

    def subscribers(self, group: bytes) -> Mapping[bytes, SubscriberState]:
        """The tracked subscribers of ``group`` and what each asked for (a live view)."""
        g = self._groups.get(group)
        return SubscriberView(g.subscribers if g is not None else {})

    def subscriber(self, group: bytes, subscriber: bytes) -> SubscriberState | None:
        """What ``subscriber`` asked for ``group``, or ``None`` if it is not tracked."""
        g = self._groups.get(group)
        sub = g.subscribers.get(subscriber) if g is not None else None
        return None if sub is None else SubscriberState(sub.mode, sub.sources)

    # ==== input checks ========================================================================

    def _check_address(self, address: bytes | None) -> None:
        if address is not None and (not isinstance(address, bytes) or len(address) != self._alen):
            raise ValueError(f"address must be {self._alen} packed octets, not {address!r}")

    def _check_sender(self, source: bytes) -> bool:
        """Count and refuse a sender we must not listen to; True if it is acceptable."""
        if len(source) != self._alen:
            self._dropped[DropReason.WRONG_FAMILY] += 1
            return False
        if source == self._own:
            self._dropped[DropReason.FROM_OWN_ADDRESS] += 1
            return False
        if self._alen == 4:
            if source[0] >= 224:
                self._dropped[DropReason.SOURCE_INVALID] += 1
                return False
        elif source != self._unspecified and not is_ipv6_link_local(source):
            # RFC 9777 §5.1.14, §5.2.13: MLD messages come from a link-local address (or ::
            # for a report sent before the host has one).
            self._dropped[DropReason.SOURCE_NOT_LINK_LOCAL] += 1
            return False
        return True

    def _check_group(self, group: bytes) -> bool:
        if len(group) != self._alen:
            self._dropped[DropReason.WRONG_FAMILY] += 1
            return False
        if not is_multicast(group):
            self._dropped[DropReason.NOT_MULTICAST] += 1
            return False
        if is_link_local_scope(group):
            # Link-scope groups are never routed; reports for them are ignored (RFC 9776
            # §5: no reports for 224.0.0.1; RFC 9777 §6 likewise for ff02::1 and scopes 0-1).
            self._dropped[DropReason.LINK_LOCAL_SCOPE] += 1
            return False
        return True

    # ==== reports and leaves ==================================================================

    def _receive_report(self, report: Report, source: bytes, now: float) -> None:
        if not self._check_sender(source):
            return
        host = None if source == self._unspecified else source
        version = report.version
        if version == self._full:
            for record in report.records:
                self._receive_record(record.group, record.type, record.sources, host, now, 0)
            return
        if not 1 <= version < self._full:
            self._dropped[DropReason.VERSION_INVALID] += 1
            return
        # An IGMPv1/v2 or MLDv1 report: one group, read as IS_EX({}) (RFC 9776 §7.3.2).
        records = report.records
        if len(records) != 1 or records[0].type != IS_EX or records[0].sources:
            self._dropped[DropReason.RECORD_INVALID_FOR_VERSION] += 1
            return
        self._receive_record(records[0].group, IS_EX, (), host, now, version)

    def _receive_leave(self, leave: Leave, source: bytes, now: float) -> None:
        if not self._check_sender(source):
            return
        host = None if source == self._unspecified else source
        # RFC 9776 §7.3.2 / RFC 9777 §8.3.2: an IGMPv2 Leave / MLDv1 Done is TO_IN({}).
        self._receive_record(leave.group, TO_IN, (), host, now, -1)

    def _receive_record(
        self,
        group: bytes,
        rtype: int,
        sources: tuple[bytes, ...],
        host: bytes | None,
        now: float,
        old: int,
    ) -> None:
        """One group record; ``old`` is the version of an old-style report, -1 for a Leave."""
        g = self._groups.get(group)
        is_new = g is None
        if is_new and not self._check_group(group):  # a group with state passed already
            return
        if not 1 <= rtype <= 6:
            self._dropped[DropReason.UNKNOWN_RECORD_TYPE] += 1
            return
        if sources:
            alen = self._alen
            for s in sources:
                if len(s) != alen:
                    self._dropped[DropReason.WRONG_FAMILY] += 1
                    return
            a = frozenset(sources)
        else:
            a = EMPTY

        if old > 0:
            # RFC 9776 §7.3.2: "The IGMPv1-Host-Present Timer is set to [Older Version Host
            # Present Interval] seconds whenever an IGMPv1 Membership Report is received"
            # (and likewise IGMPv2, and MLDv1 in RFC 9777 §8.3.2).
            if g is None:
                g = Group(group)
            deadline = now + self._timers.older_host_present_interval
            self._due = min(self._due, deadline)
            if old == 1:
                g.v1_host = deadline
            else:
                g.v2_host = deadline

        # The version in use on the link (§7.3.1): without source filtering, a record is a
        # join or a leave of the whole group.
        operating = self._operating_version
        if operating < self._full:
            if rtype == BLOCK:
                self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if not a and rtype in (IS_IN, ALLOW):
                return  # no change to anything
            if rtype == TO_IN and not a:
                if self._family == 4 and operating == 1:
                    # RFC 9776 §7.3.1: "When in IGMPv1 mode, routers ... MUST ignore Leave
                    # Group messages."
                    self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                    return
            elif rtype == TO_EX:
                a = EMPTY
            else:
                rtype, a = IS_EX, EMPTY

        # Older hosts on the link for this group (§7.3.2).
        if g is not None and (g.v1_host != OFF or g.v2_host != OFF):
            if rtype == BLOCK:
                # "IGMPv3 BLOCK messages are ignored"
                self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if rtype == TO_EX:
                # "as are source-lists in TO_EX() messages (i.e., any TO_EX() message is
                # treated as TO_EX( {} ))"
                a = EMPTY
            elif rtype == TO_IN and self._family == 4 and g.v1_host != OFF:
                # IGMPv1 Group Compatibility Mode: "IGMPv2 Leave messages and IGMPv3 TO_IN()
                # messages are also ignored."
                self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                return

        if g is None:
            # No state is INCLUDE({}): these records leave it unchanged.
            if rtype == BLOCK or (not a and rtype in (IS_IN, ALLOW, TO_IN)):
                return
            g = Group(group)

        was_tracked = host is not None and self._track(g, host, rtype, a, now)

        if not a and not g.sources and g.mode is EXCLUDE and rtype in (IS_EX, TO_EX) and old <= 0:
            # The any-source join again: EXCLUDE ({},{}) IS_EX ({}) / TO_EX ({}) only sets
            # the Group Timer to GMI (and raising a timer needs no rescheduling).
            g.group_timer = now + self._gmi
            return
        changed, query_group, query_sources = g.apply_record(rtype, a, now, self._gmi)
        if is_new:
            self._groups[group] = g
            changed = True

        acted = False
        if query_group or query_sources:
            acted = True
            if self._fast_leave and was_tracked:
                changed |= g.fast_leave(query_group, query_sources, now, self._gmi)
            elif self._is_querier:
                self._send_last_member_queries(g, query_group, query_sources, now)

        if g.is_empty:
            self._delete_group(g)
            changed = True
        elif is_new or acted or old > 0 or now + self._gmi < g.scheduled:
            # Otherwise the table set each timer to now + GMI or to the value of a running
            # timer of the group, none earlier than its scheduled wake-up: nothing to do.
            self._reschedule(g)
        if changed:
            self._changed_groups[group] = None

    # ==== RFC 9776 §6.6.3: last-member queries ==================================================

    def _send_last_member_queries(
        self, g: Group, query_group: bool, query_sources: list[bytes], now: float
    ) -> None:
        """The querier's "Send Q(G)" and "Send Q(G,X)" table actions."""
        if self._family == 4 and self._operating_version == 1:
            return  # IGMPv1 has no group-specific queries (and ignores leaves)
        if self._operating_version < self._full:
            query_sources = []  # no group-and-source-specific queries before IGMPv3 / MLDv2
        if not g.start_last_member_queries(query_group, query_sources, now, self._lmqc, self._lmqt):
            return
        self._retransmitting.add(g.address)
        if self._query_round(g, now) and not g.retransmit_at > now:
            g.retransmit_at = now + self._lmqi

    def _query_round(self, g: Group, now: float) -> bool:
        """Send the group's pending specific queries once; True if retransmissions remain."""
        group_query, above, below, remaining = g.query_round(now, self._lmqt)
        if group_query is not None:
            self._outputs.append(
                SendQuery(self._make_query(g.address, self._lmqi, (), group_query))
            )
        if above:
            self._send_source_query(g.address, above, True)
        if below:
            self._send_source_query(g.address, below, False)
        if not remaining:
            self._retransmitting.discard(g.address)
        return remaining

    def _send_source_query(self, group: bytes, sources: list[bytes], s_flag: bool) -> None:
        sources.sort()
        lmqi = self._lmqi
        step = MAX_QUERY_SOURCES[self._alen]
        for i in range(0, len(sources), step):
            chunk = tuple(sources[i : i + step])
            self._outputs.append(SendQuery(self._make_query(group, lmqi, chunk, s_flag)))

    def _make_query(
        self, group: bytes, max_resp: float, sources: tuple[bytes, ...], s_flag: bool
    ) -> Query:
        version = self._operating_version
        if version < self._full:
            # RFC 9776 §7.3.1: IGMPv1 queries carry Max Resp Code 0; IGMPv2 / MLDv1 queries
            # have no S flag, QRV, QQIC or sources.
            if self._family == 4 and version == 1:
                max_resp = 0.0
            return Query(version, group, max_resp)
        timers = self._timers
        # §4.1.6: "If the querier's [Robustness Variable] exceeds 7 ... the QRV is set to 0."
        qrv = timers.robustness if timers.robustness <= 7 else 0
        return Query(version, group, max_resp, sources, s_flag, qrv, round(timers.query_interval))

    # ==== explicit tracking =====================================================================

    def _track(self, g: Group, host: bytes, rtype: int, a: frozenset[bytes], now: float) -> bool:
        """Update ``host``'s own state for the group from one record.

        Returns whether the host was tracked for the group before the record.
        """
        subscribers = g.subscribers
        sub = subscribers.get(host)
        if sub is None:
            old_mode, old = INCLUDE, EMPTY
        else:
            old_mode, old = sub.mode, sub.sources
            # The common case, a refresh: the same filter mode and sources again.
            if rtype in (IS_EX, TO_EX):
                if old_mode is EXCLUDE and (a is old or a == old):
                    sub.expires = now + self._gmi
                    return True
            elif (rtype in (IS_IN, TO_IN)) and old_mode is INCLUDE and a == old and a:
                sub.expires = now + self._gmi
                return True
        mode, new = requested_state(old_mode, old, rtype, a)

        if mode is INCLUDE and not new:  # INCLUDE of nothing: the subscriber left
            if sub is not None:
                self._remove_subscription(g, host, sub)
                return True
            return False
        expires = now + self._gmi
        if sub is None:
            subscribers[host] = Subscription(
                mode, self._shared_sets(new) if new else EMPTY, expires
            )
            heappush(self._subscription_heap, (expires, g.address, host))
            self._due = min(self._due, expires)
            if new:
                g.count(mode, new, 1)
            elif mode is EXCLUDE:
                g.n_exclude += 1
            self._outputs.append(SubscriberChanged(g.address, host))
            self._changed_groups[g.address] = None
            return False
        sub.expires = expires  # the entry at sub.scheduled is moved when it comes up
        if mode is not old_mode or new != old:
            g.count(old_mode, old, -1)
            sub.mode = mode
            sub.sources = new = self._shared_sets(new)
            g.count(mode, new, 1)
            self._outputs.append(SubscriberChanged(g.address, host))
            self._changed_groups[g.address] = None
        return True

    def _remove_subscription(self, g: Group, host: bytes, sub: Subscription) -> None:
        del g.subscribers[host]
        g.count(sub.mode, sub.sources, -1)
        self._outputs.append(SubscriberChanged(g.address, host))
        self._changed_groups[g.address] = None

    def _forget_tracked(self, g: Group, mode: FilterMode | None, source: bytes | None) -> None:
        """The router state forgot something nobody answered for: so does tracking.

        ``mode`` given: remove the subscribers in that mode. ``source`` given: remove it
        from the INCLUDE subscribers' sets. Neither: remove every subscriber.
        """
        for host, sub in list(g.subscribers.items()):
            if source is not None:
                if sub.mode is not INCLUDE or source not in sub.sources:
                    continue
                remaining = sub.sources - {source}
                if remaining:
                    g.count(INCLUDE, sub.sources, -1)
                    sub.sources = self._shared_sets(remaining)
                    g.count(INCLUDE, sub.sources, 1)
                    self._outputs.append(SubscriberChanged(g.address, host))
                    self._changed_groups[g.address] = None
                    continue
            elif mode is not None and sub.mode is not mode:
                continue
            self._remove_subscription(g, host, sub)

    # ==== timers ===============================================================================

    def _reschedule(self, g: Group) -> None:
        wake = g.next_wake()
        if wake < g.scheduled:
            g.scheduled = wake
            heappush(self._group_heap, (wake, g.address))
            self._due = min(self._due, wake)

    def _run_due(self, now: float) -> None:
        """Process the timers due at or before ``now``, if any (one comparison when none are)."""
        if now >= self._due:
            self.handle_timers(now)

    def _earliest(self) -> float:
        """A lower bound of every deadline: the link's timers and the tops of the heaps."""
        due = NEVER
        if self._other_querier_until != OFF:
            due = self._other_querier_until
        if self._is_querier and OFF < self._next_general_query < due:
            due = self._next_general_query
        for until in self._older_querier_until.values():
            due = min(due, until)
        if self._group_heap:
            due = min(due, self._group_heap[0][0])
        if self._subscription_heap:
            due = min(due, self._subscription_heap[0][0])
        return due

    def _expire_group(self, g: Group, now: float) -> None:
        """Everything due in one group at or before ``now``."""
        changed, deleted, switched = g.expire(now)
        # What the router state forgot because nobody answered, tracking forgets too.
        for s in deleted:
            if g.include_count.get(s):
                self._forget_tracked(g, None, s)
        if switched and g.n_exclude:
            self._forget_tracked(g, EXCLUDE, None)
        if g.is_empty:
            self._delete_group(g)
            changed = True
        else:
            # Retransmissions last, so nothing is asked about in the instant it runs out.
            if OFF < g.retransmit_at <= now:
                if self._is_querier and self._query_round(g, now):
                    g.retransmit_at = now + self._lmqi
                else:
                    g.retransmit_at = OFF
            self._reschedule(g)
        if changed:
            self._changed_groups[g.address] = None

    def _delete_group(self, g: Group) -> None:
        if g.subscribers:
            self._forget_tracked(g, None, None)
        self._groups.pop(g.address, None)
        self._retransmitting.discard(g.address)
        g.scheduled = NEVER  # its heap entries are stale from now on

    # ==== queries and querier election (RFC 9776 §6.6) =========================================

    def _receive_query(self, query: Query, source: bytes, now: float) -> None:
        if len(source) != self._alen:
            self._dropped[DropReason.WRONG_FAMILY] += 1
            return
        if source == self._unspecified:
            # A query from nobody (e.g. a snooping switch) takes no part in the election.
            self._dropped[DropReason.QUERY_SOURCE_UNSPECIFIED] += 1
            return
        if not self._check_sender(source):
            return
        version = query.version
        if not 1 <= version <= self._full:
            self._dropped[DropReason.VERSION_INVALID] += 1
            return
        group = query.group
        if len(group) != self._alen:
            self._dropped[DropReason.WRONG_FAMILY] += 1
            return
        if group == self._unspecified:
            self._receive_general_query(query, source, now)
            return
        if not is_multicast(group):
            self._dropped[DropReason.NOT_MULTICAST] += 1
            return
        # §6.6.1: "When a router sends or receives a query with a clear Suppress Router-Side
        # Processing flag, it must update its timers to reflect the correct timeout values
        # for the group or sources being queried": Q(G,A) lowers the Source Timers of A to
        # LMQT, Q(G) the Group Timer. "When a router sends or receives a query with the S
        # flag set, it will not update its timers." Older queries have no S flag. LMQT here
        # is [Last Member Query Count] times the querier's Max Response Time, as in RFC 2236
        # §3 ("[Last Member Query Count] times the Max Response Time specified in the
        # message").
        if query.s_flag and version == self._full:
            return
        g = self._groups.get(group)
        if g is None:
            return
        g.lower_timers(query.sources, now + self._lmqc * (query.max_resp or self._lmqi))
        self._reschedule(g)

    def _receive_general_query(self, query: Query, source: bytes, now: float) -> None:
        version = query.version
        if version < self._full:
            # RFC 9776 §6.6.2: "If a router receives an older version General Query, it MUST
            # use the oldest version of IGMP on the network" (§7.3.1), for as long as such
            # queries keep coming.
            until = now + self._timers.older_version_querier_present_timeout
            self._older_querier_until[version] = until
            self._operating_version = min(self._operating_version, version)
            self._due = min(self._due, until)
        own = self._own
        if own is not None and source > own:
            return  # we win the election; the other router will hear us and stand down
        # §6.6.2: "When a router receives a General Query with a lower IP address, it sets the
        # Other-Querier-Present Timer to [Other Querier Present Interval] and ceases to send
        # General Queries on the network if it was the previously elected querier."
        if version == self._full:
            self._adopt_querier_values(query)
        self._other_querier_until = now + self._timers.other_querier_present_interval
        self._due = min(self._due, self._other_querier_until)
        was_querier = self._is_querier
        known = self._querier
        self._stop_querying(source)
        if was_querier or known != source:
            self._outputs.append(QuerierChanged(False, source))

    def _adopt_querier_values(self, query: Query) -> None:
        """§4.1.6, §4.1.7: a non-querier uses the querier's QRV and QQI (0: our default)."""
        configured = self._configured
        robustness = query.qrv or configured.robustness
        interval = float(query.qqi) if query.qqi else configured.query_interval
        current = self._timers
        if robustness == current.robustness and interval == current.query_interval:
            return
        # Values we cannot run with (e.g. a QQI below our Query Response Interval) are not
        # adopted.
        with suppress(ValueError):
            self._use_timers(replace(configured, robustness=robustness, query_interval=interval))

    def _stop_querying(self, querier: bytes | None) -> None:
        self._is_querier = False
        self._querier = querier
        self._next_general_query = OFF
        self._startup_left = 0
        # A non-querier sends no group-specific queries: drop pending retransmissions.
        for address in self._retransmitting:
            g = self._groups.get(address)
            if g is not None:
                g.stop_queries()
        self._retransmitting.clear()

    def _become_querier(self, now: float, startup: bool) -> None:
        self._is_querier = True
        self._querier = self._own
        self._other_querier_until = OFF
        self._use_timers(self._configured)
        self._startup_left = self._timers.effective_startup_query_count if startup else 1
        self._outputs.append(QuerierChanged(True, self._own))
        self._send_general_query(now)

    def _send_general_query(self, now: float) -> None:
        """Send a General Query and schedule the next one (§6.6, §8.6, §8.7)."""
        timers = self._timers
        self._outputs.append(
            SendQuery(
                self._make_query(self._unspecified, timers.query_response_interval, (), False)
            )
        )
        if self._startup_left > 0:
            self._startup_left -= 1
        if self._startup_left > 0:
            # "[Startup Query Count] ... Queries sent out on startup, separated by the
            # [Startup Query Interval]"
            self._next_general_query = now + timers.effective_startup_query_interval
        else:
            self._next_general_query = now + timers.query_interval
        self._due = min(self._due, self._next_general_query)

    def _group_compatibility(self, g: Group) -> int:
        if g.v1_host != OFF:
            return 1
        if g.v2_host != OFF and self._family == 4:
            return 2
        return self._full
