"""The four socket filters of ``netio.filters`` keep what their table says, run in a user-space
interpreter of classic BPF (``cbpf``) over packets of each kind; and the raw and the packet
filter of a family split every destination between them, never keeping one twice."""

from __future__ import annotations

import ipaddress

import pytest
from cbpf import run
from forge import NEXT_FRAGMENT, NEXT_HOP_BY_HOP, NEXT_ICMPV6, fragment, hop_by_hop, ipv4, ipv6
from hypothesis import given
from hypothesis import strategies as st

from mcastproxy.netio import filters
from mcastproxy.netio import sockopts as so
from mcastproxy.wire import GroupRecord, RecordType, Report, build_igmp, build_mld

HOST4 = ipaddress.ip_address("10.1.1.11").packed
HOST6 = ipaddress.ip_address("fe80::ff:fe00:d111").packed
RECEIVED = (so.PACKET_HOST, so.PACKET_BROADCAST, so.PACKET_MULTICAST)
NOT_RECEIVED = (so.PACKET_OTHERHOST, so.PACKET_OUTGOING, so.PACKET_LOOPBACK)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def igmp_to(dst: str | bytes, **kw: object) -> bytes:
    packed = ip(dst) if isinstance(dst, str) else dst
    report = build_igmp(Report(2, (GroupRecord(RecordType.MODE_IS_EXCLUDE, packed),)))
    return ipv4(HOST4, packed, report, **kw)  # type: ignore[arg-type]


def mld_message(dst: bytes, kind: int = 131) -> bytes:
    group = dst if dst[0] == 0xFF else ip("ff1e::1")
    message = build_mld(Report(1, (GroupRecord(RecordType.MODE_IS_EXCLUDE, group),)), HOST6, dst)
    return bytes([kind]) + message[1:]


def mld_to(dst: str | bytes, kind: int = 131, **kw: object) -> bytes:
    packed = ip(dst) if isinstance(dst, str) else dst
    return ipv6(HOST6, packed, mld_message(packed, kind), **kw)  # type: ignore[arg-type]


def kept(program: tuple[bytes, ...], packet: bytes, pkttype: int = so.PACKET_MULTICAST) -> bool:
    return run(program, packet, pkttype=pkttype) != 0


def raw_mld_kept(packet: bytes, pkttype: int = so.PACKET_MULTICAST) -> bool:
    """RAW_MLD sees the ICMPv6 message (after the Hop-by-Hop header), the IPv6 header at
    SKF_NET_OFF."""
    return run(filters.RAW_MLD, packet[48:], pkttype=pkttype, network=packet) != 0


# -- IGMP -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("dst", "raw", "packet"),
    [
        ("224.0.0.22", True, False),  # IGMPv3 reports
        ("224.0.0.2", True, False),  # IGMPv2 leaves
        ("224.0.0.1", True, False),  # general queries
        ("224.0.0.255", True, False),
        ("224.0.1.0", False, True),  # the first routable group
        ("239.2.0.1", False, True),  # IGMPv1/v2 reports, group-specific queries
        ("232.1.1.1", False, True),
        ("239.255.255.255", False, True),
        ("10.1.1.1", True, False),  # unicast to this host
        ("255.255.255.255", True, False),
        ("240.0.0.1", True, False),  # class E is no group
    ],
)
def test_igmp_is_split_by_destination(dst: str, raw: bool, packet: bool) -> None:
    data = igmp_to(dst)
    assert (kept(filters.RAW_IGMP, data), kept(filters.PACKET_IGMP, data)) == (raw, packet)


@pytest.mark.parametrize("pkttype", NOT_RECEIVED)
def test_the_packet_socket_keeps_only_what_this_host_received(pkttype: int) -> None:
    assert not kept(filters.PACKET_IGMP, igmp_to("239.2.0.1"), pkttype)
    assert not kept(filters.PACKET_MLD, mld_to("ff1e::1"), pkttype)


@pytest.mark.parametrize("pkttype", RECEIVED)
def test_host_broadcast_and_multicast_frames_are_kept(pkttype: int) -> None:
    assert kept(filters.PACKET_IGMP, igmp_to("239.2.0.1"), pkttype)
    assert kept(filters.PACKET_MLD, mld_to("ff1e::1"), pkttype)


def test_the_raw_sockets_drop_what_this_host_looped_back() -> None:
    loop = so.PACKET_LOOPBACK
    assert not kept(filters.RAW_IGMP, igmp_to("224.0.0.22"), loop)
    assert not raw_mld_kept(mld_to("ff02::16", 143), loop)
    assert kept(filters.RAW_IGMP, igmp_to("224.0.0.22"), so.PACKET_HOST)


def test_only_igmp_is_kept_from_ipv4() -> None:
    udp = bytearray(igmp_to("239.2.0.1"))
    udp[9] = 17
    assert not kept(filters.PACKET_IGMP, bytes(udp))


def test_fragments_and_bad_headers_pass_to_be_counted() -> None:
    for packet in (igmp_to("239.2.0.1", fragment=0x2000), igmp_to("239.2.0.1", fragment=0x0010),
                   igmp_to("239.2.0.1")[:24]):
        assert kept(filters.PACKET_IGMP, packet)


def test_a_packet_cut_before_its_destination_is_dropped_in_the_kernel() -> None:
    assert not kept(filters.PACKET_IGMP, igmp_to("239.2.0.1")[:19])
    assert not kept(filters.RAW_IGMP, igmp_to("224.0.0.22")[:19])


