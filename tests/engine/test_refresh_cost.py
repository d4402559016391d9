"""A refresh costs a small constant (issue 16's fast path): a report for state that is
already current (a member answering a General Query with the IS_EX it sent before, RFC 9776
§6.4.1: only the group timer moves) changes nothing upstream or in the routes, so the
engine must not recompute the link's group state, the upstream merge or the routes for it,
however many members the group and the link hold.

The cost is counted as the function calls (Python and C) the engine makes for the report,
read with ``sys.setprofile``: the same count at 10 and at 1,000 members, and nothing run of
the modules that merge and route. The profiler sees no calls inside compiled functions, so
the compiled build runs only the first test (what the refresh does, not what it costs).
"""

from __future__ import annotations

import gc
import ipaddress
import sys
from collections import Counter
from types import FrameType
from typing import Any

import pytest
from harness import T, World, ip

import mcastproxy
from mcastproxy.events import PacketReceived
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, Report

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}, {interface: d2}]
upstream: {candidates: [{interface: u1}, {interface: u2}]}
policy:  # every report at one instant: the rates are not under test
  report-rate: {subscriber: unlimited, link: unlimited}
"""
FAMILIES = {4: ("10.1.0.10", "239.1.1.1", "239.1.1.2"),
            6: ("fe80::a:10", "ff1e::1:1", "ff1e::1:2")}
# What merges state and routes it: a refresh runs none of it. (The engine's settling after
# each packet asks ``upstreams`` whether anything is to report: two calls, constant.)
MERGING = ("ledger", "forwarding", "selection", "subscriptions", "candidates", "moves",
           "merge", "host", "group", "admission", "placement", "bandwidth")
BOUND = 60  # function calls for one refresh, decoding included (37 IGMP, 42 MLD today)


def refresh_event(v: int, member: bytes, group: str) -> PacketReceived:
    report = Report(3 if v == 4 else 2, (GroupRecord(T.MODE_IS_EXCLUDE, ip(group)),))
    dst = ip("224.0.0.22" if v == 4 else "ff02::16")
    payload = build_igmp(report) if v == 4 else build_mld(report, member, dst)
    return PacketReceived("d1", v, member, dst, payload)


def joined(v: int, members: int) -> tuple[World, list[bytes]]:
    """A world where ``members`` hosts on d1 joined one group, and 20 other groups joined
    by the first of them."""
    first, group, other = FAMILIES[v]
    w = World.make(CONFIG)
    base = int.from_bytes(ip(first))
    hosts = [(base + i).to_bytes(len(ip(first))) for i in range(members)]
    for h in hosts:
        w.join("d1", str(ipaddress.ip_address(h)), group)
    for k in range(20):
        w.join("d1", first, str(ipaddress.ip_address(int.from_bytes(ip(other)) + k)))
    w.run_for(1)
    w.clear()
    return w, hosts


@pytest.mark.parametrize("v", [4, 6])
def test_a_refresh_changes_nothing_but_its_timer(v: int) -> None:
    w, hosts = joined(v, 50)
    group = FAMILIES[v][1]

    def state() -> dict[str, object]:
        snap = w.engine.snapshot()
        return {link.interface: [
            (g.group, g.filter_mode, g.forwarded, g.upstreams, g.expire,
             [(s.address, s.filter_mode, s.sources) for s in g.subscribers])
            for g in link.groups] for link in snap.links if link.family == v}

    before, upstreams, routes = state(), w.engine.snapshot().upstreams, dict(w.engine.routes())
    w.now += 10.0  # the timers it refreshes move on, the rest stays
    assert w.handle(refresh_event(v, hosts[7], group)) == []
    after = state()
    moved = [g for link in after for g, old in zip(after[link], before[link], strict=True)
             if g != old]
    assert [g[0] for g in moved] == [ip(group)]  # the group's timer, restarted
    assert moved[0][:4] == next(g for g in before["d1"] if g[0] == ip(group))[:4]
    assert moved[0][4] > next(g for g in before["d1"] if g[0] == ip(group))[4]
    assert w.engine.snapshot().upstreams == upstreams
    assert dict(w.engine.routes()) == routes


def cost(v: int, members: int) -> tuple[int, Counter[str]]:
    """(function calls, by module of the Python ones) of one refresh from a member of a
    group of ``members``."""
    w, hosts = joined(v, members)
    event = refresh_event(v, hosts[members // 2], FAMILIES[v][1])
    calls = 0
    modules: Counter[str] = Counter()

    def count(frame: FrameType, what: str, arg: Any) -> None:
        nonlocal calls
        if what == "call":
            calls += 1
            modules[frame.f_globals.get("__name__", "?")] += 1
        elif what == "c_call":
            calls += 1

    handle = w.engine.handle
    gc.disable()  # a collection's callbacks (hypothesis has one) would run inside the count
    sys.setprofile(count)
    try:
        handle(event, w.now)
    finally:
        sys.setprofile(None)
        gc.enable()
    assert w.engine.pop_actions() == []
    return calls, modules


@pytest.mark.skipif(mcastproxy.build() == "compiled",
                    reason="the profiler sees no calls inside compiled functions")
@pytest.mark.parametrize("v", [4, 6])
def test_a_refresh_costs_a_small_constant(v: int) -> None:
    small, ran = cost(v, 10)
    large, ran_large = cost(v, 1000)
    assert small == large, (ran, ran_large)
    assert small <= BOUND, ran
    merged = [m for m in ran if m.rsplit(".", 1)[-1] in MERGING]
    assert merged == [], ran
    assert "mcastproxy.engine" in ran  # (what is counted is the engine's work)


@pytest.mark.skipif(mcastproxy.build() == "compiled",
                    reason="the profiler sees no calls inside compiled functions")
def test_a_change_is_seen_by_the_count() -> None:
    # The count's control: a join of a new group does merge, and costs more than a refresh.
    w, hosts = joined(4, 10)
    report = Report(3, (GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip("239.9.9.9")),))
    event = PacketReceived("d1", 4, hosts[3], ip("224.0.0.22"), build_igmp(report))
    modules: Counter[str] = Counter()

    def count(frame: FrameType, what: str, arg: Any) -> None:
        if what == "call":
            modules[frame.f_globals.get("__name__", "?")] += 1

    sys.setprofile(count)
    try:
        w.engine.handle(event, w.now)
    finally:
        sys.setprofile(None)
    assert [m for m in modules if m.rsplit(".", 1)[-1] in MERGING] != []
    assert sum(modules.values()) > cost(4, 10)[1].total()
