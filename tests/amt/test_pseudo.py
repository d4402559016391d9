"""The pseudo-interface's translation (``amt.pseudo``): the proxy's membership rebuilt from the
reports it sends out of the TUN, what is handed on to the gateway, and what is dropped.
No I/O, no clock."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastproxy.amt.inner import read_query, report_packet
from mcastproxy.amt.pseudo import (
    MAX_GROUPS,
    REPORT_BUDGET,
    HostMembership,
    link_scope,
    relay_query_packet,
)
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

T = RecordType


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


FAM = {
    Family.V4: {"g": a("232.1.1.1"), "h": a("239.1.1.1"), "s1": a("10.0.9.1"),
                "s2": a("10.0.9.2"), "link": a("224.0.0.251"), "me": bytes(4)},
    Family.V6: {"g": a("ff3e::8000:1"), "h": a("ff1e::1:1"), "s1": a("fd00:9::1"),
                "s2": a("fd00:9::2"), "link": a("ff02::1:ff00:1"), "me": a("fe80::2")},
}


def packet(family: Family, *records: tuple[RecordType, str, tuple[str, ...]]) -> bytes:
    f = FAM[family]
    recs = tuple(GroupRecord(k, f[g], tuple(f[s] for s in ss)) for k, g, ss in records)
    return report_packet(family, f["me"], Report(family.newest_version, recs))


def state(m: HostMembership, family: Family) -> dict[str, tuple[bool, set[str]]]:
    names = {v: k for k, v in FAM[family].items()}
    return {names[g]: (ex, {names[s] for s in ss}) for g, (ex, ss) in m.groups().items()}


# (records in order) -> the host's state after them (RFC 9776 §3.2 / §5.1 from the host's side)
CASES = [
    ([(T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",))], {"g": (False, {"s1"})}),
    ([(T.ALLOW_NEW_SOURCES, "g", ("s1",)), (T.ALLOW_NEW_SOURCES, "g", ("s2",))],
     {"g": (False, {"s1", "s2"})}),
    ([(T.ALLOW_NEW_SOURCES, "g", ("s1", "s2")), (T.BLOCK_OLD_SOURCES, "g", ("s1",))],
     {"g": (False, {"s2"})}),
    ([(T.ALLOW_NEW_SOURCES, "g", ("s1",)), (T.BLOCK_OLD_SOURCES, "g", ("s1",))], {}),
    ([(T.CHANGE_TO_EXCLUDE_MODE, "h", ())], {"h": (True, set())}),
    ([(T.CHANGE_TO_EXCLUDE_MODE, "h", ()), (T.BLOCK_OLD_SOURCES, "h", ("s1",))],
     {"h": (True, {"s1"})}),
    ([(T.MODE_IS_EXCLUDE, "h", ("s1",)), (T.ALLOW_NEW_SOURCES, "h", ("s1",))],
     {"h": (True, set())}),
    ([(T.CHANGE_TO_EXCLUDE_MODE, "h", ()), (T.CHANGE_TO_INCLUDE_MODE, "h", ())], {}),
    ([(T.MODE_IS_INCLUDE, "g", ("s1",)), (T.MODE_IS_INCLUDE, "g", ())], {}),
    ([(T.BLOCK_OLD_SOURCES, "g", ("s1",))], {}),  # nothing to block
]


@pytest.mark.parametrize("family", list(Family))
@pytest.mark.parametrize(("records", "expected"), CASES)
def test_the_hosts_own_state_is_rebuilt_record_by_record(
    family: Family, records: list[tuple[RecordType, str, tuple[str, ...]]],
    expected: dict[str, tuple[bool, set[str]]],
) -> None:
    m = HostMembership(family)
    for record in records:
        m.read(packet(family, record))
    assert state(m, family) == expected
    # The whole of it, as Current-State Reports: a fresh host fed them has the same state.
    again = HostMembership(family)
    for report in m.current():
        assert {r.type for r in report.records} <= {T.MODE_IS_INCLUDE, T.MODE_IS_EXCLUDE}
        again.read(report_packet(family, FAM[family]["me"], report))
    assert again.groups() == m.groups()


@pytest.mark.parametrize("family", list(Family))
def test_state_changes_are_sent_and_an_answer_that_changes_nothing_is_not(
    family: Family,
) -> None:
    m = HostMembership(family)
    change = m.read(packet(family, (T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",))))
    assert isinstance(change, Report)
    assert change.records[0].type is T.CHANGE_TO_INCLUDE_MODE
    # Its retransmission is sent again (the host side's robustness, RFC 9776 §5.1).
    assert isinstance(m.read(packet(family, (T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",)))), Report)
    # The host side's answer to the relay's query: the gateway answered it already.
    assert m.read(packet(family, (T.MODE_IS_INCLUDE, "g", ("s1",)))) is None
    # A current-state report that says something new is sent.
    assert isinstance(m.read(packet(family, (T.MODE_IS_INCLUDE, "h", ("s2",)))), Report)


@pytest.mark.parametrize("family", list(Family))
def test_link_scope_groups_are_never_asked_of_the_relay(family: Family) -> None:
    m = HostMembership(family)
    assert m.read(packet(family, (T.MODE_IS_EXCLUDE, "link", ()))) is None
    out = m.read(packet(family, (T.MODE_IS_EXCLUDE, "link", ()),
                        (T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",))))
    assert isinstance(out, Report)
    assert [r.group for r in out.records] == [FAM[family]["g"]]
    assert set(m.groups()) == {FAM[family]["g"]}


def test_link_scope() -> None:
    assert all(link_scope(a(g)) for g in ("224.0.0.22", "ff02::16", "ff01::1", "ff12::1"))
    assert not any(link_scope(a(g)) for g in ("224.0.1.1", "ff05::1", "ff3e::1", "232.0.0.1"))


@pytest.mark.parametrize("family", list(Family))
def test_what_is_not_a_report_of_the_family_is_dropped_with_its_reason(family: Family) -> None:
    m = HostMembership(family)
    good = packet(family, (T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",)))
    other = packet(Family(10 - family), (T.CHANGE_TO_INCLUDE_MODE, "g", ("s1",)))
    assert m.read(other) is Drop.WRONG_FAMILY
    assert m.read(b"") is Drop.TRUNCATED_HEADER
    assert isinstance(m.read(good[:-3]), Drop)  # cut short
    assert isinstance(m.read(good[:10]), Drop)
    query = relay_query_packet(family, FAM[family]["me"] if family is Family.V6 else bytes(4),
                               Query(family.newest_version, family.unspecified, 10.0))
    assert isinstance(m.read(query), Drop)  # a query is not what the host sends
    assert m.groups() == {}


def test_the_membership_is_bounded() -> None:
    m = HostMembership(Family.V4)
    base = int(ipaddress.IPv4Address("232.10.0.0"))
    s = FAM[Family.V4]["s1"]
    for start in range(0, MAX_GROUPS, 100):
        records = tuple(GroupRecord(T.ALLOW_NEW_SOURCES, (base + i).to_bytes(4, "big"), (s,))
                        for i in range(start, start + 100))
        assert isinstance(m.read(report_packet(Family.V4, bytes(4), Report(3, records))), Report)
    one_more = Report(3, (GroupRecord(T.ALLOW_NEW_SOURCES, (base - 1).to_bytes(4, "big"),
                                      (s,)),))
    assert m.read(report_packet(Family.V4, bytes(4), one_more)) is Drop.LINK_MAX_GROUPS
    assert len(m) == MAX_GROUPS
    # Said whole, in reports that each fit an Update within the minimum IPv6 MTU.
    reports = m.current()
    assert sum(len(r.records) for r in reports) == MAX_GROUPS
    assert all(len(r.records) * 12 <= REPORT_BUDGET for r in reports)


@pytest.mark.parametrize("family", list(Family))
def test_the_relays_query_gets_the_querier_address(family: Family) -> None:
    querier = bytes(4) if family is Family.V4 else a("fe80::1")
    query = Query(family.newest_version, family.unspecified, 10.0, qrv=3, qqi=60)
    got_family, got = read_query(relay_query_packet(family, querier, query))
    assert got_family is family
    assert (got.qrv, got.qqi) == (3, 60)


@given(st.binary(max_size=200))
def test_any_bytes_out_of_the_tun_never_raise(data: bytes) -> None:
    for family in Family:
        result = HostMembership(family).read(data)
        assert result is None or isinstance(result, Drop | Report)