@given(st.integers(0, 0xFFFFFFFF), st.sampled_from(RECEIVED))
def test_each_ipv4_destination_is_kept_by_exactly_one_filter(dst: int, pkttype: int) -> None:
    data = igmp_to(dst.to_bytes(4, "big"))
    assert kept(filters.RAW_IGMP, data, pkttype) != kept(filters.PACKET_IGMP, data, pkttype)


# -- MLD ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("dst", "raw", "packet"),
    [
        ("ff02::16", True, False),  # MLDv2 reports
        ("ff02::2", True, False),  # MLDv1 Dones
        ("ff02::1", True, False),  # general queries
        ("ff12::1:2", True, False),  # a transient link-scope group
        ("ff32:20:fd00::1", True, False),  # unicast-prefix based, link scope
        ("ff05::1:3", False, True),  # site scope
        ("ff1e::2:1", False, True),  # MLDv1 reports, address-specific queries
        ("ff3e::8000:1", False, True),  # SSM
        ("ff7e:140:2001:db8::1", False, True),  # embedded RP
        ("ff0f::1", False, True),  # reserved scope 15: the kernel delivers it
        ("fe80::ff:fe00:d100", True, False),  # unicast to this host
        ("fd01:1::1", True, False),
        # RFC 4291 §2.7: the kernel drops scopes 0 and 1 arriving on a link before any
        # socket but a packet socket; that one drops them too.
        ("ff01::1", True, False),
        ("ff00::1", True, False),
    ],
)
def test_mld_is_split_by_destination(dst: str, raw: bool, packet: bool) -> None:
    data = mld_to(dst, 143 if dst.startswith("ff02") else 131)
    assert (raw_mld_kept(data), kept(filters.PACKET_MLD, data)) == (raw, packet)


@pytest.mark.parametrize("kind", [130, 131, 132, 143])
def test_every_mld_type_is_kept(kind: int) -> None:
    assert kept(filters.PACKET_MLD, mld_to("ff1e::1", kind))
    assert kept(filters.PACKET_MLD, mld_to("ff1e::1", kind, chain=(NEXT_ICMPV6, b"")))


@pytest.mark.parametrize("kind", [128, 129, 133, 134, 135, 136, 1, 2, 144, 255])
def test_other_icmpv6_is_dropped(kind: int) -> None:
    assert not kept(filters.PACKET_MLD, mld_to("ff1e::1", kind))
    assert not kept(filters.PACKET_MLD, mld_to("ff1e::1", kind, chain=(NEXT_ICMPV6, b"")))


@pytest.mark.parametrize(
    ("chain", "keep"),
    [
        ((NEXT_HOP_BY_HOP, hop_by_hop()), True),  # 8 octets: the usual MLD header
        ((NEXT_HOP_BY_HOP, hop_by_hop(bytes([1, 6]) + bytes(6) + bytes([5, 2, 0, 0]))), True),
        ((NEXT_ICMPV6, b""), True),  # no Router Alert: kept for the engine to judge
        ((NEXT_FRAGMENT, fragment()), True),  # kept to be counted as a fragment
        ((NEXT_FRAGMENT, fragment(offset=100, more=False)), True),
        ((NEXT_HOP_BY_HOP, hop_by_hop(next_header=NEXT_FRAGMENT) + fragment()), True),
        ((NEXT_FRAGMENT, bytes([17, 0, 0, 1, 0, 0, 0, 1])), False),  # a fragment of UDP
        # Two extension headers before the message: not MLD as any host sends it.
        ((NEXT_HOP_BY_HOP, hop_by_hop(next_header=60) + bytes([58, 0, 1, 4, 0, 0, 0, 0])), False),
        ((60, bytes([58, 0, 1, 4, 0, 0, 0, 0])), False),  # Destination Options first
        ((17, b""), False),  # UDP
    ],
)
def test_mld_header_chains(chain: tuple[int, bytes], keep: bool) -> None:
    assert kept(filters.PACKET_MLD, mld_to("ff1e::1", chain=chain)) is keep


def test_a_hop_by_hop_header_longer_than_the_packet_is_dropped_in_the_kernel() -> None:
    long = hop_by_hop(bytes([1, 30]) + bytes(30) + bytes([5, 2, 0, 0]))
    packet = mld_to("ff1e::1", chain=(NEXT_HOP_BY_HOP, long))
    assert kept(filters.PACKET_MLD, packet)
    assert not kept(filters.PACKET_MLD, packet[: 40 + len(long)])


def test_the_raw_mld_filter_drops_what_it_cannot_read() -> None:
    assert not run(filters.RAW_MLD, mld_message(ip("ff02::16")), network=b"\x60" * 24)


@given(st.binary(min_size=2, max_size=2), st.sampled_from(RECEIVED))
def test_each_ipv6_destination_is_kept_by_exactly_one_filter(top: bytes, pkttype: int) -> None:
    dst = top + bytes(13) + b"\x01"
    data = mld_to(dst)
    raw, packet = raw_mld_kept(data, pkttype), kept(filters.PACKET_MLD, data, pkttype)
    if dst[0] == 0xFF and dst[1] & 0x0F < 2:
        assert (raw, packet) == (True, False)  # scopes 0 and 1: the kernel never delivers
    else:
        assert raw != packet


def test_assembling_refuses_a_label_twice_and_a_jump_back() -> None:
    with pytest.raises(ValueError, match="twice"):
        filters.assemble([("label", "a"), ("label", "a")])
    with pytest.raises(ValueError, match="backwards"):
        filters.assemble([("label", "a"), (so.BPF_JEQ_K, 0, "a", "drop")])
