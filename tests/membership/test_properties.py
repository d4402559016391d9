"""Property tests: random reports, leaves, queries and time advances.

1. Against a reference model: a direct transcription of the §6.4 tables over explicit sets
   X and Y, the querier's timer lowering (§6.6.3) and the expiries (§6.3, §6.5). After every
   step the link's state and forwarding must equal the model's.
2. Everything at once (older hosts and queriers, other routers' queries, fast leave, several
   groups and hosts): the invariants of the state hold, every change of forwarding or of a
   subscriber is announced, and no deadline in the past is ever returned.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from membership_harness import FLAVORS, SOURCE_FILTERING, Flavor, Harness

from mcastproxy.membership import (
    FilterMode,
    GroupChanged,
    ProtocolTimers,
    SendQuery,
    SubscriberChanged,
)
from mcastproxy.wire.messages import Leave, Query

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE
TIMERS = ProtocolTimers()
GMI = TIMERS.group_membership_interval
LMQT = TIMERS.last_member_query_time
STEPS = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 60.0, 130.0, 300.0]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class ReferenceGroup:
    """RFC 9776 §6.4 for one group, as literally as the tables read. ``timers`` maps a
    source to its deadline, or None for a timer at zero (EXCLUDE mode's Y)."""

    def __init__(self) -> None:
        self.mode: FilterMode | None = None  # None: no state (INCLUDE({}))
        self.timers: dict[bytes, float | None] = {}
        self.group_timer: float | None = None

    def x(self) -> set[bytes]:
        return {s for s, t in self.timers.items() if t is not None}

    def y(self) -> set[bytes]:
        return {s for s, t in self.timers.items() if t is None}

    def expire(self, now: float) -> None:
        if self.mode is INCLUDE:
            self.timers = {s: t for s, t in self.timers.items() if t > now}
        elif self.mode is EXCLUDE:
            self.timers = {s: (t if t is not None and t > now else None) for s, t in
                           self.timers.items()}  # fmt: skip
            if self.group_timer <= now:
                self.mode, self.group_timer = INCLUDE, None
                self.timers = {s: t for s, t in self.timers.items() if t is not None}
        if self.mode is INCLUDE and not self.timers:
            self.mode = None

    def apply(self, rtype: int, b: set[bytes], now: float) -> None:
        gmi = now + GMI
        q_group, q_sources = False, set()
        if self.mode is None:
            self.mode = INCLUDE
        if self.mode is INCLUDE:
            a = set(self.timers)
            if rtype in (1, 5):  # IS_IN, ALLOW: INCLUDE (A+B), (B)=GMI
                self.timers.update(dict.fromkeys(b, gmi))
            elif rtype == 3:  # TO_IN: INCLUDE (A+B), (B)=GMI, Q(G,A-B)
                self.timers.update(dict.fromkeys(b, gmi))
                q_sources = a - b
            elif rtype == 6:  # BLOCK: Q(G,A*B)
                q_sources = a & b
            else:  # IS_EX / TO_EX: EXCLUDE (A*B,B-A), (B-A)=0, Delete (A-B), GT=GMI
                self.timers = {s: self.timers[s] for s in a & b} | dict.fromkeys(b - a)
                self.mode, self.group_timer = EXCLUDE, gmi
                if rtype == 4:
                    q_sources = a & b
        else:
            x, y = self.x(), self.y()
            if rtype in (1, 5, 3):  # EXCLUDE (X+A,Y-A), (A)=GMI
                self.timers.update(dict.fromkeys(b, gmi))
                if rtype == 3:  # TO_IN: Q(G,X-A), Q(G)
                    q_sources, q_group = x - b, True
            elif rtype == 6:  # BLOCK: EXCLUDE (X+(A-Y),Y), (A-X-Y)=GT, Q(G,A-Y)
                self.timers.update(dict.fromkeys(b - x - y, self.group_timer))
                q_sources = b - y
            else:  # IS_EX/TO_EX: EXCLUDE (A-Y,Y*A), Delete (X-A),(Y-A), GT=GMI
                fresh = gmi if rtype == 2 else self.group_timer  # (A-X-Y)=GMI / =GT
                self.timers = (
                    {s: self.timers[s] for s in b & x}
                    | dict.fromkeys(b & y)
                    | dict.fromkeys(b - x - y, fresh)
                )
                self.group_timer = gmi
                if rtype == 4:
                    q_sources = b - y
        # The querier's "Send Q(G)" / "Send Q(G,X)" (§6.6.3): lower to LMQT.
        limit = now + LMQT
        if q_group and self.mode is EXCLUDE:
            self.group_timer = min(self.group_timer, limit)
        for s in q_sources:
            if self.timers.get(s) is not None and self.timers[s] > limit:
                self.timers[s] = limit
        if self.mode is INCLUDE and not self.timers:
            self.mode = None

    def forwarded(self) -> tuple[FilterMode, frozenset[bytes]]:
        if self.mode is None:
            return INCLUDE, frozenset()
        if self.mode is INCLUDE:
            return INCLUDE, frozenset(self.timers)
        return EXCLUDE, frozenset(self.y())


record_ops = st.tuples(
    st.sampled_from([0, 1, 2]),  # host: 0 is the unspecified address
    st.sampled_from([1, 2, 3, 4, 5, 6]),  # record type
    st.frozensets(st.integers(1, 4), max_size=3),  # sources
    st.sampled_from(STEPS),  # time before the record
)


@SETTINGS
@given(ops=st.lists(record_ops, max_size=30))
@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_state_matches_reference_tables(flavor: Flavor, ops) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    ref = ReferenceGroup()
    for host_n, rtype, source_ns, step in ops:
        h.advance(h.now + step)
        ref.expire(h.now)
        host = f.unspecified if host_n == 0 else f.host(host_n)
        sources = f.sources(*source_ns)
        h.receive(f.report(f.record(rtype, g, sources)), host)
        ref.apply(rtype, set(sources), h.now)
        state = h.link.group_state(g)
        if ref.mode is None:
            assert state is None
        else:
            assert state is not None
            assert state.filter_mode is ref.mode
            assert dict(state.sources) == ref.timers
            assert state.group_timer == ref.group_timer
        assert h.link.forwarded(g) == ref.forwarded()
    h.advance(h.now + 1000)
    assert h.link.groups() == ()
    assert h.link.subscribers(g) == {}


# --- everything at once -----------------------------------------------------------------------

any_op = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 3), st.integers(1, 2), st.integers(1, 6),
              st.frozensets(st.integers(1, 4), max_size=3)),
    st.tuples(st.just("old_report"), st.integers(0, 3), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.just("leave"), st.integers(0, 3), st.integers(1, 2)),
    st.tuples(st.just("general_query"), st.sampled_from([1, 20]), st.integers(1, 3),
              st.sampled_from([0, 1, 2, 3]), st.sampled_from([0, 30, 125])),
    st.tuples(st.just("specific_query"), st.integers(1, 2),
              st.frozensets(st.integers(1, 4), max_size=2), st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from(STEPS)),
)  # fmt: skip


