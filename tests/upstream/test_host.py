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
        assert size <= 1500 - (32 if fam.alen == 4 else 56)
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
