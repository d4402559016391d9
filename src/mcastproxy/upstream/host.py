"""The host side of IGMP/MLD on one upstream interface (RFC 9776 §5, RFC 9777 §6).

RFC 4605 §4.1: a proxy performs the host portion of the protocol on its upstream interface,
reporting the merge of its downstream memberships. With several upstreams (the draft), each
upstream reports the merge of exactly the subscriptions that selected it; the engine computes
that merge and hands each group's interface state to ``set_state``. This machine turns state
into messages, as a host's IGMP/MLD module would:

- State-Change Reports (RFC 9776 §5.1, RFC 9777 §6.1). A change of a group's interface state
  is reported at once and retransmitted [Robustness Variable] - 1 more times at random
  intervals within the Unsolicited Report Interval. Retransmission state is kept per group: a
  filter-mode counter and a counter per changed source; each transmission carries a
  Filter-Mode-Change record (TO_IN / TO_EX with the current sources) while the filter-mode
  counter runs, else Source-List-Change records (ALLOW / BLOCK of the sources whose counters
  run). So later changes merge into the pending report instead of racing it.
- Current-State Reports in answer to queries (RFC 9776 §5.2, RFC 9777 §6.2): a response to a
  General Query after a random delay within Max Resp Time, one timer per interface; to
  Group-Specific and Group-and-Source-Specific Queries, one timer per group, with the queried
  sources accumulated; a pending General Query response that comes sooner makes others moot.
- Older queriers (RFC 9776 §7.2.1, RFC 9777 §8.2.1): while an IGMPv1/v2 or MLDv1 query has
  been heard within the Older Version Querier Present Timeout, the old message kinds are sent
  (a version 1/2 report per joined group, a Leave/Done when a group is left, none in IGMPv1),
  and source lists cannot be expressed.
- Packing (RFC 9776 §4.2.16, RFC 9777 §5.2.15): a report carries as many records as the
  link's MTU allows (the IPv6 minimum of 1280 octets unless told otherwise). Records are
  gathered, not sent one by one: everything due between two calls of ``pop_outputs`` (the
  engine makes one per event: the event's state changes, a retransmission tick, the answer
  to a General Query, the group responses due together) waits in one list, and
  ``pop_outputs`` packs it into as few reports as fit, in order. A record that fits in a
  report is never split: it starts the next report when the current one is too full. A
  record with too many sources for any report is split into records of the same type over
  several reports, the first filling what is left of the current one; except MODE_IS_EXCLUDE
  and CHANGE_TO_EXCLUDE_MODE records, which cannot be split without changing their meaning:
  one record is sent with as many sources as fit in a report, and the rest are not reported.
  Older versions have no records: one message per group.

One instance per upstream interface and family; no I/O, time is the ``now`` argument, random
delays come from the injected ``rng`` (uniform in [0, 1)).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mcastproxy.family import Family
from mcastproxy.membership.state import FilterMode
from mcastproxy.upstream.merge import ANY_SOURCE, NOTHING, InterfaceState
from mcastproxy.wire.messages import GroupRecord, Leave, Query, RecordType, Report

# Octets of a report's packet outside the records: IPv4 header (20) with the Router Alert
# option (4) + IGMPv3 report header (8); IPv6 header (40) + Hop-by-Hop header with Router
# Alert (8) + MLDv2 report header (8).
OVERHEAD = {Family.V4: 20 + 4 + 8, Family.V6: 40 + 8 + 8}
# A record's octets before its sources: type, aux data length, number of sources, group.
RECORD_HEADER = {Family.V4: 4 + 4, Family.V6: 4 + 16}
# The MTU assumed when the link's is not given: Ethernet's for IPv4; for IPv6 the minimum
# link MTU (RFC 8200 §5), which every IPv6 link carries.
DEFAULT_MTU = {Family.V4: 1500, Family.V6: 1280}
_EXCLUDE_RECORDS = frozenset({RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE})
_NO_SOURCE_CHANGES: dict[bytes, int] = {}


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` on the upstream interface to ``destination``."""

    message: Report | Leave
    destination: bytes