def _message(f: Flavor, op):
    kind = op[0]
    if kind == "record":
        _, _, gn, rtype, ns = op
        return f.report(f.record(rtype, f.group(gn), f.sources(*ns)))
    if kind == "old_report":
        _, _, gn, version = op
        return f.join(f.group(gn), version=min(version, f.full - 1))
    if kind == "leave":
        return Leave(f.group(op[2]))
    if kind == "general_query":
        # QRV and QQI, which a non-querier adopts (a GMI of 50 s with QRV 1, QQI 30)
        return f.general_query(version=min(op[2], f.full), qrv=op[3], qqi=op[4])
    _, gn, ns, s_flag = op
    srcs = tuple(sorted(f.sources(*ns)))
    return Query(f.full, f.group(gn), 1.0, srcs, s_flag, 2, 125)


@SETTINGS
@given(ops=st.lists(any_op, max_size=40), fast_leave=st.booleans())
@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_invariants_hold(flavor: Flavor, ops, fast_leave: bool) -> None:
    h = Harness(flavor, fast_leave=fast_leave)
    f = flavor
    groups = [f.group(1), f.group(2)]
    hosts = [f.unspecified, f.host(1), f.host(2), f.host(3)]
    seen = {g: h.link.forwarded(g) for g in groups}
    tracked = {(g, x): None for g in groups for x in hosts}
    for op in ops:
        start = len(h.log)
        if op[0] == "advance":
            h.advance(h.now + op[1])
        else:
            source = f.router(op[1]) if "query" in op[0] else hosts[op[1]]
            h.receive(_message(f, op), source)
        new = [o for _, o in h.log[start:]]
        # Never a deadline in the past once the link has seen ``now``.
        deadline = h.link.next_deadline()
        assert deadline is None or deadline > h.now

        for g in groups:
            state = h.link.group_state(g)
            if state is None:
                assert g not in h.link.groups()
                assert h.link.subscribers(g) == {}
            else:
                assert g in h.link.groups()
                if state.filter_mode is INCLUDE:
                    # INCLUDE mode runs no Group Timer and holds only running sources.
                    assert state.group_timer is None
                    assert state.sources
                    assert all(t is not None and t > h.now for t in state.sources.values())
                else:
                    assert state.group_timer is not None
                    assert state.group_timer > h.now
                    assert all(t is None or t > h.now for t in state.sources.values())
                mode, fwd = h.link.forwarded(g)
                assert mode is state.filter_mode
                if mode is INCLUDE:
                    assert fwd == state.requested_list
                else:
                    assert fwd == state.exclude_list
            for n in range(1, 5):
                s = f.source(n)
                mode, fwd = h.link.forwarded(g)
                assert h.link.wants(g, s) is ((s in fwd) if mode is INCLUDE else (s not in fwd))
            now_fwd = h.link.forwarded(g)
            if now_fwd != seen[g]:
                assert GroupChanged(g) in new, (seen[g], now_fwd)
            seen[g] = now_fwd
            for x in hosts:
                sub = h.link.subscriber(g, x)
                if x == f.unspecified:
                    assert sub is None
                if sub is not None:
                    assert sub.filter_mode is EXCLUDE or sub.sources
                    assert state is not None
                if sub != tracked[(g, x)]:
                    assert SubscriberChanged(g, x) in new
                    assert GroupChanged(g) in new
                tracked[(g, x)] = sub
        for o in new:
            if isinstance(o, SendQuery) and o.query.group != f.unspecified:
                assert o.query.group in groups
    # With time, everything goes (no more reports arrive).
    h.advance(h.now + 2000)
    assert h.link.groups() == ()
