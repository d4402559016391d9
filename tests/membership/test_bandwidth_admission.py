"""Bandwidth admission (``bandwidth``, through ``admission``): channels admitted against the
subscriber's and the link's max-bandwidth, mandatory channels always, counts following state.

    host(1..n) --+
    attacker ----+-- link (max-bandwidth) -- us      table: channel -> rate, class
    0.0.0.0 -----+
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from membership_harness import (
    ALLOW,
    BLOCK,
    FLAVORS,
    GMI,
    IS_IN,
    SOURCE_FILTERING,
    TO_EX,
    TO_IN,
    Flavor,
    Harness,
)
from pydantic import ValidationError

from mcastproxy.admission import Admission, Room
from mcastproxy.bandwidth import format_rate, parse_rate
from mcastproxy.config import ConfigError, parse_config
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership import JoinRefused
from mcastproxy.policy import EdgePolicy
from mcastproxy.policyconfig import GlobalPolicy

M = 1_000_000
# Every group of the harness (239.1.1.n, ff0e::1:n) is rated 4M; group 9 is mandatory 2M.
TABLE = {
    Family.V4: "{channels: [{group: 239.1.1.9/32, rate: 2M, class: mandatory}, "
               "{group: 239.1.1.0/24, rate: 4M}]}",
    Family.V6: "{channels: [{group: 'ff0e::1:9/128', rate: 2M, class: mandatory}, "
               "{group: 'ff0e::1:0/112', rate: 4M}]}",
}


def policy(flavor: Flavor, d1: str = "", glob: str = "") -> EdgePolicy:
    table = TABLE[flavor.family]
    yaml = (f"igmp: {{}}\nmld: {{}}\npolicy: {{bandwidth: {table}{', ' + glob if glob else ''}}}\n"
            f"downstream: [{{interface: d1{', policy: ' + d1 if d1 else ''}}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    return EdgePolicy.from_config(parse_config(yaml), "d1", flavor.family)


def harness(flavor: Flavor, d1: str = "", glob: str = "", link: Room | None = None) -> Harness:
    return Harness(flavor, admission=Admission(policy(flavor, d1, glob), link))


def adm_of(h: Harness) -> Admission:
    adm = h.link.admission
    assert adm is not None
    return adm


def link_used(h: Harness) -> int:
    return adm_of(h).link.bandwidth.used


def refused(out: list[object]) -> list[tuple[bytes | None, Drop]]:
    return [(o.source, o.reason) for o in out if isinstance(o, JoinRefused)]


def sources_join(flavor: Flavor, group: bytes, *ns: int, rtype=ALLOW):
    return flavor.report(flavor.record(rtype, group, flavor.sources(*ns)))


# --- rates as written -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "bps"), [
    (8_000_000, 8 * M), ("8M", 8 * M), ("2.5M", 2_500_000), ("500k", 500_000),
    ("500K", 500_000), ("1G", 1_000_000_000), (" 3m ", 3 * M), (0, 0), (1.5, 1)])
def test_rates_are_read_as_operators_write_them(text: object, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("bad", ["fast", "", "M", "8MB", True, -1, "-2M", "2T", 1e13,
                                 float("nan"), [], None])
def test_a_bad_rate_says_what_a_rate_is(bad: object) -> None:
    with pytest.raises(ValueError, match=r"rate|bits a second"):
        parse_rate(bad)


def test_rates_are_shown_as_operators_write_them() -> None:
    assert [format_rate(r) for r in (8 * M, 2_500_000, 500_000, 999)] == [
        "8Mbit/s", "2.5Mbit/s", "500kbit/s", "999bit/s"]


@pytest.mark.parametrize(("section", "field"), [
    ("{bandwidth: {channels: [{rate: 2M}]}}", "policy.bandwidth.channels[0]"),
    ("{bandwidth: {channels: [{group: 239.1.1.0/24, rate: fast}]}}",
     "policy.bandwidth.channels[0].rate"),
    ("{bandwidth: {channels: [{group: 239.1.1.0/24, rate: 1M, class: vip}]}}",
     "policy.bandwidth.channels[0].class"),
    ("{bandwidth: {channels: [{group: 10.0.0.0/8, rate: 1M}]}}",
     "policy.bandwidth.channels[0].group"),
    ("{bandwidth: {channels: [{group: 239.1.1.0/24, rate: 1M}, "
     "{group: 239.1.1.0/25, rate: 2M}]}}", "policy.bandwidth.channels[1]"),
    ("{bandwidth: {default-rate: -1}}", "policy.bandwidth.default-rate"),
    ("{max-bandwidth-per-interface: lots}", "policy.max-bandwidth-per-interface"),
    ("{subscriber: {max-bandwidth: -5M}}", "policy.subscriber.max-bandwidth"),
])
def test_a_bad_bandwidth_setting_is_refused_with_its_field(section: str, field: str) -> None:
    yaml = (f"policy: {section}\ndownstream: [{{interface: d1}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    with pytest.raises(ConfigError) as info:
        parse_config(yaml)
    assert field in {i.path for i in info.value.issues}, info.value


def test_budgets_default_to_unlimited_and_take_unlimited() -> None:
    assert GlobalPolicy().max_bandwidth_per_interface is None
    glob = GlobalPolicy.model_validate({"max-bandwidth-per-interface": "unlimited"})
    assert glob.max_bandwidth_per_interface == "unlimited"
    with pytest.raises(ValidationError):
        GlobalPolicy.model_validate({"bandwidth": {"channels": [{"group": "239.1.1.0/24"}]}})


def test_no_table_means_no_bandwidth_admission() -> None:
    yaml = ("igmp: {}\npolicy: {max-bandwidth-per-interface: 1M}\n"
            "downstream: [{interface: d1}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    pol = EdgePolicy.from_config(parse_config(yaml), "d1", Family.V4)
    assert pol.rates is None
    assert Admission(pol).cac is None


# --- the link's budget ------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_channel_over_the_links_budget_is_refused_and_what_flows_is_not(
        flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 10M}")
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    h.receive(flavor.join(flavor.group(2)), flavor.host(2))
    assert link_used(h) == 8 * M
    out = h.receive(flavor.join(flavor.group(3)), flavor.host(3))
    assert refused(out) == [(None, Drop.LINK_MAX_BANDWIDTH)]
    assert h.link.group_state(flavor.group(3)) is None
    (notice,) = [o for o in out if isinstance(o, JoinRefused)]
    assert "link max-bandwidth 10Mbit/s" in notice.decided_by
    assert "8Mbit/s in use" in notice.decided_by
    # A channel the link carries already costs no new copy: admitted.
    out = h.receive(flavor.join(flavor.group(1)), flavor.host(3))
    assert refused(out) == []
    assert flavor.host(3) in h.link.subscribers(flavor.group(1))
    assert link_used(h) == 8 * M
    assert adm_of(h).refused[Drop.LINK_MAX_BANDWIDTH] == 1


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_mandatory_channel_is_admitted_over_budget_and_counted(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 8M}")
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    h.receive(flavor.join(flavor.group(2)), flavor.host(2))
    out = h.receive(flavor.join(flavor.group(9)), flavor.host(3))
    assert refused(out) == []
    assert link_used(h) == 10 * M  # over the budget: a mandatory channel makes its room
    # ... so the next optional channel needs what it left:
    h.receive(flavor.leave(flavor.group(2)), flavor.host(2))
    h.advance(h.now + GMI + 30)  # whatever queries the leave took, it is gone
    h.receive(flavor.join(flavor.group(1)), flavor.host(1))
    h.receive(flavor.join(flavor.group(9)), flavor.host(3))
    assert link_used(h) == 6 * M
    out = h.receive(flavor.join(flavor.group(4)), flavor.host(4))
    assert refused(out) == [(None, Drop.LINK_MAX_BANDWIDTH)]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_room_comes_back_when_a_channel_leaves_the_link(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 4M}")
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    assert refused(h.receive(flavor.join(flavor.group(2)), flavor.host(2))) != []
    h.advance(h.now + GMI + 1)  # host 1 never reports again: its state expires
    assert link_used(h) == 0
    assert adm_of(h).cac is not None
    assert adm_of(h).cac.used == {}
    assert refused(h.receive(flavor.join(flavor.group(2)), flavor.host(2))) == []
    assert link_used(h) == 4 * M


def test_the_links_budget_spans_both_families() -> None:
    v4, v6 = FLAVORS[1], FLAVORS[3]
    room = Room(10_000)
    h4 = harness(v4, d1="{max-bandwidth: 8M}", link=room)
    h6 = harness(v6, d1="{max-bandwidth: 8M}", link=room)
    h4.receive(v4.join(v4.group(1)), v4.host(1), at=1)
    h6.receive(v6.join(v6.group(1)), v6.host(1), at=1)
    assert room.bandwidth.used == 8 * M
    out = h6.receive(v6.join(v6.group(2)), v6.host(2))
    assert refused(out) == [(None, Drop.LINK_MAX_BANDWIDTH)]


# --- the subscriber's budget ------------------------------------------------------------------


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_sources_over_the_subscribers_budget_are_taken_out_lowest_first_kept(
        flavor: Flavor) -> None:
    h = harness(flavor, d1="{subscriber: {max-bandwidth: 9M}}")
    g, h1 = flavor.group(1), flavor.host(1)
    out = h.receive(sources_join(flavor, g, 1, 2, 3), h1, at=1)
    assert refused(out) == [(flavor.source(3), Drop.SUBSCRIBER_MAX_BANDWIDTH)]
    sub = h.link.subscriber(g, h1)
    assert sub is not None
    assert sub.sources == flavor.sources(1, 2)
    cac = adm_of(h).cac
    assert cac is not None
    assert cac.used == {h1: 8 * M}
    # Another subscriber has its own budget.
    assert refused(h.receive(sources_join(flavor, g, 3), flavor.host(2))) == []


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_replacement_is_checked_net_of_what_it_gives_up(flavor: Flavor) -> None:
    h = harness(flavor, d1="{subscriber: {max-bandwidth: 5M}}")
    g, h1 = flavor.group(1), flavor.host(1)
    h.receive(sources_join(flavor, g, 1), h1, at=1)
    # TO_IN({S2}) replaces S1 by S2: 4M for 4M, within 5M.
    out = h.receive(sources_join(flavor, g, 2, rtype=TO_IN), h1)
    assert refused(out) == []
    sub = h.link.subscriber(g, h1)
    assert sub is not None
    assert sub.sources == flavor.sources(2)
    # ALLOW({S3}) adds: over.
    assert refused(h.receive(sources_join(flavor, g, 3), h1)) == [
        (flavor.source(3), Drop.SUBSCRIBER_MAX_BANDWIDTH)]
    # TO_EX({}) (the any-source join) gives up S2 for (*,G): 4M for 4M.
    assert refused(h.receive(flavor.report(flavor.record(TO_EX, g)), h1)) == []
    # BLOCK and IS_IN of nothing are never refused.
    assert refused(h.receive(sources_join(flavor, g, 2, rtype=BLOCK), h1)) == []
    assert refused(h.receive(flavor.report(flavor.record(TO_IN, g)), h1)) == []


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_subscriber_prefix_sets_its_own_budget(flavor: Flavor) -> None:
    prefix = "10.1.1.0/24" if flavor.family is Family.V4 else "'fe80::1:0/112'"
    h = harness(flavor, d1=f"{{subscribers: [{{prefix: {prefix}, max-bandwidth: 3M}}]}}")
    out = h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    assert refused(out) == [(None, Drop.SUBSCRIBER_MAX_BANDWIDTH)]
    (notice,) = [o for o in out if isinstance(o, JoinRefused)]
    assert "subscriber max-bandwidth 3Mbit/s" in notice.decided_by
    assert refused(h.receive(flavor.join(flavor.group(9)), flavor.host(1))) == []  # mandatory


# --- anonymous reports --------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_an_anonymous_report_gets_only_what_flows_where_the_link_has_a_budget(
        flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 100M}")
    anon = flavor.unspecified
    out = h.receive(flavor.join(flavor.group(1)), anon, at=1)
    if flavor.family is Family.V6:
        assert h.link.group_state(flavor.group(1)) is None  # MLD from :: is invalid anyway
        return
    assert refused(out) == [(None, Drop.UNACCOUNTED_BANDWIDTH)]
    h.receive(flavor.join(flavor.group(1)), flavor.host(1))
    assert refused(h.receive(flavor.join(flavor.group(1)), anon)) == []
    assert link_used(h) == 4 * M


def test_without_a_link_budget_an_anonymous_report_is_not_refused() -> None:
    flavor = FLAVORS[1]
    h = harness(flavor)
    assert refused(h.receive(flavor.join(flavor.group(1)), flavor.unspecified, at=1)) == []


# --- counts follow state --------------------------------------------------------------------------


def expected_use(h: Harness, flavor: Flavor) -> tuple[int, dict[bytes, int]]:
    """The link's and each subscriber's use, computed from the link's state."""
    rate = {flavor.group(n): (2 * M if n == 9 else 4 * M) for n in range(1, 10)}
    channels: set[tuple[bytes | None, bytes]] = set()
    per: dict[bytes, int] = {}
    for g in h.link.groups():
        for host, sub in h.link.subscribers(g).items():
            mine = ({(None, g)} if sub.filter_mode.name == "EXCLUDE"
                    else {(s, g) for s in sub.sources})
            channels |= mine
            per[host] = per.get(host, 0) + rate[g] * len(mine)
    return sum(rate[g] for _, g in channels), {h: n for h, n in per.items() if n}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 4), st.integers(1, 9),
                          st.frozensets(st.integers(1, 4), max_size=3), st.integers(0, 200)),
                max_size=40),
       st.sampled_from(SOURCE_FILTERING))
