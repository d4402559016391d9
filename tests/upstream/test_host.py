"""The upstream host side (RFC 9776 §5, §7.2; RFC 9777 §6, §8.2) on a virtual clock."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcastproxy.family import Family
from mcastproxy.membership.state import FilterMode
from mcastproxy.upstream.host import Transmit, UpstreamHost
from mcastproxy.wire import build_igmp, build_mld, parse_igmp, parse_mld
from mcastproxy.wire.messages import GroupRecord, Leave, Query, RecordType, Report

IN, EX = FilterMode.INCLUDE, FilterMode.EXCLUDE
T = RecordType


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@dataclass
class Fam:
    family: Family
    group: bytes
    group2: bytes
    s1: bytes
    s2: bytes
    v3_routers: bytes
    all_routers: bytes
    new: int  # newest report version
    old: int  # the older querier version that has a leave

    @property
    def alen(self) -> int:
        return len(self.group)

    def general_query(self, version: int | None = None, max_resp: float = 10.0) -> Query:
        return Query(version or self.new, bytes(self.alen), max_resp)


FAMS = {
    "igmp": Fam(Family.V4, ip("232.1.1.1"), ip("232.1.1.2"), ip("10.0.0.1"), ip("10.0.0.2"),
                ip("224.0.0.22"), ip("224.0.0.2"), 3, 2),
    "mld": Fam(Family.V6, ip("ff3e::1"), ip("ff3e::2"), ip("2001:db8::1"), ip("2001:db8::2"),
               ip("ff02::16"), ip("ff02::2"), 2, 1),
}


@pytest.fixture(params=sorted(FAMS))
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


class Rng:
    """A deterministic stand-in for random.random: cycles through given fractions."""

    def __init__(self, *values: float) -> None:
        self.values = values or (0.5,)
        self.i = 0

    def __call__(self) -> float:
        v = self.values[self.i % len(self.values)]
        self.i += 1
        return v


@dataclass
class Harness:
    host: UpstreamHost
    now: float = 0.0
    sent: list[tuple[float, Transmit]] = field(default_factory=list)

    def collect(self) -> list[Transmit]:
        out = self.host.pop_outputs()
        self.sent += [(self.now, t) for t in out]
        return out

    def set(self, group: bytes, mode: FilterMode, *sources: bytes) -> list[Transmit]:
        self.host.set_state(group, mode, frozenset(sources), self.now)
        return self.collect()

    def query(self, q: Query) -> list[Transmit]:
        self.host.receive_query(q, self.now)
        return self.collect()

    def run_until(self, end: float) -> list[tuple[float, Transmit]]:
        """Advance the clock deadline by deadline up to ``end``; what was sent meanwhile."""
        start = len(self.sent)
        while (d := self.host.next_deadline()) is not None and d <= end:
            assert d >= self.now, "a deadline in the past"
            self.now = d
            self.host.handle_timers(d)
            self.collect()
        self.now = end
        return self.sent[start:]


def harness(fam: Fam, *rng: float, **kw: Any) -> Harness:
    return Harness(UpstreamHost(fam.family, rng=Rng(*rng), **kw))


def records(sent: list[Transmit] | Iterator[Transmit]) -> list[GroupRecord]:
    return [r for t in sent if isinstance(t.message, Report) for r in t.message.records]


def test_join_is_reported_at_once_and_retransmitted(fam: Fam) -> None:
    h = harness(fam, 0.25)
    out = h.set(fam.group, EX)
    assert out == [Transmit(Report(fam.new, (GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, fam.group),)),
                            fam.v3_routers)]
    # Robustness 2: one retransmission, at a random point within the Unsolicited Report
    # Interval (rng 0.25 of 1 s).
    later = h.run_until(10)
    assert [(at, records([t])) for at, t in later] == [
        (0.25, [GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, fam.group)])]
    assert h.host.next_deadline() is None


def test_robustness_sets_the_number_of_transmissions(fam: Fam) -> None:
    h = harness(fam, 0.1, robustness=4)
    h.set(fam.group, IN, fam.s1)
    later = h.run_until(10)
    assert len(later) == 3
    assert all(records([t]) == [GroupRecord(T.ALLOW_NEW_SOURCES, fam.group, (fam.s1,))]
               for _, t in later)


def test_source_list_changes_become_allow_and_block(fam: Fam) -> None:
    h = harness(fam)
    h.set(fam.group, IN, fam.s1)
    h.run_until(10)
    out = h.set(fam.group, IN, fam.s2)
    assert records(out) == [GroupRecord(T.ALLOW_NEW_SOURCES, fam.group, (fam.s2,)),
                            GroupRecord(T.BLOCK_OLD_SOURCES, fam.group, (fam.s1,))]
    # In EXCLUDE mode, a source leaving the exclude list is now allowed.
    h.run_until(20)
    h.set(fam.group, EX, fam.s1)
    h.run_until(30)
    out = h.set(fam.group, EX)
    assert records(out) == [GroupRecord(T.ALLOW_NEW_SOURCES, fam.group, (fam.s1,))]


def test_leave_is_to_in_of_nothing(fam: Fam) -> None:
    h = harness(fam)
    h.set(fam.group, EX)
    h.run_until(10)
    out = h.set(fam.group, IN)
    assert records(out) == [GroupRecord(T.CHANGE_TO_INCLUDE_MODE, fam.group)]
    assert len(h.run_until(20)) == 1  # retransmitted once
    assert h.host.state(fam.group) == (IN, frozenset())
    assert list(h.host.groups()) == []


def test_changes_during_retransmission_merge_into_the_pending_report(fam: Fam) -> None:
    # RFC 9776 §5.1: a filter-mode change is retransmitted [Robustness] times even if
    # source-list changes follow; these are then sent as ALLOW/BLOCK.
    h = harness(fam, 0.5)
    h.set(fam.group, EX)  # TO_EX({}), one retransmission pending
    out = h.set(fam.group, EX, fam.s1)  # still in the filter-mode retransmission period
    assert records(out) == [GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, fam.group, (fam.s1,))]
    later = h.run_until(10)
    assert [records([t]) for _, t in later] == [
        [GroupRecord(T.BLOCK_OLD_SOURCES, fam.group, (fam.s1,))],
        [GroupRecord(T.BLOCK_OLD_SOURCES, fam.group, (fam.s1,))],
    ]


def test_several_groups_share_one_report(fam: Fam) -> None:
    h = harness(fam)
    h.host.set_state(fam.group, EX, frozenset(), 0.0)
    h.host.set_state(fam.group2, IN, frozenset({fam.s1}), 0.0)
    out = h.collect()
    assert len(out) == 1
    assert [r.group for r in records(out)] == [fam.group, fam.group2]


def test_no_change_sends_nothing(fam: Fam) -> None:
    h = harness(fam)
    assert h.set(fam.group, IN) == []
    h.set(fam.group, EX, fam.s1)
    h.run_until(10)
    assert h.set(fam.group, EX, fam.s1) == []


def test_general_query_answered_within_max_resp(fam: Fam) -> None:
    h = harness(fam, 0.3)
    h.set(fam.group, EX, fam.s1)
    h.set(fam.group2, IN, fam.s2)
    h.run_until(10)
    assert h.query(fam.general_query(max_resp=10.0)) == []
    later = h.run_until(20)
    assert [at for at, _ in later] == [13.0]  # 10 + 0.3 * 10
    assert records([later[0][1]]) == [
        GroupRecord(T.MODE_IS_EXCLUDE, fam.group, (fam.s1,)),
        GroupRecord(T.MODE_IS_INCLUDE, fam.group2, (fam.s2,)),
    ]


def test_pending_general_response_sooner_covers_later_queries(fam: Fam) -> None:
    h = harness(fam, 0.1, 0.9)
    h.set(fam.group, EX)
    h.run_until(10)  # rng used once by the retransmission: next draw is 0.9
    h.query(fam.general_query(max_resp=10.0))  # at 19.0
    h.query(Query(fam.new, fam.group, 10.0))  # would be at 11.0: sooner, so scheduled
    h.query(Query(fam.new, fam.group, 10.0))  # 0.1 -> 11.0 again
    later = h.run_until(30)
    assert [at for at, _ in later] == [11.0, 19.0]


def test_group_and_source_specific_query(fam: Fam) -> None:
    h = harness(fam, 0.0)
    h.set(fam.group, IN, fam.s1)
    h.run_until(5)
    h.query(Query(fam.new, fam.group, 1.0, (fam.s1, fam.s2)))
    later = h.run_until(10)
    assert records([t for _, t in later]) == [GroupRecord(T.MODE_IS_INCLUDE, fam.group, (fam.s1,))]
    # In EXCLUDE mode, the queried sources not excluded are wanted.
    h.set(fam.group, EX, fam.s1)
    h.run_until(20)
    h.query(Query(fam.new, fam.group, 1.0, (fam.s1, fam.s2)))
    later = h.run_until(30)
    assert records([t for _, t in later]) == [GroupRecord(T.MODE_IS_INCLUDE, fam.group, (fam.s2,))]
    # Nothing wanted among the queried: no answer.
    h.query(Query(fam.new, fam.group, 1.0, (fam.s1,)))
    assert h.run_until(40) == []
    # A query for a group without state: no answer.
    h.query(Query(fam.new, fam.group2, 1.0))
    assert h.run_until(50) == []


def test_group_query_without_sources_widens_a_pending_source_query(fam: Fam) -> None:
    h = harness(fam, 0.5)
    h.set(fam.group, EX, fam.s1)
    h.run_until(5)
    h.query(Query(fam.new, fam.group, 2.0, (fam.s2,)))
    h.query(Query(fam.new, fam.group, 2.0))
    later = h.run_until(10)
    assert records([t for _, t in later]) == [GroupRecord(T.MODE_IS_EXCLUDE, fam.group, (fam.s1,))]


def test_querier_robustness_and_interval_are_adopted(fam: Fam) -> None:
    h = harness(fam, 0.5)
    h.query(Query(fam.new, bytes(fam.alen), 10.0, qrv=3, qqi=60))
    h.run_until(100)
    assert h.host.robustness == 3
    h.set(fam.group, EX)
    assert len(h.run_until(200)) == 2  # three transmissions in all


def test_older_querier_switches_to_old_messages_and_back(fam: Fam) -> None:
    h = harness(fam, 0.5)
    h.query(fam.general_query(version=fam.old, max_resp=10.0))
    assert h.host.compatibility_mode(h.now) == fam.old
    out = h.set(fam.group, EX, fam.s1)
    assert out == [Transmit(Report(fam.old, (GroupRecord(T.MODE_IS_EXCLUDE, fam.group),)),
                            fam.group)]
    assert h.set(fam.group, EX, fam.s2) == []  # a source change cannot be said
    h.run_until(5)
    assert h.set(fam.group, IN) == [Transmit(Leave(fam.group), fam.all_routers)]
    # The Older Version Querier Present Timeout: Robustness * QI + Max Resp = 2*125 + 10.
    assert h.host.compatibility_mode(259.9) == fam.old
    assert h.host.compatibility_mode(260.1) == fam.new
    h.run_until(261)
    assert records(h.set(fam.group, EX)) == [GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, fam.group)]


@pytest.mark.parametrize(
    ("name", "version", "max_resp", "timeout"),
    [
        # RFC 9776 §8.12 / RFC 9777 §9.12 with the default values: 2 * 125 + 10 = 260 s.
        ("igmp", 2, 10.0, 260.0),
        ("mld", 1, 10.0, 260.0),
        # An IGMPv1 Query's Max Resp Code 0 stands for 10 seconds (RFC 2236 §4).
        ("igmp", 1, 0.0, 260.0),
        # The Max Response Time of the older Query itself counts, not our default.
        ("igmp", 2, 5.0, 255.0),
        ("mld", 1, 25.0, 275.0),
    ],
)
def test_older_version_querier_present_timeout(
    name: str, version: int, max_resp: float, timeout: float
) -> None:
    fam = FAMS[name]
    h = harness(fam)
    # A newer Query first, with another Max Response Time: the older Query's own counts.
    h.query(fam.general_query(max_resp=20.0))
    h.run_until(100)
    h.query(fam.general_query(version=version, max_resp=max_resp))
    assert h.host.compatibility_mode(100 + timeout - 0.001) == version
    assert h.host.compatibility_mode(100 + timeout) == fam.new


def test_igmpv1_querier_has_no_leave() -> None:
    fam = FAMS["igmp"]
    h = harness(fam)
    h.query(fam.general_query(version=1, max_resp=10.0))
    assert h.host.compatibility_mode(0) == 1
    out = h.set(fam.group, EX)
    assert out == [Transmit(Report(1, (GroupRecord(T.MODE_IS_EXCLUDE, fam.group),)), fam.group)]
    h.run_until(30)
    assert h.set(fam.group, IN) == []


def test_older_querier_answers_queries_with_old_reports(fam: Fam) -> None:
    h = harness(fam, 0.5)
    h.set(fam.group, EX)
    h.query(fam.general_query(version=fam.old, max_resp=10.0))
    later = h.run_until(30)
    assert [t for _, t in later] == [
        Transmit(Report(fam.old, (GroupRecord(T.MODE_IS_EXCLUDE, fam.group),)), fam.group)]


def test_large_records_are_split_to_fit_the_mtu(fam: Fam) -> None:
    h = harness(fam)
    base = int.from_bytes(fam.s1)
    many = [(base + i).to_bytes(fam.alen) for i in range(1000)]
    out = h.set(fam.group, IN, *many)
    assert len(out) > 1
    sent = [s for r in records(out) for s in r.sources]
    assert sorted(sent) == sorted(many)
    for t in out:
        assert isinstance(t.message, Report)
        size = sum((8 if fam.alen == 4 else 20) + fam.alen * len(r.sources)
                   for r in t.message.records)
        assert size <= (1500 - 32 if fam.alen == 4 else 1280 - 56)
    # EXCLUDE records are truncated, never split (RFC 9776 §4.2.16).
    h.run_until(10)
    out = h.set(fam.group, EX, *many)
    recs = records(out)
    assert len(recs) == 1
    assert recs[0].type == T.CHANGE_TO_EXCLUDE_MODE
    assert 0 < len(recs[0].sources) < 1000


def test_igmpv1_query_is_answered_within_ten_seconds_not_at_once() -> None:
    # RFC 2236 §4: an IGMPv1 Query's Max Response Time 0 means 10 seconds.
    fam = FAMS["igmp"]
    h = harness(fam, 0.5)
    h.set(fam.group, EX)
    h.run_until(20)
    h.query(fam.general_query(version=1, max_resp=0.0))
    answers = h.run_until(40)
    assert [at for at, _ in answers] == [20 + 5.0]


# --- packing (RFC 9776 §4.2.16, RFC 9777 §5.2.15) ------------------------------------------

# The MTU a host assumes when told none: Ethernet's for IPv4, the IPv6 minimum link MTU.
MTU = {Family.V4: 1500, Family.V6: 1280}
# Octets around the records: IPv4 header + Router Alert + IGMPv3 report header (20 + 4 + 8);
# IPv6 header + Hop-by-Hop Router Alert + MLDv2 report header (40 + 8 + 8).
AROUND = {Family.V4: 32, Family.V6: 56}
IP_HEADER = {Family.V4: 24, Family.V6: 48}
RECORD = {Family.V4: 8, Family.V6: 20}  # a record with no sources
# Records without sources in one report: (1500 - 32) // 8 and (1280 - 56) // 20.
PER_REPORT = {Family.V4: 183, Family.V6: 61}
# Sources in a record alone in a report: (1500 - 32 - 8) // 4 and (1280 - 56 - 20) // 16.
MOST_SOURCES = {Family.V4: 365, Family.V6: 75}
LINK_LOCAL = ip("fe80::1")


def nth(base: bytes, i: int) -> bytes:
    return (int.from_bytes(base) + i).to_bytes(len(base))


def on_the_wire(fam: Fam, t: Transmit, mtu: int | None = None) -> int:
    """Build ``t`` as it is sent; check that its packet fits the MTU and that the bytes parse
    back to the message exactly. The octets of its records."""
    assert isinstance(t.message, Report)
    if fam.family is Family.V4:
        payload = build_igmp(t.message)
        assert parse_igmp(payload) == t.message
    else:
        payload = build_mld(t.message, LINK_LOCAL, t.destination)
        assert parse_mld(payload, LINK_LOCAL, t.destination) == t.message
    assert IP_HEADER[fam.family] + len(payload) <= (mtu or MTU[fam.family])
    return len(payload) - 8


def test_the_mtu_is_the_family_default_unless_given(fam: Fam) -> None:
    assert UpstreamHost(fam.family, rng=Rng()).mtu == MTU[fam.family]
    assert UpstreamHost(fam.family, rng=Rng(), mtu=9000).mtu == 9000
    with pytest.raises(ValueError, match="MTU"):
        UpstreamHost(fam.family, rng=Rng(), mtu=AROUND[fam.family] + RECORD[fam.family])


def test_state_changes_due_together_fill_reports_to_the_mtu(fam: Fam) -> None:
    h = harness(fam)
    groups = [nth(fam.group, i) for i in range(1000)]
    for g in groups:
        h.host.set_state(g, EX, frozenset(), 0.0)
    out = h.collect()
    per = PER_REPORT[fam.family]
    assert [len(t.message.records) for t in out] == [per] * (1000 // per) + [1000 % per]
    assert all(t.destination == fam.v3_routers for t in out)
    for t in out:
        on_the_wire(fam, t)
    # Nothing lost across the reports, nothing twice, in order.
    assert records(out) == [GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, g) for g in groups]


def test_retransmissions_are_packed_too(fam: Fam) -> None:
    h = harness(fam, 0.5, robustness=3)
    groups = [nth(fam.group, i) for i in range(500)]
    for g in groups:
        h.host.set_state(g, EX, frozenset(), 0.0)
    first = h.collect()
    # Groups joined later ride on the same retransmission ticks (one timer per interface).
    h.now = 0.25
    late = [nth(fam.group2, 1000 + i) for i in range(100)]
    for g in late:
        h.host.set_state(g, IN, frozenset({fam.s1}), h.now)
    h.collect()
    later = h.run_until(10)
    ticks = sorted({at for at, _ in later})
    assert len(ticks) == 2  # robustness 3: two retransmissions
    per_source = fam.alen
    octets = 500 * RECORD[fam.family] + 100 * (RECORD[fam.family] + per_source)
    room = MTU[fam.family] - AROUND[fam.family]
    for tick in ticks:
        sent = [t for at, t in later if at == tick]
        assert len(sent) == -(-octets // room)  # the fewest that can hold the octets
        assert sum(on_the_wire(fam, t) for t in sent) == octets
        assert {r.group for r in records(sent)} == set(groups) | set(late)
    assert len(first) == -(-500 // PER_REPORT[fam.family])


def test_general_query_answer_is_packed(fam: Fam) -> None:
    h = harness(fam, 0.5)
    groups = [nth(fam.group, i) for i in range(1000)]
    for g in groups:
        h.host.set_state(g, EX, frozenset(), 0.0)
    h.collect()
    h.run_until(10)
    h.query(fam.general_query(max_resp=10.0))
    answer = [t for _, t in h.run_until(30)]
    per = PER_REPORT[fam.family]
    assert [len(t.message.records) for t in answer] == [per] * (1000 // per) + [1000 % per]
    for t in answer:
        on_the_wire(fam, t)
    assert records(answer) == [GroupRecord(T.MODE_IS_EXCLUDE, g) for g in groups]


def test_group_responses_due_together_share_reports(fam: Fam) -> None:
    h = harness(fam, 0.5)
    groups = [nth(fam.group, i) for i in range(100)]
    for g in groups:
        h.host.set_state(g, EX, frozenset(), 0.0)
    h.collect()
    h.run_until(10)
    for g in groups:  # the querier asks each group at once; all due at 10 + 0.5 * 2
        h.query(Query(fam.new, g, 2.0))
    answer = [t for _, t in h.run_until(20)]
    assert len(answer) == -(-100 // PER_REPORT[fam.family])
    assert records(answer) == [GroupRecord(T.MODE_IS_EXCLUDE, g) for g in groups]


@pytest.mark.parametrize("kind", ["include", "allow-block"])
def test_a_record_with_too_many_sources_is_split_and_fills_each_report(
    fam: Fam, kind: str
) -> None:
    h = harness(fam)
    many = [nth(fam.s1, i) for i in range(1000)]
    others = [nth(fam.s1, 5000 + i) for i in range(1000)]
    if kind == "allow-block":
        h.set(fam.group, IN, *many)
        h.run_until(10)
    h.host.set_state(fam.group2, EX, frozenset(), h.now)  # a small record first
    h.host.set_state(fam.group, IN, frozenset(others if kind == "allow-block" else many),
                     h.now)
    out = h.collect()
    room = MTU[fam.family] - AROUND[fam.family]
    used = [on_the_wire(fam, t) for t in out]
    # Every report but the last as full as the record layout allows: fewer octets left
    # than one more source.
    assert all(room - u < fam.alen for u in used[:-1])
    recs = records(out)
    assert recs[0] == GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, fam.group2)
    # Pieces of one record never share a report (RFC 9776 §4.2.16).
    for t in out:
        assert len({(r.type, r.group) for r in t.message.records}) == len(t.message.records)
    # Nothing lost: each record's pieces carry exactly its sources.
    wanted = ({T.ALLOW_NEW_SOURCES: others, T.BLOCK_OLD_SOURCES: many} if kind == "allow-block"
              else {T.ALLOW_NEW_SOURCES: many})
    for rtype, sources in wanted.items():
        pieces = [r for r in recs if r.type == rtype and r.group == fam.group]
        assert all(len(r.sources) <= MOST_SOURCES[fam.family] for r in pieces)
        assert sorted(s for r in pieces for s in r.sources) == sorted(sources)
    # The retransmission says it all again, split alike.
    later = [t for _, t in h.run_until(h.now + 10)]
    for rtype, sources in wanted.items():
        pieces = [r for r in records(later) if r.type == rtype and r.group == fam.group]
        assert sorted(s for r in pieces for s in r.sources) == sorted(sources)


def test_an_exclude_record_too_large_is_truncated_in_a_report_of_its_own(fam: Fam) -> None:
    h = harness(fam)
    many = [nth(fam.s1, i) for i in range(1000)]
    h.host.set_state(fam.group2, EX, frozenset(), 0.0)
    h.host.set_state(fam.group, EX, frozenset(many), 0.0)
    h.host.set_state(nth(fam.group2, 7), EX, frozenset(), 0.0)
    out = h.collect()
    assert [[r.group for r in t.message.records] for t in out] == [
        [fam.group2], [fam.group], [nth(fam.group2, 7)]]
    (record,) = out[1].message.records
    assert record.type == T.CHANGE_TO_EXCLUDE_MODE
    assert record.sources == tuple(sorted(many))[:MOST_SOURCES[fam.family]]
    for t in out:
        on_the_wire(fam, t)


def test_a_smaller_mtu_packs_fewer_records(fam: Fam) -> None:
    mtu = 576 if fam.family is Family.V4 else 1280
    h = harness(fam, mtu=mtu)
    for i in range(200):
        h.host.set_state(nth(fam.group, i), EX, frozenset(), 0.0)
    out = h.collect()
    per = (mtu - AROUND[fam.family]) // RECORD[fam.family]
    assert [len(t.message.records) for t in out][:-1] == [per] * (len(out) - 1)
    for t in out:
        on_the_wire(fam, t, mtu)


def test_older_querier_modes_send_one_message_per_group(fam: Fam) -> None:
    # IGMPv1/v2 and MLDv1 messages carry one group: nothing to pack.
    for version in sorted({fam.old, 1}):
        h = harness(fam, 0.5)
        h.query(fam.general_query(version=version, max_resp=10.0))
        groups = [nth(fam.group, i) for i in range(50)]
        for g in groups:
            h.host.set_state(g, EX, frozenset(), h.now)
        out = h.collect()
        assert out == [Transmit(Report(version, (GroupRecord(T.MODE_IS_EXCLUDE, g),)), g)
                       for g in groups]
        later = h.run_until(4)  # the repetition, one per group too
        assert [t for _, t in later] == out
        answer = [t for _, t in h.run_until(20)]  # the query's answer, due at 5
        assert answer == out
        for g in groups:
            h.host.set_state(g, IN, frozenset(), h.now)
        leaves = h.collect()
        if fam.family is Family.V4 and version == 1:
            assert leaves == []  # IGMPv1 has no leave
        else:
            assert leaves == [Transmit(Leave(g), fam.all_routers) for g in groups]
