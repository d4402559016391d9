"""The querier's last-member queries on one link and their rate bound (RFC 9776 §6.6.3).

Theory of operation
===================

A record's table action "Send Q(G)" or "Send Q(G,X)" (RFC 9776 §6.4.2; RFC 9777 §7.4.2) is
carried out here when this router is the querier: the group's timers are lowered to LMQT and
[Last Member Query Count] rounds of Group-Specific or Group-and-Source-Specific Queries are
sent, LMQI apart (§6.6.3.1, §6.6.3.2; ``Group.start_last_member_queries``,
``Group.query_round``). A round splits the sources in two queries by the S flag (§6.6.3.2) and
each query into as many as the MTU allows (``MAX_QUERY_SOURCES``). No group-and-source-specific
queries are sent before IGMPv3 / MLDv2, and none at all in IGMPv1 (§7.3.1). A router that stops
being the querier forgets every pending round (``_stop_queries``).

Specific queries are rate-bounded (``specific_query_rate``): every leave the querier answers
with Q(G) or Q(G,X) costs [Last Member Query Count] rounds of one or more queries, so a flood
of leaves for many groups would come back as a flood of queries. A token bucket per link
(``_QueryBound``), holding one second's worth, pays for each round; a round that finds a token
goes out whole (a round is never split: the bucket may run short by the rest of it, made up
before the next). A round that finds none is merged rather than delayed: the group's own
queries are not sent (``QueriesMerged``), its timers are lowered to LMQT from the link's next
merged General Query, and that query (Max Response Time [Last Member Query Interval]) goes out
at once, or at most LMQI later if one went out less than LMQI ago, and again every LMQI until
every group merged into it has been asked [Last Member Query Count] times. An RFC-conformant
host answers a General Query with Current-State Records for all its groups (RFC 9776 §5.2,
RFC 9777 §6.2; an IGMPv2 or MLDv1 host, with a report for each group), so a group that still
has members is refreshed, and one that has none ends LMQT after the merged query: at most LMQI
later than its own queries would have ended it. General Queries keep their schedule and take
no token. So in any t seconds a link sends at most ``rate`` x (1 + t) specific queries (plus
the rest of one round) and t / LMQI + 1 merged General Queries. The price: hosts report every
group instead of one, and other routers on the link do not lower their timers on a General
Query (§6.6.1), so they forward a merged group until their own timers run out.
"""

from __future__ import annotations

from mcastproxy.membership.addresses import MAX_QUERY_SOURCES
from mcastproxy.membership.explicit import ExplicitTracking
from mcastproxy.membership.group import OFF, Group
from mcastproxy.membership.outputs import QueriesMerged, SendQuery
from mcastproxy.membership.statistics import QUERY

_ROUND_SLACK = 1e-6  # merged query rounds are LMQI apart by repeated addition


class LastMemberQueries(ExplicitTracking):
    """The querier's specific queries on the link (see the module's comment)."""

    # One attribute for the bound: past 30 instance attributes CPython stops specializing
    # attribute access, which the report path would pay for.
    _bound: _QueryBound

    def _send_last_member_queries(
        self, g: Group, query_group: bool, query_sources: list[bytes], now: float
    ) -> None:
        """The querier's "Send Q(G)" and "Send Q(G,X)" table actions."""
        operating = self._querier.operating_version
        if self._alen == 4 and operating == 1:
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
            self._stats.sent[QUERY] += 1
        if above:
            self._send_source_query(g.address, above, True)
        if below:
            self._send_source_query(g.address, below, False)
        if not remaining:
            self._retransmitting.discard(g.address)
        return remaining

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
        self._stats.sent[QUERY] += 1
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
            self._stats.sent[QUERY] += 1

    def _stop_queries(self) -> None:
        """We stopped being the querier: a non-querier sends no group-specific queries."""
        for address in self._retransmitting:
            g = self._groups.get(address)
            if g is not None:
                g.stop_queries()
        self._retransmitting.clear()
        self._bound.next = self._bound.until = OFF


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

