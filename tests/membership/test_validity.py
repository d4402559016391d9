"""The IP-level validity rules (``membership.validity``), each with explicit values: TTL / hop
limit 1, Router Alert, the source's subnet (RFC 9776 §4, §4.2.13, §9.2; RFC 9777 §5, §6.2,
§7.4; RFC 8652's require-router-alert and verify-source-subnet)."""

from __future__ import annotations

import pytest
from membership_harness import IGMPV2, IGMPV3, MLDV1, MLDV2, Flavor, ip

from mcastproxy.drops import Drop, Stage
from mcastproxy.family import Family
from mcastproxy.membership.validity import LinkValidity, check_upstream_query, subnets_of
from mcastproxy.wire.messages import GroupRecord, Leave, Query, RecordType, Report

V4, V6 = Family.V4, Family.V6
G4, G6 = ip("239.1.1.1"), ip("ff0e::1")
HOST4, HOST6 = ip("10.1.1.7"), ip("fe80::7")

V1_REPORT = Report(1, (GroupRecord(RecordType.MODE_IS_EXCLUDE, G4),))
V2_REPORT = Report(2, (GroupRecord(RecordType.MODE_IS_EXCLUDE, G4),))
V3_REPORT = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G4),))
V2_LEAVE = Leave(G4)
V1_QUERY = Query(1, bytes(4), 0.0)
MLD_REPORT = Report(2, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G6),))
MLD_DONE = Leave(G6)
IGMP_MESSAGES = [V1_REPORT, V2_REPORT, V3_REPORT, V2_LEAVE]
MLD_MESSAGES = [MLD_REPORT, MLD_DONE, Report(1, (GroupRecord(RecordType.MODE_IS_EXCLUDE, G6),))]


@pytest.mark.parametrize("ttl", [0, 2, 64, 255])
@pytest.mark.parametrize("message", IGMP_MESSAGES)
def test_igmp_with_a_ttl_other_than_1_is_dropped(ttl: int, message) -> None:
    assert LinkValidity(V4).check(message, HOST4, ttl, True) is Drop.TTL_NOT_ONE
    assert LinkValidity(V4).check(message, HOST4, 1, True) is None


@pytest.mark.parametrize("hop_limit", [0, 2, 64, 255])
@pytest.mark.parametrize("message", MLD_MESSAGES)
def test_mld_with_a_hop_limit_other_than_1_is_dropped(hop_limit: int, message) -> None:
    assert LinkValidity(V6).check(message, HOST6, hop_limit, True) is Drop.HOP_LIMIT_NOT_ONE
    assert LinkValidity(V6).check(message, HOST6, 1, True) is None


@pytest.mark.parametrize("message", [V2_REPORT, V3_REPORT, V2_LEAVE])
def test_igmpv2_and_v3_without_router_alert_are_dropped(message) -> None:
    assert LinkValidity(V4).check(message, HOST4, 1, False) is Drop.NO_ROUTER_ALERT


@pytest.mark.parametrize("message", MLD_MESSAGES)
def test_mld_without_router_alert_is_dropped(message) -> None:
    assert LinkValidity(V6).check(message, HOST6, 1, False) is Drop.NO_ROUTER_ALERT


@pytest.mark.parametrize("message", [V1_REPORT, V1_QUERY])
def test_igmpv1_is_exempt_unless_router_alert_is_required(message) -> None:
    """RFC 1112 predates the option: by default an IGMPv1 message without it is taken."""
    assert LinkValidity(V4).check(message, HOST4, 1, False) is None
    assert LinkValidity(V4, True).check(message, HOST4, 1, False) is Drop.NO_ROUTER_ALERT
    assert LinkValidity(V4, True).check(message, HOST4, 1, True) is None


@pytest.mark.parametrize("message", IGMP_MESSAGES + MLD_MESSAGES)
def test_require_router_alert_false_does_not_check_it(message) -> None:
    family = V6 if len(message.group if isinstance(message, Leave)
                       else message.records[0].group) == 16 else V4
    host = HOST6 if family is V6 else HOST4
    assert LinkValidity(family, False).check(message, host, 1, False) is None
    assert LinkValidity(family, False).check(message, host, 2, False) is not None  # TTL still


