"""RFC 9776 §6.4.1 / §6.4.2 (RFC 9777 §7.4.1 / §7.4.2): the router state tables, row by row.

Each row starts from one of two states built at t=0 from reports of an untracked host:

    INCLUDE (A)     A = {s1, s2}                     Source Timers 270 (t=0 + GMI)
    EXCLUDE (X,Y)   X = {s1, s2}, Y = {s3, s4}       Source Timers of X and Group Timer 270

and applies one record at t=10 with sources {s2, s3, s5}, so that every set of the tables
(A*B, B-A, A-B, A-X-Y, X-A, Y*A, ...) is non-empty. Timers in the expectations:

    "old"  the value set at t=0 (270)        "gmi"  10 + GMI = 280
    "Y"    at zero (in the Exclude List)     "lmq"  "old", lowered by the querier to 10 + LMQT
"""

from __future__ import annotations

import pytest
from membership_harness import (
    ALLOW,
    BLOCK,
    GMI,
    IS_EX,
    IS_IN,
    LMQT,
    SOURCE_FILTERING,
    TO_EX,
    TO_IN,
    Flavor,
    Harness,
)

from mcastproxy.membership import FilterMode

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE
T0, T1 = 0.0, 10.0
RECORD = (2, 3, 5)

# (name, initial mode, record type, new mode, {source: timer}, group timer, queries)
# queries: a list of (sources, s_flag); () is the Group-Specific Query Q(G).
ROWS = [
    # §6.4.1 Reception of Current-State Records
    ("IN IS_IN", INCLUDE, IS_IN, INCLUDE,
     {1: "old", 2: "gmi", 3: "gmi", 5: "gmi"}, None, []),
    ("IN IS_EX", INCLUDE, IS_EX, EXCLUDE,
     {2: "old", 3: "Y", 5: "Y"}, "gmi", []),
    ("EX IS_IN", EXCLUDE, IS_IN, EXCLUDE,
     {1: "old", 2: "gmi", 3: "gmi", 4: "Y", 5: "gmi"}, "old", []),
    ("EX IS_EX", EXCLUDE, IS_EX, EXCLUDE,
     {2: "old", 3: "Y", 5: "gmi"}, "gmi", []),
    # §6.4.2 Reception of Filter-Mode-Change and Source-List-Change Records
    ("IN ALLOW", INCLUDE, ALLOW, INCLUDE,
     {1: "old", 2: "gmi", 3: "gmi", 5: "gmi"}, None, []),
    ("IN BLOCK", INCLUDE, BLOCK, INCLUDE,
     {1: "old", 2: "lmq"}, None, [((2,), False)]),
    ("IN TO_EX", INCLUDE, TO_EX, EXCLUDE,
     {2: "lmq", 3: "Y", 5: "Y"}, "gmi", [((2,), False)]),
    ("IN TO_IN", INCLUDE, TO_IN, INCLUDE,
     {1: "lmq", 2: "gmi", 3: "gmi", 5: "gmi"}, None, [((1,), False)]),
    ("EX ALLOW", EXCLUDE, ALLOW, EXCLUDE,
     {1: "old", 2: "gmi", 3: "gmi", 4: "Y", 5: "gmi"}, "old", []),
    ("EX BLOCK", EXCLUDE, BLOCK, EXCLUDE,
     {1: "old", 2: "lmq", 3: "Y", 4: "Y", 5: "lmq"}, "old", [((2, 5), False)]),
    ("EX TO_EX", EXCLUDE, TO_EX, EXCLUDE,
     {2: "lmq", 3: "Y", 5: "lmq"}, "gmi", [((2, 5), False)]),
    ("EX TO_IN", EXCLUDE, TO_IN, EXCLUDE,
     {1: "lmq", 2: "gmi", 3: "gmi", 4: "Y", 5: "gmi"}, "lmq", [((), False), ((1,), False)]),
]  # fmt: skip


def _timer(spec: str | None, querier: bool) -> float | None:
    return {
        None: None,
        "Y": None,
        "old": T0 + GMI,
        "gmi": T1 + GMI,
        "lmq": T1 + LMQT if querier else T0 + GMI,
    }[spec]


