"""Reports upstream through the engine: what is due at one moment on one upstream goes out in
as few reports as its MTU allows (RFC 9776 §4.2.16, RFC 9777 §5.2.15), and every group is
still reported.

    h (10.1.0.7 / fe80::d1:7) --- d1 [proxy] u1 --- querier (192.0.2.254 / fe80::1:fe)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from harness import T, World, ip, text

from mcastproxy.actions import Action, SendPacket
from mcastproxy.events import Event
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, Leave, Query, Report

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}]
upstream:
  candidates: [{interface: u1}]
policy: {subscriber: {max-groups: unlimited}}  # one host joins 1,000 groups here
"""
HOST = {4: "10.1.0.7", 6: "fe80::d1:7"}
ROUTER = {4: "192.0.2.254", 6: "fe80::1:fe"}
ALL_SYSTEMS = {4: "224.0.0.1", 6: "ff02::1"}
FIRST_GROUP = {4: "239.1.0.0", 6: "ff1e::1:0"}
NEWEST = {4: 3, 6: 2}
OLDER = {4: 2, 6: 1}  # the older version with a leave
MTU = {4: 1500, 6: 1280}  # the host side's default: Ethernet, the IPv6 minimum link MTU
IP_HEADER = {4: 24, 6: 48}  # with Router Alert
PER_REPORT = {4: 183, 6: 61}  # records without sources: (1500 - 32) // 8, (1280 - 56) // 20


@dataclass
class Recording(World):
    """The harness, keeping the packets sent upstream as built."""

    packets: list[tuple[float, SendPacket]] = field(default_factory=list)

    def handle(self, event: Event) -> list[Action]:
        actions = super().handle(event)
        self.packets += [(self.now, a) for a in actions
                         if isinstance(a, SendPacket) and a.interface == "u1"]
        return actions

    def upstream(self) -> list[tuple[float, SendPacket]]:
        out, self.packets = self.packets, []
        return out


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def make() -> Recording:
    w = Recording.make(CONFIG, up=("u1", "d1"))
    w.upstream()
    return w


def groups(v: int, n: int) -> list[str]:
    base = int.from_bytes(ip(FIRST_GROUP[v]))
    return [text((base + i).to_bytes(len(ip(FIRST_GROUP[v])))) for i in range(n)]


def join(w: Recording, v: int, names: list[str]) -> None:
    """One report from the host with a TO_EX({}) record per group (any size: the downstream
    link's MTU is not under test)."""
    w.report("d1", HOST[v], *(GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip(g)) for g in names))


def general_query(w: Recording, v: int, version: int | None = None) -> None:
    query = Query(version or NEWEST[v], bytes(len(ip(ROUTER[v]))), 10.0)
    w.receive("u1", ROUTER[v], query, ALL_SYSTEMS[v])


def reports(w: Recording, v: int, sent: list[tuple[float, SendPacket]]) -> list[Report]:
    """The reports sent, each checked to fit the MTU and to be built exactly as sent."""
    out = []
    for _, packet in sent:
        message = w.decode(packet)
        assert isinstance(message, Report)
        assert IP_HEADER[v] + len(packet.payload) <= MTU[v]
        rebuilt = (build_igmp(message) if v == 4
                   else build_mld(message, ip("fe80::1:1"), packet.destination))
        assert rebuilt == packet.payload
        out.append(message)
    return out


def reported(messages: list[Report]) -> list[str]:
    return [text(r.group) for m in messages for r in m.records]


def test_one_report_in_becomes_as_few_reports_out_as_fit(v: int) -> None:
    w = make()
    names = groups(v, 150)
    join(w, v, names)
    out = reports(w, v, w.upstream())
    per = PER_REPORT[v]
    assert [len(m.records) for m in out] == [per] * (150 // per) + [150 % per]
    assert reported(out) == names  # every group, once, in order
    assert all(r.type == T.CHANGE_TO_EXCLUDE_MODE for m in out for r in m.records)


def test_a_join_burst_its_retransmission_and_a_general_query_are_packed(v: int) -> None:
    w = make()
    names = groups(v, 1000)
    for start in range(0, 1000, 50):  # 20 reports of 50 records, at one moment
        join(w, v, names[start:start + 50])
    burst = reports(w, v, w.upstream())
    assert len(burst) == 20  # one per event: each event's records go out at once
    assert reported(burst) == names
    w.run_for(2.0)  # the retransmission (Robustness 2), one tick for all
    again = reports(w, v, w.upstream())
    assert len(again) == -(-1000 // PER_REPORT[v])
    assert reported(again) == names
    general_query(w, v)
    w.run_for(11.0)
    answer = reports(w, v, w.upstream())
    assert len(answer) == -(-1000 // PER_REPORT[v])
    assert [(text(r.group), r.type) for m in answer for r in m.records] == [
        (g, T.MODE_IS_EXCLUDE) for g in names]


def test_leaves_are_packed_and_routes_follow(v: int) -> None:
    w = make()
    names = groups(v, 300)
    join(w, v, names)
    w.run_for(2.0)
    w.upstream()
    w.clear()
    w.report("d1", HOST[v], *(GroupRecord(T.CHANGE_TO_INCLUDE_MODE, ip(g)) for g in names))
    out = reports(w, v, w.upstream())
    assert len(out) == -(-300 // PER_REPORT[v])
    assert [(text(r.group), r.type) for m in out for r in m.records] == [
        (g, T.CHANGE_TO_INCLUDE_MODE) for g in names]
    left = [log.fields["group"] for log in w.logs if log.event == "upstream-leave"]
    assert sorted(left) == sorted(names)


def test_older_querier_upstream_keeps_one_message_per_group(v: int) -> None:
    w = make()
    general_query(w, v, OLDER[v])
    w.run_for(11.0)
    w.upstream()
    w.sent.clear()
    names = groups(v, 40)
    join(w, v, names)
    sent = [s for s in w.sent if s.interface == "u1"]
    assert [(text(s.destination), s.message) for s in sent] == [
        (g, Report(OLDER[v], (GroupRecord(T.MODE_IS_EXCLUDE, ip(g)),))) for g in names]
    w.sent.clear()
    w.report("d1", HOST[v], *(GroupRecord(T.CHANGE_TO_INCLUDE_MODE, ip(g)) for g in names))
    leaves = [s.message for s in w.sent if s.interface == "u1"]
    assert leaves == [Leave(ip(g)) for g in names]
