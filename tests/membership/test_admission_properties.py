"""Property tests of admission on the router side: random records of every type from a few
subscribers and from nobody, time advances, and new policies; after every step the counts equal
what the link holds (counts follow state and never drift), no limit is exceeded, and no
refused source is ever held.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from membership_harness import FLAVORS, Flavor, Harness

from mcastproxy.admission import Admission
from mcastproxy.config import parse_config
from mcastproxy.membership import FilterMode
from mcastproxy.policy import EdgePolicy
from mcastproxy.wire.messages import GroupRecord

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
STEPS = [0.0, 0.5, 1.0, 2.5, 60.0, 130.0, 300.0]
MAX_GROUPS, MAX_SOURCES, LINK_GROUPS = 2, 2, 3


def text(flavor: Flavor, kind: str, n: int) -> str:
    import ipaddress  # noqa: PLC0415

    address = flavor.group(n) if kind == "group" else flavor.source(n)
    return str(ipaddress.ip_address(address))


def policy(flavor: Flavor, exceptions: list[tuple[int | None, int]]) -> EdgePolicy:
    """Limits of 2 groups of 2 sources a subscriber, 3 groups on the link; source 4 denied;
    the exception channels given ((source or None, group))."""
    patterns = ", ".join(
        "{" + (f"source: {text(flavor, 'source', s)!r}, " if s is not None else "")
        + f"group: {text(flavor, 'group', g)!r}}}" for s, g in exceptions)
    yaml = (f"igmp: {{}}\nmld: {{}}\ndownstream: [{{interface: d1, policy: {{"
            f"max-groups: {LINK_GROUPS}, subscriber: {{max-groups: {MAX_GROUPS}, "
            f"max-group-sources: {MAX_SOURCES}}}, exceptions: [{patterns}], "
            f"group-policy: [{{action: deny, source: {text(flavor, 'source', 4)!r}}}]}}}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    return EdgePolicy.from_config(parse_config(yaml), "d1", flavor.family)


exceptions = st.lists(st.tuples(st.none() | st.integers(1, 4), st.integers(1, 4)),
                      max_size=2, unique_by=lambda e: e[1])  # none within another
records = st.tuples(st.integers(1, 6), st.integers(1, 4),
                    st.frozensets(st.integers(1, 4), max_size=4))
steps = st.lists(st.one_of(
    st.tuples(st.just("report"), st.integers(0, 3), st.lists(records, min_size=1, max_size=3)),
    st.tuples(st.just("wait"), st.sampled_from(STEPS)),
    st.tuples(st.just("policy"), exceptions),
), max_size=30)


def check(h: Harness, adm: Admission, fixed: bool) -> None:
    flavor, link = h.flavor, h.link
    denied = flavor.source(4)
    held: dict[bytes, int] = {}
    counted_groups = 0
    for g in link.groups():
        subs = link.subscribers(g)
        counts = False
        for host, state in subs.items():
            exclude = state.filter_mode is FilterMode.EXCLUDE
            if adm.group_counts(g, exclude, state.sources):
                held[host] = held.get(host, 0) + 1
                counts = True
                if fixed and not exclude:
                    # Sources that count, within max-group-sources.
                    assert sum(1 for s in state.sources if adm.policy.exception(s, g) is None) \
                        <= MAX_SOURCES
            if not exclude:
                assert denied not in state.sources
        counted_groups += counts
        mode, sources = link.forwarded(g)
        if mode is FilterMode.INCLUDE:
            assert denied not in sources
    assert adm.held == held
    assert counted_groups <= adm.groups <= len(link.groups())
    assert adm.link.used == adm.groups == adm.entries.used
    if fixed:
        assert all(n <= MAX_GROUPS for n in held.values())
        assert adm.groups <= LINK_GROUPS


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
@given(first=exceptions, script=steps)
@SETTINGS
def test_counts_follow_state_and_limits_hold(flavor: Flavor, first: list[tuple[int | None, int]],
                                            script: list[tuple[object, ...]]) -> None:
    adm = Admission(policy(flavor, first))
    h = Harness(flavor, admission=adm)
    fixed = True
    for step in script:
        if step[0] == "report":
            _, who, recs = step
            host = flavor.unspecified if who == 0 else flavor.host(who)
            h.receive(flavor.report(*(GroupRecord(rtype, flavor.group(g), tuple(
                sorted(flavor.source(s) for s in srcs))) for rtype, g, srcs in recs)), host)
        elif step[0] == "wait":
            h.advance(h.now + float(step[1]))  # type: ignore[arg-type]
        else:
            h.link.set_policy(policy(flavor, step[1]))  # type: ignore[arg-type]
            fixed = False  # what now counts may exceed limits that held before
        check(h, adm, fixed)
    h.advance(h.now + 1000)
    check(h, adm, fixed)
    assert (adm.held, adm.groups, adm.link.used) == ({}, 0, 0)
