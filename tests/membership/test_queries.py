"""Last-member queries (RFC 9776 §6.6.3, RFC 9777 §7.6.3) and a non-querier's timer updates
(§6.6.1): which queries a leave or a BLOCK causes, when they are repeated, what they carry,
and when the state goes.

Timers: Last Member Query Interval 1 s, Count 2, so LMQT = 2 s.
"""

from __future__ import annotations

import pytest
from membership_harness import (
    ALLOW,
    BLOCK,
    FLAVORS,
    GMI,
    IS_EX,
    IS_IN,
    SOURCE_FILTERING,
    Flavor,
    Harness,
)

from mcastproxy.membership import FilterMode, ProtocolTimers, SendQuery

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_leave_sends_group_specific_queries_then_group_expires(flavor: Flavor) -> None:
    h = Harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    h.receive(flavor.join(g), host, at=0)
    h.receive(flavor.leave(g), host, at=10)
    h.advance(20)
    queries = h.specific_queries()
    assert [t for t, _ in queries] == [10.0, 11.0]
    for _, q in queries:
        assert q.group == g
        assert q.max_resp == 1.0
        assert q.version == flavor.version
        assert q.sources == ()
        assert not q.s_flag
    # Still forwarded during LMQT (RFC 9776 §6.4.2), gone after it.
    assert (12.0, g) in h.changed_groups()
    assert h.link.group_state(g) is None
    assert h.link.forwarded(g) == (INCLUDE, frozenset())


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_answer_to_group_specific_query_keeps_group_and_sets_s_flag(flavor: Flavor) -> None:
    h = Harness(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=0)
    h.receive(flavor.join(g), flavor.host(2), at=0)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    h.receive(flavor.join(g), flavor.host(2), at=10.5)  # the answer
    h.advance(100)
    queries = h.specific_queries()
    assert [t for t, _ in queries] == [10.0, 11.0]
    if flavor.source_filtering:
        # §6.6.3.1: the Group Timer (10.5 + GMI) is above LMQT: S flag set.
        assert [q.s_flag for _, q in queries] == [False, True]
    state = h.link.group_state(g)
    assert state.filter_mode is EXCLUDE
    assert state.group_timer == 10.5 + GMI


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_block_sends_group_and_source_specific_queries(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), f.host(1), at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), f.host(1), at=10)
    h.advance(11.5)
    queries = h.specific_queries()
    assert [(t, q.sources, q.s_flag) for t, q in queries] == [
        (10.0, (f.source(1),), False),
        (11.0, (f.source(1),), False),
    ]
    assert h.link.wants(g, f.source(1))  # still forwarded during LMQT
    h.advance(12)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(2))


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_source_query_splits_on_s_flag(flavor: Flavor) -> None:
    """§6.6.3.2: sources whose timers rose above LMQT (answered) go in a query with the S flag
    set; those still at or below LMQT in one with the flag clear."""
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), f.host(1), at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(1, 2))), f.host(1), at=10)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), f.host(2), at=10.5)
    h.advance(20)
    sent = [(t, q.sources, q.s_flag) for t, q in h.specific_queries()]
    assert sent == [
        (10.0, (f.source(1), f.source(2)), False),
        (11.0, (f.source(1),), True),
        (11.0, (f.source(2),), False),
    ]
    assert h.link.forwarded(g) == (INCLUDE, f.sources(1))


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_group_query_suppresses_s_flag_source_query_in_same_round(flavor: Flavor) -> None:
    """EXCLUDE TO_IN: Q(G) and Q(G,X-A) together; §6.6.3.2 allows leaving out the
    group-and-source query with the S flag set when a group query goes at the same time."""
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_EX, g)), f.host(1), at=0)
    h.receive(f.report(f.record(ALLOW, g, f.sources(1))), f.host(2), at=0)
    h.receive(f.report(f.record(3, g)), f.host(1), at=10)  # TO_IN({})
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), f.host(2), at=10.5)
    h.advance(11)
    sent = [(t, q.sources, q.s_flag) for t, q in h.specific_queries()]
    assert sent == [(10.0, (), False), (10.0, (f.source(1),), False), (11.0, (), False)]
    h.advance(12)
    # Nobody in EXCLUDE mode answered: the group switches to INCLUDE with source 1.
    assert h.link.forwarded(g) == (INCLUDE, f.sources(1))


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_new_queries_merge_with_pending_retransmissions(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), f.host(1), at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), f.host(1), at=10)
    h.receive(f.report(f.record(BLOCK, g, f.sources(2))), f.host(1), at=10.5)
    h.advance(20)
    counts: dict[bytes, list[float]] = {}
    for t, q in h.specific_queries():
        for s in q.sources:
            counts.setdefault(s, []).append(t)
    # Each source is queried [Last Member Query Count] times within its LMQT, then goes.
    assert counts == {f.source(1): [10.0, 10.5], f.source(2): [10.5, 11.0]}
    assert h.link.group_state(g) is None
    assert (12.0, g) in h.changed_groups()
    assert (12.5, g) in h.changed_groups()


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_last_member_query_count_and_interval_are_configurable(flavor: Flavor) -> None:
    timers = ProtocolTimers(last_member_query_interval=0.5, last_member_query_count=3)
    h = Harness(flavor, timers=timers)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=0)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    h.advance(20)
    assert [t for t, _ in h.specific_queries()] == [10.0, 10.5, 11.0]
    assert all(q.max_resp == 0.5 for _, q in h.specific_queries())
    assert h.changed_groups(since=10.1) == [(11.5, g)]


