"""What the sockets hand on and what they drop, without a network: the decoding of what a
raw socket reads, the interface map, and the filters the sockets attach."""

from __future__ import annotations

import socket
import struct

import pytest

from mcastproxy.netio import IgmpSocket, InterfaceMap, Received, sockopts
from mcastproxy.wire import build_ipv4

LEAVE = bytes.fromhex("1700") + b"\x00\x00" + bytes([239, 2, 0, 1])  # checksum not checked here
SRC, ALL_ROUTERS = bytes([10, 1, 1, 11]), bytes([224, 0, 0, 2])


@pytest.fixture
def igmp() -> IgmpSocket:
    m = InterfaceMap()
    m.set("d1", 7, ipv4=bytes([10, 1, 1, 1]))
    try:
        s = IgmpSocket(m)
    except PermissionError:
        pytest.skip("raw sockets need root")
    yield s
    s.close()


def test_a_well_formed_packet_is_handed_on(igmp: IgmpSocket) -> None:
    got = igmp.decode(build_ipv4(SRC, ALL_ROUTERS, LEAVE), 7)
    assert got == Received("d1", 7, SRC, ALL_ROUTERS, LEAVE, 1, True)
    assert not igmp.dropped


@pytest.mark.parametrize(
    ("data", "ttl", "router_alert"),
    [
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE, ttl=64), 64, True),  # unicast from afar, say
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE, router_alert=False), 1, False),
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE, ttl=0, router_alert=False), 0, False),
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE, ttl=255), 255, True),
    ],
)
def test_the_ttl_and_router_alert_are_handed_on_for_the_engine_to_judge(
    igmp: IgmpSocket, data: bytes, ttl: int, router_alert: bool
) -> None:
    got = igmp.decode(data, 7)
    assert got is not None
    assert (got.ttl, got.router_alert) == (ttl, router_alert)
    assert not igmp.dropped


@pytest.mark.parametrize(
    ("data", "index", "reason"),
    [
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE)[:19], 7, "truncated header"),
        (b"\x65" + build_ipv4(SRC, ALL_ROUTERS, LEAVE)[1:], 7, "not IPv4"),
        (
            build_ipv4(SRC, ALL_ROUTERS, LEAVE)[:10]
            + b"\0\0"
            + build_ipv4(SRC, ALL_ROUTERS, LEAVE)[12:],
            7,
            "bad header checksum",
        ),
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE, protocol=17), 7, "not IGMP"),
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE), 99, "unknown interface"),
        (build_ipv4(SRC, ALL_ROUTERS, LEAVE), None, "unknown interface"),
    ],
)
def test_bad_input_is_dropped_and_counted(
    igmp: IgmpSocket, data: bytes, index: int | None, reason: str
) -> None:
    assert igmp.decode(data, index) is None
    assert igmp.dropped == {reason: 1}


def test_sending_out_of_an_unknown_interface_is_counted(igmp: IgmpSocket) -> None:
    assert igmp.send("d9", ALL_ROUTERS, LEAVE) is False
    assert igmp.send_errors == {"unknown interface": 1}


def test_interface_map_follows_renames_and_removals() -> None:
    m = InterfaceMap()
    m.set("ppp0", 5, ipv4=bytes(4))
    assert m.name_of(5) == "ppp0"
    assert "ppp0" in m
    m.set("ppp0", 6)  # came back with a new index
    assert (m.name_of(5), m.name_of(6)) == (None, "ppp0")
    m.set("wan", 6)  # renamed
    assert "ppp0" not in m
    assert m.name_of(6) == "wan"
    m.remove("wan")
    m.remove("wan")
    assert list(m) == []
    assert m.refresh("no-such-interface-x") is None
    lo = m.refresh("lo")
    assert lo is not None
    assert (lo.ipv4, lo.index >= 1) == (socket.inet_aton("127.0.0.1"), True)


def test_icmp6_filter_passes_only_the_named_types() -> None:
    words = struct.unpack("@8I", sockopts.icmp6_filter((130, 131, 132, 143)))
    passed = {t for t in range(256) if not words[t >> 5] & (1 << (t & 31))}
    assert passed == {130, 131, 132, 143}
    assert struct.unpack("@8I", sockopts.icmp6_filter(())) == (0xFFFFFFFF,) * 8


def test_bpf_instructions() -> None:
    assert sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0xFFFF) == struct.pack("@HBBI", 6, 0, 0, 0xFFFF)
    # SKF_AD_OFF + SKF_AD_PKTTYPE, as the kernel reads the u32 k
    assert sockopts.bpf(sockopts.BPF_LD_W_ABS, 0, 0, sockopts.SKF_AD_PKTTYPE)[4:] == struct.pack(
        "@I", 0xFFFFF004
    )
