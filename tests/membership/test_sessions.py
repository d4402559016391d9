"""Sessions (``SessionChanged``): when a tracked subscriber's reception of (S,G) or (*,G)
begins and ends on a link, by every path that begins or ends one, on a virtual clock.

INCLUDE (S1, S2) is a session per source; EXCLUDE of any sources is one any-source session
(source None). Said only on a change, never on a refresh, never for static groups, and only
when the link is asked to (``RouterLink.sessions``)."""

from __future__ import annotations

import pytest
from membership_harness import (
    ALLOW,
    BLOCK,
    FLAVORS,
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

from mcastproxy.membership import SessionChanged


def session_harness(flavor: Flavor, **kwargs) -> Harness:
    h = Harness(flavor, **kwargs)
    h.link.sessions = True
    return h


def sessions(h: Harness) -> list[tuple[float, bytes | None, bytes, bool]]:
    """The sessions said since the last call: (time, source, subscriber, start)."""
    return [(t, o.source, o.subscriber, o.start) for t, o in h.take()
            if isinstance(o, SessionChanged)]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_an_any_source_join_begins_once_and_a_leave_ends_it_with_fast_leave(
        flavor: Flavor) -> None:
    h = session_harness(flavor, fast_leave=True)
    g, host = flavor.group(), flavor.host(1)
    h.take()
    h.receive(flavor.join(g), host, at=1.0)
    assert sessions(h) == [(1.0, None, host, True)]
    h.receive(flavor.join(g), host, at=60.0)  # a refresh
    assert sessions(h) == []
    h.receive(flavor.leave(g), host, at=70.0)
    assert sessions(h) == [(70.0, None, host, False)]
    assert all(o.group == g for _, o in h.log if isinstance(o, SessionChanged))


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_silent_subscriber_ends_when_its_membership_expires(flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, a, b = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), a, at=1.0)
    h.receive(flavor.join(g), b, at=1.0)
    h.take()
    h.receive(flavor.join(g), b, at=100.0)  # b refreshes, a stays silent
    h.advance(1.0 + GMI + 1)
    assert sessions(h) == [(1.0 + GMI, None, a, False)]
    h.advance(100.0 + GMI + 1)
    assert sessions(h) == [(100.0 + GMI, None, b, False)]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_leave_unanswered_ends_the_session_when_the_last_member_queries_time_out(
        flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    h.receive(flavor.join(g), host, at=1.0)
    h.take()
    h.receive(flavor.leave(g), host, at=10.0)
    # The leave itself ends what the subscriber asked for: its tracked state is gone at once,
    # while the group waits for the queries (another host might answer).
    assert sessions(h) == [(10.0, None, host, False)]
    h.advance(10.0 + LMQT + 1)
    assert sessions(h) == []


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_source_nobody_answers_for_ends_its_session_after_lmqt(flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, host, other = flavor.group(), flavor.host(1), flavor.host(2)
    s1, s2 = flavor.source(1), flavor.source(2)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1, 2))), host, at=1.0)
    assert sessions(h) == [(1.0, s1, host, True), (1.0, s2, host, True)]
    # Another host's BLOCK(S2) asks Q(G,S2); nobody answers: the router forgets S2, and
    # tracking forgets that the first host asked for it.
    h.receive(flavor.report(flavor.record(BLOCK, g, flavor.sources(2))), other, at=5.0)
    assert sessions(h) == []
    h.advance(5.0 + LMQT + 1)
    assert sessions(h) == [(5.0 + LMQT, s2, host, False)]
    assert h.link.subscriber(g, host).sources == flavor.sources(1)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_include_sources_come_and_go_one_session_each(flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    s1, s2, s3 = flavor.source(1), flavor.source(2), flavor.source(3)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), host, at=1.0)
    assert sessions(h) == [(1.0, s1, host, True)]
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(2, 3))), host, at=2.0)
    assert sessions(h) == [(2.0, s2, host, True), (2.0, s3, host, True)]
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1, 2, 3))), host, at=3.0)
    assert sessions(h) == []  # the same sources again: a refresh
    h.receive(flavor.report(flavor.record(BLOCK, g, flavor.sources(1))), host, at=4.0)
    assert sessions(h) == [(4.0, s1, host, False)]
    h.receive(flavor.report(flavor.record(TO_IN, g, flavor.sources(3))), host, at=5.0)
    assert sessions(h) == [(5.0, s2, host, False)]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_include_to_exclude_ends_the_source_session_and_begins_the_any_source_one(
        flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    s1 = flavor.source(1)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), host, at=1.0)
    sessions(h)
    h.receive(flavor.report(flavor.record(TO_EX, g)), host, at=2.0)
    assert sessions(h) == [(2.0, s1, host, False), (2.0, None, host, True)]
    # Excluding a source is still the any-source join: no session changes.
    h.receive(flavor.report(flavor.record(BLOCK, g, flavor.sources(4))), host, at=3.0)
    h.receive(flavor.report(flavor.record(IS_EX, g, flavor.sources(4))), host, at=4.0)
    assert sessions(h) == []
    h.receive(flavor.report(flavor.record(TO_IN, g, flavor.sources(1))), host, at=5.0)
    assert sessions(h) == [(5.0, None, host, False), (5.0, s1, host, True)]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_the_link_going_down_keeps_sessions_until_the_memberships_time_out(
        flavor: Flavor) -> None:
    # RFC 9776 §6: a router that loses its address stops querying; its memberships time out
    # as usual, and the sessions end with them.
    h = session_harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    h.receive(flavor.join(g), host, at=1.0)
    sessions(h)
    h.set_address(None, at=2.0)
    assert sessions(h) == []
    h.advance(1.0 + GMI + 1)
    assert sessions(h) == [(1.0 + GMI, None, host, False)]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_reconfiguring_the_link_ends_nothing_and_a_group_expiring_ends_everything(
        flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, a, b = flavor.group(), flavor.host(1), flavor.host(2)
    h.receive(flavor.join(g), a, at=1.0)
    h.receive(flavor.join(g), b, at=2.0)
    sessions(h)
    h.reconfigure(h.link.querier_policy, 5.0, at=3.0)
    h.link.reconfigure(h.link.querier_policy, None, h.now, fast_leave=True)
    assert sessions(h) == []
    h.advance(2.0 + GMI + 1)
    assert sorted(sessions(h), key=lambda s: s[2]) == [
        (1.0 + GMI, None, a, False), (2.0 + GMI, None, b, False)]
    assert h.link.group_count == 0


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_static_groups_have_no_sessions(flavor: Flavor) -> None:
    h = session_harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    h.link.set_static({g: None}, h.now)
    h.receive(flavor.join(g), host, at=1.0)
    assert sessions(h) == [(1.0, None, host, True)]
    # The static group is left as a host leaves it: the querier asks, the host does not
    # answer, so its session ends LMQT later; the static member's own leaves none.
    h.link.set_static({}, h.now)
    h.advance(1.0 + GMI + 1)
    assert sessions(h) == [(1.0 + LMQT, None, host, False)]
    assert not any(isinstance(o, SessionChanged) and o.subscriber == h.link.static_host
                   for _, o in h.log)


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_no_sessions_unless_asked(flavor: Flavor) -> None:
    h = Harness(flavor, fast_leave=True)
    assert h.link.sessions is False
    h.receive(flavor.join(flavor.group()), flavor.host(1), at=1.0)
    h.receive(flavor.leave(flavor.group()), flavor.host(1), at=2.0)
    assert not any(isinstance(o, SessionChanged) for _, o in h.log)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_flood_of_forged_subscribers_says_each_session_once(flavor: Flavor) -> None:
    # Many forged senders, each joining and refreshing: one begin each, one end each.
    h = session_harness(flavor, fast_leave=True)
    g = flavor.group()
    hosts = [flavor.host(n) for n in range(1, 200)]
    for at in (1.0, 2.0, 3.0):
        for host in hosts:
            h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), host, at=at)
    begun = sessions(h)
    assert sorted(s[2] for s in begun) == sorted(hosts)
    assert all(s[3] for s in begun)
    for host in hosts:
        h.receive(flavor.report(flavor.record(TO_IN, g)), host, at=4.0)
    ended = sessions(h)
    assert sorted(s[2] for s in ended) == sorted(hosts)
    assert not any(s[3] for s in ended)
    assert h.link.group_count == 0
