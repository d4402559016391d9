"""SSM mapping (``membership.ssmmap``) through the engine on a virtual clock: an older host's
join of a mapped SSM group goes upstream as an (S,G) join of the mapped sources; its leave
ends it; a group that is not mapped is still ignored (RFC 4604); the mapping follows a reload.

    u1 (upstream) -- proxy -- d1: 10.1.0.1/24, fe80::d1:1   hosts 10.1.0.7 / fe80::d1:7
"""

from __future__ import annotations

import pytest
from harness import T, World, ip

from mcastproxy.config import ConfigError, parse_config
from mcastproxy.drops import Drop
from mcastproxy.events import ConfigChanged
from mcastproxy.wire.messages import GroupRecord, Leave, Report

CASES = {  # family: (host, mapped group, its sources, SSM group not mapped, leave to)
    4: ("10.1.0.7", "232.1.0.5", ("10.0.9.1", "10.0.9.2"), "232.2.0.5", "224.0.0.2"),
    6: ("fe80::d1:7", "ff3e::1:5", ("fd00:9::1", "fd00:9::2"), "ff3e::2:5", "ff02::2"),
}


def config(v: int, mapping: str) -> str:
    proto = "igmp: {version: 3, %s}" if v == 4 else "mld: {version: 2, %s}"
    return (proto % mapping + "\ndownstream: [{interface: d1, fast-leave: true}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")


def mapping(v: int) -> str:
    sources = CASES[v][2]
    net = "232.1.0.0/16" if v == 4 else "ff3e::1:0/112"
    return f"ssm-map: [{{group: {net!r}, sources: [{', '.join(repr(s) for s in sources)}]}}]"


def older_join(v: int, group: str) -> Report:
    return Report(2 if v == 4 else 1, (GroupRecord(T.MODE_IS_EXCLUDE, ip(group)),))


@pytest.fixture(params=[4, 6], ids=["igmpv2", "mldv1"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def test_an_older_hosts_join_of_a_mapped_group_goes_up_as_source_specific(v: int) -> None:
    host, group, sources, unmapped, leave_to = CASES[v]
    w = World.make(config(v, mapping(v)))
    w.receive("d1", host, older_join(v, group))
    records = w.upstream_records("u1")
    assert (T.ALLOW_NEW_SOURCES, group, tuple(sorted(sources))) in [
        (t, g, tuple(sorted(s))) for t, g, s in records]
    assert all(t is not T.CHANGE_TO_EXCLUDE_MODE for t, _, _ in records)  # never any-source
    # Its subscriber is tracked with the mapped sources, and the group stays in IGMPv3/MLDv2.
    link = w.engine.snapshot().link("d1", v)
    assert link is not None
    (g,) = [g for g in link.groups if g.group == ip(group)]
    assert {s.address for s in g.subscribers} == {ip(host)}
    # A group of the SSM range that is not mapped: ignored as RFC 4604 asks.
    w.receive("d1", host, older_join(v, unmapped))
    assert unmapped not in [g for _, g, _ in w.upstream_records("u1")]
    assert w.engine.dropped.by_interface()["d1"] == {Drop.SSM_OLDER_VERSION: 1}
    # Its Leave (a Done in MLD) ends the mapped join at once (fast leave).
    w.receive("d1", host, Leave(ip(group)), leave_to)
    assert (T.BLOCK_OLD_SOURCES, group) in [(t, g) for t, g, _ in w.upstream_records("u1")]


def test_a_reload_brings_in_a_mapping(v: int) -> None:
    host, group, _, _, _ = CASES[v]
    w = World.make(config(v, "ssm-map: []"))
    w.receive("d1", host, older_join(v, group))
    assert w.upstream_records("u1") == []
    w.handle(ConfigChanged(parse_config(config(v, mapping(v)))))
    w.receive("d1", host, older_join(v, group))
    assert group in [g for _, g, _ in w.upstream_records("u1")]


@pytest.mark.parametrize(("entry", "why"), [
    ("{group: 239.1.0.0/16, sources: [10.0.9.1]}", "not within the SSM ranges"),
    ("{group: 232.1.0.0/16, sources: []}", "needs 1 to 64 sources"),
    ("{group: 232.1.0.0/16, sources: [10.0.9.0/24]}", "a source is one address"),
    ("{group: 232.1.0.0/16, sources: ['fd00::1']}", "not of the group's family"),
    ("{group: 'ff3e::/16', sources: ['fd00::1']}", "is not an IPv4 prefix"),
    ("{group: 232.1.0.0/16, sources: [232.0.0.1]}", "multicast"),
])
def test_a_mapping_that_cannot_work_is_refused(entry: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(4, f"ssm-map: [{entry}]"))
    assert why in str(err.value)
    assert "igmp" in str(err.value)


def test_mapped_joins_are_held_to_the_subscribers_limits(v: int) -> None:
    # An attacker's older-version reports for 600 mapped groups: the mapping happens before
    # admission, so the subscriber's max-groups (512 built in) holds them as any joins.
    host = CASES[v][0]
    w = World.make(config(v, mapping(v)))
    groups = ([f"232.1.{i // 250}.{i % 250 + 1}" for i in range(600)] if v == 4
              else [f"ff3e::1:{i + 1:x}" for i in range(600)])
    for g in groups:  # 100 a second: within the subscriber's report rate
        w.receive("d1", host, older_join(v, g))
        w.run_for(0.01)
    joined = {g for _, g, _ in w.upstream_records("u1")}
    assert len(joined) == 512
    # One count per (S,G) refused: 88 groups, two mapped sources each.
    assert w.engine.dropped.by_interface()["d1"] == {Drop.SUBSCRIBER_MAX_GROUPS: 2 * 88}
