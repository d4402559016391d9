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
BLOCK, TO_IN, TO_EX), implemented row by row in ``_apply_table``. Timers run out in
``_expire_group``: an INCLUDE source is deleted, an EXCLUDE source moves to Y, and an expired
Group Timer switches the group to INCLUDE with the sources still running, or deletes it
(§6.5). The tables' "Send Q(G)" and "Send Q(G,X)" lower the timers to the Last Member Query
Time and send [Last Member Query Count] Group-Specific or Group-and-Source-Specific Queries
[Last Member Query Interval] apart (§6.6.3); a non-querier instead lowers its timers when it
hears the querier's queries with the S flag clear (§6.6.1). Older hosts (§7.3.2): an IGMPv1/v2
or MLDv1 report starts the group's Older Host Present timer; while it runs, BLOCK is ignored,
TO_EX(A) is read as TO_EX({}), and with IGMPv1 hosts Leave and TO_IN are ignored.

Explicit tracking: each subscriber (the source address of its reports; 0.0.0.0 and :: are
not tracked) has its own filter mode and source set per group, built from its records and
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
from collections.abc import Iterator, Mapping
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
from mcastproxy.membership.outputs import (
    GroupChanged,
    Output,
    QuerierChanged,
    SendQuery,
    SubscriberChanged,
)
from mcastproxy.membership.state import (
    DropReason,
    FilterMode,
    GroupState,
    SubscriberState,
)
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.wire.messages import Leave, Message, Query, Report

INCLUDE = FilterMode.INCLUDE
EXCLUDE = FilterMode.EXCLUDE

# Group Record Types (RFC 9776 §4.2.12), as plain ints for the hot path.
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6

_OFF = float("-inf")  # a timer that is not running (a Source Timer "at zero")
_INF = float("inf")  # nothing scheduled
EMPTY: frozenset[bytes] = frozenset()
_INTERN_LIMIT = 4096  # distinct source sets shared between subscriptions
_NEXT_DEADLINE_BUDGET = 64  # heap entries next_deadline() checks per heap and call


class _Subscription:
    """One tracked (subscriber, group): its own mode and sources, and its expiry."""

    __slots__ = ("expires", "mode", "scheduled", "sources")

    def __init__(self, mode: FilterMode, sources: frozenset[bytes], expires: float) -> None:
        self.mode = mode
        self.sources = sources
        self.expires = expires
        self.scheduled = expires  # deadline of this subscription's live heap entry


class _Group:
    """The state of one group on the link (RFC 9776 §6.2.1) plus its tracked subscribers."""

    __slots__ = (
        "address",
        "exclude_count",
        "group_timer",
        "include_count",
        "mode",
        "n_exclude",
        "query_count",
        "retransmit_at",
        "scheduled",
        "source_queries",
        "sources",
        "subscribers",
        "v1_host",
        "v2_host",
    )

    def __init__(self, address: bytes) -> None:
        self.address = address
        self.mode = INCLUDE
        self.group_timer = _OFF
        self.sources: dict[bytes, float] = {}  # source -> Source Timer deadline (_OFF: zero)
        self.v1_host = _OFF  # IGMPv1 / MLDv1 Host Present timer (§7.3.2)
        self.v2_host = _OFF  # IGMPv2 Host Present timer
        self.query_count = 0  # Group-Specific Query retransmissions left (§6.6.3.1)
        self.source_queries: dict[bytes, int] = {}  # retransmissions left per source (§6.6.3.2)
        self.retransmit_at = _OFF
        self.scheduled = _INF  # deadline of this group's live heap entry
        self.subscribers: dict[bytes, _Subscription] = {}
        self.n_exclude = 0  # tracked subscribers in EXCLUDE mode
        self.include_count: dict[bytes, int] = {}  # source -> INCLUDE subscribers wanting it
        self.exclude_count: dict[bytes, int] = {}  # source -> EXCLUDE subscribers blocking it

    def next_wake(self) -> float:
        """The earliest running timer of the group, or infinity."""
        wake = self.group_timer if self.mode is EXCLUDE else _INF
        for t in self.sources.values():
            if _OFF < t < wake:
                wake = t
        for t in (self.v1_host, self.v2_host, self.retransmit_at):
            if _OFF < t < wake:
                wake = t
        return wake

    def tracked_wants(self, source: bytes) -> bool:
        """Whether some tracked subscriber wants ``source`` forwarded."""
        if self.include_count.get(source, 0) > 0:
            return True
        return self.exclude_count.get(source, 0) < self.n_exclude