@pytest.mark.parametrize("message", IGMP_MESSAGES)
def test_unknown_values_pass(message) -> None:
    """A socket (or a test) that does not say: ``None`` is not a violation."""
    assert LinkValidity(V4, True).check(message, HOST4, None, None) is None


def test_verify_source_subnet() -> None:
    subnets = subnets_of([ip("10.1.1.1"), ip("fe80::1"), ip("192.0.2.1")], [24, 64, 32])
    assert subnets == ((0x0A010100, 0xFFFFFF00), (0xC0000201, 0xFFFFFFFF))
    rules = LinkValidity(V4, None, subnets)
    assert rules.check(V3_REPORT, ip("10.1.1.200"), 1, True) is None
    assert rules.check(V2_LEAVE, ip("192.0.2.1"), 1, True) is None
    assert rules.check(V3_REPORT, bytes(4), 1, True) is None  # 0.0.0.0 (RFC 9776 §4.2.13)
    for forged in ("10.1.2.1", "192.0.2.2", "203.0.113.9", "255.255.255.255"):
        assert rules.check(V3_REPORT, ip(forged), 1, True) is Drop.SOURCE_NOT_IN_SUBNET
        assert rules.check(V2_LEAVE, ip(forged), 1, True) is Drop.SOURCE_NOT_IN_SUBNET
    # Queries answer to the querier policy instead; MLD has no subnet rule.
    assert rules.check(V1_QUERY, ip("203.0.113.9"), 1, True) is None
    assert LinkValidity(V6, None, subnets).check(MLD_REPORT, HOST6, 1, True) is None
    # A link with no IPv4 subnet takes reports from 0.0.0.0 only.
    none = LinkValidity(V4, None, ())
    assert none.check(V3_REPORT, HOST4, 1, True) is Drop.SOURCE_NOT_IN_SUBNET
    assert none.check(V3_REPORT, bytes(4), 1, True) is None


def test_subnets_of_refuses_what_no_interface_has() -> None:
    with pytest.raises(ValueError, match="0 to 32"):
        subnets_of([ip("10.1.1.1")], [33])
    with pytest.raises(ValueError, match="longer"):
        subnets_of([ip("10.1.1.1")], [24, 24])
    assert subnets_of([ip("10.1.1.1"), ip("10.1.1.2")], [0, 0]) == ((0, 0),)


@pytest.mark.parametrize("flavor", [IGMPV2, IGMPV3, MLDV1, MLDV2], ids=str)
def test_upstream_queries(flavor: Flavor) -> None:
    fam, router = flavor.family, flavor.router(1)
    ttl_drop = Drop.TTL_NOT_ONE if fam is V4 else Drop.HOP_LIMIT_NOT_ONE
    assert check_upstream_query(fam, router, 1, True) is None
    assert check_upstream_query(fam, router, None, None) is None
    assert check_upstream_query(fam, router, 2, True) is ttl_drop
    assert check_upstream_query(fam, router, 255, True) is ttl_drop
    if fam is V4:
        # No host rule asks an IGMP query for Router Alert (and IGMPv1 queriers never send it).
        assert check_upstream_query(fam, router, 1, False) is None
    else:
        assert check_upstream_query(fam, router, 1, False) is Drop.NO_ROUTER_ALERT
        assert check_upstream_query(fam, ip("2001:db8::1"), 1, True) is Drop.SOURCE_NOT_LINK_LOCAL
        assert check_upstream_query(fam, bytes(16), 1, True) is Drop.SOURCE_NOT_LINK_LOCAL
        assert check_upstream_query(fam, b"", 1, True) is Drop.SOURCE_NOT_LINK_LOCAL


def test_each_rule_has_its_own_reason_and_is_a_validity_drop() -> None:
    reasons = [Drop.TTL_NOT_ONE, Drop.HOP_LIMIT_NOT_ONE, Drop.NO_ROUTER_ALERT,
               Drop.SOURCE_NOT_IN_SUBNET]
    assert len({r.value for r in reasons}) == len(reasons)
    assert {r.stage for r in reasons} == {Stage.INVALID}
    assert Drop.TTL_NOT_ONE.key == "ttl-not-one"
