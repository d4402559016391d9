"""The router side with its admission (``admission``, ``policy``): what records may create or
extend state on a subscriber link, and how much one subscriber, the link and the proxy may
hold. Refused requests make no state; reductions are never refused; counts follow state.

    host(1) --+
    host(2) --+-- link -- us (querier)      policy: global < link < subscriber prefix
    attacker -+                             limits: subscriber, link, proxy (shared)
    0.0.0.0 --+                             exceptions: channels no limit counts
"""

from __future__ import annotations

import ipaddress

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

from mcastproxy.admission import MAX_NOTICES, Admission, Room
from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership import (
    FilterMode,
    GroupChanged,
    JoinRefused,
    SubscriberChanged,
    SubscriberState,
)
from mcastproxy.policy import SUBSCRIBER_MAX_GROUP_SOURCES, SUBSCRIBER_MAX_GROUPS, EdgePolicy
from mcastproxy.wire.messages import GroupRecord

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE
GROUPS = {Family.V4: "239.1.1.0/24", Family.V6: "ff0e::1:0/112"}  # flavor.group(n)
SOURCES = {Family.V4: "192.0.2.0/24", Family.V6: "2001:db8::/64"}  # flavor.source(n)


def text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


def policy(flavor: Flavor, d1: str = "", glob: str = "") -> EdgePolicy:
    """d1's policy for the flavor's family: ``d1`` is its ``policy:`` mapping (flow style),
    ``glob`` the global one."""
    yaml = (f"igmp: {{}}\nmld: {{}}\n{'policy: ' + glob if glob else ''}\n"
            f"downstream: [{{interface: d1{', policy: ' + d1 if d1 else ''}}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    return EdgePolicy.from_config(parse_config(yaml), "d1", flavor.family)


def harness(flavor: Flavor, d1: str = "", glob: str = "", link: Room | None = None,
            entries: Room | None = None, **kw: object) -> Harness:
    adm = Admission(policy(flavor, d1, glob), link, entries)
    return Harness(flavor, admission=adm, **kw)  # type: ignore[arg-type]


def adm_of(h: Harness) -> Admission:
    adm = h.link.admission
    assert adm is not None
    return adm


def nth_group(flavor: Flavor, i: int) -> bytes:
    """Group i of many: 239.2.x.y, ff0e::2:0:i."""
    if flavor.family is Family.V4:
        return ((239 << 24) | (2 << 16) | i).to_bytes(4)
    return bytes.fromhex("ff0e") + bytes(8) + (2 << 32 | i).to_bytes(6)


def nth_host(flavor: Flavor, i: int) -> bytes:
    """Spoofed subscriber i: 10.1.128.0/17, fe80::1:0:0/96."""
    if flavor.family is Family.V4:
        return ((10 << 24) | (1 << 16) | 0x8000 | i).to_bytes(4)
    return bytes.fromhex("fe80") + bytes(8) + (0x10000 << 16 | i).to_bytes(6)


def join_many(h: Harness, host: bytes, groups: list[bytes], per: int = 100) -> None:
    """``host`` joins every group: any-source joins, ``per`` records a report (one for an
    older version)."""
    flavor = h.flavor
    if not flavor.source_filtering:
        for g in groups:
            h.receive(flavor.join(g), host)
        return
    for start in range(0, len(groups), per):
        h.receive(flavor.report(*(GroupRecord(TO_EX, g) for g in groups[start:start + per])),
                  host)


def refusals(outputs: list[object]) -> list[JoinRefused]:
    return [o for o in outputs if isinstance(o, JoinRefused)]


# --- what may be joined ---------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_denied_any_source_join_makes_no_state_and_is_counted(flavor: Flavor) -> None:
    denied = GROUPS[flavor.family]
    h = harness(flavor, glob=f"{{group-policy: [{{action: deny, group: {denied!r}}}]}}")
    g, h1 = flavor.group(), flavor.host(1)
    h.take()
    out = h.receive(flavor.join(g), h1, at=1)
    assert h.link.group_state(g) is None
    assert h.link.groups() == ()
    assert not [o for o in out if isinstance(o, SubscriberChanged | GroupChanged)]
    (refused,) = refusals(out)
    assert (refused.subscriber, refused.group, refused.source, refused.reason) == (
        h1, g, None, Drop.POLICY_GLOBAL_DENY)
    assert "policy.group-policy[0]" in refused.decided_by
    assert h.link.dropped[Drop.POLICY_GLOBAL_DENY] == 1
    # Said once per subscriber and reason; counted every time.
    assert refusals(h.receive(flavor.join(g), h1, at=2)) == []
    assert h.link.dropped[Drop.POLICY_GLOBAL_DENY] == 2
    # Another group is not denied.
    h.receive(flavor.join(nth_group(flavor, 1)), h1, at=3)
    assert h.link.groups() == (nth_group(flavor, 1),)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_refused_sources_are_taken_out_and_the_rest_goes_on(flavor: Flavor) -> None:
    denied = text(flavor.source(2))
    h = harness(flavor, d1=f"{{group-policy: [{{action: deny, source: {denied}}}]}}")
    g, h1 = flavor.group(), flavor.host(1)
    out = h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(1, 2, 3))), h1, at=1)
    assert h.link.forwarded(g) == (INCLUDE, flavor.sources(1, 3))
    assert h.link.subscriber(g, h1) == SubscriberState(INCLUDE, flavor.sources(1, 3))
    assert [(r.source, r.reason) for r in refusals(out)] == [
        (flavor.source(2), Drop.POLICY_LINK_DENY)]
    assert h.link.dropped == {Drop.POLICY_LINK_DENY: 1}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_to_in_whose_sources_are_all_refused_is_a_leave(flavor: Flavor) -> None:
    denied = text(flavor.source(2))
    h = harness(flavor, d1=f"{{group-policy: [{{action: deny, source: {denied}}}]}}")
    g, h1 = flavor.group(), flavor.host(1)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), h1, at=0)
    # "I now want only S2", S2 refused: the subscriber wants none of its old sources.
    out = h.receive(flavor.report(flavor.record(TO_IN, g, flavor.sources(2))), h1, at=1)
    assert SubscriberChanged(g, h1) in out
    assert h.link.subscriber(g, h1) is None
    h.advance(1 + LMQT + 0.1)  # the last-member queries go unanswered
    assert h.link.group_state(g) is None


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_an_allow_of_refused_sources_refreshes_nothing(flavor: Flavor) -> None:
    denied = text(flavor.source(2))
    h = harness(flavor, d1=f"{{group-policy: [{{action: deny, source: {denied}}}]}}")
    g, h1 = flavor.group(), flavor.host(1)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), h1, at=0)
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(2))), h1, at=200)
    assert h.link.subscriber_expiry(g) == {h1: GMI}  # from the report at 0, not 200
    h.advance(GMI + 1)
    assert h.link.subscriber(g, h1) is None


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_reductions_are_never_refused(flavor: Flavor) -> None:
    """State admitted before a policy that denies everything: BLOCK, TO_IN({}), an EXCLUDE
    subscriber's move to INCLUDE of fewer and leaves still act; what asks for more again
    (the refresh of the any-source join included) is refused."""
    h = harness(flavor)
    g, g2, h1, h2 = flavor.group(1), flavor.group(2), flavor.host(1), flavor.host(2)
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1, 2))), h1, at=0)
    h.receive(flavor.report(flavor.record(IS_EX, g2)), h2, at=0)
    h.link.set_policy(policy(flavor, d1="{default: deny}"))
    h.take()
    h.receive(flavor.report(flavor.record(BLOCK, g, flavor.sources(1))), h1, at=1)
    assert h.link.subscriber(g, h1) == SubscriberState(INCLUDE, flavor.sources(2))
    assert [q.sources for _, q in h.specific_queries(since=1)] == [(flavor.source(1),)]
    refused = h.receive(flavor.report(flavor.record(IS_EX, g2)), h2, at=2)
    assert [r.reason for r in refusals(refused)] == [Drop.POLICY_DEFAULT_DENY]
    assert h.link.subscriber(g2, h2) == SubscriberState(EXCLUDE, frozenset())
    # EXCLUDE to INCLUDE of a source: the source is refused, the move is a leave.
    h.receive(flavor.report(flavor.record(TO_IN, g2, flavor.sources(5))), h2, at=3)
    assert h.link.subscriber(g2, h2) is None
    h.receive(flavor.report(flavor.record(TO_IN, g)), h1, at=4)
    assert h.link.subscriber(g, h1) is None
    assert h.link.dropped == {Drop.POLICY_DEFAULT_DENY: 2}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_ssm_only_refuses_any_source_joins_of_every_version(flavor: Flavor) -> None:
    h = harness(flavor, d1="{ssm-only: true}")
    g, h1 = flavor.group(), flavor.host(1)
    out = h.receive(flavor.join(g), h1, at=1)
    assert h.link.group_state(g) is None
    assert [r.reason for r in refusals(out)] == [Drop.POLICY_SSM_ONLY]
    if flavor.source_filtering:
        h.receive(flavor.report(flavor.record(TO_EX, g, flavor.sources(1))), h1, at=2)
        assert h.link.group_state(g) is None
        h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(1))), h1, at=3)
        assert h.link.forwarded(g) == (INCLUDE, flavor.sources(1))
        assert h.link.dropped == {Drop.POLICY_SSM_ONLY: 2}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_refused_older_report_starts_no_older_host_present_timer(flavor: Flavor) -> None:
    h = harness(flavor, d1="{ssm-only: true}")
    g, h1 = flavor.group(), flavor.host(1)
    h.receive(flavor.join(g, version=flavor.full - 1), h1, at=1)
    assert h.link.group_state(g) is None
    # A source-specific join stays in the newest compatibility mode.
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(1))), h1, at=2)
    state = h.link.group_state(g)
    assert state is not None
    assert state.compatibility_mode == flavor.full


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_the_subscribers_prefix_has_its_own_rules(flavor: Flavor) -> None:
    prefix = "10.1.1.0/28" if flavor.family is Family.V4 else "fe80::1:0/124"
    group = text(flavor.group(1))
    h = harness(flavor, d1=f"{{subscribers: [{{prefix: {prefix!r}, default: deny, "
                           f"group-policy: [{{action: permit, group: {group!r}}}]}}]}}")
    inside, outside = flavor.host(1), flavor.host(20)
    for host in (inside, outside):
        h.receive(flavor.join(flavor.group(1)), host, at=1)
        h.receive(flavor.join(flavor.group(2)), host, at=1)
    assert set(h.link.subscribers(flavor.group(1))) == {inside, outside}
    assert set(h.link.subscribers(flavor.group(2))) == {outside}
    assert h.link.dropped == {Drop.POLICY_DEFAULT_DENY: 1}
    assert adm_of(h).refused_by_prefix == {(prefix, Drop.POLICY_DEFAULT_DENY): 1}


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_subscriber_stays_at_its_max_groups_a_refresh_passes_a_leave_frees_room(
    flavor: Flavor,
) -> None:
    h = harness(flavor, d1="{subscriber: {max-groups: 8}}")
    h1 = flavor.host(1)
    groups = [nth_group(flavor, i) for i in range(20)]
    join_many(h, h1, groups)
    held = [g for g in groups if h.link.subscriber(g, h1) is not None]
    assert held == groups[:8]
    assert set(h.link.groups()) == set(held)
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 12}
    assert adm_of(h).held == {h1: 8}
    # A refresh of a held group at the limit passes.
    h.receive(flavor.join(groups[0]), h1, at=100)
    assert h.link.subscriber_expiry(groups[0]) == {h1: 100 + GMI}
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 12}
    # A leave frees room at once (the subscription is gone; the group may linger for its
    # last-member queries).
    h.receive(flavor.leave(groups[0]), h1, at=101)
    h.receive(flavor.join(groups[9]), h1, at=102)
    assert h.link.subscriber(groups[9], h1) is not None
    assert adm_of(h).held == {h1: 8}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_an_attacker_joining_50000_groups_stays_at_its_limit(flavor: Flavor) -> None:
    """With nothing configured: the built-in max-groups; the link's state stays that size,
    one log notice is made, every refusal is counted."""
    h = harness(flavor)
    attacker = flavor.host(66)
    h.take()
    join_many(h, attacker, [nth_group(flavor, i) for i in range(50_000)], per=183)
    assert len(h.link.groups()) == SUBSCRIBER_MAX_GROUPS
    assert adm_of(h).held == {attacker: SUBSCRIBER_MAX_GROUPS}
    assert (adm_of(h).groups, adm_of(h).link.used, adm_of(h).entries.used) == (
        SUBSCRIBER_MAX_GROUPS,) * 3
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 50_000 - SUBSCRIBER_MAX_GROUPS}
    assert len(refusals([o for _, o in h.take()])) == 1
    # Another subscriber still joins.
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    assert h.link.subscriber(flavor.group(1), flavor.host(1)) is not None


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_spoofed_subscribers_are_each_bounded_and_the_link_limit_holds(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-groups: 1000, subscriber: {max-groups: 10}}")
    h.take()
    for i in range(300):  # 300 addresses, 20 groups each, 6,000 groups in all
        join_many(h, nth_host(flavor, i), [nth_group(flavor, 20 * i + k) for k in range(20)])
    adm = adm_of(h)
    assert len(h.link.groups()) == 1000 == adm.link.used
    assert max(adm.held.values()) == 10
    assert sum(adm.held.values()) == 1000
    # The first 100 fill the link, 10 groups each; the other 200 find it full.
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 100 * 10,
                              Drop.LINK_MAX_GROUPS: 200 * 20}
    # The log heard of the first few only.
    assert len(refusals([o for _, o in h.take()])) == MAX_NOTICES


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_max_group_sources_keeps_the_lowest_and_a_refresh_passes(flavor: Flavor) -> None:
    h = harness(flavor)
    g, h1 = flavor.group(), flavor.host(1)
    many = frozenset(flavor.source(n) for n in range(1, 101))
    h.receive(flavor.report(flavor.record(ALLOW, g, many)), h1, at=1)
    kept = frozenset(sorted(many)[:SUBSCRIBER_MAX_GROUP_SOURCES])
    assert h.link.subscriber(g, h1) == SubscriberState(INCLUDE, kept)
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUP_SOURCES: 100 - 64}
    # The same sources again: a refresh, whole.
    h.receive(flavor.report(flavor.record(IS_IN, g, kept)), h1, at=2)
    assert h.link.subscriber(g, h1) == SubscriberState(INCLUDE, kept)
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUP_SOURCES: 36}
    # One more: refused; one blocked first: room for one.
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(200))), h1, at=3)
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUP_SOURCES: 37}
    h.receive(flavor.report(flavor.record(BLOCK, g, frozenset([min(kept)]))), h1, at=4)
    h.receive(flavor.report(flavor.record(ALLOW, g, flavor.sources(200))), h1, at=5)
    assert flavor.source(200) in h.link.subscriber(g, h1).sources  # type: ignore[union-attr]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_flood_of_records_with_refused_sources_creates_no_state(flavor: Flavor) -> None:
    h = harness(flavor, glob=f"{{group-policy: [{{action: deny, source: "
                             f"{SOURCES[flavor.family]!r}}}]}}")
    h.take()
    attacker = flavor.host(66)
    sources = flavor.sources(1, 2, 3)
    for start in range(0, 10_000, 100):
        h.receive(flavor.report(*(flavor.record(ALLOW, nth_group(flavor, i), sources)
                                  for i in range(start, start + 100))), attacker)
    assert h.link.groups() == ()
    assert adm_of(h).held == {}
    assert adm_of(h).link.used == 0
    assert [type(o) for _, o in h.take()] == [JoinRefused]
    assert h.link.dropped == {Drop.POLICY_GLOBAL_DENY: 30_000}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_exceptions_never_count_and_are_never_refused_by_a_limit(flavor: Flavor) -> None:
    mandatory, channel = flavor.group(100), flavor.group(101)
    s = flavor.source(1)
    h = harness(flavor, d1=f"{{max-groups: 3, subscriber: {{max-groups: 2}}, exceptions: ["
                           f"{{group: {text(mandatory)!r}}}, "
                           f"{{source: {text(s)!r}, group: {text(channel)!r}}}]}}")
    adm = adm_of(h)
    h1, h2, h3 = flavor.host(1), flavor.host(2), flavor.host(3)
    join_many(h, h1, [flavor.group(1), flavor.group(2)])
    h.receive(flavor.join(mandatory), h1)  # at its max-groups: passes, does not count
    assert h.link.subscriber(mandatory, h1) is not None
    assert adm.held == {h1: 2}
    # The channel (S, G) is an exception; another source of G is not.
    h.receive(flavor.report(flavor.record(ALLOW, channel, flavor.sources(1, 2))), h1)
    assert h.link.subscriber(channel, h1) == SubscriberState(INCLUDE, frozenset([s]))
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 1}
    # The link at its max-groups: the exception still passes for anyone.
    h.receive(flavor.join(flavor.group(3)), h2)
    assert adm.link.used == 3
    h.receive(flavor.join(flavor.group(4)), h3)
    assert h.link.dropped[Drop.LINK_MAX_GROUPS] == 1
    h.receive(flavor.join(mandatory), h3)
    h.receive(flavor.report(flavor.record(ALLOW, channel, flavor.sources(1))), h3)
    assert h.link.subscriber(mandatory, h3) is not None
    assert h.link.subscriber(channel, h3) is not None
    assert (adm.link.used, adm.held) == (3, {h1: 2, h2: 1})


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_anonymous_reports_count_against_the_link_only(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-groups: 5, subscriber: {max-groups: 1}}")
    groups = [nth_group(flavor, i) for i in range(8)]
    join_many(h, flavor.unspecified, groups)
    assert len(h.link.groups()) == 5
    assert adm_of(h).held == {}
    assert h.link.dropped == {Drop.LINK_MAX_GROUPS: 3}
    # A subscriber's join of a group that has state needs no room on the link.
    h.receive(flavor.join(groups[0]), flavor.host(1))
    assert h.link.subscriber(groups[0], flavor.host(1)) is not None


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_the_proxy_wide_entries_are_shared_by_every_link(flavor: Flavor) -> None:
    entries = Room(5)
    a = harness(flavor, glob="{max-entries: 5}", entries=entries)
    b = harness(flavor, glob="{max-entries: 5}", entries=entries)
    join_many(a, flavor.host(1), [nth_group(flavor, i) for i in range(3)])
    join_many(b, flavor.host(1), [nth_group(flavor, i) for i in range(10, 14)])
    assert (len(a.link.groups()), len(b.link.groups()), entries.used) == (3, 2, 5)
    assert b.link.dropped == {Drop.PROXY_MAX_ENTRIES: 2}
    # A group of a ends: room for b.
    a.receive(flavor.leave(nth_group(flavor, 0)), flavor.host(1), at=10)
    a.advance(10 + LMQT + 0.1)
    assert entries.used == 4
    b.receive(flavor.join(nth_group(flavor, 20)), flavor.host(1), at=a.now)
    assert (len(b.link.groups()), entries.used) == (3, 5)


