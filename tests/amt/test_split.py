"""The membership split over relays (``amt.split``): each relay told its part, changes said
as a host says them (RFC 9776 §5.1), retransmissions repeated, sources moved between relays."""

from __future__ import annotations

import ipaddress

import pytest

from mcastproxy.amt.pseudo import GroupState
from mcastproxy.amt.split import RelaySplit, difference, split
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

ALLOW, BLOCK = RecordType.ALLOW_NEW_SOURCES, RecordType.BLOCK_OLD_SOURCES
TO_IN, TO_EX = RecordType.CHANGE_TO_INCLUDE_MODE, RecordType.CHANGE_TO_EXCLUDE_MODE
IS_IN, IS_EX = RecordType.MODE_IS_INCLUDE, RecordType.MODE_IS_EXCLUDE


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


G, H = ip("232.1.1.1"), ip("239.1.1.1")
S1, S2, S3 = ip("10.0.9.1"), ip("10.0.9.2"), ip("10.0.9.3")
RELAY = {S1: "A", S2: "B", S3: "A"}


def inc(*sources: bytes) -> GroupState:
    return (False, frozenset(sources))


def exc(*sources: bytes) -> GroupState:
    return (True, frozenset(sources))


def rec(kind: RecordType, group: bytes, *sources: bytes) -> GroupRecord:
    return GroupRecord(kind, group, tuple(sorted(sources)))


@pytest.mark.parametrize(("before", "after", "records"), [
    (None, inc(S1), [rec(ALLOW, G, S1)]),
    (None, exc(), [rec(TO_EX, G)]),
    (inc(S1), inc(S2), [rec(ALLOW, G, S2), rec(BLOCK, G, S1)]),
    (inc(S1), None, [rec(BLOCK, G, S1)]),
    (inc(S1), exc(S2), [rec(TO_EX, G, S2)]),
    (exc(S1), exc(S2), [rec(ALLOW, G, S1), rec(BLOCK, G, S2)]),
    (exc(S1), inc(S2), [rec(TO_IN, G, S2)]),
    (exc(S1), None, [rec(TO_IN, G)]),
    (inc(S1), inc(S1), []),
])  # fmt: skip
def test_the_difference_is_said_as_rfc_9776_says_it(
    before: GroupState | None, after: GroupState | None, records: list[GroupRecord]
) -> None:
    assert difference(G, before, after) == records


def test_sources_go_to_their_relays_and_any_source_joins_to_the_default() -> None:
    parts = split({G: inc(S1, S2, S3), H: exc(S2)}, RELAY.get, "D")
    assert parts == {"A": {G: inc(S1, S3)}, "B": {G: inc(S2)}, "D": {H: exc(S2)}}
    # A source whose relay is not known yet is left out: its channel waits.
    assert split({G: inc(S1, S2)}, {S1: "A"}.get, "D") == {"A": {G: inc(S1)}}


def test_each_relay_is_told_its_part_and_only_what_changed_there() -> None:
    s = RelaySplit(Family.V4, "D")
    out = s.update({G: inc(S1, S2)}, RELAY.get)
    assert set(out) == {"A", "B"}
    assert out["A"].changes == (Report(3, (rec(ALLOW, G, S1),)),)
    assert out["A"].current == (Report(3, (rec(IS_IN, G, S1),)),)
    assert out["B"].changes == (Report(3, (rec(ALLOW, G, S2),)),)
    # S3 joins: only A hears of it.
    out = s.update({G: inc(S1, S2, S3)}, RELAY.get)
    assert set(out) == {"A"}
    assert out["A"].changes == (Report(3, (rec(ALLOW, G, S3),)),)
    # S2 leaves: B's part is empty (its gateway tears down).
    out = s.update({G: inc(S1, S3)}, RELAY.get)
    assert set(out) == {"B"}
    assert out["B"].current == ()
    assert out["B"].changes == (Report(3, (rec(BLOCK, G, S2),)),)
    assert sorted(map(str, s.keys())) == ["A"]


def test_a_source_whose_relay_changed_moves() -> None:
    s = RelaySplit(Family.V4, "D")
    s.update({G: inc(S1)}, RELAY.get)
    out = s.update({G: inc(S1)}, {S1: "B"}.get)
    assert out["A"].changes == (Report(3, (rec(BLOCK, G, S1),)),)
    assert out["A"].current == ()
    assert out["B"].changes == (Report(3, (rec(ALLOW, G, S1),)),)


def test_a_retransmission_says_the_last_records_again_where_they_were_said() -> None:
    s = RelaySplit(Family.V4, "D")
    s.update({G: inc(S1, S2)}, RELAY.get, touched={G})
    out = s.update({G: inc(S1, S2)}, RELAY.get, touched={G})  # the host side again
    assert out["A"].changes == (Report(3, (rec(ALLOW, G, S1),)),)
    assert out["B"].changes == (Report(3, (rec(ALLOW, G, S2),)),)
    # A Current-State answer (nothing touched) says nothing.
    assert s.update({G: inc(S1, S2)}, RELAY.get) == {}


def test_one_relay_is_the_membership_itself() -> None:
    s = RelaySplit(Family.V6, "D")
    g6, s6 = ip("ff3e::8000:1"), ip("fd00:9::1")
    out = s.update({g6: inc(s6)}, lambda source: "D")
    assert out["D"].changes == (Report(2, (rec(ALLOW, g6, s6),)),)
    out = s.update({}, lambda source: "D")
    assert out["D"].current == ()
    assert out["D"].changes == (Report(2, (rec(BLOCK, g6, s6),)),)


def test_a_forgotten_key_is_told_its_part_whole_again() -> None:
    s = RelaySplit(Family.V4, "D")
    s.update({G: inc(S1)}, RELAY.get)
    s.forget("A")
    out = s.update({G: inc(S1)}, RELAY.get)
    assert out["A"].changes == (Report(3, (rec(ALLOW, G, S1),)),)


def test_a_large_part_is_packed_in_reports_within_the_budget() -> None:
    sources = [ipaddress.IPv4Address(0x0A000000 + i).packed for i in range(1000)]
    s = RelaySplit(Family.V4, "D")
    out = s.update({G: inc(*sources)}, lambda source: "D")
    assert len(out["D"].changes) > 1
    said = {src for r in out["D"].changes for g in r.records for src in g.sources}
    assert said == set(sources)
    assert all(g.type is ALLOW for r in out["D"].changes for g in r.records)