# --- a non-querier: no queries of its own, timers lowered by the querier's -----------------


def _non_querier(flavor: Flavor) -> Harness:
    h = Harness(flavor)
    h.receive(flavor.general_query(), flavor.router(1), at=0)
    assert not h.link.is_querier
    h.take()
    return h


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_non_querier_sends_no_queries_on_leave(flavor: Flavor) -> None:
    h = _non_querier(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=1)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    h.advance(100)
    assert h.queries(since=1) == []
    # Nothing lowered: without the querier's queries the group lives its GMI.
    assert h.link.group_state(g).group_timer == 1 + GMI


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_non_querier_lowers_group_timer_on_querier_group_query(flavor: Flavor) -> None:
    h = _non_querier(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=1)
    # [Last Member Query Count] (2) times the query's Max Response Time (0.5 s).
    h.receive(flavor.specific_query(g, max_resp=0.5), flavor.router(1), at=10)
    assert h.link.group_state(g).group_timer == 11.0
    h.advance(11)
    assert h.link.group_state(g) is None
    assert (11.0, g) in h.changed_groups()


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_non_querier_lowers_source_timers_unless_s_flag(flavor: Flavor) -> None:
    h = _non_querier(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), f.host(1), at=1)
    h.receive(f.specific_query(g, f.sources(1), s_flag=True), f.router(1), at=10)
    h.receive(f.specific_query(g, f.sources(2, 3)), f.router(1), at=10)
    state = h.link.group_state(g)
    assert dict(state.sources) == {f.source(1): 1 + GMI, f.source(2): 12.0}
    h.advance(12)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(1))
    h.receive(f.specific_query(g, s_flag=True), f.router(1), at=13)
    assert h.link.group_state(g).sources[f.source(1)] == 1 + GMI


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_querier_loses_election_and_stops_retransmitting(flavor: Flavor) -> None:
    h = Harness(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=0)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    h.receive(flavor.general_query(), flavor.router(1), at=10.2)
    h.advance(30)
    assert [t for t, _ in h.specific_queries()] == [10.0]
    # The Group Timer was lowered when our query went out; it runs out all the same.
    assert h.link.group_state(g) is None


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_many_sources_split_over_several_queries(flavor: Flavor) -> None:
    """A query carries at most as many sources as fit the MTU (RFC 9776 §4.1.8)."""
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    many = (
        frozenset(f.source(n) for n in range(1, 201))
        if f.family == 6
        else frozenset(bytes((192, 0, n // 256, n % 256)) for n in range(1, 501))
    )
    h.receive(f.report(f.record(IS_IN, g, many)), f.host(1), at=0)
    h.receive(f.report(f.record(BLOCK, g, many)), f.host(1), at=10)
    first = [q for t, q in h.specific_queries() if t == 10.0]
    limit = 366 if f.family == 4 else 75
    assert all(len(q.sources) <= limit for q in first)
    assert len(first) > 1
    assert frozenset(s for q in first for s in q.sources) == many


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_specific_queries_go_to_the_group(flavor: Flavor) -> None:
    """RFC 9776 §4.1.12 / RFC 9777 §5.1.15: the destination of a specific query."""
    h = Harness(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.host(1), at=0)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    sent = [o for t, o in h.log if isinstance(o, SendQuery) and t == 10.0]
    assert [o.destination for o in sent] == [g]
