"""The multicast router side of IGMPv3 / MLDv2 on one downstream link, with explicit tracking.

Theory of operation
===================

One ``RouterLink`` is the router part of RFC 9776 §6-7 (IGMP) or RFC 9777 §7-8 (MLD) for one
link and one address family. It is sans-I/O: messages come in through ``receive()`` already
decoded (``mcastproxy.wire.messages``), time is the ``now`` argument of every call, what the
link wants sent or re-read comes out of ``pop_outputs()``, and ``next_deadline()`` says when
``handle_timers()`` must next be called. Nothing here reads a clock or sleeps.

It puts together parts each in its own module:

- ``querier.Querier``: querier election, General Queries, the version in use (§6.6.2, §7.3.1);
- ``group.Group``: the state of one group (§6.2-§6.6.3): the INCLUDE/EXCLUDE state tables,
  timers, last-member query retransmissions, Older Host Present timers (§7.3.2);
- ``tracking``: what each subscriber asked for each group (explicit tracking);

and the layers of the link itself, each built on the one before (``linkstate`` explains
them and the timer heaps): ``explicit`` (tracked subscribers and their sessions),
``queries`` (last-member queries and their rate bound, §6.6.3), ``intake`` (queries, reports
and leaves heard, §6.4, §6.6.1, §7.3), ``static`` (static groups); ``statistics`` counts
the messages heard and sent (RFC 8652 ``statistics``). What stays here is the
surface: starting, input, the querier's address and reconfiguration, timers running out
(§6.3, §6.5: what the group state forgets, tracking forgets too), and the read-only views
that the engine, the forwarding plan and the snapshot use.

Who may be querier is the link's ``QuerierPolicy`` (``querier``); what a record may create or
extend is its ``Admission`` (``mcastproxy.admission``); both are explained where they are
used (``intake``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from heapq import heappop, heappush
from types import MappingProxyType

from mcastproxy.admission import Admission
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership.addresses import (
    MULTICAST,
    AddressRanges,
    Network,
)
from mcastproxy.membership.group import EMPTY, EXCLUDE, INCLUDE, NEVER, OFF, Group
from mcastproxy.membership.intake import _ssm_networks
from mcastproxy.membership.outputs import GroupChanged, Output, SubscriberChanged
from mcastproxy.membership.querier import Querier, QuerierPolicy
from mcastproxy.membership.queries import _QueryBound
from mcastproxy.membership.ssmmap import SsmMap
from mcastproxy.membership.state import FilterMode, GroupState, SubscriberState
from mcastproxy.membership.static import StaticGroups
from mcastproxy.membership.statistics import LEAVE, QUERY, REPORT_V1, REPORT_V3, MessageCounts
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.membership.tracking import SharedSets, SubscriberView
from mcastproxy.policy import EdgePolicy
from mcastproxy.wire.messages import Leave, Query, Report

_NEXT_DEADLINE_BUDGET = 64  # stale heap entries next_deadline() drops per heap and call
_NO_SOURCES: Mapping[bytes, float] = MappingProxyType({})


class RouterLink(StaticGroups):
    """The router side of IGMP (``Family.V4``) or MLD (``Family.V6``) on one downstream link.

    ``version`` is the configured querier version: IGMP 1, 2 or 3; MLD 1 or 2.
    ``own_address`` is our address on the link (IPv4, or the IPv6 link-local); without one we
    cannot be querier. ``fast_leave`` drops state at once when the last tracked subscriber
    stops wanting it, instead of sending last-member queries.

    ``ssm_ranges`` are the SSM address ranges (networks, or their text) in which the link is
    an "SSM-aware router" (RFC 4604; RFC 9776 §6.4, RFC 9777 §7.4): EXCLUDE-mode records and
    older-version reports and leaves for groups in them are ignored. ``None`` means the IANA
    ranges of RFC 4607 for the family, ``SSM_RANGES[family]`` (232.0.0.0/8; FF3x::/32 for
    every scope x), the default RFC 4604 asks for; an empty collection turns the rule off.

    ``querier`` says who may be querier and bounds what is adopted from another querier
    (``QuerierPolicy``; default: the RFC's election among any senders, no ceilings).
    ``specific_query_rate`` bounds the Group-Specific and Group-and-Source-Specific Queries
    sent, per second (``queries``); ``None``: no bound.
    ``admission`` decides what records may create or extend state (``mcastproxy.admission``);
    ``None``: everything, unbounded (the proxy always gives one). ``ssm_map`` maps older
    hosts' joins to sources (``ssmmap``). ``sessions`` has the link say when each tracked
    subscriber's sessions begin and end (``SessionChanged``, ``explicit``); off by default.
    """

    def __init__(
        self,
        timers: ProtocolTimers,
        family: Family,
        version: int,
        own_address: bytes | None = None,
        fast_leave: bool = False,
        ssm_ranges: Iterable[Network | str] | None = None,
        querier: QuerierPolicy | None = None,
        specific_query_rate: float | None = None,
        admission: Admission | None = None,
        ssm_map: SsmMap | None = None,
        sessions: bool = False,
    ) -> None:
        family = Family(family)  # ValueError if it is no family
        self._family = family
        self._alen = family.length
        self._full = family.newest_version  # the version with source filtering
        if version not in range(1, self._full + 1):
            name = family.protocol.upper()
            raise ValueError(f"{name} version must be 1 to {self._full}, not {version!r}")
        self._check_address(own_address)
        self._ssm = AddressRanges(_ssm_networks(family, ssm_ranges))
        self._ssm_aware = bool(self._ssm)  # checked first on the report path
        self._is_multicast = MULTICAST[family]
        self._fast_leave = fast_leave
        self._sessions = sessions
        self._unspecified = family.unspecified
        self._stats = MessageCounts()

        self._outputs: list[Output] = []  # the same list object for the link's lifetime
        self._changed_groups: dict[bytes, None] = {}
        self._changed_subscribers: list[tuple[bytes, bytes]] = []
        self._dropped: Counter[Drop] = Counter()

        policy = querier if querier is not None else QuerierPolicy()
        self._querier = Querier(timers, family, version, own_address, self._outputs, policy)
        self._use_timers(timers)

        # One attribute for the bound (and one for the statistics): past 30 instance
        # attributes CPython stops specializing attribute access, which the report path would
        # pay for. The link has 29: add none without taking one away.
        self._bound = _QueryBound(specific_query_rate)

        self._due = NEVER  # no timer can be due before this (a lower bound, maybe stale)
        self._groups: dict[bytes, Group] = {}
        self._group_heap: list[tuple[float, bytes]] = []
        self._subscription_heap: list[tuple[float, bytes, bytes]] = []
        self._retransmitting: set[bytes] = set()  # groups with specific queries pending
        self._shared_sets = SharedSets()
        self._admission = admission
        self._ssm_map = ssm_map if ssm_map else None  # membership.ssmmap
        # Static groups (``set_static``): group -> sources (None: any source), held for
        # the pseudo-subscriber ``static_host`` with timers that never run out.
        self._static: dict[bytes, frozenset[bytes] | None] = {}

    # ==== the surface ==========================================================================

    def start(self, now: float) -> None:
        """Begin operating: become querier (if we have an address) and send startup queries."""
        if self._querier.started:
            raise RuntimeError("RouterLink.start() called twice")
        self._querier.start(now)
        self._sync_querier()

    def receive(self, message: object, source_address: bytes, now: float) -> None:
        """Process a Query, Report or Leave (a ``Message``) heard on the link from
        ``source_address``.

        Timers due at or before ``now`` are processed first. Bad input is counted in
        ``dropped``, never raised (``message`` is an ``object`` for that: compiled, a
        ``Message`` parameter would raise TypeError at the call for anything else).
        """
        if now >= self._due:
            self.handle_timers(now)
        stats = self._stats
        if isinstance(message, Report):
            version = message.version
            kind = version if REPORT_V1 <= version <= REPORT_V3 else REPORT_V3
            stats.received[kind] += 1
            if not self._receive_report(message, source_address, now):
                stats.error[kind] += 1
        elif isinstance(message, Query):
            stats.received[QUERY] += 1
            if not self._receive_query(message, source_address, now):
                stats.error[QUERY] += 1
        elif isinstance(message, Leave):
            stats.received[LEAVE] += 1
            if not self._receive_leave(message, source_address, now):
                stats.error[LEAVE] += 1
        else:
            self._dropped[Drop.UNKNOWN_MESSAGE] += 1
        adm = self._admission
        if adm is not None and adm.evictions:
            # Optional channels preempted for a mandatory one (``bandwidth``): cleared once
            # the report is applied.
            for group in adm.evictions:
                self.clear(group)
            adm.evicted()

    def clear(self, group: bytes) -> bool:
        """Forget the link's state of ``group`` and every subscriber's (a static group
        excepted): as if all had left. True if there was any."""
        g = self._groups.get(group)
        if g is None or group in self._static:
            return False
        self._delete_group(g)
        self._changed_groups[group] = None
        return True

    def set_address(self, address: bytes | None, now: float) -> None:
        """Our address on the link changed (``None``: we have none, so cannot be querier)."""
        self._check_address(address)
        if now >= self._due:
            self.handle_timers(now)
        if self._querier.set_address(address, now):
            self._stop_queries()
        self._sync_querier()

    def reconfigure(
        self, querier: QuerierPolicy, specific_query_rate: float | None, now: float,
        timers: ProtocolTimers | None = None, fast_leave: bool | None = None,
        ssm_map: SsmMap | None = None,
    ) -> None:
        """A new querier policy and specific-query rate, and (if given) timers and fast
        leave. If the policy no longer lets the current querier be one, this router takes
        over at once. New timers apply from now on: the timers already running keep their
        deadlines (a membership refreshed later gets the new Group Membership Interval)."""
        if now >= self._due:
            self.handle_timers(now)
        if fast_leave is not None:
            self._fast_leave = fast_leave
        if ssm_map is not None:
            self._ssm_map = ssm_map if ssm_map else None
        if timers is not None and timers != self._querier.configured:
            self._querier.reconfigure_timers(timers, now)
        bound = _QueryBound(specific_query_rate)
        bound.next, bound.until, bound.last = self._bound.next, self._bound.until, self._bound.last
        self._bound = bound
        q = self._querier
        q.policy = querier
        if not q.is_querier and q.address is not None and querier.refuses(q.address):
            q.take_over(now)
        self._sync_querier()

    def handle_timers(self, now: float) -> None:
        """Process every timer due at or before ``now``."""
        self._querier.handle_timers(now)
        self._sync_querier()

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
            if group is None:
                continue  # stale entry: the group is gone
            sub = group.subscribers.get(host)
            if sub is None or sub.scheduled != deadline:
                continue  # stale entry
            if sub.expires <= now:
                # No report from this subscriber for [Group Membership Interval].
                self._remove_subscription(group, host, sub)
            else:
                sub.scheduled = sub.expires
                heappush(sheap, (sub.expires, address, host))

        if OFF < self._bound.next <= now:
            self._merged_round(now)

        due = self._querier.next_deadline()
        if heap:
            due = min(due, heap[0][0])
        if sheap:
            due = min(due, sheap[0][0])
        if self._bound.next != OFF:
            due = min(due, self._bound.next)
        self._due = due

    def next_deadline(self) -> float | None:
        """When ``handle_timers()`` must next be called, or ``None`` if nothing is scheduled.

        Never later than the earliest timer; it can be earlier (a group or subscription was
        refreshed since its heap entry was made), and the early wake-up then only moves the
        entry. This keeps the call cheap however many timers were refreshed: a refresh
        never touches a heap, and each entry is moved at most once per expiry interval.
        """
        best = self._querier.next_deadline()
        groups = self._groups
        heap = self._group_heap
        budget = _NEXT_DEADLINE_BUDGET
        while heap and budget:
            deadline, address = heap[0]
            group = groups.get(address)
            if group is not None and group.scheduled == deadline:
                break
            heappop(heap)  # stale: the group is gone or has a newer entry
            budget -= 1
        if heap:
            best = min(best, heap[0][0])
        sheap = self._subscription_heap
        budget = _NEXT_DEADLINE_BUDGET
        while sheap and budget:
            deadline, address, host = sheap[0]
            group = groups.get(address)
            sub = group.subscribers.get(host) if group is not None else None
            if sub is not None and sub.scheduled == deadline:
                break
            heappop(sheap)
            budget -= 1
        if sheap:
            best = min(best, sheap[0][0])
        if self._bound.next != OFF:
            best = min(best, self._bound.next)
        return None if best == NEVER else best

    def pop_outputs(self) -> list[Output]:
        """What happened since the last call: in order, the queries to send, sessions,
        refusals and the like; then a ``SubscriberChanged`` for each subscriber whose state
        changed, in order; then a ``GroupChanged`` for each group that changed (each named
        once)."""
        outputs, subscribers, groups = self.pop_changes()
        outputs += [SubscriberChanged(g, h) for g, h in subscribers]
        outputs += [GroupChanged(g) for g in groups]
        return outputs

    def pop_changes(self) -> tuple[list[Output], list[tuple[bytes, bytes]], dict[bytes, None]]:
        """``pop_outputs()`` without making an object per change, for the report path: (the
        outputs but the changes, in order; (group, subscriber) of each subscriber that
        changed, in order; the groups that changed)."""
        outputs = self._outputs[:]  # (the list itself is shared with the querier)
        self._outputs.clear()
        subscribers, self._changed_subscribers = self._changed_subscribers, []
        groups, self._changed_groups = self._changed_groups, {}
        return outputs, subscribers, groups

    # ==== read-only queries ===================================================================

    @property
    def family(self) -> Family:
        return self._family

    @property
    def version(self) -> int:
        """The configured querier version."""
        return self._querier.version

    @property
    def operating_version(self) -> int:
        """The version in use: the configured one, or an older one heard recently (§7.3.1)."""
        return self._querier.operating_version

    @property
    def own_address(self) -> bytes | None:
        return self._querier.own

    @property
    def fast_leave(self) -> bool:
        return self._fast_leave

    @property
    def sessions(self) -> bool:
        """Whether the link says when each subscriber's sessions begin and end
        (``SessionChanged`` outputs, for a session log). Switched on, it says nothing of the
        sessions already running: it is meant to be set before the link hears its first
        report."""
        return self._sessions

    @sessions.setter
    def sessions(self, on: bool) -> None:
        self._sessions = bool(on)

    @property
    def is_querier(self) -> bool:
        return self._querier.is_querier

    @property
    def querier_address(self) -> bytes | None:
        """The current querier's address: ours, another router's, or ``None`` if unknown."""
        return self._querier.address

    @property
    def timers(self) -> ProtocolTimers:
        """The timers in force: the configured ones, or with the querier's QRV and QQI."""
        return self._querier.timers

    @property
    def querier_policy(self) -> QuerierPolicy:
        return self._querier.policy

    @property
    def specific_query_rate(self) -> float | None:
        """Specific queries per second at most (a token bucket of one second); None: no bound."""
        return self._bound.rate

    @property
    def ssm_ranges(self) -> tuple[Network, ...]:
        """The SSM address ranges the link applies RFC 4604 to (empty: none)."""
        return self._ssm.networks

    @property
    def dropped(self) -> Mapping[Drop, int]:
        """Inputs dropped or ignored, by reason (with the admission's refusals)."""
        dropped = dict(self._dropped)
        if self._admission is not None:
            dropped.update(self._admission.refused)
        return dropped

    @property
    def statistics(self) -> dict[str, dict[str, int]]:
        """Messages ``received``, ``sent`` and in ``error``, by type, in RFC 8652's names
        (``statistics``)."""
        stats = self._stats
        sent = list(stats.sent)
        sent[QUERY] += self._querier.general_queries_sent
        newest = self._full
        return {"received": stats.report(stats.received, newest),
                "sent": stats.report(sent, newest),
                "error": stats.report(stats.error, newest)}

    @property
    def admission(self) -> Admission | None:
        """What decides which records may create or extend state, and its counts."""
        return self._admission

    def set_policy(self, policy: EdgePolicy) -> None:
        """A new policy and limits for the link's admission (none: nothing to do). State
        already held stays; if the exceptions changed, what counts is counted again."""
        adm = self._admission
        if adm is not None and adm.configure(policy):
            adm.recount()
            for g in self._groups.values():
                address = g.address
                g.counted = adm.group_counts(address, g.mode is EXCLUDE, frozenset(g.sources))
                if g.counted:
                    adm.take_group()
                for host, sub in g.subscribers.items():
                    adm.hold(host, address, sub.mode is EXCLUDE, sub.sources)

    def groups(self) -> tuple[bytes, ...]:
        """The groups with state on the link."""
        return tuple(self._groups)

    @property
    def group_count(self) -> int:
        """How many groups have state on the link (without copying them)."""
        return len(self._groups)

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
            up_since=g.created,
            source_up_since=g.source_up_since() if g.sources else _NO_SOURCES,
            last_reporter=g.last_reporter,
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
        sources = g.sources
        if g.mode is INCLUDE:
            return INCLUDE, frozenset(sources)
        if not sources:
            return EXCLUDE, EMPTY  # the any-source join: most groups
        return EXCLUDE, frozenset(s for s, t in sources.items() if t == OFF)

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

    def subscriber_expiry(self, group: bytes) -> dict[bytes, float]:
        """When each tracked subscriber of ``group`` is forgotten unless it reports again
        (its own Group Membership Interval from its last report), on the caller's clock."""
        g = self._groups.get(group)
        return {} if g is None else {h: sub.expires for h, sub in g.subscribers.items()}

    def subscriber(self, group: bytes, subscriber: bytes) -> SubscriberState | None:
        """What ``subscriber`` asked for ``group``, or ``None`` if it is not tracked."""
        g = self._groups.get(group)
        sub = g.subscribers.get(subscriber) if g is not None else None
        return None if sub is None else SubscriberState(sub.mode, sub.sources)

    def requested(self, group: bytes,
                  subscriber: bytes) -> tuple[FilterMode, frozenset[bytes]] | None:
        """``subscriber()`` as a plain (filter mode, sources) pair, for the report path."""
        g = self._groups.get(group)
        sub = g.subscribers.get(subscriber) if g is not None else None
        return None if sub is None else (sub.mode, sub.sources)

    def _expire_group(self, g: Group, now: float) -> None:
        """Everything due in one group at or before ``now``."""
        if g.address in self._static:
            # A static group's timers were lowered (a last member's queries, a merged round):
            # the static member answers, as a host would.
            self._hold_static(g.address, now)
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
                if self._querier.is_querier and self._query_round(g, now):
                    g.retransmit_at = now + self._lmqi
                else:
                    g.retransmit_at = OFF
            self._reschedule(g)
        if changed:
            self._changed_groups[g.address] = None
