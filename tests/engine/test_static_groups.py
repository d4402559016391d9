"""Static groups (RFC 8652 ``static-group``) through the engine on a virtual clock: joined
upstream with no subscriber, held through a last member's leave, its queries and any length
of time, never refused by policy yet counted; changed and removed by a reload.

    u1 (upstream) -- proxy -- d1: 10.1.0.1/24, fe80::d1:1   hosts 10.1.0.7 / fe80::d1:7
"""

from __future__ import annotations

import pytest
from harness import T, World

from mcastproxy.config import ConfigError, parse_config
from mcastproxy.events import ConfigChanged
from mcastproxy.status import document

CASES = {4: ("10.1.0.7", "239.5.0.1", "232.5.0.1", "10.0.9.1"),
         6: ("fe80::d1:7", "ff1e::5:1", "ff3e::5:1", "fd00:9::1")}


def config(static: str, d1: str = "", policy: str = "") -> str:
    return ("igmp: {version: 3}\nmld: {version: 2}\n" + (f"policy: {policy}\n" if policy else "")
            + f"downstream: [{{interface: d1{d1}, static-group: [{static}]}}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")


def static(v: int) -> str:
    _, asm, ssm, source = CASES[v]
    return f"{{group: {asm!r}}}, {{group: {ssm!r}, source: {source!r}}}"


def held(w: World) -> set[tuple[str, str, tuple[str, ...]]]:
    """What u1 reports now: (group, mode, sources)."""
    snap = w.engine.snapshot()
    up = next(u for u in snap.upstreams if u.interface == "u1")
    import ipaddress  # noqa: PLC0415
    return {(str(ipaddress.ip_address(g.group)), g.filter_mode.name.lower(),
             tuple(sorted(str(ipaddress.ip_address(s)) for s in g.sources)))
            for g in up.groups}


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def test_static_groups_are_joined_and_held_whatever_hosts_do(v: int) -> None:
    host, asm, ssm, source = CASES[v]
    w = World.make(config(static(v)))
    assert held(w) == {(asm, "exclude", ()), (ssm, "include", (source,))}
    # A host joins and leaves the group (no fast leave: queries, then the group timer at
    # LMQT): the static membership answers for itself.
    w.join("d1", host, asm)
    w.leave("d1", host, asm)
    w.run_for(600.0)  # well past any Group Membership Interval, nobody reporting
    assert held(w) == {(asm, "exclude", ()), (ssm, "include", (source,))}
    subs = document(w.engine.snapshot(), ["d1"])["downstream"][f"d1/{'igmp' if v == 4 else 'mld'}"]
    assert subs["groups"][asm]["subscribers"] == ["static"]


def test_a_reload_changes_and_removes_static_groups(v: int) -> None:
    _, asm, ssm, _ = CASES[v]
    w = World.make(config(static(v)))
    other = "10.0.9.2" if v == 4 else "fd00:9::2"
    w.handle(ConfigChanged(parse_config(config(
        f"{{group: {asm!r}}}, {{group: {ssm!r}, source: {other!r}}}"))))
    w.run_for(5.0)  # the removed source's last member queries, unanswered
    assert held(w) == {(asm, "exclude", ()), (ssm, "include", (other,))}
    w.handle(ConfigChanged(parse_config(config(""))))
    w.run_for(5.0)
    assert held(w) == set()


def test_no_policy_refuses_a_static_group_and_it_counts(v: int) -> None:
    host, asm, _, _ = CASES[v]
    w = World.make(config(f"{{group: {asm!r}}}", d1=", policy: {max-groups: 1}",
                          policy="{default: deny}"))
    assert held(w) == {(asm, "exclude", ())}
    link = w.engine.snapshot().link("d1", v)
    assert link is not None
    assert link.admission is not None
    assert link.admission.link_groups_count == 1  # counted: the link's one group
    other = "239.5.0.2" if v == 4 else "ff1e::5:2"
    w.join("d1", host, other)  # refused: the default denies, and the link is full
    assert other not in {g for g, _, _ in held(w)}


@pytest.mark.parametrize(("entry", "why"), [
    ("{group: 10.0.0.1}", "not a multicast group"),
    ("{group: 224.0.0.5}", "link-local scope"),
    ("{group: 'ff02::5'}", "link-local scope"),
    ("{group: 239.1.1.1, source: 239.1.1.2}", "not a unicast source"),
    ("{group: 239.1.1.1, source: 'fd00::1'}", "not of the group's family"),
    ("{group: 239.1.1.1, sauce: 10.0.0.1}", "unknown key"),
])
def test_a_static_group_that_cannot_be_is_refused(entry: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(entry))
    assert why in str(err.value)
    assert "downstream[0].static-group[0]" in str(err.value)


def test_reports_are_not_taken_from_the_static_subscribers_address() -> None:
    # It is the all-routers group: a report "from" it is invalid, so no host can pose as it.
    w = World.make(config("{group: 239.5.0.1}"))
    w.join("d1", "224.0.0.2", "239.5.0.9")
    assert "239.5.0.9" not in {g for g, _, _ in held(w)}
    assert T.CHANGE_TO_EXCLUDE_MODE  # (the harness's record types)


@pytest.mark.parametrize(("text", "why"), [
    (config("{group: 232.1.0.1}"), "232.1.0.1 is an SSM group: it needs a source (RFC 4604)"),
    ("igmp: {version: 3}\ndownstream: [{interface: d1, static-group: [{group: 'ff1e::1'}]}]\n"
     "upstream: {candidates: [{interface: u1}]}\n", "ff1e::1 needs mld, which is off"),
])
def test_a_static_group_that_could_never_be_held_is_refused(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value) == f"downstream[0].static-group[0]: {why}"