class _SubscriberView(Mapping[bytes, SubscriberState]):
    """A live read-only view of a group's tracked subscribers."""

    __slots__ = ("_subscribers",)

    def __init__(self, subscribers: dict[bytes, _Subscription]) -> None:
        self._subscribers = subscribers

    def __getitem__(self, subscriber: bytes) -> SubscriberState:
        sub = self._subscribers[subscriber]
        return SubscriberState(sub.mode, sub.sources)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)


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
        self._other_querier_until = _OFF
        self._next_general_query = _OFF
        self._startup_left = 0
        # RFC 9776 §7.3.1: older querier version -> Older Version Querier Present deadline.
        self._older_querier_until: dict[int, float] = {}
        self._operating_version = version

        self._due = _INF  # no timer can be due before this (a lower bound, maybe stale)
        self._groups: dict[bytes, _Group] = {}
        self._group_heap: list[tuple[float, bytes]] = []
        self._subscription_heap: list[tuple[float, bytes, bytes]] = []
        self._retransmitting: set[bytes] = set()
        self._source_sets: dict[frozenset[bytes], frozenset[bytes]] = {}

        self._outputs: list[Output] = []
        self._changed_groups: dict[bytes, None] = {}
        self._changed_subscribers: dict[tuple[bytes, bytes], None] = {}
        self._dropped: Counter[DropReason] = Counter()

    # ==== the surface ==========================================================================

    def start(self, now: float) -> None:
        """Begin operating: become querier (if we have an address) and send startup queries."""
        if self._started:
            raise RuntimeError("RouterLink.start() called twice")
        self._started = True
        if self._own is not None and self._other_querier_until == _OFF:
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
        elif self._other_querier_until == _OFF or (
            self._querier is not None and address < self._querier
        ):
            # RFC 9776 §6.6.2: every router starts as querier; a lower-addressed one wins.
            self._become_querier(now, startup=True)

    def handle_timers(self, now: float) -> None:
        """Process every timer due at or before ``now``."""
        # Querier election and the version in use (RFC 9776 §6.6.2, §7.3.1).
        if self._other_querier_until != _OFF and self._other_querier_until <= now:
            self._other_querier_until = _OFF
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
        if self._is_querier and _OFF < self._next_general_query <= now:
            self._send_general_query(now)

        heap = self._group_heap
        groups = self._groups
        while heap and heap[0][0] <= now:
            deadline, address = heappop(heap)
            group = groups.get(address)
            if group is None or group.scheduled != deadline:
                continue  # stale entry
            group.scheduled = _INF
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
        best = _INF
        if self._other_querier_until != _OFF:
            best = self._other_querier_until
        if self._is_querier and _OFF < self._next_general_query < best:
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
                if wake != _INF:
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
        return None if best == _INF else best

    def pop_outputs(self) -> list[Output]:
        """What happened since the last call: queries to send, then changed subscribers and
        groups (each named once)."""
        out = self._outputs
        self._outputs = []
        if self._changed_subscribers:
            out += [SubscriberChanged(g, s) for g, s in self._changed_subscribers]
            self._changed_subscribers = {}
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
            group_timer=None if g.group_timer == _OFF else g.group_timer,
            sources={s: (None if t == _OFF else t) for s, t in g.sources.items()},
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
        return EXCLUDE, frozenset(s for s, t in g.sources.items() if t == _OFF)

    def wants(self, group: bytes, source: bytes) -> bool:
        """Whether traffic from ``source`` to ``group`` is to be forwarded onto the link."""
        g = self._groups.get(group)
        if g is None:
            return False
        timer = g.sources.get(source)
        if g.mode is INCLUDE:
            return timer is not None
        return timer != _OFF

    def subscribers(self, group: bytes) -> Mapping[bytes, SubscriberState]:
        """The tracked subscribers of ``group`` and what each asked for (a live view)."""
        g = self._groups.get(group)
        return _SubscriberView(g.subscribers if g is not None else {})

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
        if g is None and not self._check_group(group):  # a group with state passed already
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
                g = _Group(group)
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
        if g is not None and (g.v1_host != _OFF or g.v2_host != _OFF):
            if rtype == BLOCK:
                # "IGMPv3 BLOCK messages are ignored"
                self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if rtype == TO_EX:
                # "as are source-lists in TO_EX() messages (i.e., any TO_EX() message is
                # treated as TO_EX( {} ))"
                a = EMPTY
            elif rtype == TO_IN and self._family == 4 and g.v1_host != _OFF:
                # IGMPv1 Group Compatibility Mode: "IGMPv2 Leave messages and IGMPv3 TO_IN()
                # messages are also ignored."
                self._dropped[DropReason.IGNORED_FOR_OLDER_VERSION] += 1
                return

        if g is None:
            # No state is INCLUDE({}): these records leave it unchanged.
            if rtype == BLOCK or (not a and rtype in (IS_IN, ALLOW, TO_IN)):
                return
            g = _Group(group)
        self._apply_record(g, rtype, a, host, now, old > 0)

    def _apply_record(
        self,
        g: _Group,
        rtype: int,
        a: frozenset[bytes],
        host: bytes | None,
        now: float,
        host_timer_set: bool,
    ) -> None:
        address = g.address
        is_new = address not in self._groups
        was_tracked = host is not None and self._track(g, host, rtype, a, now)

        changed, query_group, query_sources = self._apply_table(g, rtype, a, now)
        if is_new:
            self._groups[address] = g
            changed = True

        acted = False
        if query_group or query_sources:
            acted = True
            if self._fast_leave and was_tracked:
                changed |= self._fast_leave_apply(g, query_group, query_sources, now)
            elif self._is_querier:
                self._send_last_member_queries(g, query_group, query_sources, now)

        if g.mode is INCLUDE and not g.sources:
            self._delete_group(g)
            changed = True
        elif is_new or acted or host_timer_set or now + self._gmi < g.scheduled:
            # Otherwise the table set each timer to now + GMI or to the value of a running
            # timer of the group, none earlier than its scheduled wake-up: nothing to do.
            self._reschedule(g)
        if changed:
            self._changed_groups[address] = None

    # ==== RFC 9776 §6.4: the state tables =======================================================

    def _apply_table(
        self, g: _Group, rtype: int, a: frozenset[bytes], now: float
    ) -> tuple[bool, bool, list[bytes]]:
        """Apply one record to the group state.

        Returns (forwarding changed, "Send Q(G)", the X of "Send Q(G,X)").
        """
        t = g.sources
        gmi = now + self._gmi
        changed = False
        query_group = False
        query_sources: list[bytes] = []

        if g.mode is INCLUDE:
            if rtype in (IS_IN, ALLOW, TO_IN):
                # INCLUDE (A)  IS_IN (B)  -> INCLUDE (A+B)   (B)=GMI              §6.4.1
                # INCLUDE (A)  ALLOW (B)  -> INCLUDE (A+B)   (B)=GMI              §6.4.2
                # INCLUDE (A)  TO_IN (B)  -> INCLUDE (A+B)   (B)=GMI; Send Q(G,A-B)
                if rtype == TO_IN:
                    query_sources = [s for s in t if s not in a]
                for s in a:
                    if s not in t:
                        changed = True
                    t[s] = gmi
            elif rtype == BLOCK:
                # INCLUDE (A)  BLOCK (B)  -> INCLUDE (A)     Send Q(G,A*B)        §6.4.2
                query_sources = [s for s in a if s in t]
            else:
                # INCLUDE (A)  IS_EX (B)  -> EXCLUDE (A*B,B-A)  (B-A)=0; Delete (A-B);
                #                                               Group Timer=GMI    §6.4.1
                # INCLUDE (A)  TO_EX (B)  -> EXCLUDE (A*B,B-A)  (B-A)=0; Delete (A-B);
                #                            Send Q(G,A*B); Group Timer=GMI        §6.4.2
                g.sources = {s: t.get(s, _OFF) for s in a}
                if rtype == TO_EX:
                    query_sources = [s for s in a if s in t]
                g.mode = EXCLUDE
                g.group_timer = gmi
                changed = True
            return changed, query_group, query_sources

        # EXCLUDE (X,Y): X are the sources with a running timer, Y those at zero.
        if rtype in (IS_IN, ALLOW, TO_IN):
            # EXCLUDE (X,Y)  IS_IN (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI              §6.4.1
            # EXCLUDE (X,Y)  ALLOW (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI              §6.4.2
            # EXCLUDE (X,Y)  TO_IN (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI;
            #                              Send Q(G,X-A); Send Q(G)
            if rtype == TO_IN:
                query_sources = [s for s, timer in t.items() if timer != _OFF and s not in a]
                query_group = True
            for s in a:
                if t.get(s) == _OFF:
                    changed = True  # leaves Y: forwarded again
                t[s] = gmi
        elif rtype == BLOCK:
            # EXCLUDE (X,Y)  BLOCK (A)  -> EXCLUDE (X+(A-Y),Y)  (A-X-Y)=Group Timer;
            #                              Send Q(G,A-Y)                          §6.4.2
            group_timer = g.group_timer
            for s in a:
                if s not in t:
                    t[s] = group_timer
            query_sources = [s for s in a if t[s] != _OFF]
        else:
            # EXCLUDE (X,Y)  IS_EX (A)  -> EXCLUDE (A-Y,Y*A)  (A-X-Y)=GMI; Delete (X-A);
            #                              Delete (Y-A); Group Timer=GMI           §6.4.1
            # EXCLUDE (X,Y)  TO_EX (A)  -> EXCLUDE (A-Y,Y*A)  (A-X-Y)=Group Timer;
            #                              Delete (X-A); Delete (Y-A);
            #                              Send Q(G,A-Y); Group Timer=GMI          §6.4.2
            fresh = gmi if rtype == IS_EX else g.group_timer
            for s, timer in t.items():
                if timer == _OFF and s not in a:
                    changed = True  # leaves Y: forwarded again
                    break
            g.sources = {s: t.get(s, fresh) for s in a}
            if rtype == TO_EX:
                query_sources = [s for s in a if g.sources[s] != _OFF]
            g.group_timer = gmi
        return changed, query_group, query_sources

    # ==== RFC 9776 §6.6.3: last-member queries ==================================================

    def _send_last_member_queries(
        self, g: _Group, query_group: bool, query_sources: list[bytes], now: float
    ) -> None:
        """The querier's "Send Q(G)" and "Send Q(G,X)" table actions."""
        lmqc = self._lmqc
        limit = now + self._lmqt
        started = False
        if self._family == 4 and self._operating_version == 1:
            return  # IGMPv1 has no group-specific queries (and ignores leaves)
        if query_group:
            # §6.6.3.1: "When a table action "Send Q(G)" is encountered, the Group Timer must
            # be lowered to LMQT. The router must then immediately send a Group Specific Query
            # as well as schedule [Last Member Query Count] - 1 query retransmission(s)".
            if g.mode is EXCLUDE and g.group_timer > limit:
                g.group_timer = limit
            g.query_count = lmqc
            started = True
        if query_sources and self._operating_version == self._full:
            # §6.6.3.2: for each source in X with a Source Timer larger than LMQT: "Set the
            # number of retransmissions for each source to [Last Member Query Count]" and
            # "Lower the Source Timer to LMQT".
            t = g.sources
            pending = g.source_queries
            for s in query_sources:
                timer = t.get(s, _OFF)
                if timer > limit:
                    pending[s] = lmqc
                    t[s] = limit
                    started = True
        if not started:
            return
        self._retransmitting.add(g.address)
        if self._query_round(g, now) and not g.retransmit_at > now:
            g.retransmit_at = now + self._lmqi

    def _query_round(self, g: _Group, now: float) -> bool:
        """Send the group's pending specific queries once; True if retransmissions remain."""
        lmqt = self._lmqt
        lmqi = self._lmqi
        group_query_sent = False
        if g.query_count > 0:
            # §6.6.3.1: "if the Group Timer is larger than LMQT, the "Suppress Router-Side
            # Processing" bit is set in the Query Message."
            s_flag = g.mode is EXCLUDE and g.group_timer - now > lmqt
            self._outputs.append(SendQuery(self._make_query(g.address, lmqi, (), s_flag)))
            g.query_count -= 1
            group_query_sent = True
        pending = g.source_queries
        if pending:
            t = g.sources
            above: list[bytes] = []
            below: list[bytes] = []
            for s, count in list(pending.items()):
                timer = t.get(s, _OFF)
                if timer <= now:  # gone, at zero, or expired: nothing left to ask about
                    del pending[s]
                    continue
                (above if timer - now > lmqt else below).append(s)
                if count > 1:
                    pending[s] = count - 1
                else:
                    del pending[s]
            # §6.6.3.2: "two separate Query Messages are sent for the group. The first one has
            # the "Suppress Router-Side Processing" bit set and contains all the sources with
            # retransmission state and timers greater than LMQT. The second has the bit clear
            # and contains all the sources with retransmission state and timers lower or
            # equal to LMQT. If either ... does not contain any sources, then its transmission
            # is suppressed." And "If a group specific query is scheduled to be transmitted at
            # the same time as a group and source specific query for the same group, then
            # transmission of the group and source specific message with the "Suppress
            # Router-Side Processing" bit set may be suppressed."
            if above and not group_query_sent:
                self._send_source_query(g.address, above, True)
            if below:
                self._send_source_query(g.address, below, False)
        if g.query_count > 0 or pending:
            return True
        g.retransmit_at = _OFF
        self._retransmitting.discard(g.address)
        return False

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

    # ==== fast leave ==========================================================================

    def _fast_leave_apply(
        self, g: _Group, query_group: bool, query_sources: list[bytes], now: float
    ) -> bool:
        """Instead of last-member queries: drop what no tracked subscriber wants any more."""
        if not g.subscribers:
            # The last tracked subscriber left the group: delete its state now.
            g.mode = INCLUDE
            g.group_timer = _OFF
            g.sources = {}
            return True
        changed = False
        if query_group and g.mode is EXCLUDE and g.n_exclude == 0:
            # No tracked subscriber is in EXCLUDE mode any more: switch to INCLUDE with the
            # sources the tracked subscribers include (as §6.5 does when the Group Timer
            # runs out, without waiting for it).
            t = g.sources
            gmi = now + self._gmi
            g.sources = {s: (t[s] if t.get(s, _OFF) > now else gmi) for s in g.include_count}
            g.mode = INCLUDE
            g.group_timer = _OFF
            changed = True
        t = g.sources
        for s in query_sources:
            timer = t.get(s)
            if timer is None or g.tracked_wants(s):
                continue
            if g.mode is INCLUDE:
                del t[s]
                changed = True
            elif timer != _OFF:
                t[s] = _OFF  # into Y: no longer forwarded
                changed = True
        return changed

    # ==== explicit tracking =====================================================================

    def _track(self, g: _Group, host: bytes, rtype: int, a: frozenset[bytes], now: float) -> bool:
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
            if rtype == IS_EX or rtype == TO_EX:
                if old_mode is EXCLUDE and (a is old or a == old):
                    sub.expires = now + self._gmi
                    return True
            elif (rtype == IS_IN or rtype == TO_IN) and old_mode is INCLUDE and a == old and a:
                sub.expires = now + self._gmi
                return True
        if rtype in (IS_IN, TO_IN):
            mode, new = INCLUDE, a
        elif rtype in (IS_EX, TO_EX):
            mode, new = EXCLUDE, a
        elif rtype == ALLOW:
            mode = old_mode
            new = (old | a) if old_mode is INCLUDE else (old - a)
        else:  # BLOCK
            mode = old_mode
            new = (old - a) if old_mode is INCLUDE else (old | a)

        if mode is INCLUDE and not new:  # INCLUDE of nothing: the subscriber left
            if sub is not None:
                self._remove_subscription(g, host, sub)
                return True
            return False
        expires = now + self._gmi
        if sub is None:
            new = self._intern(new)
            subscribers[host] = _Subscription(mode, new, expires)
            heappush(self._subscription_heap, (expires, g.address, host))
            self._due = min(self._due, expires)
            self._count(g, mode, new, 1)
            self._changed_subscribers[(g.address, host)] = None
            self._changed_groups[g.address] = None
            return False
        sub.expires = expires  # the entry at sub.scheduled is moved when it comes up
        if mode is not old_mode or new != old:
            self._count(g, old_mode, old, -1)
            sub.mode = mode
            sub.sources = new = self._intern(new)
            self._count(g, mode, new, 1)
            self._changed_subscribers[(g.address, host)] = None
            self._changed_groups[g.address] = None
        return True

    def _remove_subscription(self, g: _Group, host: bytes, sub: _Subscription) -> None:
        del g.subscribers[host]
        self._count(g, sub.mode, sub.sources, -1)
        self._changed_subscribers[(g.address, host)] = None
        self._changed_groups[g.address] = None

    @staticmethod
    def _count(g: _Group, mode: FilterMode, sources: frozenset[bytes], delta: int) -> None:
        if mode is EXCLUDE:
            g.n_exclude += delta
            counts = g.exclude_count
        else:
            counts = g.include_count
        for s in sources:
            n = counts.get(s, 0) + delta
            if n:
                counts[s] = n
            else:
                del counts[s]

    def _intern(self, sources: frozenset[bytes]) -> frozenset[bytes]:
        """One shared object per distinct source set (many subscribers ask for the same)."""
        if not sources:
            return EMPTY
        shared = self._source_sets.get(sources)
        if shared is None:
            if len(self._source_sets) >= _INTERN_LIMIT:
                self._source_sets.clear()
            self._source_sets[sources] = shared = sources
        return shared

    def _forget_tracked(self, g: _Group, mode: FilterMode | None, source: bytes | None) -> None:
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
                    self._count(g, INCLUDE, sub.sources, -1)
                    sub.sources = self._intern(remaining)
                    self._count(g, INCLUDE, sub.sources, 1)
                    self._changed_subscribers[(g.address, host)] = None
                    self._changed_groups[g.address] = None
                    continue
            elif mode is not None and sub.mode is not mode:
                continue
            self._remove_subscription(g, host, sub)

    # ==== timers ===============================================================================

    def _reschedule(self, g: _Group) -> None:
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
        due = _INF
        if self._other_querier_until != _OFF:
            due = self._other_querier_until
        if self._is_querier and _OFF < self._next_general_query < due:
            due = self._next_general_query
        for until in self._older_querier_until.values():
            due = min(due, until)
        if self._group_heap:
            due = min(due, self._group_heap[0][0])
        if self._subscription_heap:
            due = min(due, self._subscription_heap[0][0])
        return due

    def _expire_group(self, g: _Group, now: float) -> None:
        """Everything due in one group at or before ``now``."""
        changed = False
        if _OFF < g.v1_host <= now:
            g.v1_host = _OFF
        if _OFF < g.v2_host <= now:
            g.v2_host = _OFF
        t = g.sources
        if g.mode is INCLUDE:
            # RFC 9776 §6.3: INCLUDE, Source Timer = 0: "Suggest to stop forwarding traffic
            # from source and remove source record. If there are no more source records for
            # the group, delete group record."
            expired = [s for s, timer in t.items() if timer <= now]
            for s in expired:
                del t[s]
                g.source_queries.pop(s, None)
                if g.include_count.get(s):
                    self._forget_tracked(g, None, s)
            changed = bool(expired)
        else:
            # §6.3: EXCLUDE, Source Timer = 0: "Suggest to not forward traffic from source
            # (DO NOT remove record)".
            for s, timer in t.items():
                if _OFF < timer <= now:
                    t[s] = _OFF
                    changed = True
            if g.group_timer <= now:
                # §6.5: "When a router's filter-mode for a group is EXCLUDE and the Group Timer
                # expires, the Router Filter Mode for the group transitions to INCLUDE", keeping
                # the source records with running timers and deleting those at zero.
                g.mode = INCLUDE
                g.group_timer = _OFF
                g.sources = {s: timer for s, timer in t.items() if timer != _OFF}
                g.query_count = 0
                if g.n_exclude:
                    self._forget_tracked(g, EXCLUDE, None)
                changed = True
        if g.mode is INCLUDE and not g.sources:
            self._delete_group(g)
            changed = True
        else:
            # Retransmissions last, so nothing is asked about in the instant it runs out.
            if _OFF < g.retransmit_at <= now:
                if self._is_querier and self._query_round(g, now):
                    g.retransmit_at = now + self._lmqi
                else:
                    g.retransmit_at = _OFF
            self._reschedule(g)
        if changed:
            self._changed_groups[g.address] = None

    def _delete_group(self, g: _Group) -> None:
        if g.subscribers:
            self._forget_tracked(g, None, None)
        self._groups.pop(g.address, None)
        self._retransmitting.discard(g.address)
        g.scheduled = _INF  # its heap entries are stale from now on

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
        limit = now + self._lmqc * (query.max_resp or self._lmqi)
        if query.sources:
            t = g.sources
            for s in query.sources:
                timer = t.get(s)
                if timer is not None and timer > limit:
                    t[s] = limit
        elif g.mode is EXCLUDE and g.group_timer > limit:
            g.group_timer = limit
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
        self._next_general_query = _OFF
        self._startup_left = 0
        # A non-querier sends no group-specific queries: drop pending retransmissions.
        for address in self._retransmitting:
            g = self._groups.get(address)
            if g is not None:
                g.query_count = 0
                g.source_queries.clear()
                g.retransmit_at = _OFF
        self._retransmitting.clear()

    def _become_querier(self, now: float, startup: bool) -> None:
        self._is_querier = True
        self._querier = self._own
        self._other_querier_until = _OFF
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

    def _group_compatibility(self, g: _Group) -> int:
        if g.v1_host != _OFF:
            return 1
        if g.v2_host != _OFF and self._family == 4:
            return 2
        return self._full
