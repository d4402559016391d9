"""Inputs the link must not act on are counted by reason, never raised (STYLE §5)."""

from __future__ import annotations

import pytest
from membership_harness import FLAVORS, IGMPV3, IS_EX, MLDV2, SOURCE_FILTERING, Flavor, Harness, ip

from mcastproxy.drops import Drop
from mcastproxy.membership import ProtocolTimers, RouterLink
from mcastproxy.wire.messages import GroupRecord, Leave, Query, Report

LINK_SCOPE = {
    4: ["224.0.0.1", "224.0.0.22", "224.0.0.251"],
    6: ["ff02::1", "ff02::16", "ff12::1", "ff01::1"],
}
NOT_MULTICAST = {4: ["10.0.0.1", "240.0.0.1", "0.0.0.0"], 6: ["2001:db8::1", "fe80::1", "::"]}


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_reports_for_link_scope_groups_are_ignored(flavor: Flavor) -> None:
    h = Harness(flavor)
    for text in LINK_SCOPE[flavor.family]:
        h.receive(flavor.join(ip(text)), flavor.host(1))
        h.receive(Leave(ip(text)), flavor.host(1))
    n = len(LINK_SCOPE[flavor.family])
    assert h.link.dropped == {Drop.LINK_LOCAL_SCOPE: 2 * n}
    assert h.link.groups() == ()


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_reports_for_non_multicast_groups_are_ignored(flavor: Flavor) -> None:
    h = Harness(flavor)
    for text in NOT_MULTICAST[flavor.family]:
        h.receive(flavor.join(ip(text)), flavor.host(1))
    assert h.link.dropped == {Drop.NOT_MULTICAST: 3}
    assert h.link.groups() == ()


def test_wider_ipv6_scopes_are_accepted() -> None:
    h = Harness(MLDV2)
    for text in ("ff05::1:3", "ff0e::1", "ff7e:240:2001:db8::1", "ff15::1"):
        h.receive(MLDV2.join(ip(text)), MLDV2.host(1))
    assert h.link.dropped == {}
    assert len(h.link.groups()) == 4


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_reports_from_our_own_address_are_ignored(flavor: Flavor) -> None:
    h = Harness(flavor)
    h.receive(flavor.join(flavor.group()), flavor.router(10))
    assert h.link.dropped == {Drop.FROM_OWN_ADDRESS: 1}
    assert h.link.groups() == ()


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_bad_records_are_dropped_one_by_one(flavor: Flavor) -> None:
    h = Harness(flavor)
    f = flavor
    other = bytes(16 if f.family == 4 else 4)
    report = Report(
        f.full,
        (
            GroupRecord(9, f.group(1)),  # type: ignore[arg-type]  # a type from a newer RFC
            GroupRecord(IS_EX, other),
            GroupRecord(IS_EX, f.group(2), (other,)),
            GroupRecord(IS_EX, f.group(3)),
        ),
    )
    h.receive(report, f.host(1))
    assert h.link.dropped == {Drop.UNKNOWN_RECORD_TYPE: 1, Drop.WRONG_FAMILY: 2}
    assert h.link.groups() == (f.group(3),)


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_bad_senders_and_versions(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.join(g), bytes(5))  # no family has 5-octet addresses
    h.receive(Report(f.full + 1, (GroupRecord(IS_EX, g),)), f.host(1))
    h.receive(Report(1, (GroupRecord(IS_EX, g), GroupRecord(IS_EX, f.group(2)))), f.host(1))
    h.receive(Report(1, (GroupRecord(2, g, (f.source(1),)),)), f.host(1))
    h.receive(Query(f.full + 1, f.unspecified, 10.0), f.router(1))
    h.receive(Query(f.full, f.source(1), 10.0), f.router(1))
    h.receive("not a message", f.host(1))  # type: ignore[arg-type]  # misuse, counted
    assert h.link.dropped == {
        Drop.WRONG_FAMILY: 1,
        Drop.VERSION_INVALID: 2,
        Drop.RECORD_INVALID_FOR_VERSION: 2,
        Drop.NOT_MULTICAST: 1,
        Drop.UNKNOWN_MESSAGE: 1,
    }
    assert h.link.groups() == ()
    assert h.link.is_querier


def test_mld_messages_from_outside_link_local_are_dropped() -> None:
    h = Harness(MLDV2)
    h.receive(MLDV2.join(MLDV2.group()), ip("2001:db8::99"))
    h.receive(MLDV2.general_query(), ip("2001:db8::1"))
    assert h.link.dropped == {Drop.SOURCE_NOT_LINK_LOCAL: 2}
    assert h.link.is_querier
    assert h.link.groups() == ()


def test_igmp_from_multicast_source_is_dropped() -> None:
    h = Harness(IGMPV3)
    h.receive(IGMPV3.join(IGMPV3.group()), ip("224.1.1.1"))
    h.receive(IGMPV3.join(IGMPV3.group()), ip("255.255.255.255"))
    assert h.link.dropped == {Drop.SOURCE_INVALID: 2}


@pytest.mark.parametrize(
    ("family", "version", "own", "words"),
    [
        (5, 3, None, "family"),
        (4, 4, None, "IGMP version"),
        (4, 0, None, "IGMP version"),
        (6, 3, None, "MLD version"),
        (4, 3, bytes(16), "4 packed octets"),
        (6, 2, b"x", "16 packed octets"),
    ],
)
def test_constructor_refuses_misuse(family: int, version: int, own: bytes | None, words) -> None:
    with pytest.raises(ValueError, match=words):
        RouterLink(ProtocolTimers(), family, version, own)


def test_set_address_refuses_wrong_length() -> None:
    link = RouterLink(ProtocolTimers(), 4, 3, None)
    with pytest.raises(ValueError, match="4 packed octets"):
        link.set_address(bytes(16), 0.0)