def _initial(h: Harness, mode: FilterMode) -> None:
    f, g, host = h.flavor, h.flavor.group(), h.flavor.unspecified
    if mode is INCLUDE:
        h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), host, at=T0)
    else:
        h.receive(f.report(f.record(IS_EX, g, f.sources(3, 4))), host, at=T0)
        h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), host, at=T0)


@pytest.mark.parametrize("querier", [True, False], ids=["querier", "non-querier"])
@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_state_table_row(row, flavor: Flavor, querier: bool) -> None:
    _name, initial, rtype, mode, sources, group_timer, queries = row
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    if not querier:
        h.receive(f.general_query(), f.router(1), at=T0)
        assert not h.link.is_querier
    _initial(h, initial)
    state = h.link.group_state(g)
    assert state is not None
    assert state.filter_mode is initial

    h.advance(T1)
    h.take()
    h.receive(f.report(f.record(rtype, g, f.sources(*RECORD))), f.unspecified)

    state = h.link.group_state(g)
    assert state is not None
    assert state.filter_mode is mode
    expected = {f.source(n): _timer(spec, querier) for n, spec in sources.items()}
    assert dict(state.sources) == expected
    assert state.group_timer == _timer(group_timer, querier)

    sent = [(frozenset(q.sources), q.s_flag) for t, q in h.specific_queries(since=T1)]
    want = [(f.sources(*ns), s) for ns, s in queries] if querier else []
    assert sorted(sent, key=repr) == sorted(want, key=repr)
    for _, q in h.specific_queries(since=T1):
        assert q.group == g
        assert q.max_resp == 1.0
        assert q.version == f.full

    # The forwarding suggestion of §6.3 follows from the state.
    fwd_mode, fwd_sources = h.link.forwarded(g)
    assert fwd_mode is mode
    if mode is INCLUDE:
        assert fwd_sources == frozenset(expected)
    else:
        assert fwd_sources == frozenset(s for s, t in expected.items() if t is None)
    for n in range(1, 7):
        s = f.source(n)
        wanted = s in fwd_sources if mode is INCLUDE else s not in fwd_sources
        assert h.link.wants(g, s) is wanted


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_exclude_group_timer_expiry_switches_to_include_with_running_sources(flavor) -> None:
    """§6.5: the Group Timer runs out in EXCLUDE mode: INCLUDE with the sources still running,
    the ones at zero deleted; once those run out too, the group goes."""
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_EX, g, f.sources(3))), f.unspecified, at=0)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), f.unspecified, at=100)
    h.advance(GMI - 0.001)
    assert h.link.forwarded(g) == (FilterMode.EXCLUDE, f.sources(3))
    h.take()
    h.advance(GMI)
    assert h.link.forwarded(g) == (FilterMode.INCLUDE, f.sources(1))
    state = h.link.group_state(g)
    assert state.group_timer is None
    assert dict(state.sources) == {f.source(1): 100 + GMI}
    assert (GMI, g) in h.changed_groups()
    h.advance(100 + GMI)
    assert h.link.group_state(g) is None
    assert h.link.groups() == ()
    assert h.link.forwarded(g) == (FilterMode.INCLUDE, frozenset())
    assert not h.link.wants(g, f.source(1))


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_exclude_source_timer_expiry_moves_source_to_exclude_list(flavor) -> None:
    """§6.3: an EXCLUDE-mode source whose timer runs out stops being forwarded but keeps
    its record."""
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.report(f.record(IS_EX, g)), f.unspecified, at=0)
    h.receive(f.report(f.record(ALLOW, g, f.sources(1))), f.unspecified, at=0)
    # IS_EX(A) with A in X keeps A's Source Timer and refreshes only the Group Timer.
    h.receive(f.report(f.record(IS_EX, g, f.sources(1))), f.unspecified, at=200)
    h.advance(GMI)
    state = h.link.group_state(g)
    assert state.filter_mode is FilterMode.EXCLUDE
    assert state.exclude_list == f.sources(1)
    assert state.requested_list == frozenset()
    assert not h.link.wants(g, f.source(1))
    assert h.link.wants(g, f.source(2))
