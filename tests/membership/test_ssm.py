"""The SSM address range on the router side (RFC 4604; RFC 9776 §6.4, RFC 9777 §7.4).

An SSM-aware router ignores, for a group in the SSM address range (RFC 4607: 232.0.0.0/8,
FF3x::/32): records of type MODE_IS_EXCLUDE and CHANGE_TO_EXCLUDE_MODE (whatever their
sources), and IGMPv1/v2 and MLDv1 Reports, Leaves and Dones. Each is counted in ``dropped``
and changes nothing. INCLUDE-mode records (IS_IN, TO_IN, ALLOW, BLOCK) work as anywhere else.
Outside the ranges nothing changes. The ranges are the ``ssm_ranges`` of ``RouterLink``
(default: the IANA ranges, ``SSM_RANGES``; empty: not SSM-aware).
"""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from membership_harness import (
    ALLOW,
    BLOCK,
    FLAVORS,
    GMI,
    IGMPV3,
    IS_EX,
    IS_IN,
    MLDV2,
    SOURCE_FILTERING,
    TO_EX,
    TO_IN,
    Flavor,
    Harness,
    ip,
)

from mcastproxy.drops import Drop
from mcastproxy.membership import SSM_RANGES, FilterMode, ProtocolTimers, RouterLink
from mcastproxy.wire.messages import Leave

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE
OLDER = {4: (1, 2), 6: (1,)}  # report versions without source filtering, by family


def ssm_harness(flavor: Flavor, **kwargs) -> Harness:
    return Harness(flavor, **kwargs)  # RouterLink's default: the IANA ranges


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_exclude_mode_records_in_the_ssm_range_are_ignored(flavor: Flavor) -> None:
    h = ssm_harness(flavor)
    f, g = flavor, flavor.ssm_group()
    h.take()
    for rtype, sources in ((IS_EX, ()), (TO_EX, ()), (IS_EX, (1,)), (TO_EX, (1, 2))):
        h.receive(f.report(f.record(rtype, g, f.sources(*sources))), f.host(1), at=h.now + 1)
    assert h.link.dropped == {Drop.SSM_EXCLUDE_MODE: 4}
    assert h.link.groups() == ()
    assert h.link.forwarded(g) == (INCLUDE, frozenset())
    assert h.link.subscribers(g) == {}
    assert h.take() == []  # no query, no changed subscriber or group


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_include_mode_records_in_the_ssm_range_work(flavor: Flavor) -> None:
    h = ssm_harness(flavor)
    f, g = flavor, flavor.ssm_group()
    h.receive(f.report(f.record(ALLOW, g, f.sources(1))), f.host(1), at=1)
    h.receive(f.report(f.record(IS_IN, g, f.sources(2))), f.host(2), at=2)
    assert h.link.forwarded(g) == (INCLUDE, f.sources(1, 2))
    assert h.link.subscriber(g, f.host(1)) == (INCLUDE, f.sources(1))
    # An EXCLUDE record next to INCLUDE state changes nothing either: no switch to EXCLUDE
    # mode, no Q(G,A*B), and the source timers are not refreshed.
    h.receive(f.report(f.record(TO_EX, g, f.sources(1))), f.host(1), at=3)
    state = h.link.group_state(g)
    assert state.filter_mode is INCLUDE
    assert state.sources == {f.source(1): 1 + GMI, f.source(2): 2 + GMI}
    assert h.link.subscriber(g, f.host(1)) == (INCLUDE, f.sources(1))
    assert h.specific_queries() == []
    # BLOCK and TO_IN work: the querier asks about what is to stop (and asks again after
    # [Last Member Query Interval]).
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), f.host(1), at=4)
    h.receive(f.report(f.record(TO_IN, g)), f.host(2), at=5)
    h.advance(10)
    assert [(t, q.sources) for t, q in h.specific_queries()] == [
        (4.0, (f.source(1),)),
        (5.0, (f.source(1),)),
        (5.0, (f.source(2),)),
        (6.0, (f.source(2),)),
    ]
    assert h.link.group_state(g) is None
    assert h.link.dropped == {Drop.SSM_EXCLUDE_MODE: 1}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_older_version_reports_in_the_ssm_range_are_ignored(flavor: Flavor) -> None:
    h = ssm_harness(flavor)
    f, g = flavor, flavor.ssm_group()
    h.take()
    for version in OLDER[f.family]:
        h.receive(f.join(g, version=version), f.host(1), at=h.now + 1)
    h.receive(Leave(g), f.host(1), at=h.now + 1)
    assert h.link.dropped == {Drop.SSM_OLDER_VERSION: len(OLDER[f.family]) + 1}
    assert h.link.groups() == ()
    assert h.take() == []


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_older_hosts_do_not_touch_an_ssm_group(flavor: Flavor) -> None:
    h = ssm_harness(flavor)
    f, g = flavor, flavor.ssm_group()
    h.receive(f.report(f.record(ALLOW, g, f.sources(1))), f.host(1), at=1)
    h.receive(f.join(g, version=OLDER[f.family][-1]), f.host(2), at=2)
    h.receive(Leave(g), f.host(2), at=3)
    # The group stays in the newest compatibility mode, keeps its source, and the Leave
    # (TO_IN({}) otherwise) sends no Q(G,A).
    state = h.link.group_state(g)
    assert state.compatibility_mode == f.full
    assert (state.filter_mode, state.sources) == (INCLUDE, {f.source(1): 1 + GMI})
    assert h.specific_queries() == []
    assert h.link.dropped == {Drop.SSM_OLDER_VERSION: 2}


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_older_querier_turns_no_ssm_record_into_an_any_source_join(flavor: Flavor) -> None:
    # While an older querier is heard the link has no source filtering (RFC 9776 §7.3.1) and
    # reads INCLUDE records with sources as joins of the whole group: not in the SSM range.
    h = ssm_harness(flavor)
    f, g, other = flavor, flavor.ssm_group(), flavor.group()
    h.receive(f.general_query(version=OLDER[f.family][-1]), f.router(1), at=1)
    assert h.link.operating_version < f.full
    h.receive(f.report(f.record(ALLOW, g, f.sources(1))), f.host(1), at=2)
    h.receive(f.report(f.record(ALLOW, other, f.sources(1))), f.host(1), at=2)
    assert h.link.groups() == (other,)
    assert h.link.forwarded(other) == (EXCLUDE, frozenset())
    assert h.link.dropped == {Drop.SSM_OLDER_VERSION: 1}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_the_same_messages_outside_the_ssm_range_are_accepted(flavor: Flavor) -> None:
    h = ssm_harness(flavor)
    f = flavor
    groups = [f.group(n) for n in range(1, 5)]
    h.receive(f.join(groups[0]), f.host(1), at=1)
    for version, group in zip(OLDER[f.family], groups[1:], strict=False):
        h.receive(f.join(group, version=version), f.host(1), at=2)
    if f.source_filtering:
        h.receive(f.report(f.record(TO_EX, groups[3], f.sources(1))), f.host(2), at=3)
    assert len(h.link.groups()) == 1 + len(OLDER[f.family]) + f.source_filtering
    for group in h.link.groups():
        assert h.link.group_state(group).filter_mode is EXCLUDE
    assert h.link.dropped == {}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_without_ssm_ranges_the_link_is_not_ssm_aware(flavor: Flavor) -> None:
    h = Harness(flavor, ssm_ranges=())
    f, g = flavor, flavor.ssm_group()
    assert h.link.ssm_ranges == ()
    h.receive(f.join(g), f.host(1), at=1)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    assert h.link.dropped == {}


