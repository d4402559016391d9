"""Edge policy and limits through the engine on a virtual clock (README, "Policy and limits"):
a refused join makes no state, so nothing of it goes upstream or into a route; refusals are
counted per link and reason, logged for the first few subscribers, and shown in status; the
counts that span links and families are shared; a reload applies a new policy at once.

    u1 (upstream) -- proxy -- d1: 10.1.0.1/24, fe80::d1:1   hosts 10.1.0.7 / fe80::d1:7, ...
                          \\- d2: 10.2.0.1/24, fe80::d2:1   host 10.2.0.7 / fe80::d2:7
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from harness import T, World, ip

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.events import ConfigChanged
from mcastproxy.policy import UNLIMITED
from mcastproxy.status import document
from mcastproxy.wire.messages import GroupRecord


@dataclass(frozen=True)
class Fam:
    v: int
    host: str
    other: str  # a host on d2
    denied: str  # a group the policy denies
    allowed: str
    deny_prefix: str
    source: str

    def group(self, i: int) -> str:
        return f"239.2.{i // 256}.{i % 256}" if self.v == 4 else f"ff1e::2:{i:x}"

    def spoofed(self, i: int) -> str:
        return f"10.1.{1 + i // 250}.{1 + i % 250}" if self.v == 4 else f"fe80::7:{i:x}"


FAMS = {
    4: Fam(4, "10.1.0.7", "10.2.0.7", "239.255.1.1", "239.1.1.1", "239.255.0.0/16",
           "192.0.2.99"),
    6: Fam(6, "fe80::d1:7", "fe80::d2:7", "ff1e::ff:1", "ff1e::1:1", "ff1e::ff:0/112",
           "2001:db8::99"),
}


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def config(policy: str = "", d1: str = "") -> str:
    return ("igmp: {version: 3}\nmld: {version: 2}\n"
            f"{'policy: ' + policy if policy else ''}\n"
            f"downstream: [{{interface: d1{', policy: ' + d1 if d1 else ''}}}, "
            "{interface: d2}]\nupstream: {candidates: [{interface: u1}]}\n")


def joined_upstream(w: World) -> list[str]:
    return [g for t, g, _ in w.upstream_records("u1") if t is T.CHANGE_TO_EXCLUDE_MODE]


def test_a_refused_join_sends_nothing_upstream(fam: Fam) -> None:
    w = World.make(config(policy=f"{{group-policy: [{{action: deny, group: "
                                 f"{fam.deny_prefix!r}}}]}}"))
    for _ in range(3):
        w.join("d1", fam.host, fam.denied)
    assert w.upstream_records("u1") == []
    w.flow("u1", fam.source, fam.denied)
    assert not w.route("u1", fam.source, fam.denied)
    assert w.engine.dropped.by_interface()["d1"][Drop.POLICY_GLOBAL_DENY] == 3
    (logged,) = [log for log in w.logs if log.event == "join-refused"]
    assert f"from {fam.host}" in logged.message
    assert "policy.group-policy[0]" in logged.message
    assert logged.fields["reason"] == "policy-global-deny"
    # A permitted group goes up as ever.
    w.join("d1", fam.host, fam.allowed)
    assert joined_upstream(w) == [fam.allowed]


def test_refused_joins_are_logged_for_the_first_few_subscribers(fam: Fam) -> None:
    w = World.make(config(d1="{ssm-only: true}"))
    for i in range(200):
        w.join("d1", fam.spoofed(i), fam.allowed)
    logged = [log for log in w.logs if log.event == "join-refused"]
    assert 1 <= len(logged) <= 64
    assert w.engine.dropped.by_interface()["d1"] == {Drop.POLICY_SSM_ONLY: 200}
    assert w.upstream_records("u1") == []
    # d2 is not ssm-only.
    w.join("d2", fam.other, fam.allowed)
    assert joined_upstream(w) == [fam.allowed]


def test_a_flooding_host_is_bounded_with_nothing_configured(fam: Fam) -> None:
    w = World.make(config())
    groups = [fam.group(i) for i in range(600)]
    for start in range(0, 600, 50):
        w.report("d1", fam.host, *(
            GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip(g))
            for g in groups[start:start + 50]))
    assert len(set(joined_upstream(w))) == 512
    assert w.engine.dropped.by_interface()["d1"] == {Drop.SUBSCRIBER_MAX_GROUPS: 88}
    # Another subscriber on the link joins as ever.
    w.join("d1", fam.spoofed(1), fam.allowed)
    assert fam.allowed in joined_upstream(w)


def test_a_links_max_groups_spans_both_families_and_entries_span_links() -> None:
    w = World.make(config(policy="{max-entries: 5}", d1="{max-groups: 3}"))
    v4, v6 = FAMS[4], FAMS[6]
    for i in range(2):
        w.join("d1", v4.host, v4.group(i))
        w.join("d1", v6.host, v6.group(i))
    assert w.engine.dropped.by_interface()["d1"] == {Drop.LINK_MAX_GROUPS: 1}
    for i in range(3):
        w.join("d2", v4.other, v4.group(10 + i))
    assert w.engine.dropped.by_interface()["d2"] == {Drop.PROXY_MAX_ENTRIES: 1}
    assert len(set(joined_upstream(w))) == 5
    snap = w.engine.snapshot()
    assert snap.entries == (5, 5)
    d1 = snap.link("d1", 4)
    assert d1 is not None
    assert d1.admission is not None
    assert (d1.admission.groups_count, d1.admission.link_groups_count,
            d1.admission.max_groups, d1.admission.subscribers) == (2, 3, 3, 1)


def test_status_shows_the_counts_and_the_refusals_by_subscriber_prefix(fam: Fam) -> None:
    prefix = "10.1.0.0/24" if fam.v == 4 else "fe80::d1:0/112"
    w = World.make(config(d1=f"{{max-groups: 100, subscribers: [{{prefix: {prefix!r}, "
                             "default: deny}]}"))
    w.join("d1", fam.host, fam.allowed)
    doc = document(w.engine.snapshot(), ["d1", "d2"])
    link = doc["downstream"][f"d1/{'igmp' if fam.v == 4 else 'mld'}"]
    assert link["admission"] == {
        "groups-count": 0, "max-groups": 100, "subscribers": 0,
        "refused": {prefix: {str(Drop.POLICY_DEFAULT_DENY): 1}}}
    assert doc["drops"]["d1"] == {str(Drop.POLICY_DEFAULT_DENY): 1}
    assert doc["admission"] == {"entries-count": 0, "max-entries": 131_072}


def test_a_reload_applies_a_new_policy_to_running_links_at_once(fam: Fam) -> None:
    w = World.make(config())
    w.join("d1", fam.host, fam.denied)
    assert joined_upstream(w) == [fam.denied]
    new = parse_config(config(policy=f"{{max-entries: unlimited, group-policy: [{{action: "
                                     f"deny, group: {fam.deny_prefix!r}}}]}}"))
    w.handle(ConfigChanged(new))
    w.clear()
    w.join("d1", fam.spoofed(1), fam.denied)
    w.join("d2", fam.other, fam.denied)
    assert w.engine.dropped[Drop.POLICY_GLOBAL_DENY] == 2
    # The state held stays (it is not refreshed: it ends within the membership interval).
    assert w.engine.feeders("d1", ip(fam.denied))
    assert w.upstream_records("u1") == []
    assert w.engine.snapshot().entries == (1, UNLIMITED)


# --- report rate limits (``ratelimit``): before decoding, per subscriber and per link -------


def test_a_flooding_host_is_held_to_its_report_rate_and_others_are_not(fam: Fam) -> None:
    w = World.make(config(policy="{report-rate: {subscriber: 10}}"))
    for i in range(100):  # at one instant: its burst, 2 s worth, is taken
        w.join("d1", fam.host, fam.group(i))
    assert len(joined_upstream(w)) == 20
    assert w.engine.dropped.by_interface()["d1"] == {Drop.SUBSCRIBER_RATE: 80}
    w.join("d1", fam.spoofed(1), fam.allowed)  # another subscriber, at once
    assert fam.allowed in joined_upstream(w)
    w.run_for(1.0)  # ten more tokens for the flooding host
    for i in range(100, 120):
        w.join("d1", fam.host, fam.group(i))
    assert len(set(joined_upstream(w))) == 31


def test_the_links_rate_bounds_spoofed_subscribers_and_spares_other_links(fam: Fam) -> None:
    w = World.make(config(d1="{report-rate: {link: 50}}"))
    for i in range(300):  # each spoofed address has a full bucket; the link's holds them
        w.join("d1", fam.spoofed(i), fam.allowed)
    assert w.engine.dropped.by_interface()["d1"] == {Drop.LINK_RATE: 200}
    w.join("d2", fam.other, fam.group(1))  # d2 has its own (built-in) budget
    assert fam.group(1) in joined_upstream(w)


def test_unlimited_rates_and_a_reload_that_changes_them(fam: Fam) -> None:
    w = World.make(config(policy="{report-rate: {subscriber: unlimited, link: unlimited}}"))
    for i in range(1000):
        w.join("d1", fam.host, fam.group(i % 500))
    assert "d1" not in w.engine.dropped.by_interface()
    w.handle(ConfigChanged(parse_config(config(policy="{report-rate: {subscriber: 1}}"))))
    for i in range(5):
        w.join("d1", fam.host, fam.group(600 + i))
    assert w.engine.dropped.by_interface()["d1"] == {Drop.SUBSCRIBER_RATE: 3}  # burst: 2


def test_a_reload_from_rules_to_rules_is_not_answered_from_the_old_ones(fam: Fam) -> None:
    """The policy's answer for a group is kept for the joins that follow; a reload brings a
    new policy, so a group the old rules permitted is refused by the new ones at once."""
    permit = f"{{default: deny, group-policy: [{{action: permit, group: {fam.allowed!r}}}]}}"
    w = World.make(config(policy=permit))
    w.join("d1", fam.host, fam.allowed)
    w.join("d1", fam.spoofed(1), fam.allowed)  # answered from what was kept
    assert joined_upstream(w) == [fam.allowed]
    w.handle(ConfigChanged(parse_config(config(policy=f"{{default: deny, group-policy: "
                                                      f"[{{action: permit, group: "
                                                      f"{fam.denied!r}}}]}}"))))
    w.join("d1", fam.spoofed(2), fam.allowed)
    assert w.engine.dropped.by_interface()["d1"][Drop.POLICY_DEFAULT_DENY] == 1
    assert fam.spoofed(2) not in subscribers(w, fam, fam.allowed)


def test_a_scan_of_many_groups_does_not_change_the_answers(fam: Fam) -> None:
    """A subscriber asking for more groups than the policy keeps answers for: the answers
    kept are dropped and taken again, never wrong (and never more than REFUSALS_KEPT)."""
    from mcastproxy.policy import REFUSALS_KEPT  # noqa: PLC0415

    w = World.make(config(policy=f"{{default: deny, max-entries: unlimited, report-rate: "
                                 f"{{subscriber: unlimited, link: unlimited}}, group-policy: "
                                 f"[{{action: permit, group: {fam.allowed!r}}}]}}",
                          d1="{max-groups: unlimited, subscriber: {max-groups: unlimited}}"))
    w.join("d1", fam.host, fam.allowed)
    for i in range(REFUSALS_KEPT + 10):
        w.join("d1", fam.host, fam.group(i))
    assert w.engine.dropped.by_interface()["d1"][Drop.POLICY_DEFAULT_DENY] == REFUSALS_KEPT + 10
    w.join("d1", fam.spoofed(1), fam.allowed)
    w.join("d1", fam.spoofed(2), fam.group(3))
    assert fam.spoofed(1) in subscribers(w, fam, fam.allowed)
    assert w.engine.dropped.by_interface()["d1"][Drop.POLICY_DEFAULT_DENY] == REFUSALS_KEPT + 11


def subscribers(w: World, fam: Fam, group: str) -> list[str]:
    doc = document(w.engine.snapshot(), ["d1", "d2"])
    groups = doc["downstream"][f"d1/{'igmp' if fam.v == 4 else 'mld'}"]["groups"]
    return list(groups[group]["subscribers"]) if group in groups else []
