"""The bound on specific queries: a token bucket per link, and beyond it the merged General
Query (RouterLink's comment; RFC 9776 §6.6.3, §5.2; RFC 9777 §7.6.3, §6.2).

   us: router(10), the querier, specific-query-rate R
    |
  host(1): joined 10,000 groups, leaves them all within a second
  host(2): stays in one of them, and answers the queries as an RFC-conformant host does

Default timers: LMQI 1 s, LMQC 2, LMQT 2 s. A group whose leave is answered by its own Q(G)
ends LMQT after the leave; one merged ends LMQT after the merged General Query that asks
instead, which goes out at once or at most LMQI later: so every group ends within
[LMQT, LMQT + LMQI] of its leave.
"""

from __future__ import annotations

import bisect
from itertools import pairwise

import pytest
from membership_harness import (
    ALLOW,
    BLOCK,
    FLAVORS,
    LMQT,
    SOURCE_FILTERING,
    Flavor,
    Harness,
    ip,
)

from mcastproxy.family import Family
from mcastproxy.membership import (
    GroupChanged,
    ProtocolTimers,
    QueriesMerged,
    RouterLink,
    SendQuery,
)

LMQI = 1.0


def group(flavor: Flavor, i: int) -> bytes:
    if flavor.family == 4:
        return ip(f"239.2.{i >> 8}.{i & 0xFF}")
    return ip(f"ff0e::2:{i:x}")


def merged_queries(h: Harness, since: float = 0.0) -> list[float]:
    """When merged General Queries went out (Max Response Time LMQI, unlike the regular)."""
    general = h.flavor.unspecified
    return [t for t, q in h.queries(since) if q.group == general and q.max_resp == LMQI]


