"""The multicast router side of IGMPv3 / MLDv2 on one downstream link, with explicit tracking.

Theory of operation
===================

One ``RouterLink`` is the router part of RFC 9776 §6-7 (IGMP) or RFC 9777 §7-8 (MLD) for one
link and one address family. It is sans-I/O: messages come in through ``receive()`` already
decoded (``mcastproxy.wire.messages``), time is the ``now`` argument of every call, what the
link wants sent or re-read comes out of ``pop_outputs()``, and ``next_deadline()`` says when
``handle_timers()`` must next be called. Nothing here reads a clock or sleeps.

The link puts together three parts, each in its own module:

- ``querier.Querier``: querier election, General Queries, the version in use (§6.6.2, §7.3.1).
- ``group.Group``: the state of one group (§6.2-§6.6.3): the INCLUDE/EXCLUDE state tables,
  timers, last-member query retransmissions, Older Host Present timers (§7.3.2).
- ``tracking``: what each subscriber asked for each group (explicit tracking).

What stays here is what joins them. A record is checked (family, multicast, link-local scope,
type, and in the SSM address range its type and version, §6.4), read in the version in use
and the group's compatibility mode (§7.3), applied to the subscriber's tracked state and then
to the group's state, and the table's query actions are carried out: by the querier as
last-member queries, by fast leave as an immediate drop of what no tracked subscriber wants
any more, by a non-querier not at all (it lowers its timers when it hears the querier's
queries instead, §6.6.1). When the group state forgets something by its own timers (nobody
answered the queries), the tracked subscribers that claimed it are forgotten too.

What a record may create or extend is the link's ``Admission`` (``mcastproxy.admission``): a
record that asks for more (an INCLUDE source, an any-source join) is admitted once it has been
read in the version in use, before it touches any state, so that a refused one makes none
(no subscription, no group, no Older Host Present timer) and sends nothing upstream; its
refused sources are taken out and the rest goes on. Records that ask for less are never
asked about. The admission's counts follow the state: each subscription and group made or
ended here is told to it.

Who may be querier is the link's ``QuerierPolicy`` (``querier``): a query from a sender it
refuses is dropped before it can take part in the election or lower a timer, and said once
as a ``QueryRefused`` output for the log.

Specific queries are rate-bounded (``specific_query_rate``): every leave the querier answers
with Q(G) or Q(G,X) costs [Last Member Query Count] rounds of one or more queries (§6.6.3), so
a flood of leaves for many groups would come back as a flood of queries. A token bucket per
link, holding one second's worth, pays for each round; a round that finds a token goes out
whole (a round is never split: the bucket may run short by the rest of it, made up before the
next). A round that finds none is merged rather than delayed: the group's own queries are not
sent (``QueriesMerged``), its timers are lowered to LMQT from the link's next merged General
Query, and that query (Max Response Time [Last Member Query Interval]) goes out at once, or
at most LMQI later if one went out less than LMQI ago, and again every LMQI until every group
merged into it has been asked [Last Member Query Count] times. An RFC-conformant host answers
a General Query with Current-State Records for all its groups (RFC 9776 §5.2, RFC 9777 §6.2;
an IGMPv2 or MLDv1 host, with a report for each group), so a group that still has members is
refreshed, and one that has none ends LMQT after the merged query: at most LMQI later than
its own queries would have ended it. General Queries keep their schedule and take no token.
So in any t seconds a link sends at most ``rate`` x (1 + t) specific queries (plus the rest
of one round) and t / LMQI + 1 merged General Queries. The price: hosts report every group
instead of one, and other routers on the link do not lower their timers on a General Query
(§6.6.1), so they forward a merged group until their own timers run out.

Timers: every deadline lives in the state it belongs to (a float on the group, the source
record, the subscription). Two heaps index them for ``next_deadline()`` and
``handle_timers()``: one entry per group (its earliest timer) and one per tracked
subscription. Entries are never removed eagerly; each state object remembers the deadline of
its one live entry (``scheduled``) and the heaps are checked against the state when read, so
a heap can hold an entry that is too early (it is re-pushed at the right time) or stale (it
is discarded), never one that hides a real deadline. A refresh moves no heap entry at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from heapq import heappop, heappush
from ipaddress import ip_network

from mcastproxy.admission import Admission
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership.addresses import (
    LINK_LOCAL_SCOPE,
    MAX_QUERY_SOURCES,
    MULTICAST,
    SSM_RANGES,
    AddressRanges,
    Network,
    is_ipv6_link_local,
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
    JoinRefused,
    Output,
    QueriesMerged,
    QueryRefused,
    SendQuery,
    SubscriberChanged,
)
from mcastproxy.membership.querier import Querier, QuerierMode, QuerierPolicy
from mcastproxy.membership.ssmmap import SsmMap
from mcastproxy.membership.state import FilterMode, GroupState, SubscriberState
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.membership.tracking import (
    SharedSets,
    SubscriberView,
    Subscription,
    requested_state,
)
from mcastproxy.policy import EdgePolicy
from mcastproxy.wire.messages import Leave, Message, Query, Report

_NEXT_DEADLINE_BUDGET = 64  # stale heap entries next_deadline() drops per heap and call
_ROUND_SLACK = 1e-6  # merged query rounds are LMQI apart by repeated addition


class RouterLink:
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
    sent, per second (see the module's comment); ``None``: no bound.
    ``admission`` decides what records may create or extend state (``mcastproxy.admission``);
    ``None``: everything, unbounded (the proxy always gives one).
    """

    _gmi: float  # [Group Membership Interval], kept at hand for the report path

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
    ) -> None:
        family = Family(family)  # ValueError if it is no family
        self._family = family
        self._v4 = family is Family.V4  # IGMP has rules of its own (IGMPv1, v2 hosts)
        self._alen = family.length
        self._full = family.newest_version  # the version with source filtering
        if version not in range(1, self._full + 1):
            name = family.protocol.upper()
            raise ValueError(f"{name} version must be 1 to {self._full}, not {version!r}")
        self._check_address(own_address)
        self._ssm = AddressRanges(_ssm_networks(family, ssm_ranges))
        self._ssm_aware = bool(self._ssm)  # checked first on the report path
        self._is_multicast = MULTICAST[family]
        self._is_link_local_scope = LINK_LOCAL_SCOPE[family]
        self._fast_leave = fast_leave
        self._unspecified = family.unspecified
        self._started = False

        self._outputs: list[Output] = []  # the same list object for the link's lifetime
        self._changed_groups: dict[bytes, None] = {}
        self._dropped: Counter[Drop] = Counter()

        policy = querier if querier is not None else QuerierPolicy()
        self._querier = Querier(timers, family, version, own_address, self._outputs, policy)
        self._use_timers(timers)

        # One attribute for the bound: past 30 instance attributes CPython stops specializing
        # attribute access, which the report path would pay for.
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
        if self._started:
            raise RuntimeError("RouterLink.start() called twice")
        self._started = True
        self._querier.start(now)
        self._sync_querier()

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
            self._dropped[Drop.UNKNOWN_MESSAGE] += 1

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

    @property
    def static_host(self) -> bytes:
        """The subscriber static groups are held for: the family's all-routers address,
        which no report can come from (a multicast source is invalid)."""
        return self._family.all_routers

    def set_static(self, entries: Mapping[bytes, frozenset[bytes] | None], now: float) -> None:
        """The link's static groups (RFC 8652 ``static-group``): group -> the sources to
        receive it from (None: any source). Each is a membership of ``static_host`` whose
        timers never run out, which no policy or limit refuses (it counts all the same);
        one no longer listed is left as a host would leave it."""
        old, self._static = self._static, dict(entries)
        for group, sources in old.items():
            if self._static.get(group, 0) != sources:
                self._static_record(group, TO_IN, (), now)  # left (or changed: asked again)
        for group, sources in self._static.items():
            if old.get(group, 0) != sources:
                self._hold_static(group, now)

    def _hold_static(self, group: bytes, now: float) -> None:
        sources = self._static[group]
        if sources is None:
            self._static_record(group, IS_EX, (), now)
        else:
            self._static_record(group, IS_IN, tuple(sources), now)

    def _static_record(self, group: bytes, rtype: int, sources: tuple[bytes, ...],
                       now: float) -> None:
        # A Group Membership Interval that never ends: the timers the record sets never run.
        gmi = self._gmi
        self._gmi = NEVER
        try:
            self._receive_record(group, rtype, sources, self._family.all_routers, now, 0)
        finally:
            self._gmi = gmi

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
        """What happened since the last call, in order (queries to send, subscribers that
        changed), then a ``GroupChanged`` for each group that changed (each named once)."""
        out = self._outputs[:]
        self._outputs.clear()
        if self._changed_groups:
            out += [GroupChanged(g) for g in self._changed_groups]
            self._changed_groups = {}
        return out

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

    # ==== input checks ========================================================================

    def _check_address(self, address: bytes | None) -> None:
        if address is not None and (not isinstance(address, bytes) or len(address) != self._alen):
            raise ValueError(f"address must be {self._alen} packed octets, not {address!r}")

    def _check_sender(self, source: bytes) -> bool:
        """Count and refuse a sender we must not listen to; True if it is acceptable."""
        if len(source) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if source == self._querier.own:
            self._dropped[Drop.FROM_OWN_ADDRESS] += 1
            return False
        if self._v4:
            if source[0] >= 224:
                self._dropped[Drop.SOURCE_INVALID] += 1
                return False
        elif source != self._unspecified and not is_ipv6_link_local(source):
            # RFC 9777 §5.1.14, §5.2.13: MLD messages come from a link-local address (or ::
            # for a report sent before the host has one).
            self._dropped[Drop.SOURCE_NOT_LINK_LOCAL] += 1
            return False
        return True

    def _in_ssm(self, group: bytes, g: Group | None) -> bool:
        """Whether ``group`` is in the SSM address range (known to its state, if it has one)."""
        return g.in_ssm_range if g is not None else group in self._ssm

    def _check_group(self, group: bytes) -> bool:
        if len(group) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if not self._is_multicast(group):
            self._dropped[Drop.NOT_MULTICAST] += 1
            return False
        if self._is_link_local_scope(group):
            # Link-scope groups are never routed; reports for them are ignored (RFC 9776
            # §5: no reports for 224.0.0.1; RFC 9777 §6 likewise for ff02::1 and scopes 0-1).
            self._dropped[Drop.LINK_LOCAL_SCOPE] += 1
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
            self._dropped[Drop.VERSION_INVALID] += 1
            return
        # An IGMPv1/v2 or MLDv1 report: one group, read as IS_EX({}) (RFC 9776 §7.3.2).
        records = report.records
        if len(records) != 1 or records[0].type != IS_EX or records[0].sources:
            self._dropped[Drop.RECORD_INVALID_FOR_VERSION] += 1
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
        if old and self._ssm_map is not None:
            mapped = self._ssm_map.sources(group)
            if mapped is not None:
                # SSM mapping (``membership.ssmmap``): the older host's join of a mapped group
                # is IS_IN(the mapped sources), its Leave TO_IN({}), in the newest version.
                rtype, sources = (IS_IN, tuple(mapped)) if old > 0 else (TO_IN, ())
                old = 0
        if not 1 <= rtype <= 6:
            self._dropped[Drop.UNKNOWN_RECORD_TYPE] += 1
            return
        if (
            self._ssm_aware
            and (old or rtype in (IS_EX, TO_EX))
            and (g.in_ssm_range if g is not None else group in self._ssm)
        ):
            # RFC 9776 §6.4 (RFC 9777 §7.4 alike), from RFC 4604: "SSM-aware routers SHOULD
            # ignore records that contain multicast addresses in the SSM address range if the
            # record type is MODE_IS_EXCLUDE or CHANGE_TO_EXCLUDE_MODE. SSM-aware routers
            # SHOULD ignore IGMPv1/IGMPv2 Report and IGMPv2 DONE [Leave] messages that contain
            # multicast addresses in the SSM address range". Whatever its sources: TO_EX({})
            # is the any-source join, which SSM does not have. The whole record is ignored,
            # so it neither refreshes nor creates state, and it starts no Older Host Present
            # timer (an SSM group never leaves the newest compatibility mode).
            reason = Drop.SSM_OLDER_VERSION if old else Drop.SSM_EXCLUDE_MODE
            self._dropped[reason] += 1
            return
        if sources:
            alen = self._alen
            for s in sources:
                if len(s) != alen:
                    self._dropped[Drop.WRONG_FAMILY] += 1
                    return
            a = frozenset(sources)
        else:
            a = EMPTY

        # The version in use on the link (§7.3.1): without source filtering, a record is a
        # join or a leave of the whole group.
        operating = self._querier.operating_version
        if operating < self._full:
            if rtype == BLOCK:
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if not a and rtype in (IS_IN, ALLOW):
                return  # no change to anything
            if rtype == TO_IN and not a:
                if self._v4 and operating == 1:
                    # RFC 9776 §7.3.1: "When in IGMPv1 mode, routers ... MUST ignore Leave
                    # Group messages."
                    self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                    return
            elif rtype == TO_EX:
                a = EMPTY
            elif self._ssm_aware and self._in_ssm(group, g):
                # The record would become an any-source join (IS_EX({})), which the SSM range
                # does not have (RFC 4604): SSM needs IGMPv3 / MLDv2 on the link.
                self._dropped[Drop.SSM_OLDER_VERSION] += 1
                return
            else:
                rtype, a = IS_EX, EMPTY

        # Older hosts on the link for this group (§7.3.2).
        if g is not None and (g.v1_host != OFF or g.v2_host != OFF):
            if rtype == BLOCK:
                # "IGMPv3 BLOCK messages are ignored"
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if rtype == TO_EX:
                # "as are source-lists in TO_EX() messages (i.e., any TO_EX() message is
                # treated as TO_EX( {} ))"
                a = EMPTY
            elif rtype == TO_IN and self._v4 and g.v1_host != OFF:
                # IGMPv1 Group Compatibility Mode: "IGMPv2 Leave messages and IGMPv3 TO_IN()
                # messages are also ignored."
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return

        # No state is INCLUDE({}): these records leave it unchanged.
        if g is None and (rtype == BLOCK or (not a and rtype in (IS_IN, ALLOW, TO_IN))):
            return

        adm = self._admission
        count = False
        if adm is not None and host is not None and host == self._family.all_routers:
            # A static group (``set_static``): the operator's, never refused; it counts as
            # any state does, so the counts still follow what the link holds.
            count = g is None and adm.group_counts(group, rtype in (IS_EX, TO_EX), a)
        elif adm is not None and rtype != BLOCK and (a or rtype in (IS_EX, TO_EX)):
            # A record that asks for more: admitted before it makes any state (admission).
            any_source = rtype in (IS_EX, TO_EX)
            if (any_source and g is not None and g.counted and adm.fast_groups >= 0
                    and (host is None or host in g.subscribers
                         or adm.held.get(host, 0) < adm.fast_groups)):
                pass  # the common case: nothing to ask, nothing to count (Admission.fast_groups)
            else:
                admitted, count = self._admit(adm, g, group, host, rtype, a, any_source)
                if admitted is None:
                    return  # refused whole
                if not admitted and not any_source and (rtype != TO_IN or g is None):
                    return  # no source left: nothing asked (TO_IN({}) leaves the old ones)
                a = admitted

        if g is None:
            g = Group(group, self._ssm_aware and group in self._ssm)
        if count and adm is not None:
            g.counted = True
            adm.take_group()
        if old > 0:
            # RFC 9776 §7.3.2: "The IGMPv1-Host-Present Timer is set to [Older Version Host
            # Present Interval] seconds whenever an IGMPv1 Membership Report is received"
            # (and likewise IGMPv2, and MLDv1 in RFC 9777 §8.3.2).
            deadline = now + self._timers.older_host_present_interval
            self._due = min(self._due, deadline)
            if old == 1:
                g.v1_host = deadline
            else:
                g.v2_host = deadline

        was_tracked = host is not None and self._track(g, host, rtype, a, now)

        if not a and not g.sources and g.mode is EXCLUDE and rtype in (IS_EX, TO_EX) and old <= 0:
            # The any-source join again: EXCLUDE ({},{}) IS_EX ({}) / TO_EX ({}) only sets
            # the Group Timer to GMI. That raises it, unless GMI itself shrank (a querier's
            # QRV and QQI adopted): only then is there something to reschedule.
            g.group_timer = now + self._gmi
            if g.group_timer < g.scheduled:
                self._reschedule(g)
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
            elif self._querier.is_querier:
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

    def _admit(self, adm: Admission, g: Group | None, group: bytes, host: bytes | None,
               rtype: int, a: frozenset[bytes], any_source: bool,
               ) -> tuple[frozenset[bytes] | None, bool]:
        """Ask the admission about a record that asks for more; its refusals to log become
        ``JoinRefused`` outputs."""
        sub = g.subscribers.get(host) if g is not None and host is not None else None
        admitted = adm.admit(host, group, any_source, rtype == ALLOW, a,
                             None if sub is None else sub.mode is EXCLUDE,
                             EMPTY if sub is None else sub.sources,
                             None if g is None else g.counted)
        if adm.notices:
            self._outputs.extend(JoinRefused(*n) for n in adm.notices)
            adm.notices.clear()
        return admitted

    # ==== RFC 9776 §6.6.3: last-member queries ==================================================

    def _send_last_member_queries(
        self, g: Group, query_group: bool, query_sources: list[bytes], now: float
    ) -> None:
        """The querier's "Send Q(G)" and "Send Q(G,X)" table actions."""
        operating = self._querier.operating_version
        if self._v4 and operating == 1:
            return  # IGMPv1 has no group-specific queries (and ignores leaves)
        if operating < self._full:
            query_sources = []  # no group-and-source-specific queries before IGMPv3 / MLDv2
        if self._bound.rate is not None and not self._bound.has_token(now):
            # The rate is spent: the merged General Query asks instead (module comment).
            start = self._next_merged_round(now)
            if g.merge_last_member_queries(query_group, query_sources, start + self._lmqt):
                self._outputs.append(QueriesMerged(g.address))
                self._join_merged_rounds(start, self._lmqc, now)
            return
        if not g.start_last_member_queries(query_group, query_sources, now, self._lmqc, self._lmqt):
            return
        self._retransmitting.add(g.address)
        if self._query_round(g, now) and not g.retransmit_at > now:
            g.retransmit_at = now + self._lmqi

    def _query_round(self, g: Group, now: float) -> bool:
        """Send the group's pending specific queries once, if the rate allows (else leave
        the rest to the merged General Query); True if retransmissions remain."""
        bound = self._bound
        if bound.rate is None:
            return self._send_query_round(g, now)
        if not bound.has_token(now):
            # Already asked once at LMQT: the merged query makes the retransmissions.
            rounds = g.transmissions_left()
            g.stop_queries()
            self._retransmitting.discard(g.address)
            if rounds:
                self._outputs.append(QueriesMerged(g.address))
                self._join_merged_rounds(self._next_merged_round(now), rounds, now)
            return False
        sent = len(self._outputs)
        remaining = self._send_query_round(g, now)
        bound.tokens -= len(self._outputs) - sent
        return remaining

    def _send_query_round(self, g: Group, now: float) -> bool:
        group_query, above, below, remaining = g.query_round(now, self._lmqt)
        if group_query is not None:
            self._outputs.append(
                SendQuery(self._querier.make_query(g.address, self._lmqi, (), group_query))
            )
        if above:
            self._send_source_query(g.address, above, True)
        if below:
            self._send_source_query(g.address, below, False)
        if not remaining:
            self._retransmitting.discard(g.address)
        return remaining

    # ==== the specific-query rate bound (see the module's comment) ==============================

    def _next_merged_round(self, now: float) -> float:
        """When the next merged General Query goes out: the one scheduled, or now, or LMQI
        after the last one (at most one per LMQI)."""
        bound = self._bound
        if bound.next != OFF:
            return bound.next
        after_last = bound.last + self._lmqi
        return after_last if after_last > now else now

    def _join_merged_rounds(self, start: float, rounds: int, now: float) -> None:
        """A group is asked by the merged General Query ``rounds`` times from ``start``."""
        bound = self._bound
        bound.until = max(bound.until, start + (rounds - 1) * self._lmqi)
        if bound.next == OFF:
            if start <= now:
                self._merged_round(now)
            else:
                bound.next = start
                self._due = min(self._due, start)

    def _merged_round(self, now: float) -> None:
        """Send the merged General Query (Max Response Time LMQI); schedule the next round."""
        bound = self._bound
        lmqi = self._lmqi
        query = self._querier.make_query(self._unspecified, lmqi, (), False)
        self._outputs.append(SendQuery(query))
        bound.last = now
        following = now + lmqi
        if following <= bound.until + _ROUND_SLACK:
            bound.next = following
            self._due = min(self._due, following)
        else:
            bound.next = bound.until = OFF

    def _send_source_query(self, group: bytes, sources: list[bytes], s_flag: bool) -> None:
        sources.sort()
        lmqi = self._lmqi
        step = MAX_QUERY_SOURCES[self._family]
        for i in range(0, len(sources), step):
            chunk = tuple(sources[i : i + step])
            self._outputs.append(SendQuery(self._querier.make_query(group, lmqi, chunk, s_flag)))

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
            if (old_mode is EXCLUDE and rtype in (IS_EX, TO_EX) and (a is old or a == old)) or (
                old_mode is INCLUDE and rtype in (IS_IN, TO_IN) and a == old and a
            ):
                self._refresh(g, host, sub, now + self._gmi)
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
            adm = self._admission
            if adm is not None:
                if adm.counts_all:  # inline: a join's hot path
                    adm.held[host] = adm.held.get(host, 0) + 1
                else:
                    adm.hold(host, g.address, mode is EXCLUDE, new)
            if new:
                g.count(mode, new, 1)
            elif mode is EXCLUDE:
                g.n_exclude += 1
            self._outputs.append(SubscriberChanged(g.address, host))
            self._changed_groups[g.address] = None
            return False
        self._refresh(g, host, sub, expires)
        if mode is not old_mode or new != old:
            g.count(old_mode, old, -1)
            sub.mode = mode
            sub.sources = new = self._shared_sets(new)
            g.count(mode, new, 1)
            if self._admission is not None:
                self._admission.change(host, g.address, old_mode is EXCLUDE, old,
                                       mode is EXCLUDE, new)
            self._outputs.append(SubscriberChanged(g.address, host))
            self._changed_groups[g.address] = None
        return True

    def _refresh(self, g: Group, host: bytes, sub: Subscription, expires: float) -> None:
        """A report from the subscriber: it expires [Group Membership Interval] from now. Its
        heap entry is moved when it comes up, unless it is now too late (GMI shrank)."""
        sub.expires = expires
        if expires < sub.scheduled:
            sub.scheduled = expires
            heappush(self._subscription_heap, (expires, g.address, host))
            self._due = min(self._due, expires)

    def _remove_subscription(self, g: Group, host: bytes, sub: Subscription) -> None:
        del g.subscribers[host]
        g.count(sub.mode, sub.sources, -1)
        if self._admission is not None:
            self._admission.release(host, g.address, sub.mode is EXCLUDE, sub.sources)
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
                    if self._admission is not None:
                        self._admission.change(host, g.address, False, sub.sources, False,
                                               remaining)
                    sub.sources = self._shared_sets(remaining)
                    g.count(INCLUDE, sub.sources, 1)
                    self._outputs.append(SubscriberChanged(g.address, host))
                    self._changed_groups[g.address] = None
                    continue
            elif mode is not None and sub.mode is not mode:
                continue
            self._remove_subscription(g, host, sub)

    # ==== timers ===============================================================================

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

    def _stop_queries(self) -> None:
        """We stopped being the querier: a non-querier sends no group-specific queries."""
        for address in self._retransmitting:
            g = self._groups.get(address)
            if g is not None:
                g.stop_queries()
        self._retransmitting.clear()
        self._bound.next = self._bound.until = OFF

    def _reschedule(self, g: Group) -> None:
        wake = g.next_wake()
        if wake < g.scheduled:
            g.scheduled = wake
            heappush(self._group_heap, (wake, g.address))
            self._due = min(self._due, wake)

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

    def _delete_group(self, g: Group) -> None:
        if g.subscribers:
            self._forget_tracked(g, None, None)
        self._groups.pop(g.address, None)
        self._retransmitting.discard(g.address)
        g.scheduled = NEVER  # its heap entries are stale from now on
        if g.counted and self._admission is not None:
            g.counted = False
            self._admission.release_group()

    # ==== queries (RFC 9776 §6.6) ===============================================================

    def _receive_query(self, query: Query, source: bytes, now: float) -> None:
        if len(source) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return
        if source == self._unspecified:
            # A query from nobody (e.g. a snooping switch) takes no part in the election.
            self._dropped[Drop.QUERY_SOURCE_UNSPECIFIED] += 1
            return
        if not self._check_sender(source):
            return
        policy = self._querier.policy
        if policy.refuses(source):
            # RFC 9776 §9.1: a forged query would take over the election (and a forged older
            # one the version in use); only the senders the policy names take part.
            reason = (Drop.QUERY_ON_ALWAYS_QUERIER_LINK if policy.mode is QuerierMode.ALWAYS
                      else Drop.QUERY_NOT_FROM_LINK_ROUTER)
            self._dropped[reason] += 1
            self._outputs.append(QueryRefused(source, reason))
            return
        version = query.version
        if not 1 <= version <= self._full:
            self._dropped[Drop.VERSION_INVALID] += 1
            return
        group = query.group
        if len(group) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return
        if group == self._unspecified:
            if self._querier.hear_general_query(query, source, now):
                self._stop_queries()
            self._sync_querier()
            return
        if not self._is_multicast(group):
            self._dropped[Drop.NOT_MULTICAST] += 1
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

    def _group_compatibility(self, g: Group) -> int:
        if g.v1_host != OFF:
            return 1
        if g.v2_host != OFF and self._v4:
            return 2
        return self._full