def test_the_default_ranges_are_the_iana_ones() -> None:
    assert SSM_RANGES[4] == (ip_network("232.0.0.0/8"),)
    assert SSM_RANGES[6] == tuple(ip_network(f"ff3{x:x}::/32") for x in range(16))
    assert RouterLink(ProtocolTimers(), 4, 3).ssm_ranges == SSM_RANGES[4]
    assert RouterLink(ProtocolTimers(), 6, 2, ssm_ranges=None).ssm_ranges == SSM_RANGES[6]


@pytest.mark.parametrize(
    ("flavor", "ranges", "inside", "outside"),
    [
        (IGMPV3, ["239.1.0.0/16"], ["239.1.1.1", "239.1.255.1"], ["232.1.1.1", "239.2.1.1"]),
        (IGMPV3, ["232.0.0.0/8", "239.255.255.0/24"], ["232.9.9.9", "239.255.255.7"],
         ["239.255.254.7"]),
        (MLDV2, ["ff3e::/32"], ["ff3e::1:1"], ["ff35::1:1", "ff1e::1:1", "ff7e:240::1"]),
        (MLDV2, ["ff0e::1:0/112"], ["ff0e::1:1"], ["ff3e::1:1", "ff0e::2:1"]),
    ],
    ids=["v4-other", "v4-two", "v6-global-only", "v6-other"],
)
def test_the_ranges_can_be_set(
    flavor: Flavor, ranges: list[str], inside: list[str], outside: list[str]
) -> None:
    h = Harness(flavor, ssm_ranges=ranges)
    assert h.link.ssm_ranges == tuple(ip_network(r) for r in ranges)
    for text in inside + outside:
        h.receive(flavor.join(ip(text)), flavor.host(1), at=h.now + 1)
    assert set(h.link.groups()) == {ip(t) for t in outside}
    assert h.link.dropped == {Drop.SSM_EXCLUDE_MODE: len(inside)}


@pytest.mark.parametrize(
    ("family", "ranges", "error"),
    [
        (4, ["ff3e::/32"], ValueError),  # the other family
        (6, [ip_network("232.0.0.0/8")], ValueError),
        (4, ["10.0.0.0/8"], ValueError),  # not multicast
        (4, ["224.0.0.0/3"], ValueError),  # reaches beyond 224/4
        (4, ["232.1.1.1/8"], ValueError),  # host bits set
        (4, ["not a network"], ValueError),
        (4, "232.0.0.0/8", TypeError),  # one network, not a collection of them
    ],
)
def test_bad_ranges_are_refused(family: int, ranges, error: type[Exception]) -> None:
    with pytest.raises(error):
        RouterLink(ProtocolTimers(), family, 3 if family == 4 else 2, ssm_ranges=ranges)
