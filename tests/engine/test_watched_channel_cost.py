"""A subscriber joining or leaving a channel that others on the link watch costs a constant
(issue 16): the ledger counts it as one more holder of the share the others hold, so no
merge per link or per upstream moves, nothing is selected again and nothing is reported
upstream, however many watch.

Counted as in ``test_refresh_cost``: the Python calls the engine makes for the report, by
module and function, read with ``sys.setprofile`` (so not on the compiled build).
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
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream: {candidates: [{interface: u1, records: [{group: 239.0.0.0/8}, {group: "ff1e::/16"}]},
                        {interface: u2}]}
policy:  # every report at one instant: the rates are not under test
  report-rate: {subscriber: unlimited, link: unlimited}
"""
FAMILIES = {4: ("10.1.0.10", "239.1.1.1"), 6: ("fe80::a:10", "ff1e::1:1")}
# Splitting, selecting and reporting upstream: none of it runs.
SELECTING = {("mcastproxy.subscriptions", "split"), ("mcastproxy.selection", "select"),
             ("mcastproxy.selection", "source_records")}

pytestmark = pytest.mark.skipif(mcastproxy.build() == "compiled",
                                reason="the profiler sees no calls inside compiled functions")


def event(v: int, host: bytes, group: str, join: bool) -> PacketReceived:
    kind = T.CHANGE_TO_EXCLUDE_MODE if join else T.CHANGE_TO_INCLUDE_MODE
    report = Report(3 if v == 4 else 2, (GroupRecord(kind, ip(group)),))
    dst = ip("224.0.0.22" if v == 4 else "ff02::16")
    payload = build_igmp(report) if v == 4 else build_mld(report, host, dst)
    return PacketReceived("d1", v, host, dst, payload)


def cost(v: int, watching: int, join: bool) -> tuple[Counter[tuple[str, str]], list[object]]:
    """The Python calls, by (module, function), of one more subscriber's join of a channel
    ``watching`` others on d1 watch (``join``), or of one of them leaving it; and the
    actions it made."""
    first, group = FAMILIES[v]
    w = World.make(CONFIG)
    base = int.from_bytes(ip(first))
    hosts = [(base + i).to_bytes(len(ip(first))) for i in range(watching + 1)]
    for h in hosts[:watching]:
        w.join("d1", str(ipaddress.ip_address(h)), group)
    w.run_for(10)  # the state-change reports' retransmissions are over
    w.clear()
    ev = event(v, hosts[watching] if join else hosts[watching // 2], group, join)
    calls: Counter[tuple[str, str]] = Counter()

    def count(frame: FrameType, what: str, arg: Any) -> None:
        module = frame.f_globals.get("__name__", "?")
        if what == "call" and module.startswith("mcastproxy."):  # (not a gc callback's)
            calls[module, frame.f_code.co_name] += 1

    gc.disable()  # a collection's callbacks would run inside the count
    sys.setprofile(count)
    try:
        w.engine.handle(ev, w.now)
    finally:
        sys.setprofile(None)
        gc.enable()
    return calls, list(w.engine.pop_actions())


@pytest.mark.parametrize("join", [True, False], ids=["join", "leave"])
@pytest.mark.parametrize("v", [4, 6])
def test_a_subscriber_of_a_watched_channel_costs_a_constant(v: int, join: bool) -> None:
    (small, actions), (large, _) = cost(v, 10, join), cost(v, 1000, join)
    assert actions == []  # nothing sent, up or down; no route changed
    # (Decoding aside: an MLD report is kept decoded by its bytes, which differ by sender.)
    assert (Counter({c: n for c, n in small.items() if not c[0].startswith("mcastproxy.wire")})
            == Counter({c: n for c, n in large.items() if not c[0].startswith("mcastproxy.wire")}))
    assert [c for c in small if c in SELECTING or c[0] == "mcastproxy.upstream.host"] == []
    merges = {c: n for c, n in small.items() if c[0] == "mcastproxy.upstream.merge"
              and c[1] in ("add", "remove")}
    # The link's merge of its tracked subscribers' states takes the subscriber in or out;
    # no merge of shares, per link or per upstream, moves.
    assert merges == {("mcastproxy.upstream.merge", "add" if join else "remove"): 1}


def test_the_first_subscriber_is_counted_in_the_merges() -> None:
    # The control: the channel's first subscriber is split and merged per link and upstream.
    calls, actions = cost(4, 0, True)
    assert len(actions) == 2  # the join on u1 (and its log line)
    assert calls["mcastproxy.subscriptions", "split"] == 1
    assert calls["mcastproxy.upstream.merge", "add"] == 3
