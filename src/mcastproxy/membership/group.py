"""The state of one group on one link: RFC 9776 §6.2-§6.6.3 (RFC 9777 §7.2-§7.6.3).

A ``Group`` holds what RFC 9776 §6.2.1 calls the router's group record: the Router Filter Mode,
the Group Timer (EXCLUDE mode only) and the source records with their Source Timers. In
INCLUDE mode every source record has a running timer; in EXCLUDE mode those with a running
timer form the Requested List X (forwarded) and those at zero the Exclude List Y (not
forwarded). Timers are absolute deadlines; ``OFF`` is a timer that is not running.

The group changes in four ways, each a method here:

- ``apply_record``: a group record, by the tables of §6.4.1 and §6.4.2, row by row. It returns
  the table's query actions ("Send Q(G)", "Send Q(G,X)") rather than acting on them: the
  querier sends them (``start_last_member_queries``, ``query_round``, §6.6.3), fast leave
  replaces them (``fast_leave``), a non-querier ignores them.
- ``lower_timers``: a query with the S flag clear, sent or heard (§6.6.1).
- ``expire``: timers running out (§6.3, §6.5).

Beside the RFC state it keeps the Older Host Present timers (§7.3.2), the retransmission
state of its specific queries (§6.6.3), and the tracked subscribers with counts over them (how
many are in EXCLUDE mode, how many include or exclude each source), so that "does any tracked
subscriber still want this source?" costs O(1) however many there are; and whether the group
counts against its link's and the proxy's limits (``counted``, set and cleared by the router
as ``admission`` says).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcastproxy.membership.state import FilterMode

if TYPE_CHECKING:
    from mcastproxy.membership.tracking import Subscription

INCLUDE = FilterMode.INCLUDE
EXCLUDE = FilterMode.EXCLUDE

# Group Record Types (RFC 9776 §4.2.12), as plain ints for the report path.
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6

OFF = float("-inf")  # a timer that is not running (a Source Timer "at zero")
NEVER = float("inf")  # nothing scheduled
EMPTY: frozenset[bytes] = frozenset()
_NO_SOURCES: list[bytes] = []  # shared, never modified


class Group:
    """One group's state on a link (RFC 9776 §6.2.1) and its tracked subscribers."""

    __slots__ = (
        "address",
        "counted",
        "created",
        "exclude_count",
        "group_timer",
        "in_ssm_range",
        "include_count",
        "last_reporter",
        "mode",
        "n_exclude",
        "query_count",
        "retransmit_at",
        "scheduled",
        "source_queries",
        "source_since",
        "sources",
        "subscribers",
        "v1_host",
        "v2_host",
    )

    def __init__(self, address: bytes, in_ssm_range: bool = False, created: float = 0.0) -> None:
        self.address = address
        self.created = created  # when the group state was made (RFC 8652 ``up-time``)
        self.last_reporter: bytes | None = None  # RFC 8652 ``last-reporter``
        # In the link's SSM address range (RFC 4604): fixed, as the link's ranges are.
        self.in_ssm_range = in_ssm_range
        self.mode = INCLUDE
        self.group_timer = OFF
        self.sources: dict[bytes, float] = {}  # source -> Source Timer deadline (OFF: zero)
        # source -> when its record was made (RFC 8652 ``up-time``), from the first source
        # on; it may hold records since deleted (``_made``).
        self.source_since: dict[bytes, float] | None = None
        self.v1_host = OFF  # IGMPv1 / MLDv1 Host Present timer (§7.3.2)
        self.v2_host = OFF  # IGMPv2 Host Present timer
        self.query_count = 0  # Group-Specific Query transmissions left (§6.6.3.1)
        self.source_queries: dict[bytes, int] = {}  # transmissions left per source (§6.6.3.2)
        self.retransmit_at = OFF
        self.scheduled = NEVER  # deadline of this group's live entry in the link's heap
        self.subscribers: dict[bytes, Subscription] = {}
        self.n_exclude = 0  # tracked subscribers in EXCLUDE mode
        self.include_count: dict[bytes, int] = {}  # source -> INCLUDE subscribers wanting it
        self.counted = False  # counts against the link's max-groups (``admission``)
        self.exclude_count: dict[bytes, int] = {}  # source -> EXCLUDE subscribers blocking it

    def next_wake(self) -> float:
        """The earliest running timer of the group, or ``NEVER``."""
        wake = self.group_timer if self.mode is EXCLUDE else NEVER
        for t in self.sources.values():
            if OFF < t < wake:
                wake = t
        for t in (self.v1_host, self.v2_host, self.retransmit_at):
            if OFF < t < wake:
                wake = t
        return wake

    @property
    def is_empty(self) -> bool:
        """INCLUDE mode with no sources: the group has no state left (RFC 9776 §6.3)."""
        return self.mode is INCLUDE and not self.sources

    # ==== RFC 9776 §6.4: the state tables =====================================================

    def apply_record(
        self, rtype: int, a: frozenset[bytes], now: float, gmi: float
    ) -> tuple[bool, bool, list[bytes]]:
        """Apply one group record; ``gmi`` is [Group Membership Interval].

        Returns (forwarding changed, "Send Q(G)", the X of "Send Q(G,X)").
        """
        t = self.sources
        gmi_deadline = now + gmi
        changed = False
        query_group = False
        query_sources = _NO_SOURCES

        if self.mode is INCLUDE:
            if rtype in (IS_IN, ALLOW, TO_IN):
                # INCLUDE (A)  IS_IN (B)  -> INCLUDE (A+B)   (B)=GMI              §6.4.1
                # INCLUDE (A)  ALLOW (B)  -> INCLUDE (A+B)   (B)=GMI              §6.4.2
                # INCLUDE (A)  TO_IN (B)  -> INCLUDE (A+B)   (B)=GMI; Send Q(G,A-B)
                if rtype == TO_IN:
                    query_sources = [s for s in t if s not in a]
                for s in a:
                    if s not in t:
                        changed = True
                        self._made(s, now)
                    t[s] = gmi_deadline
            elif rtype == BLOCK:
                # INCLUDE (A)  BLOCK (B)  -> INCLUDE (A)     Send Q(G,A*B)        §6.4.2
                query_sources = [s for s in a if s in t]
            else:
                # INCLUDE (A)  IS_EX (B)  -> EXCLUDE (A*B,B-A)  (B-A)=0; Delete (A-B);
                #                                               Group Timer=GMI    §6.4.1
                # INCLUDE (A)  TO_EX (B)  -> EXCLUDE (A*B,B-A)  (B-A)=0; Delete (A-B);
                #                            Send Q(G,A*B); Group Timer=GMI        §6.4.2
                self.sources = {s: t.get(s, OFF) for s in a}
                for s in a:
                    if s not in t:
                        self._made(s, now)
                if rtype == TO_EX:
                    query_sources = [s for s in a if s in t]
                self.mode = EXCLUDE
                self.group_timer = gmi_deadline
                changed = True
            return changed, query_group, query_sources

        # EXCLUDE (X,Y): X are the sources with a running timer, Y those at zero.
        if rtype in (IS_IN, ALLOW, TO_IN):
            # EXCLUDE (X,Y)  IS_IN (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI              §6.4.1
            # EXCLUDE (X,Y)  ALLOW (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI              §6.4.2
            # EXCLUDE (X,Y)  TO_IN (A)  -> EXCLUDE (X+A,Y-A)  (A)=GMI;
            #                              Send Q(G,X-A); Send Q(G)
            if rtype == TO_IN:
                query_sources = [s for s, timer in t.items() if timer != OFF and s not in a]
                query_group = True
            for s in a:
                timer = t.get(s)
                if timer is None:
                    self._made(s, now)
                elif timer == OFF:
                    changed = True  # leaves Y: forwarded again
                t[s] = gmi_deadline
        elif rtype == BLOCK:
            # EXCLUDE (X,Y)  BLOCK (A)  -> EXCLUDE (X+(A-Y),Y)  (A-X-Y)=Group Timer;
            #                              Send Q(G,A-Y)                          §6.4.2
            group_timer = self.group_timer
            for s in a:
                if s not in t:
                    t[s] = group_timer
                    self._made(s, now)
            query_sources = [s for s in a if t[s] != OFF]
        else:
            # EXCLUDE (X,Y)  IS_EX (A)  -> EXCLUDE (A-Y,Y*A)  (A-X-Y)=GMI; Delete (X-A);
            #                              Delete (Y-A); Group Timer=GMI           §6.4.1
            # EXCLUDE (X,Y)  TO_EX (A)  -> EXCLUDE (A-Y,Y*A)  (A-X-Y)=Group Timer;
            #                              Delete (X-A); Delete (Y-A);
            #                              Send Q(G,A-Y); Group Timer=GMI          §6.4.2
            fresh = gmi_deadline if rtype == IS_EX else self.group_timer
            for s, timer in t.items():
                if timer == OFF and s not in a:
                    changed = True  # leaves Y: forwarded again
                    break
            self.sources = {s: t.get(s, fresh) for s in a}
            for s in a:
                if s not in t:
                    self._made(s, now)
            if rtype == TO_EX:
                query_sources = [s for s in a if self.sources[s] != OFF]
            self.group_timer = gmi_deadline
        return changed, query_group, query_sources

    # ==== RFC 9776 §6.6.1: timer updates from queries ========================================

    def lower_timers(self, sources: tuple[bytes, ...], limit: float) -> None:
        """A query with the S flag clear, for this group: Q(G,A) lowers the Source Timers of A
        to ``limit`` (now + LMQT), Q(G) the Group Timer; timers already lower stay."""
        if sources:
            t = self.sources
            for s in sources:
                timer = t.get(s)
                if timer is not None and timer > limit:
                    t[s] = limit
        elif self.mode is EXCLUDE and self.group_timer > limit:
            self.group_timer = limit

    # ==== RFC 9776 §6.6.3: last-member queries ================================================

    def start_last_member_queries(
        self,
        query_group: bool,
        query_sources: list[bytes],
        now: float,
        lmqc: int,
        lmqt: float,
    ) -> bool:
        """The querier's "Send Q(G)" and "Send Q(G,X)": lower the timers, count the
        transmissions to make. True if there is something to send now."""
        limit = now + lmqt
        started = False
        if query_group:
            # §6.6.3.1: "When a table action "Send Q(G)" is encountered, the Group Timer must
            # be lowered to LMQT. The router must then immediately send a Group Specific Query
            # as well as schedule [Last Member Query Count] - 1 query retransmission(s)".
            if self.mode is EXCLUDE and self.group_timer > limit:
                self.group_timer = limit
            self.query_count = lmqc
            started = True
        if query_sources:
            # §6.6.3.2: for each source in X with a Source Timer larger than LMQT: "Set the
            # number of retransmissions for each source to [Last Member Query Count]" and
            # "Lower the Source Timer to LMQT".
            t = self.sources
            pending = self.source_queries
            for s in query_sources:
                if t.get(s, OFF) > limit:
                    pending[s] = lmqc
                    t[s] = limit
                    started = True
        return started

    def merge_last_member_queries(
        self, query_group: bool, query_sources: list[bytes], limit: float
    ) -> bool:
        """"Send Q(G)" and "Send Q(G,X)" answered by the link's merged General Query instead
        (the link's specific-query rate is spent): lower the timers as §6.6.3 does, to
        ``limit`` (LMQT from that query), and keep no retransmission state of our own. True if
        there is something to ask."""
        asked = False
        if query_group:
            if self.mode is EXCLUDE and self.group_timer > limit:
                self.group_timer = limit
            asked = True
        t = self.sources
        for s in query_sources:
            if t.get(s, OFF) > limit:
                t[s] = limit
                asked = True
        return asked

    def transmissions_left(self) -> int:
        """How many more rounds of specific queries the group is due."""
        pending = self.source_queries
        most = max(pending.values()) if pending else 0
        return self.query_count if self.query_count > most else most

    def query_round(
        self, now: float, lmqt: float
    ) -> tuple[bool | None, list[bytes], list[bytes], bool]:
        """One transmission of the pending specific queries.

        Returns (the S flag of the Group-Specific Query, or None if none is due; the sources
        for a query with the S flag set; those for one with it clear; whether any
        retransmission remains).
        """
        group_query: bool | None = None
        if self.query_count > 0:
            # §6.6.3.1: "if the Group Timer is larger than LMQT, the "Suppress Router-Side
            # Processing" bit is set in the Query Message."
            group_query = self.mode is EXCLUDE and self.group_timer - now > lmqt
            self.query_count -= 1
        above: list[bytes] = []
        below: list[bytes] = []
        pending = self.source_queries
        if pending:
            t = self.sources
            for s, count in list(pending.items()):
                timer = t.get(s, OFF)
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
            if group_query is not None:
                above = []
        remaining = self.query_count > 0 or bool(pending)
        if not remaining:
            self.retransmit_at = OFF
        return group_query, above, below, remaining

    def stop_queries(self) -> None:
        """Forget pending retransmissions (we stopped being the querier)."""
        self.query_count = 0
        self.source_queries.clear()
        self.retransmit_at = OFF

    # ==== RFC 9776 §6.3, §6.5: timers running out =============================================

    def expire(self, now: float) -> tuple[bool, list[bytes], bool]:
        """Everything of the RFC state due at or before ``now``.

        Returns (forwarding changed, the INCLUDE-mode sources deleted, whether the group
        switched from EXCLUDE to INCLUDE mode).
        """
        if OFF < self.v1_host <= now:
            self.v1_host = OFF
        if OFF < self.v2_host <= now:
            self.v2_host = OFF
        t = self.sources
        if self.mode is INCLUDE:
            # §6.3: INCLUDE, Source Timer = 0: "Suggest to stop forwarding traffic from source
            # and remove source record. If there are no more source records for the group,
            # delete group record."
            expired = [s for s, timer in t.items() if timer <= now]
            for s in expired:
                del t[s]
                self.source_queries.pop(s, None)
            return bool(expired), expired, False
        # §6.3: EXCLUDE, Source Timer = 0: "Suggest to not forward traffic from source (DO NOT
        # remove record)".
        changed = False
        for s, timer in t.items():
            if OFF < timer <= now:
                t[s] = OFF
                changed = True
        if self.group_timer > now:
            return changed, _NO_SOURCES, False
        # §6.5: "When a router's filter-mode for a group is EXCLUDE and the Group Timer
        # expires, the Router Filter Mode for the group transitions to INCLUDE", with the
        # source records whose timers still run; those at zero are deleted.
        self.mode = INCLUDE
        self.group_timer = OFF
        self.sources = {s: timer for s, timer in t.items() if timer != OFF}
        self.query_count = 0
        return True, _NO_SOURCES, True

    def _made(self, source: bytes, now: float) -> None:
        """A source record was made (RFC 8652 ``up-time``). Records deleted are forgotten
        here lazily: once more than half of what is kept is gone (amortized O(1))."""
        since = self.source_since
        if since is None:
            self.source_since = since = {}
        elif len(since) > 2 * len(self.sources) + 8:
            kept = self.sources
            self.source_since = since = {s: t for s, t in since.items() if s in kept}
        since[source] = now

    def source_up_since(self) -> dict[bytes, float]:
        """When each current source record was made."""
        since = self.source_since or {}
        return {s: since.get(s, self.created) for s in self.sources}

    # ==== tracked subscribers ==================================================================

    def count(self, mode: FilterMode, sources: frozenset[bytes], delta: int) -> None:
        """Add (``delta`` 1) or remove (-1) one subscriber's state from the counts."""
        if mode is EXCLUDE:
            self.n_exclude += delta
            counts = self.exclude_count
        else:
            counts = self.include_count
        for s in sources:
            n = counts.get(s, 0) + delta
            if n:
                counts[s] = n
            else:
                del counts[s]

    def tracked_wants(self, source: bytes) -> bool:
        """Whether some tracked subscriber wants ``source`` forwarded."""
        if self.include_count.get(source, 0) > 0:
            return True
        return self.exclude_count.get(source, 0) < self.n_exclude

    def fast_leave(
        self, query_group: bool, query_sources: list[bytes], now: float, gmi: float
    ) -> bool:
        """Fast leave, instead of the table's queries: drop at once what no tracked subscriber
        wants any more, keep the rest as it is. Returns whether forwarding changed."""
        if not self.subscribers:
            # The last tracked subscriber left the group: no state is left.
            self.mode = INCLUDE
            self.group_timer = OFF
            self.sources = {}
            return True
        changed = False
        if query_group and self.mode is EXCLUDE and self.n_exclude == 0:
            # No tracked subscriber is in EXCLUDE mode any more: switch to INCLUDE with the
            # sources the tracked subscribers include (what §6.5 does when the Group Timer
            # runs out, without waiting for it).
            t = self.sources
            fresh = now + gmi
            self.sources = {s: (t[s] if t.get(s, OFF) > now else fresh) for s in self.include_count}
            for s in self.include_count:
                if s not in t:
                    self._made(s, now)
            self.mode = INCLUDE
            self.group_timer = OFF
            changed = True
        t = self.sources
        for s in query_sources:
            timer = t.get(s)
            if timer is None or self.tracked_wants(s):
                continue
            if self.mode is INCLUDE:
                del t[s]
                changed = True
            elif timer != OFF:
                t[s] = OFF  # into Y: no longer forwarded
                changed = True
        return changed
