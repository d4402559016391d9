"""What the proxy sends upstream is bounded by what is joined, not by how subscribers send it
(RFC 9776 §5.2: a report carries as many group records as fit; RFC 4605 §4.1: one report of
the merged state): no host can make it amplify, and on a stop it leaves what it joined."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from forged import TO_EX, TO_IN, igmpv3_query, igmpv3_report

from mcastlab import JoinMode, Lab, LabError, wait_until
from mcastlab.capture import Capture
from mcastlab.proxy import Proxy
from mcastproxy.wire.messages import Report

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}]
upstream:
  candidates: [{interface: u1}]
policy: {subscriber: {max-groups: unlimited}}  # one host joins 1,000 groups here
"""
GROUPS = [f"239.10.{i // 250}.{i % 250 + 1}" for i in range(1000)]
# An IGMPv3 group record without sources is 8 octets: 183 fit a 1500-octet MTU after the IP
# header with Router Alert (24) and the report's own (8).
PER_REPORT = (1500 - 24 - 8) // 8


def reports(cap: Capture, start: int) -> list[Report]:
    return [m for p, m in cap.messages(start) if p.src == "10.0.1.1" and isinstance(m, Report)]


def test_a_thousand_joins_and_a_general_query_cost_a_handful_of_reports(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    cap = lab.capture("prov1", "eth0")
    mark = cap.mark()
    # 1,000 any-source joins from one host, 100 records a report: 10 reports.
    joins = [igmpv3_report("10.1.1.11", [(TO_EX, g, ()) for g in GROUPS[i:i + 100]])
             for i in range(0, len(GROUPS), 100)]
    lab.inject("sub1", "eth0", joins)
    wait_until(lambda: len(proxy.status()["upstreams"]["u1"]["groups"]) == 1000, 10)
    # Each of the 10 changes is reported [Robustness Variable] = 2 times (RFC 9776 §5.1).
    wait_until(lambda: sum(len(r.records) for r in reports(cap, mark)) >= 2000, 10)
    changes = reports(cap, mark)
    assert len(changes) <= 2 * len(joins), [len(r.records) for r in changes]

    # A General Query is answered with the whole state in as few reports as it fits in.
    mark = cap.mark()
    lab.inject("prov1", "eth0", [igmpv3_query("10.0.1.2", mrcode=10)])  # answer within 1 s
    wait_until(lambda: sum(len(r.records) for r in reports(cap, mark)) >= 1000, 10)
    answers = reports(cap, mark)
    assert len(answers) == math.ceil(1000 / PER_REPORT), [len(r.records) for r in answers]
    assert {r.group for a in answers for r in a.records} == {
        bytes(int(x) for x in g.split(".")) for g in GROUPS}


def test_a_stopping_proxy_leaves_what_it_joined(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    cap = lab.capture("prov1", "eth0")
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
    wait_until(lambda: proxy.joined("239.1.1.1") == {"u1"}, 5)
    mark = cap.mark()
    assert proxy.stop() == 0
    leave = bytes([239, 1, 1, 1])
    # CHANGE_TO_INCLUDE_MODE of no source: the group is left (RFC 9776 §5.1).
    wait_until(lambda: any(r.group == leave and r.type == 3 and not r.sources
                           for m in reports(cap, mark) for r in m.records), 5)


def test_a_second_proxy_does_not_take_over_a_live_proxys_status_socket(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    # From another namespace, as a second proxy on the same machine would be started.
    with pytest.raises(LabError, match="another mcastproxy is running"):
        lab.proxy(CONFIG, host="sub3", forwarding=proxy.forwarding,
                  args=["--status-socket", str(proxy.status_socket)])
    assert proxy.status()["upstreams"]["u1"]["usable"]


def test_a_flood_of_leaves_comes_back_as_a_bounded_number_of_queries(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    cap = lab.capture("sub2", "eth0")
    groups = GROUPS[:500]
    lab.inject("sub1", "eth0", [igmpv3_report("10.1.1.11", [(TO_EX, g, ())
                                                             for g in groups[i:i + 100]])
                                for i in range(0, 500, 100)])
    wait_until(lambda: len(proxy.status()["upstreams"]["u1"]["groups"]) == 500, 10)
    mark = cap.mark()
    # 500 leaves at once: as querier (no fast leave), each would cost Last Member Query Count
    # (2) group-specific queries: 1,000 queries onto the link.
    lab.inject("sub1", "eth0", [igmpv3_report("10.1.1.11", [(TO_IN, g, ())
                                                             for g in groups[i:i + 100]])
                                for i in range(0, 500, 100)])
    wait_until(lambda: not proxy.status()["upstreams"]["u1"]["groups"], 10)
    queries = [m for p, m in cap.messages(mark) if p.src == "10.1.1.1"
               and type(m).__name__ == "Query"]
    specific = [q for q in queries if any(q.group)]
    # specific-query-rate: 100 leaves' queries a second (a bucket of one second, refilling
    # while the burst is handled: a few more on a busy machine), LMQC each; the rest merged
    # into General Queries (one per Last Member Query Interval, LMQC times).
    assert len(specific) <= (100 + 10) * 2, len(specific)
    assert len(queries) - len(specific) <= 2 * 5
    assert proxy.status()["events"].get("specific queries merged", 0) > 0
