"""Explicit tracking of subscribers and fast leave.

host(1) --+
host(2) --+-- link -- us (querier)        a subscriber is the source address of reports
0.0.0.0 --+                               (the unspecified address is never tracked)
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
    TO_EX,
    TO_IN,
    Flavor,
    Harness,
)

from mcastproxy.membership import FilterMode, GroupChanged, SubscriberChanged, SubscriberState

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE


@pytest.mark.parametrize("fast_leave", [False, True], ids=["normal", "fast-leave"])
@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_two_subscribers_one_leaves_group_stays(flavor: Flavor, fast_leave: bool) -> None:
    h = Harness(flavor, fast_leave=fast_leave)
    g, h1, h2 = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), h1, at=0)
    h.receive(flavor.join(g), h2, at=1)
    assert dict(h.link.subscribers(g)) == {
        h1: SubscriberState(EXCLUDE, frozenset()),
        h2: SubscriberState(EXCLUDE, frozenset()),
    }
    h.take()
    out = h.receive(flavor.leave(g), h1, at=10)
    assert SubscriberChanged(g, h1) in out
    assert GroupChanged(g) in out
    assert list(h.link.subscribers(g)) == [h2]
    assert h.link.subscriber(g, h1) is None
    if fast_leave:
        # Another tracked subscriber remains: nothing to ask, nothing to drop.
        assert h.specific_queries() == []
    else:
        assert [t for t, _ in h.specific_queries()] == [10.0]
    h.receive(flavor.join(g), h2, at=10.5)
    h.advance(100)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_last_leave_with_fast_leave_drops_group_at_once(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    g, h1, h2 = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), h1, at=0)
    h.receive(flavor.join(g), h2, at=0)
    h.receive(flavor.leave(g), h1, at=10)
    out = h.receive(flavor.leave(g), h2, at=11)
    assert GroupChanged(g) in out
    assert SubscriberChanged(g, h2) in out
    assert h.link.group_state(g) is None
    assert h.link.groups() == ()
    assert h.link.forwarded(g) == (INCLUDE, frozenset())
    h.advance(100)
    assert h.specific_queries() == []


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_last_leave_without_fast_leave_queries_and_expires_after_lmqt(flavor: Flavor) -> None:
    h = Harness(flavor)
    g, h1, h2 = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), h1, at=0)
    h.receive(flavor.join(g), h2, at=0)
    h.receive(flavor.leave(g), h1, at=10)
    h.receive(flavor.leave(g), h2, at=10.5)
    assert len(h.link.subscribers(g)) == 0
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    h.advance(100)
    # A query for each leave, merged into one retransmission schedule; the Group Timer,
    # lowered to LMQT by the first, runs out at 12.
    assert [t for t, _ in h.specific_queries()] == [10.0, 10.5, 11.0]
    assert h.changed_groups(since=10.7) == [(12.0, g)]
    assert h.link.group_state(g) is None


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_silent_subscriber_forgotten_with_the_group(flavor: Flavor) -> None:
    """Nobody answered the group-specific queries: the state goes, and with it h2, who has
    not reported since."""
    h = Harness(flavor)
    g, h1, h2 = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), h1, at=0)
    h.receive(flavor.join(g), h2, at=0)
    h.receive(flavor.leave(g), h1, at=10)
    h.advance(12)
    assert h.link.group_state(g) is None
    assert h.link.subscribers(g) == {}
    assert (12.0, h2) in h.changed_subscribers()


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_subscriber_expires_after_group_membership_interval(flavor: Flavor) -> None:
    h = Harness(flavor)
    g, h1, h2 = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), h1, at=0)
    h.receive(flavor.join(g), h2, at=0)
    for t in (100, 200):
        h.receive(flavor.join(g), h2, at=t)
    h.advance(GMI - 0.001)
    assert set(h.link.subscribers(g)) == {h1, h2}
    h.advance(GMI)
    assert set(h.link.subscribers(g)) == {h2}
    assert h.changed_subscribers(since=1) == [(GMI, h1)]
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())  # the group lives on (h2)
    h.advance(200 + GMI)
    assert h.link.subscribers(g) == {}
    assert h.link.group_state(g) is None


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_unspecified_sender_counts_for_state_but_is_not_tracked(flavor: Flavor) -> None:
    h = Harness(flavor)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.unspecified, at=0)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    assert h.link.subscribers(g) == {}
    assert h.changed_subscribers() == []
    assert h.changed_groups() == [(0.0, g)]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_subscriber_state_follows_its_records(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g, h1 = flavor, flavor.group(), flavor.host(1)

    def send(rtype, *ns):
        h.receive(f.report(f.record(rtype, g, f.sources(*ns))), h1)
        return h.link.subscriber(g, h1)

    assert send(BLOCK, 1) is None  # nothing to block: still no state
    assert send(ALLOW, 1) == (INCLUDE, f.sources(1))
    assert send(IS_IN, 1, 2) == (INCLUDE, f.sources(1, 2))
    assert send(ALLOW, 3) == (INCLUDE, f.sources(1, 2, 3))
    assert send(BLOCK, 1) == (INCLUDE, f.sources(2, 3))
    assert send(TO_EX, 4) == (EXCLUDE, f.sources(4))
    assert send(BLOCK, 5) == (EXCLUDE, f.sources(4, 5))
    assert send(ALLOW, 4) == (EXCLUDE, f.sources(5))
    assert send(IS_EX) == (EXCLUDE, frozenset())
    assert send(TO_IN, 6) == (INCLUDE, f.sources(6))
    assert send(BLOCK, 6) is None  # INCLUDE of nothing: left


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_fast_leave_drops_a_source_nobody_tracked_wants(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    f, g, h1, h2 = flavor, flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), h1, at=0)
    h.receive(f.report(f.record(IS_IN, g, f.sources(2))), h2, at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(2))), h2, at=10)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(1, 2))  # h1 still wants 2
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), h1, at=11)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(2))  # nobody wants 1: gone at once
    h.receive(f.report(f.record(TO_IN, g)), h1, at=12)
    assert h.link.group_state(g) is None
    h.advance(100)
    assert h.specific_queries() == []


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_fast_leave_last_exclude_subscriber_switches_to_include(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    f, g, h1, h2 = flavor, flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(f.report(f.record(IS_EX, g, f.sources(3))), h1, at=0)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), h2, at=0)
    h.receive(f.report(f.record(TO_IN, g)), h1, at=10)
    state = h.link.group_state(g)
    assert state.filter_mode is INCLUDE
    assert dict(state.sources) == {f.source(1): GMI}
    assert h.specific_queries() == []


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_fast_leave_blocks_source_every_tracked_subscriber_excludes(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    f, g, h1, h2 = flavor, flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(f.report(f.record(IS_EX, g)), h1, at=0)
    h.receive(f.report(f.record(IS_EX, g, f.sources(1))), h2, at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), h1, at=10)
    assert h.link.forwarded(g) == (EXCLUDE, f.sources(1))
    assert not h.link.wants(g, f.source(1))
    assert h.specific_queries() == []


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_fast_leave_from_untracked_sender_uses_queries(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    g = flavor.group()
    h.receive(flavor.join(g), flavor.unspecified, at=0)
    h.receive(flavor.leave(g), flavor.host(1), at=10)
    assert [t for t, _ in h.specific_queries()] == [10.0]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_include_source_expiry_is_removed_from_tracked_subscribers(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g, h1, h2 = flavor, flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1, 2))), h1, at=0)
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), h2, at=0)
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), h2, at=10)
    h.receive(f.report(f.record(IS_IN, g, f.sources(2))), h1, at=11)  # h1 is silent about 1
    h.advance(12)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(2))
    assert h.link.subscriber(g, h1) == (INCLUDE, f.sources(2))
