"""The edge policy alone (``policy``): rules in order, first match wins; three levels, the most
specific with a matching rule deciding; defaults; ssm-only; the limits in force and where each
is set; the rules an earlier one makes unreachable.

    global policy  <  link d1 policy  <  subscriber prefix 10.1.1.0/24 on d1
"""

from __future__ import annotations

import ipaddress
import random

import pytest

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.policy import (
    LINK_MAX_GROUPS,
    MAX_ENTRIES,
    SUBSCRIBER_MAX_GROUP_SOURCES,
    SUBSCRIBER_MAX_GROUPS,
    UNLIMITED,
    Action,
    EdgePolicy,
    Rule,
    RuleSet,
    unreachable,
)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def net(text: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    return None if text is None else ipaddress.ip_network(text)


def rule(action: str, source: str | None = None, group: str | None = None) -> Rule:
    return Rule(Action(action), net(source), net(group), "")


def compiled(text: str, link: str = "d1", family: Family = Family.V4) -> EdgePolicy:
    return EdgePolicy.from_config(parse_config(text), link, family)


def config(policy: str = "", d1: str = "", more: str = "") -> str:
    return (f"igmp: {{}}\nmld: {{}}\n{policy}\n"
            f"downstream:\n  - interface: d1\n{d1}\n  - interface: d2\n{more}\n"
            "upstream: {candidates: [{interface: u1}]}\n")


# --- one list of rules ---------------------------------------------------------------------


def test_the_first_matching_rule_decides_whatever_its_shape() -> None:
    rules = RuleSet([rule("deny", "192.0.2.66", "232.1.1.0/24"),
                     rule("permit", group="232.1.0.0/16"),
                     rule("deny", "192.0.2.0/24"),
                     rule("permit")], Family.V4)
    assert rules.first(ip("192.0.2.66"), ip("232.1.1.9")).action is Action.DENY
    assert rules.first(ip("192.0.2.67"), ip("232.1.1.9")).action is Action.PERMIT
    assert rules.first(ip("192.0.2.7"), ip("239.1.1.1")).action is Action.DENY  # the third
    assert rules.first_index(ip("198.51.100.1"), ip("239.1.1.1")) == 3  # the catch-all


def test_a_rule_naming_a_source_never_matches_an_any_source_request() -> None:
    rules = RuleSet([rule("deny", "192.0.2.0/24", "232.1.0.0/16")], Family.V4)
    assert rules.first(None, ip("232.1.1.1")) is None
    assert rules.first(ip("192.0.2.1"), ip("232.1.1.1")) is not None


def test_rules_of_the_other_family_are_not_compiled_and_those_of_none_are_of_both() -> None:
    rules = [rule("deny", group="ff3e::/16"), rule("permit")]
    v4, v6 = RuleSet(rules, Family.V4), RuleSet(rules, Family.V6)
    assert v4.first(None, ip("232.1.1.1")).action is Action.PERMIT
    assert v6.first(None, ip("ff3e::1")).action is Action.DENY
    assert v6.first(None, ip("ff1e::1")).action is Action.PERMIT


def test_a_thousand_rules_answer_as_a_scan_does() -> None:
    """The compiled lookup is the linear first-match scan, over random rules and requests."""
    rng = random.Random(7)
    rules = []
    for _ in range(1000):
        g = f"232.{rng.randrange(4)}.{rng.randrange(4)}.0/{rng.choice((16, 24))}"
        s = rng.choice([None, f"192.0.{rng.randrange(4)}.0/24", f"192.0.{rng.randrange(4)}.9"])
        rules.append(rule(rng.choice(["permit", "deny"]), s, str(ipaddress.ip_network(
            g, strict=False))))
    compiled_rules = RuleSet(rules, Family.V4)
    for _ in range(2000):
        g = ipaddress.ip_address(f"232.{rng.randrange(5)}.{rng.randrange(5)}.1")
        s = rng.choice([None, ipaddress.ip_address(f"192.0.{rng.randrange(5)}.9")])
        scan = next((i for i, r in enumerate(rules)
                     if (r.source is None or (s is not None and s in r.source))
                     and (r.group is None or g in r.group)), -1)
        assert compiled_rules.first_index(s.packed if s else None, g.packed) == scan


def test_unreachable_rules_are_found_with_the_rule_that_hides_them() -> None:
    rules = [rule("permit", group="232.1.0.0/16"),
             rule("deny", group="232.1.1.0/24"),  # hidden by 0
             rule("deny", "192.0.2.0/24", "232.2.0.0/16"),
             rule("permit", "192.0.2.5", "232.2.1.0/24"),  # hidden by 2
             rule("permit", group="232.2.0.0/16"),  # not hidden: 2 names a source
             rule("deny", "192.0.2.0/24", "232.1.0.0/16"),  # hidden by 0 (any source there)
             rule("deny", group="ff3e::/16"),
             rule("permit"),
             rule("deny", group="232.9.0.0/16"),  # hidden by the catch-all
             rule("deny")]  # hidden by the catch-all
    assert unreachable(rules) == [(1, 0), (3, 2), (5, 0), (8, 7), (9, 7)]


# --- three levels ---------------------------------------------------------------------------

LEVELS = config(
    policy="""policy:
  group-policy:
    - {action: deny, group: 232.0.0.0/8}
    - {action: permit, group: 239.0.0.0/8}""",
    d1="""    policy:
      group-policy:
        - {action: permit, group: 232.1.0.0/16}
        - {action: deny, group: 239.1.0.0/16}
      subscribers:
        - prefix: 10.1.1.0/24
          group-policy:
            - {action: permit, group: 239.1.1.0/24}
            - {action: deny, group: 232.1.2.0/24}
        - prefix: 10.1.1.128/25
          group-policy: [{action: deny, group: 239.1.1.0/24}]""")


@pytest.mark.parametrize(("host", "group", "permit", "where"), [
    # The subscriber's prefix decides where one of its rules matches...
    ("10.1.1.7", "239.1.1.1", True, "downstream[0].policy.subscribers[0].group-policy[0]"),
    ("10.1.1.7", "232.1.2.1", False, "downstream[0].policy.subscribers[0].group-policy[1]"),
    # ... the longest prefix holding the subscriber being its prefix.
    ("10.1.1.200", "239.1.1.1", False, "downstream[0].policy.subscribers[1].group-policy[0]"),
    ("10.1.1.200", "232.1.2.1", True, "downstream[0].policy.group-policy[0]"),
    # Then the link...
    ("10.1.1.7", "239.1.2.1", False, "downstream[0].policy.group-policy[1]"),
    ("10.9.9.9", "232.1.2.1", True, "downstream[0].policy.group-policy[0]"),
    # ... then the global rules.
    ("10.9.9.9", "232.2.1.1", False, "policy.group-policy[0]"),
    ("10.9.9.9", "239.2.1.1", True, "policy.group-policy[1]"),
])
def test_the_most_specific_level_with_a_matching_rule_decides(
    host: str, group: str, permit: bool, where: str,
) -> None:
    policy = compiled(LEVELS)
    verdict = policy.verdict(ip(host), None, ip(group))
    assert (verdict.permit, verdict.where) == (permit, where)
    assert (policy.refuses(ip(host), None, ip(group)) is None) == permit
    assert verdict.decided_by == "rule"
    other = compiled(LEVELS, "d2")  # d2 has only the global rules
    assert other.verdict(ip(host), None, ip(group)).where.startswith("policy.")


def test_the_reason_of_a_refusal_names_the_level() -> None:
    policy = compiled(LEVELS)
    assert policy.refuses(ip("10.1.1.7"), None, ip("232.1.2.1")) is Drop.POLICY_SUBSCRIBER_DENY
    assert policy.refuses(ip("10.1.1.7"), None, ip("239.1.2.1")) is Drop.POLICY_LINK_DENY
    assert policy.refuses(ip("10.1.1.7"), None, ip("232.2.2.1")) is Drop.POLICY_GLOBAL_DENY
    # An unknown subscriber (an anonymous report) has no prefix: the link and global rules.
    assert policy.refuses(None, None, ip("239.1.1.1")) is Drop.POLICY_LINK_DENY


@pytest.mark.parametrize(("glob", "link", "sub", "host", "expected", "where"), [
    (None, None, None, "10.1.1.7", True, ""),
    ("deny", None, None, "10.1.1.7", False, "policy.default"),
    ("deny", "permit", None, "10.1.1.7", True, "downstream[0].policy.default"),
    ("permit", "deny", None, "10.1.1.7", False, "downstream[0].policy.default"),
    ("permit", "permit", "deny", "10.1.1.7", False,
     "downstream[0].policy.subscribers[0].default"),
    ("permit", "permit", "deny", "10.1.2.7", True, "downstream[0].policy.default"),
    ("deny", None, "permit", "10.1.1.7", True, "downstream[0].policy.subscribers[0].default"),
])
def test_with_no_rule_matching_the_most_specific_default_applies(
    glob: str | None, link: str | None, sub: str | None, host: str, expected: bool, where: str,
) -> None:
    text = config(
        policy=f"policy: {{default: {glob}}}" if glob else "",
        d1="    policy:\n" + (f"      default: {link}\n" if link else "")
        + "      subscribers:\n        - {prefix: 10.1.1.0/24"
        + (f", default: {sub}" if sub else "") + "}")
    verdict = compiled(text).verdict(ip(host), ip("192.0.2.1"), ip("232.1.1.1"))
    assert (verdict.permit, verdict.where) == (expected, where)
    if not expected:
        assert verdict.reason is Drop.POLICY_DEFAULT_DENY


def test_a_matching_rule_of_a_less_specific_level_beats_a_default() -> None:
    """The default applies only when no level has a matching rule."""
    text = config(policy="policy:\n  group-policy: [{action: permit, group: 232.1.0.0/16}]",
                  d1="    policy:\n      subscribers: [{prefix: 10.1.1.0/24, default: deny}]")
    policy = compiled(text)
    assert policy.verdict(ip("10.1.1.7"), None, ip("232.1.1.1")).permit
    assert not policy.verdict(ip("10.1.1.7"), None, ip("232.2.1.1")).permit


def test_ssm_only_refuses_any_source_requests_before_any_rule() -> None:
    text = config(policy="policy:\n  ssm-only: true\n  group-policy: [{action: permit}]",
                  d1="    policy: {ssm-only: false}")
    d2 = compiled(text, "d2")
    assert d2.refuses(ip("10.2.0.7"), None, ip("239.1.1.1")) is Drop.POLICY_SSM_ONLY
    assert d2.verdict(ip("10.2.0.7"), None, ip("239.1.1.1")).where == "policy.ssm-only"
    assert d2.refuses(ip("10.2.0.7"), ip("192.0.2.1"), ip("239.1.1.1")) is None
    assert compiled(text, "d1").refuses(ip("10.1.0.7"), None, ip("239.1.1.1")) is None


def test_with_nothing_configured_everything_is_permitted_and_nothing_is_asked() -> None:
    policy = compiled(config())
    assert policy.open
    assert policy.refuses(None, None, ip("239.1.1.1")) is None
    verdict = policy.verdict(ip("10.1.0.7"), None, ip("239.1.1.1"))
    assert verdict.permit
    assert verdict.decided_by == "built-in default"


def test_ipv6_subscriber_prefixes_match_link_local_hosts() -> None:
    text = config(d1="""    policy:
      subscribers:
        - {prefix: "fe80::ff:fe00:d100/120", default: deny, max-groups: 3}
        - {prefix: 10.1.1.0/24, max-groups: 5}""")
    v6 = compiled(text, family=Family.V6)
    assert v6.subscriber(ip("fe80::ff:fe00:d117")) is not None
    assert v6.refuses(ip("fe80::ff:fe00:d117"), None, ip("ff1e::1")) is Drop.POLICY_DEFAULT_DENY
    assert v6.refuses(ip("fe80::1"), None, ip("ff1e::1")) is None
    assert v6.subscriber_limits(ip("fe80::ff:fe00:d117")) == (3, SUBSCRIBER_MAX_GROUP_SOURCES)
    assert compiled(text).subscriber_limits(ip("10.1.1.9")) == (5, SUBSCRIBER_MAX_GROUP_SOURCES)


# --- limits --------------------------------------------------------------------------------


def test_limits_are_bounded_by_default() -> None:
    policy = compiled(config())
    assert [(lv.scope, lv.name, lv.value, lv.where) for lv in policy.limits_for(ip("10.1.0.7"))] \
        == [("subscriber", "max-groups", SUBSCRIBER_MAX_GROUPS, ""),
            ("subscriber", "max-group-sources", SUBSCRIBER_MAX_GROUP_SOURCES, ""),
            ("link", "max-groups", LINK_MAX_GROUPS, ""),
            ("proxy", "max-entries", MAX_ENTRIES, "")]
    assert all(lv.value < UNLIMITED for lv in policy.limits_for(ip("10.1.0.7")))
    # An unknown subscriber is held to the link's and the proxy's only.
    assert [lv.scope for lv in policy.limits_for(None)] == ["link", "proxy"]


def test_each_limit_comes_from_the_most_specific_level_that_sets_it() -> None:
    text = config(
        policy="""policy:
  max-entries: unlimited
  max-groups-per-interface: 1000
  subscriber: {max-groups: 20, max-group-sources: 5}""",
        d1="""    policy:
      max-groups: 300
      subscriber: {max-groups: 10}
      subscribers: [{prefix: 10.1.1.0/24, max-group-sources: 2}]""")
    d1, d2 = compiled(text), compiled(text, "d2")
    assert d1.subscriber_limits(ip("10.1.1.7")) == (10, 2)
    assert d1.subscriber_limits(ip("10.1.2.7")) == (10, 5)
    assert d2.subscriber_limits(ip("10.1.1.7")) == (20, 5)
    assert (d1.max_groups, d2.max_groups, d1.max_entries) == (300, 1000, UNLIMITED)
    where = {f"{lv.scope} {lv.name}": lv.where for lv in d1.limits_for(ip("10.1.1.7"))}
    assert where == {
        "subscriber max-groups": "downstream[0].policy.subscriber.max-groups",
        "subscriber max-group-sources": "downstream[0].policy.subscribers[0].max-group-sources",
        "link max-groups": "downstream[0].policy.max-groups",
        "proxy max-entries": "policy.max-entries"}
    assert "unlimited" in d1.limits["proxy max-entries"].describe()


def test_exceptions_of_the_link_add_to_the_global_ones() -> None:
    text = config(policy="policy:\n  exceptions: [{group: 232.0.0.1}]",
                  d1="    policy:\n      exceptions: [{source: 192.0.2.1, group: 232.0.0.2}]")
    d1, d2 = compiled(text), compiled(text, "d2")
    assert d1.exception(None, ip("232.0.0.1")).where == "policy.exceptions[0]"
    assert d1.exception(ip("192.0.2.1"), ip("232.0.0.2")).where == "downstream[0].policy" \
        ".exceptions[0]"
    assert d1.exception(None, ip("232.0.0.2")) is None  # a source pattern: no any-source join
    assert d2.exception(ip("192.0.2.1"), ip("232.0.0.2")) is None