class _QueryBound:
    """The specific-query rate bound of a link (module comment): a token bucket holding one
    second's worth, and the rounds of the merged General Query (``OFF``: none)."""

    __slots__ = ("last", "next", "rate", "tokens", "tokens_at", "until")

    def __init__(self, rate: float | None) -> None:
        if rate is not None and (isinstance(rate, bool) or not rate >= 0):
            raise ValueError(f"specific_query_rate must be a number of at least 0, not {rate!r}")
        self.rate = None if rate is None else float(rate)
        self.tokens = 0.0
        self.tokens_at = OFF  # a bucket never used is full
        self.next = OFF  # the next merged General Query
        self.until = OFF  # the last round any merged group is due
        self.last = OFF  # when the last one went out

    def has_token(self, now: float) -> bool:
        """Refill the bucket and say if a round may go out."""
        rate = self.rate
        if rate is None:
            return True
        if rate <= 0:
            return False
        tokens = self.tokens + (now - self.tokens_at) * rate
        self.tokens = tokens if tokens < rate else rate
        self.tokens_at = now
        return self.tokens >= 1


def _ssm_networks(family: Family, ranges: Iterable[Network | str] | None) -> tuple[Network, ...]:
    """The SSM ranges given to ``RouterLink``, checked: networks of the family, multicast."""
    if ranges is None:
        return SSM_RANGES[family]
    if isinstance(ranges, str | bytes):
        raise TypeError(f"ssm_ranges must be a collection of networks, not {ranges!r}")
    networks: list[Network] = []
    for item in ranges:
        net = ip_network(item)  # ValueError for text that is no network, or with host bits
        if net.version != family:
            raise ValueError(f"SSM range {net} is not an IPv{family} network")
        if not net.is_multicast:
            raise ValueError(f"SSM range {net} is not multicast")
        networks.append(net)
    return tuple(networks)