def test_counts_always_equal_what_the_state_holds(ops, flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 30M, subscriber: {max-bandwidth: 14M}}")
    kinds = [IS_IN, TO_IN, ALLOW, BLOCK, TO_EX, IS_IN, TO_IN]
    for kind, host, group, sources, wait in ops:
        h.advance(h.now + wait)
        record = flavor.record(kinds[kind], flavor.group(group), flavor.sources(*sources))
        h.receive(flavor.report(record), flavor.host(host))
        cac = adm_of(h).cac
        assert cac is not None
        link, per = expected_use(h, flavor)
        assert (link_used(h), cac.used) == (link, per)
        assert link_used(h) <= 30 * M + 2 * M * 4  # only mandatory channels go over
    h.advance(h.now + GMI + 100)
    assert link_used(h) == 0


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_new_table_counts_the_state_again(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 100M}")
    h.receive(sources_join(flavor, flavor.group(1), 1, 2), flavor.host(1), at=1)
    assert link_used(h) == 8 * M
    table = ("{channels: [{group: " + ("239.1.1.0/24" if flavor.family is Family.V4
                                       else "'ff0e::1:0/112'") + ", rate: 1M}]}")
    yaml = (f"igmp: {{}}\nmld: {{}}\npolicy: {{bandwidth: {table}}}\n"
            "downstream: [{interface: d1, policy: {max-bandwidth: 100M}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    h.link.set_policy(EdgePolicy.from_config(parse_config(yaml), "d1", flavor.family))
    assert link_used(h) == 2 * M
    cac = adm_of(h).cac
    assert cac is not None
    assert cac.used == {flavor.host(1): 2 * M}


# --- an attacker ---------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_forged_subscribers_cannot_take_the_link_past_its_budget(flavor: Flavor) -> None:
    h = harness(flavor, d1="{max-bandwidth: 20M}")
    rng = random.Random(7)
    for i in range(1, 250):
        h.receive(flavor.join(flavor.group(rng.randrange(1, 9))), flavor.host(i % 250 + 1),
                  at=1 + i * 0.001)
    assert link_used(h) <= 20 * M
    adm = adm_of(h)
    assert len(h.link.groups()) == 5  # 5 x 4M
    assert adm.refused[Drop.LINK_MAX_BANDWIDTH] > 0
    assert h.link.group_state(flavor.group(9)) is None  # never asked here


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_one_subscriber_asking_many_sources_holds_its_budget(flavor: Flavor) -> None:
    h = harness(flavor, d1="{subscriber: {max-bandwidth: 12M}}")
    report = flavor.report(*(flavor.record(IS_IN, flavor.group(n), flavor.sources(1, 2, 3, 4))
                             for n in range(1, 9)))
    h.receive(report, flavor.host(1), at=1)
    cac = adm_of(h).cac
    assert cac is not None
    assert cac.used[flavor.host(1)] == 12 * M


# --- preemption --------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_a_mandatory_channel_preempts_the_least_watched_optional_one(flavor: Flavor) -> None:
    h = Harness(flavor, admission=Admission(preempting(flavor, "{max-bandwidth: 8M}")))
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    h.receive(flavor.join(flavor.group(1)), flavor.host(2))  # two watch group 1
    h.receive(flavor.join(flavor.group(2)), flavor.host(3))  # one watches group 2
    assert link_used(h) == 8 * M
    out = h.receive(flavor.join(flavor.group(9)), flavor.host(4))  # mandatory 2M
    assert refused(out) == [(None, Drop.PREEMPTED)]
    assert h.link.group_state(flavor.group(2)) is None  # the least watched: gone
    assert h.link.group_state(flavor.group(1)) is not None
    assert flavor.host(4) in h.link.subscribers(flavor.group(9))
    assert link_used(h) == 6 * M
    # Its subscriber asks again: 4M does not fit in the 2M left.
    assert refused(h.receive(flavor.join(flavor.group(2)), flavor.host(3))) == [
        (None, Drop.LINK_MAX_BANDWIDTH)]


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_preemption_takes_no_more_than_the_mandatory_channel_needs(flavor: Flavor) -> None:
    h = Harness(flavor, admission=Admission(preempting(flavor, "{max-bandwidth: 12M}")))
    for n in (1, 2, 3):
        h.receive(flavor.join(flavor.group(n)), flavor.host(n), at=n)
    out = h.receive(sources_join(flavor, flavor.group(9), 1), flavor.host(5))  # 2M
    assert refused(out) == [(None, Drop.PREEMPTED)]
    assert sum(h.link.group_state(flavor.group(n)) is not None for n in (1, 2, 3)) == 2
    assert link_used(h) == 10 * M
    assert adm_of(h).evictions == []
    cac = adm_of(h).cac
    assert cac is not None
    assert cac.victims == []


def test_without_preempt_nothing_is_taken() -> None:
    flavor = FLAVORS[1]
    h = harness(flavor, d1="{max-bandwidth: 8M}")
    h.receive(flavor.join(flavor.group(1)), flavor.host(1), at=1)
    h.receive(flavor.join(flavor.group(2)), flavor.host(2))
    assert refused(h.receive(flavor.join(flavor.group(9)), flavor.host(3))) == []
    assert link_used(h) == 10 * M


def test_a_static_group_is_never_preempted() -> None:
    flavor = FLAVORS[1]
    h = Harness(flavor, admission=Admission(preempting(flavor, "{max-bandwidth: 4M}")))
    h.link.set_static({flavor.group(1): None}, 1)
    assert link_used(h) == 4 * M
    assert refused(h.receive(flavor.join(flavor.group(9)), flavor.host(3), at=2)) == []
    assert h.link.group_state(flavor.group(1)) is not None
    assert flavor.host(3) in h.link.subscribers(flavor.group(9))


def preempting(flavor: Flavor, d1: str) -> EdgePolicy:
    table = TABLE[flavor.family].replace("{channels:", "{preempt: true, channels:")
    yaml = (f"igmp: {{}}\nmld: {{}}\npolicy: {{bandwidth: {table}}}\n"
            f"downstream: [{{interface: d1, policy: {d1}}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    return EdgePolicy.from_config(parse_config(yaml), "d1", flavor.family)
