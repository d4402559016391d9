"""The IP packets inside AMT messages (``mcastproxy.amt.inner``): built, read back, refused,
and read by scapy as an independent oracle."""

from __future__ import annotations

import logging
import warnings

import pytest
from amt_harness import CHANNEL, addr, allow, current

from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.inner import data_drop, query_packet, read_query, read_report, report_packet
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.igmp import build_igmp
from mcastproxy.wire.ipv4 import build_ipv4
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop

FAMILIES = [Family.V4, Family.V6]
SOURCE = {Family.V4: addr("10.30.1.2"), Family.V6: addr("fe80::2")}


def general_query(family: Family, qqi: int = 125, qrv: int = 2) -> Query:
    return Query(family.newest_version, family.unspecified, 10.0, qrv=qrv, qqi=qqi)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_query_packet_reads_back(family: Family) -> None:
    query = general_query(family, qqi=60, qrv=3)
    assert read_query(query_packet(family, SOURCE[family], query)) == (family, query)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_report_packet_reads_back(family: Family) -> None:
    report = current(family, CHANNEL[family])[0]
    packet = report_packet(family, SOURCE[family], report)
    assert read_report(packet) == (family, SOURCE[family], report)


@pytest.mark.parametrize("family", FAMILIES)
def test_reports_may_come_from_the_unspecified_address(family: Family) -> None:
    packet = report_packet(family, family.unspecified, allow(family, CHANNEL[family]))
    assert read_report(packet)[1] == family.unspecified


def test_scapy_reads_our_igmp_report_packet() -> None:
    packet = report_packet(Family.V4, SOURCE[Family.V4], allow(Family.V4, CHANNEL[Family.V4]))
    ip = IP(packet)
    assert (ip.src, ip.dst, ip.ttl, ip.proto) == ("10.30.1.2", "224.0.0.22", 1, 2)
    assert [o.option for o in ip.options] == [20]  # Router Alert (RFC 2113)
    del ip.chksum  # scapy recomputes: the same
    assert bytes(ip) == packet


@pytest.mark.parametrize("kind", ["query", "report"])
def test_scapy_reads_our_mld_packets(kind: str) -> None:
    """IPv6 header, Hop-by-Hop Router Alert (RFC 2711) and the MLD message with its checksum
    over the pseudo-header: scapy computes the same octets from the same fields."""
    family = Family.V6
    if kind == "query":
        packet = query_packet(family, addr("fe80::1"), general_query(family))
        destination = "ff02::1"
    else:
        packet = report_packet(family, SOURCE[family], allow(family, CHANNEL[family]))
        destination = "ff02::16"
    ip6 = IPv6(packet)
    assert (ip6.dst, ip6.hlim, ip6.nh) == (destination, 1, 0)
    hop = ip6[IPv6ExtHdrHopByHop]
    assert hop.nh == 58
    first = hop.options[0]
    assert (first.otype, getattr(first, "value", None)) == (5, 0)
    icmp = hop.payload
    recorded = icmp.cksum
    del icmp.cksum
    del ip6.plen
    assert IPv6(bytes(ip6))[IPv6ExtHdrHopByHop].payload.cksum == recorded
    assert bytes(ip6) == packet


@pytest.mark.parametrize("family", FAMILIES)
def test_builders_refuse_what_amt_does_not_carry(family: Family) -> None:
    old = Report(1, (GroupRecord(RecordType.MODE_IS_EXCLUDE, CHANNEL[family][1]),))
    with pytest.raises(ValueError, match="version"):
        report_packet(family, SOURCE[family], old)
    specific = Query(family.newest_version, CHANNEL[family][1], 1.0)
    with pytest.raises(ValueError, match="General"):
        query_packet(family, SOURCE[family], specific)
    with pytest.raises(ValueError, match="octets"):
        report_packet(family, bytes(3), allow(family, CHANNEL[family]))


@pytest.mark.parametrize("family", FAMILIES)
def test_read_query_refuses_a_report(family: Family) -> None:
    packet = report_packet(family, SOURCE[family], allow(family, CHANNEL[family]))
    with pytest.raises(WireError) as caught:
        read_query(packet)
    assert caught.value.reason is Drop.AMT_NOT_GENERAL_QUERY


def test_read_report_refuses_a_query() -> None:
    packet = query_packet(Family.V4, SOURCE[Family.V4], general_query(Family.V4))
    with pytest.raises(WireError) as caught:
        read_report(packet)
    assert caught.value.reason is Drop.UNKNOWN_MESSAGE


def test_read_query_refuses_older_and_group_specific_queries() -> None:
    for query in (Query(2, bytes(4), 10.0), Query(3, addr("232.1.1.1"), 10.0)):
        packet = build_ipv4(SOURCE[Family.V4], addr("224.0.0.1"), build_igmp(query))
        with pytest.raises(WireError) as caught:
            read_query(packet)
        assert caught.value.reason is Drop.AMT_NOT_GENERAL_QUERY


@pytest.mark.parametrize("family", FAMILIES)
def test_every_truncation_of_a_query_packet_is_refused(family: Family) -> None:
    packet = query_packet(family, SOURCE[family], general_query(family))
    for length in range(len(packet)):
        with pytest.raises(WireError):
            read_query(packet[:length])


def test_read_refuses_other_protocols_and_versions() -> None:
    udp = build_ipv4(SOURCE[Family.V4], addr("224.0.0.1"), bytes(12), protocol=17)
    with pytest.raises(WireError) as caught:
        read_query(udp)
    assert caught.value.reason is Drop.NOT_IGMP
    v6 = bytearray(query_packet(Family.V6, addr("fe80::1"), general_query(Family.V6)))
    v6[40] = 17  # the Hop-by-Hop header's Next Header: UDP, not ICMPv6
    with pytest.raises(WireError) as caught:
        read_query(bytes(v6))
    assert caught.value.reason is Drop.NOT_MLD
    with pytest.raises(WireError) as caught:
        read_query(b"\x50" + bytes(40))
    assert caught.value.reason is Drop.NOT_IP


def test_read_takes_mld_without_a_hop_by_hop_header() -> None:
    full = query_packet(Family.V6, addr("fe80::1"), general_query(Family.V6))
    bare = bytearray(full[:40] + full[48:])
    bare[4:6] = (len(bare) - 40).to_bytes(2, "big")
    bare[6] = 58
    assert read_query(bytes(bare)) == (Family.V6, general_query(Family.V6))


@pytest.mark.parametrize(
    ("family", "packet_family", "destination", "expected"),
    [
        (Family.V4, Family.V4, "232.1.1.1", None),
        (Family.V4, Family.V4, "239.255.255.255", None),
        (Family.V4, Family.V4, "10.0.0.1", Drop.AMT_DATA_NOT_MULTICAST),
        (Family.V4, Family.V4, "240.0.0.1", Drop.AMT_DATA_NOT_MULTICAST),
        (Family.V4, Family.V6, "ff3e::1", Drop.WRONG_FAMILY),
        (Family.V6, Family.V6, "ff3e::8000:1", None),
        (Family.V6, Family.V6, "fd00::1", Drop.AMT_DATA_NOT_MULTICAST),
        (Family.V6, Family.V4, "232.1.1.1", Drop.WRONG_FAMILY),
    ],
)
def test_data_drop(family: Family, packet_family: Family, destination: str,
                   expected: Drop | None) -> None:
    source = CHANNEL[packet_family][0]
    assert data_drop(udp_packet(source, addr(destination), 5001, b"x"), family) is expected
