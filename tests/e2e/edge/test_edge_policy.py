"""Edge policy and limits end to end (RFC 8313 §6.1; README, "Policy and limits"): what a link
or a subscriber prefix may join, SSM only, a subscriber's max-groups with a channel that never
counts, a flooding host held to its report rate; kernel hosts and forged reports on d1 and d2,
the proxy's reports watched at prov1, refusals counted in status by reason."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from edge_lab import drops
from forged import ALLOW, TO_EX, TO_IN, igmpv3_report

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.proxy import Proxy
from mcastproxy.drops import Drop

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
policy:
  default: deny
  group-policy:
    - {action: permit, source: 10.0.9.0/24, group: 232.1.0.0/16}
    - {action: permit, group: 239.1.0.0/16}
  subscriber: {max-groups: 3}
  exceptions: [{source: 10.0.9.1, group: 232.1.0.1}]
  report-rate: {subscriber: 5}
downstream:
  - interface: d1
    fast-leave: true
    policy:
      ssm-only: true
      group-policy: [{action: deny, source: 10.0.9.0/24, group: 232.1.200.0/24}]
  - interface: d2
    fast-leave: true
    policy:
      subscribers:
        - {prefix: 10.1.2.13/32, group-policy: [{action: deny, group: 239.1.66.0/24}]}
upstream:
  candidates: [{interface: u1}]
"""


def refused(proxy: Proxy, link: str, reason: Drop) -> int:
    return drops(proxy, link).get(reason.value, 0)


def test_what_a_link_and_a_subscriber_may_join(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    sub1, sub3 = lab.receiver("sub1", "eth0"), lab.receiver("sub3", "eth0")
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.5", "10.0.9.1")  # permitted globally
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.200.5", "10.0.9.1")  # d1 denies it
    sub1.join(JoinMode.IGMPV3_ASM, "239.1.0.5")  # any-source: d1 is SSM only
    sub1.join(JoinMode.IGMPV3_SSM, "232.9.0.1", "10.0.9.1")  # no rule: the default, deny
    sub3.join(JoinMode.IGMPV3_ASM, "239.1.0.6")  # permitted on d2
    sub3.join(JoinMode.IGMPV3_ASM, "239.1.66.1")  # sub3's prefix denies it
    wait_until(lambda: proxy.joined("232.1.0.5") == {"u1"}
               and proxy.joined("239.1.0.6") == {"u1"}, 5)
    wait_until(lambda: (refused(proxy, "d1", Drop.POLICY_LINK_DENY),
                        refused(proxy, "d1", Drop.POLICY_SSM_ONLY),
                        refused(proxy, "d1", Drop.POLICY_DEFAULT_DENY),
                        refused(proxy, "d2", Drop.POLICY_SUBSCRIBER_DENY)) >= (1, 1, 1, 1), 5,
               message=lambda: f"{drops(proxy, 'd1')} {drops(proxy, 'd2')}")
    for group in ("232.1.200.5", "239.1.0.5", "232.9.0.1", "239.1.66.1"):
        assert not proxy.joined(group), group
    admission = proxy.status()["downstream"]["d2/igmp"]["admission"]
    assert admission["refused"]["10.1.2.13/32"] == {
        Drop.POLICY_SUBSCRIBER_DENY.value: refused(proxy, "d2", Drop.POLICY_SUBSCRIBER_DENY)}


def test_a_subscribers_limit_spares_the_exception_and_a_leave_frees_room(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    host = "10.1.2.13"
    channels = [f"232.1.0.{i}" for i in range(2, 6)]  # four: one over the limit of three
    lab.inject("sub3", "eth0", [igmpv3_report(host, [(ALLOW, g, ["10.0.9.1"])])
                                for g in channels])
    wait_until(lambda: refused(proxy, "d2", Drop.SUBSCRIBER_MAX_GROUPS) == 1, 5)
    assert sum(bool(proxy.joined(g)) for g in channels) == 3
    # The exception (the mandatory channel) is admitted over the limit.
    lab.inject("sub3", "eth0", [igmpv3_report(host, [(ALLOW, "232.1.0.1", ["10.0.9.1"])])])
    wait_until(lambda: proxy.joined("232.1.0.1") == {"u1"}, 5)
    # A leave frees room for the one refused.
    held = next(g for g in channels if proxy.joined(g))
    left_out = next(g for g in channels if not proxy.joined(g))
    lab.inject("sub3", "eth0", [igmpv3_report(host, [(TO_IN, held, ())])])  # a leave
    wait_until(lambda: not proxy.joined(held), 5)
    lab.inject("sub3", "eth0", [igmpv3_report(host, [(ALLOW, left_out, ["10.0.9.1"])])])
    wait_until(lambda: proxy.joined(left_out) == {"u1"}, 5)


def test_a_flooding_host_is_held_to_its_report_rate(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    flood = [igmpv3_report("10.1.2.13", [(TO_EX, "239.1.0.9", ())])] * 200
    lab.inject("sub3", "eth0", flood)
    # A burst of 10 (two seconds of 5 a second) is taken, the rest not even decoded.
    wait_until(lambda: refused(proxy, "d2", Drop.SUBSCRIBER_RATE) >= 180, 5)
    assert refused(proxy, "d2", Drop.SUBSCRIBER_RATE) <= 190
    assert proxy.joined("239.1.0.9") == {"u1"}


def test_a_static_group_is_joined_with_no_subscriber_and_outlives_a_leave(edge: Edge) -> None:
    lab, proxy = edge("""
igmp: {version: 3}
downstream:
  - interface: d1
    static-group: [{group: 239.1.0.77}, {group: 232.1.0.77, source: 10.0.9.1}]
upstream:
  candidates: [{interface: u1}]
""")
    wait_until(lambda: proxy.joined("239.1.0.77") == {"u1"}
               and proxy.joined("232.1.0.77") == {"u1"}, 5)
    assert proxy.status()["downstream"]["d1/igmp"]["groups"]["239.1.0.77"]["subscribers"] == [
        "static"]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_ASM, "239.1.0.77")
    wait_until(lambda: "10.1.1.11" in proxy.status()["downstream"]["d1/igmp"]["groups"][
        "239.1.0.77"]["subscribers"], 5)
    cap = lab.capture("sub2", "eth0")
    rx.leave("239.1.0.77")  # the last host: queries (no fast leave), no answer but static's
    group = bytes((239, 1, 0, 77))

    def queries() -> int:
        return sum(1 for p, m in cap.messages() if p.src == "10.1.1.1"
                   and type(m).__name__ == "Query" and m.group == group)

    wait_until(lambda: queries() >= 2, 5)  # Last Member Query Count (2), 1 s apart
    last = max(p.kernel_ns or 0 for p, m in cap.messages() if p.src == "10.1.1.1"
               and type(m).__name__ == "Query" and m.group == group)
    # A Last Member Query Interval after the last query the group would end; the static
    # member holds it (a group gone by then fails the wait: it never comes back).
    wait_until(lambda: time.time_ns() > last + 1_500_000_000
               and proxy.joined("239.1.0.77") == {"u1"}
               and proxy.status()["downstream"]["d1/igmp"]["groups"]["239.1.0.77"][
                   "subscribers"] == ["static"], 5)