def regular_queries(h: Harness) -> list[float]:
    return [t for t, q in h.queries() if q.group == h.flavor.unspecified and q.max_resp != LMQI]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_flood_of_leaves_stays_under_the_bound_and_every_group_ends_on_time(
    flavor: Flavor,
) -> None:
    rate, n = 100, 10_000
    h = Harness(flavor, specific_query_rate=rate)
    host = flavor.host(1)
    groups = [group(flavor, i) for i in range(n)]
    for g in groups:
        h.receive(flavor.join(g), host, at=1)
    h.take()
    left = {}
    for i, g in enumerate(groups):
        at = 10 + i / n  # 10,000 leaves in one second
        h.receive(flavor.leave(g), host, at=at)
        left[g] = h.now
    h.advance(40)

    # The specific queries: in any window of w seconds at most R x (1 + w), the bucket's bound.
    specific = sorted(t for t, _ in h.specific_queries())
    assert specific, "some leaves are answered by their own Q(G)"
    for i, start in enumerate(specific):
        for w in (0.001, 0.5, 1.0, 5.0):
            within = bisect.bisect_left(specific, start + w) - i
            assert within <= rate * (1 + w), (start, w, within)
    assert len(specific) <= rate * (1 + (specific[-1] - specific[0]))
    # The merged General Queries: at most one per LMQI.
    merged = merged_queries(h)
    assert merged
    assert all(b - a >= LMQI - 1e-9 for a, b in pairwise(merged))
    # Regular General Queries kept their schedule (startup at 0 and 31.25 s).
    assert regular_queries(h) == [0.0, 31.25]

    # Every group ended within [LMQT, LMQT + LMQI] of its leave.
    ended: dict[bytes, float] = {}
    for t, out in h.log:
        if isinstance(out, GroupChanged) and t >= 10:
            ended[out.group] = t
    assert all(h.link.group_state(g) is None for g in groups)
    late = [(g, ended[g] - left[g]) for g in groups
            if not LMQT - 1e-9 <= ended[g] - left[g] <= LMQT + LMQI + 1e-9]
    assert late == []
    # Counted: one per group left to the merged query.
    n_merged = sum(isinstance(o, QueriesMerged) for _, o in h.log)
    assert 0 < n_merged <= n


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_an_rfc_conformant_host_answering_the_merged_query_keeps_its_group(
    flavor: Flavor,
) -> None:
    """What a host sees beyond the bound: a General Query with Max Response Time LMQI instead
    of Q(G). Answering it with its current state (RFC 9776 §5.2) keeps the group; the groups
    nobody answers for end."""
    h = Harness(flavor, specific_query_rate=1)
    g1, g2, g3 = group(flavor, 1), group(flavor, 2), group(flavor, 3)
    for g in (g1, g2, g3):
        h.receive(flavor.join(g), flavor.host(1), at=1)
    h.receive(flavor.join(g3), flavor.host(2), at=1)
    h.take()
    for g in (g1, g2, g3):
        h.receive(flavor.leave(g), flavor.host(1), at=10)
    # g1 took the one token: its own Q(G). g2 was merged into a General Query sent at once;
    # g3, whose leave came after that query, into the next, LMQI later.
    sent = [o for _, o in h.take() if isinstance(o, SendQuery | QueriesMerged)]
    assert [type(o).__name__ for o in sent] == [
        "SendQuery", "QueriesMerged", "SendQuery", "QueriesMerged"]
    assert sent[0].query.group == g1
    assert sent[2].query.group == flavor.unspecified
    assert sent[2].query.max_resp == LMQI
    # host(2) answers the query of 11 within its Max Response Time, with its current state.
    h.receive(flavor.join(g3), flavor.host(2), at=11.4)
    h.advance(30)
    assert merged_queries(h, since=10) == [10.0, 11.0, 12.0]  # LMQC rounds for each group
    assert [t for t, q in h.specific_queries(since=10)] == [10.0, 11.0]  # g1's, with tokens
    assert h.link.group_state(g1) is None
    assert h.link.group_state(g2) is None
    assert h.link.group_state(g3) is not None
    assert h.link.subscriber(g3, flavor.host(2)) is not None


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_merged_query_less_than_lmqi_after_the_last_waits_and_the_timers_wait_with_it(
    flavor: Flavor,
) -> None:
    h = Harness(flavor, specific_query_rate=0)  # every specific query is merged
    g1, g2 = group(flavor, 1), group(flavor, 2)
    for g in (g1, g2):
        h.receive(flavor.join(g), flavor.host(1), at=1)
    h.receive(flavor.leave(g1), flavor.host(1), at=10)
    h.receive(flavor.leave(g2), flavor.host(1), at=10.25)
    h.advance(11.9)
    # g2 joins the round at 11 (rounds at 10, 11, 12), and is not ended before 11 + LMQT.
    assert merged_queries(h, since=10) == [10.0, 11.0]
    assert h.link.group_state(g1) is not None
    h.advance(12)
    assert h.link.group_state(g1) is None
    assert merged_queries(h, since=10) == [10.0, 11.0, 12.0]
    h.advance(12.999)
    assert h.link.group_state(g2) is not None
    h.advance(13)
    assert h.link.group_state(g2) is None
    assert h.specific_queries() == []
    h.advance(100)
    assert merged_queries(h, since=10) == [10.0, 11.0, 12.0]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_group_and_source_specific_queries_are_bounded_too(flavor: Flavor) -> None:
    h = Harness(flavor, specific_query_rate=1)
    g = group(flavor, 1)
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(1, 2, 3))),
              flavor.host(1), at=1)
    h2 = group(flavor, 2)
    h.receive(flavor.report(flavor.record(ALLOW, h2, flavor.sources(1))), flavor.host(1), at=1)
    # BLOCK on both: g's Q(G,S) takes the token, h2's is merged.
    h.receive(flavor.report(flavor.record(BLOCK, g, flavor.sources(1)),
                            flavor.record(BLOCK, h2, flavor.sources(1))),
              flavor.host(1), at=10)
    h.advance(20)
    assert [q.group for _, q in h.specific_queries()] == [g, g]  # at 10, and 11 (refilled)
    assert merged_queries(h, since=10) == [10.0, 11.0]
    assert h.link.forwarded(g)[1] == flavor.sources(2, 3)
    assert h.link.group_state(h2) is None


def test_a_rate_that_is_no_number_is_refused() -> None:
    for bad in (-1, float("nan"), True):
        with pytest.raises(ValueError, match="specific_query_rate"):
            RouterLink(ProtocolTimers(), Family.V4, 3, specific_query_rate=bad)