class _Retransmission:
    """RFC 9776 §5.1 retransmission state of one group."""

    __slots__ = ("filter_mode", "sources")

    def __init__(self) -> None:
        self.filter_mode = 0  # Filter-Mode-Change records still to send
        # source -> Source-List-Change records to send; a join or a leave has none, so they
        # share one empty dict, never written, until a source changes.
        self.sources = _NO_SOURCE_CHANGES


class UpstreamHost:
    """The host portion of IGMP (``Family.V4``) or MLD (``Family.V6``) on one upstream
    interface."""

    def __init__(
        self,
        family: Family,
        *,
        # (rng first: mypyc wants keyword-only parameters without a default before the rest)
        rng: Callable[[], float],
        robustness: int = 2,
        unsolicited_report_interval: float = 1.0,
        query_interval: float = 125.0,
        query_response_interval: float = 10.0,
        mtu: int | None = None,
    ) -> None:
        self.family = family = Family(family)  # ValueError if it is no family
        self.newest_version = family.newest_version
        self._unspecified = family.unspecified  # the group of a General Query
        self._reports_to = family.all_v3_routers  # where version 3 / 2 reports go
        self.robustness = robustness
        self.unsolicited_report_interval = unsolicited_report_interval
        self.query_interval = query_interval
        self.query_response_interval = query_response_interval
        self.mtu = DEFAULT_MTU[family] if mtu is None else mtu
        self._rng = rng
        self._state: dict[bytes, InterfaceState] = {}  # only groups with membership
        self._pending: dict[bytes, _Retransmission] = {}
        self._old_pending: dict[bytes, int] = {}  # old-version joins: reports still to send
        self._retransmit_at: float | None = None
        self._general_at: float | None = None
        # Group(-and-Source)-Specific responses: group -> (deadline, queried sources or None).
        self._group_at: dict[bytes, tuple[float, frozenset[bytes] | None]] = {}
        self._group_heap: list[tuple[float, bytes]] = []
        self._older_until: dict[int, float] = {}  # older querier version -> present until
        self._records: list[GroupRecord] = []  # to send, packed into reports by pop_outputs
        self._outputs: list[Transmit] = []

    @property
    def mtu(self) -> int:
        """The MTU of the upstream link, which reports are packed for."""
        return self._mtu

    @mtu.setter
    def mtu(self, mtu: int) -> None:
        room = mtu - OVERHEAD[self.family]  # octets of records a report can carry
        if room < RECORD_HEADER[self.family] + self.family.length:
            raise ValueError(f"an MTU of {mtu} cannot carry a record with one source")
        self._mtu, self._room = mtu, room

    # --- what the engine asks -------------------------------------------------------------

    def compatibility_mode(self, now: float) -> int:
        """Host Compatibility Mode (RFC 9776 §7.2.1): the oldest querier version present."""
        for version in (1, 2):
            until = self._older_until.get(version)
            if until is not None and until > now:
                return version
        return self.newest_version

    def state(self, group: bytes) -> InterfaceState:
        return self._state.get(group, NOTHING)

    def groups(self) -> Iterator[bytes]:
        return iter(self._state)

    def pending_retransmissions(self) -> int:
        """Groups with State-Change retransmissions outstanding."""
        return len(self._pending) + len(self._old_pending)

    # --- inputs ---------------------------------------------------------------------------

    def set_state(
        self, group: bytes, mode: FilterMode, sources: frozenset[bytes], now: float
    ) -> None:
        """The merged interface state of ``group`` is now (mode, sources)."""
        if sources:
            new: InterfaceState | None = (mode, sources)
        else:  # most groups: one shared state, not a tuple each
            new = ANY_SOURCE if mode is FilterMode.EXCLUDE else None
        old = self._state.get(group)
        if new == old:
            return
        if new is None:
            del self._state[group]
        else:
            self._state[group] = new
        compat = self.compatibility_mode(now)
        if compat == self.newest_version:
            self._state_change(group, old, new, now)
        else:
            self._old_state_change(group, old is not None, new is not None, compat, now)

    def receive_query(self, query: Query, now: float) -> None:
        """A query heard on the upstream link (from the querier)."""
        if query.version < self.newest_version:
            entering = self.compatibility_mode(now) == self.newest_version
            self._older_until[query.version] = now + self._older_querier_timeout(query)
            if entering:
                # RFC 9776 §7.2.1: pending reports of the newer version are cancelled.
                self._pending.clear()
                self._group_at.clear()
                self._group_heap.clear()
                self._general_at = None
        else:
            # RFC 9776 §4.1.6, §4.1.7: adopt the querier's robustness and interval.
            if query.qrv:
                self.robustness = query.qrv
            if query.qqi:
                self.query_interval = float(query.qqi)
            self.query_response_interval = query.max_resp
        self._schedule_response(query, now)

    def _older_querier_timeout(self, query: Query) -> float:
        """The Older Version Querier Present Timeout for an older ``query``, in seconds.

        RFC 9776 §8.12: "This value SHOULD be [Robustness Variable] times [Query Interval]
        plus (10 times the Max Response Time in the last received Query Message)"; RFC 9777
        §9.12: "([Robustness Variable] times [Query Interval] in the last Query received)
        plus ([Query Response Interval])". The last Query received is this older one, and
        its Max Response Time is the querier's [Query Response Interval] (RFC 3376 Erratum
        4375 says so of RFC 3376's wording). Read in seconds, "10 times" the Max Response
        Time is that interval counted in the tenths of a second of the field and of §8.3
        ("Default: 100 (10 seconds)"): 2 x 125 + 10 = 260 s with the default values, as in
        RFC 3376 §8.12 and RFC 9777 §9.12. The Robustness Variable and Query Interval are
        the querier's last QRV and QQI, or our defaults (an older Query carries neither).
        """
        return self.robustness * self.query_interval + _max_response(query, self.family)

    def handle_timers(self, now: float) -> None:
        """Do everything due at or before ``now``."""
        if self._retransmit_at is not None and self._retransmit_at <= now:
            self._retransmit_at = None
            self._retransmit(now)
        if self._general_at is not None and self._general_at <= now:
            self._general_at = None
            self._respond_general(now)
        heap = self._group_heap
        while heap and heap[0][0] <= now:
            deadline, group = heapq.heappop(heap)
            pending = self._group_at.get(group)
            if pending is not None and pending[0] == deadline:
                del self._group_at[group]
                self._respond_group(group, pending[1], now)

    def next_deadline(self) -> float | None:
        heap, at = self._group_heap, self._group_at
        while heap:
            deadline, group = heap[0]
            pending = at.get(group)
            if pending is not None and pending[0] == deadline:
                break
            heapq.heappop(heap)  # a superseded entry
        best = heap[0][0] if heap else None
        # (Plain comparisons: asked after every event the daemon handles.)
        retransmit, general = self._retransmit_at, self._general_at
        if retransmit is not None and (best is None or retransmit < best):
            best = retransmit
        if general is not None and (best is None or general < best):
            best = general
        return best

    def pop_outputs(self) -> list[Transmit]:
        if self._records:
            dest = self._reports_to
            for records in self._pack(self._records):
                self._outputs.append(Transmit(Report(self.newest_version, records), dest))
            self._records = []
        out, self._outputs = self._outputs, []
        return out

    # --- State-Change Reports (RFC 9776 §5.1) -------------------------------------------------

    def _state_change(
        self, group: bytes, old: InterfaceState | None, new: InterfaceState | None, now: float
    ) -> None:
        old_mode, old_sources = old or NOTHING
        new_mode, new_sources = new or NOTHING
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = _Retransmission()
        if old_mode != new_mode:
            pending.filter_mode = self.robustness
            pending.sources = _NO_SOURCE_CHANGES  # the Filter-Mode-Change record has all
        elif changed := old_sources ^ new_sources:
            if pending.sources is _NO_SOURCE_CHANGES:
                pending.sources = {}
            for s in changed:
                pending.sources[s] = self.robustness
        self._records += self._change_records(group, pending)
        self._arm_retransmission(now)

    def _change_records(self, group: bytes, pending: _Retransmission) -> list[GroupRecord]:
        """The records of the next transmission for ``group``; counts it down."""
        mode, sources = self.state(group)
        if pending.filter_mode:
            pending.filter_mode -= 1
            kind = (RecordType.CHANGE_TO_INCLUDE_MODE if mode is FilterMode.INCLUDE
                    else RecordType.CHANGE_TO_EXCLUDE_MODE)
            records = [GroupRecord(kind, group, tuple(sorted(sources)))]
        else:
            # ALLOW: sources with retransmission state that must be forwarded; BLOCK: the rest.
            forwarded = sources.__contains__ if mode is FilterMode.INCLUDE else (
                lambda s: s not in sources)
            allow = sorted(s for s in pending.sources if forwarded(s))
            block = sorted(s for s in pending.sources if not forwarded(s))
            for s, n in list(pending.sources.items()):
                if n > 1:
                    pending.sources[s] = n - 1
                else:
                    del pending.sources[s]
            records = []
            if allow:
                records.append(GroupRecord(RecordType.ALLOW_NEW_SOURCES, group, tuple(allow)))
            if block:
                records.append(GroupRecord(RecordType.BLOCK_OLD_SOURCES, group, tuple(block)))
        if not pending.filter_mode and not pending.sources:
            del self._pending[group]
            if not self._pending:
                self._pending = {}  # a dict keeps its size when emptied: let a burst's go
        return records

    def _arm_retransmission(self, now: float) -> None:
        if self._retransmit_at is None and (self._pending or self._old_pending):
            self._retransmit_at = now + self._rng() * self.unsolicited_report_interval

    def _retransmit(self, now: float) -> None:
        for group, pending in list(self._pending.items()):
            self._records += self._change_records(group, pending)
        for group, left in list(self._old_pending.items()):
            self._send_old_report(group, self.compatibility_mode(now))
            if left > 1:
                self._old_pending[group] = left - 1
            else:
                del self._old_pending[group]
        self._arm_retransmission(now)

    # --- older queriers (RFC 9776 §7.2.1, RFC 9777 §8.2.1) ------------------------------------

    def _old_state_change(
        self, group: bytes, was: bool, now_joined: bool, compat: int, now: float
    ) -> None:
        if was == now_joined:
            return  # a source-list change: older versions cannot say it
        if now_joined:
            self._send_old_report(group, compat)
            if self.robustness > 1:
                self._old_pending[group] = self.robustness - 1
            self._arm_retransmission(now)
        else:
            self._old_pending.pop(group, None)
            if compat == 2 or (self.family is Family.V6 and compat == 1):
                # IGMPv2 Leave Group / MLDv1 Done go to all-routers; IGMPv1 has no leave.
                self._outputs.append(Transmit(Leave(group), self.family.all_routers))

    def _send_old_report(self, group: bytes, compat: int) -> None:
        record = GroupRecord(RecordType.MODE_IS_EXCLUDE, group)
        self._outputs.append(Transmit(Report(compat, (record,)), group))

    # --- Current-State Reports (RFC 9776 §5.2) ------------------------------------------------

    def _schedule_response(self, query: Query, now: float) -> None:
        at = now + self._rng() * _max_response(query, self.family)
        # Rule 1: a General Query response due sooner covers this query too.
        if self._general_at is not None and self._general_at <= at:
            return
        if query.group == self._unspecified:
            self._general_at = at  # rule 2: replaces any later General Query response
            return
        if query.group not in self._state:
            return  # no state for the group: nothing would be reported
        queried = frozenset(query.sources) if query.sources else None
        pending = self._group_at.get(query.group)
        if pending is not None:
            # Rule 4: merge with the pending response; no source list means the whole group.
            old_at, old_sources = pending
            at = min(at, old_at)
            queried = None if queried is None or old_sources is None else old_sources | queried
        self._group_at[query.group] = (at, queried)
        heapq.heappush(self._group_heap, (at, query.group))

    def _respond_general(self, now: float) -> None:
        compat = self.compatibility_mode(now)
        if compat != self.newest_version:
            for group in self._state:
                self._send_old_report(group, compat)
            return
        self._records += [self._current_record(g) for g in self._state]

    def _respond_group(self, group: bytes, queried: frozenset[bytes] | None, now: float) -> None:
        if group not in self._state:
            return
        compat = self.compatibility_mode(now)
        if compat != self.newest_version:
            self._send_old_report(group, compat)
            return
        if queried is None:
            self._records.append(self._current_record(group))
            return
        record = self._queried_record(group, queried)
        if record is not None:
            self._records.append(record)

    def _current_record(self, group: bytes) -> GroupRecord:
        """RFC 9776 §5.2: the group's Current-State Record, IS_IN or IS_EX of its sources."""
        mode, sources = self._state[group]
        kind = (RecordType.MODE_IS_INCLUDE if mode is FilterMode.INCLUDE
                else RecordType.MODE_IS_EXCLUDE)
        return GroupRecord(kind, group, tuple(sorted(sources)))

    def _queried_record(self, group: bytes, queried: frozenset[bytes]) -> GroupRecord | None:
        """RFC 9776 §5.2: to a Group-and-Source-Specific Query, IS_IN of the queried sources
        this host wants: in INCLUDE mode those in its list, in EXCLUDE mode those not."""
        mode, sources = self._state[group]
        wanted = queried & sources if mode is FilterMode.INCLUDE else queried - sources
        if not wanted:
            return None
        return GroupRecord(RecordType.MODE_IS_INCLUDE, group, tuple(sorted(wanted)))

    # --- packing records into messages (RFC 9776 §4.2.16, RFC 9777 §5.2.15) -------------------

    def _pack(self, records: list[GroupRecord]) -> Iterator[tuple[GroupRecord, ...]]:
        """``records``, in order, in as few reports as fit (see the module's comment)."""
        room = self._room
        header = RECORD_HEADER[self.family]
        width = self.family.length
        most = (room - header) // width  # sources in a record that fills a report alone
        batch: list[GroupRecord] = []
        used = 0
        for record in records:
            size = header + width * len(record.sources)
            if used + size <= room:
                batch.append(record)
                used += size
                continue
            if size <= room:  # fits in a report: whole, at the start of the next one
                yield tuple(batch)
                batch, used = [record], size
                continue
            sources = record.sources
            if record.type in _EXCLUDE_RECORDS:
                # RFC 9776 §4.2.16: "a single Group Record is sent, containing as many
                # source addresses as can fit, and the remaining source addresses are not
                # reported".
                if batch:
                    yield tuple(batch)
                yield (record._replace(sources=sources[:most]),)
                batch, used = [], 0
                continue
            # RFC 9776 §4.2.16: "split into multiple Group Records, each containing a
            # different subset of the source addresses and each sent in a separate Report".
            fit = (room - used - header) // width
            if fit > 0:
                batch.append(record._replace(sources=sources[:fit]))
                sources = sources[fit:]
            if batch:
                yield tuple(batch)
            while len(sources) > most:
                yield (record._replace(sources=sources[:most]),)
                sources = sources[most:]
            batch = [record._replace(sources=sources)]
            used = header + width * len(sources)
        if batch:
            yield tuple(batch)


def _max_response(query: Query, family: Family) -> float:
    """The Max Response Time of ``query`` in seconds. RFC 2236 §4: "The IGMPv1 router will
    send General Queries with the Max Response Time set to 0. This MUST be interpreted as a
    value of 100 (10 seconds)."
    """
    if family is Family.V4 and query.version == 1:
        return 10.0
    return query.max_resp