def test_a_links_max_groups_counts_both_families() -> None:
    from membership_harness import IGMPV3, MLDV2  # noqa: PLC0415

    room = Room(4)
    v4 = harness(IGMPV3, d1="{max-groups: 4}", link=room)
    v6 = harness(MLDV2, d1="{max-groups: 4}", link=room)
    join_many(v4, IGMPV3.host(1), [nth_group(IGMPV3, i) for i in range(3)])
    join_many(v6, MLDV2.host(1), [nth_group(MLDV2, i) for i in range(3)])
    assert (len(v4.link.groups()), len(v6.link.groups()), room.used) == (3, 1, 4)
    assert v6.link.dropped == {Drop.LINK_MAX_GROUPS: 2}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_counts_follow_the_state_as_it_times_out(flavor: Flavor) -> None:
    h = harness(flavor, d1="{subscriber: {max-groups: 8}}")
    join_many(h, flavor.host(1), [nth_group(flavor, i) for i in range(8)])
    join_many(h, flavor.host(2), [nth_group(flavor, i) for i in range(4, 12)])
    adm = adm_of(h)
    assert (adm.held, adm.groups) == ({flavor.host(1): 8, flavor.host(2): 8}, 12)
    h.advance(GMI + 1)
    assert h.link.groups() == ()
    assert (adm.held, adm.groups, adm.link.used, adm.entries.used) == ({}, 0, 0, 0)


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_new_policy_keeps_the_state_and_new_exceptions_count_again(flavor: Flavor) -> None:
    h = harness(flavor)
    adm = adm_of(h)
    h1 = flavor.host(1)
    join_many(h, h1, [flavor.group(1), flavor.group(2), flavor.group(3)])
    h.receive(flavor.report(flavor.record(ALLOW, flavor.group(4), flavor.sources(1, 2))), h1)
    assert (adm.held, adm.groups) == ({h1: 4}, 4)
    # Lower limits: what is held stays, nothing new passes.
    h.link.set_policy(policy(flavor, d1="{max-groups: 2, subscriber: {max-groups: 1}}"))
    assert len(h.link.groups()) == 4
    h.receive(flavor.join(flavor.group(5)), h1)
    assert h.link.dropped == {Drop.SUBSCRIBER_MAX_GROUPS: 1}
    # Exceptions that cover held state: counted again, at once.
    g1, g4 = text(flavor.group(1)), text(flavor.group(4))
    s1 = text(flavor.source(1))
    h.link.set_policy(policy(flavor, d1=f"{{exceptions: [{{group: {g1!r}}}, "
                                        f"{{source: {s1!r}, group: {g4!r}}}]}}"))
    assert (adm.held, adm.groups, adm.link.used, adm.entries.used) == ({h1: 3}, 3, 3, 3)
    # Group 4 still counts (source 2 is no exception); once only source 1 is left, it does
    # not for the subscriber (the group keeps counting until its state ends).
    h.receive(flavor.report(flavor.record(BLOCK, flavor.group(4), flavor.sources(2))), h1)
    h.advance(h.now + LMQT + 0.1)
    assert adm.held == {h1: 2}
    assert h.link.subscriber(flavor.group(4), h1) == SubscriberState(
        INCLUDE, flavor.sources(1))
