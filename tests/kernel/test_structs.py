"""The kernel's multicast routing structures against bytes laid out by hand from
linux/mroute.h and linux/mroute6.h (x86_64, native order)."""

from __future__ import annotations

import socket
import struct

import pytest

from mcastproxy.kernel import structs
from mcastproxy.kernel.structs import UpcallKind

LE = struct.pack("<H", 1) == struct.pack("=H", 1)
pytestmark = pytest.mark.skipif(not LE or struct.calcsize("P") != 8, reason="x86_64 layouts")

S4, G4 = bytes([10, 0, 1, 2]), bytes([232, 1, 0, 1])
S6 = socket.inet_pton(socket.AF_INET6, "fd00:1::2")
G6 = socket.inet_pton(socket.AF_INET6, "ff3e::1:1")


def test_sizes_match_the_c_structures() -> None:
    # sizeof() printed by a C program including the uapi headers.
    assert (structs.VIFCTL_SIZE, structs.MFCCTL_SIZE) == (16, 60)
    assert (structs.MIF6CTL_SIZE, structs.MF6CCTL_SIZE) == (12, 92)
    assert (structs.SIOC_SG_REQ_SIZE, structs.SIOC_SG_REQ6_SIZE) == (32, 80)
    assert (structs.IGMPMSG_SIZE, structs.MRT6MSG_SIZE) == (20, 40)


def test_vifctl_names_the_interface_by_index() -> None:
    expected = (
        b"\x05\x00"  # vifc_vifi 5
        + b"\x08"  # vifc_flags VIFF_USE_IFINDEX
        + b"\x01"  # vifc_threshold 1
        + b"\x00\x00\x00\x00"  # vifc_rate_limit
        + b"\x07\x00\x00\x00"  # vifc_lcl_ifindex 7
        + b"\x00\x00\x00\x00"  # vifc_rmt_addr
    )
    assert structs.vifctl(5, 7) == expected


def test_mfcctl_sets_a_threshold_of_one_per_outgoing_vif() -> None:
    raw = structs.mfcctl(S4, G4, 0, {1, 31})
    ttls = bytearray(32)
    ttls[1] = ttls[31] = 1
    expected = S4 + G4 + b"\x00\x00" + bytes(ttls) + bytes(2) + bytes(16)  # pad, 4 counters
    assert raw == expected
    assert raw[44:60] == bytes(16)


def test_mfcctl_without_oifs_forwards_nowhere() -> None:
    assert structs.mfcctl(S4, G4, 3, set())[10:42] == bytes(32)


def test_mif6ctl() -> None:
    # mif6c_mifi, flags, threshold, mif6c_pifi, 2 octets padding, vifc_rate_limit
    assert structs.mif6ctl(2, 9) == b"\x02\x00" + b"\x00" + b"\x01" + b"\x09\x00" + bytes(6)


def test_mf6cctl_sets_bits_of_the_if_set() -> None:
    raw = structs.mf6cctl(S6, G6, 0, {1, 3, 31})
    sin6 = struct.pack("<HHI", socket.AF_INET6, 0, 0)
    assert raw[:28] == sin6 + S6 + bytes(4)
    assert raw[28:56] == sin6 + G6 + bytes(4)
    assert raw[56:58] == b"\x00\x00"  # parent
    assert raw[58:60] == bytes(2)  # padding before the u32 words
    assert raw[60:64] == struct.pack("<I", (1 << 1) | (1 << 3) | (1 << 31))
    assert raw[64:92] == bytes(28)


@pytest.mark.parametrize("bad", [-1, 32])
def test_vif_indexes_beyond_maxvifs_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="VIF index"):
        structs.vifctl(bad, 1)
    with pytest.raises(ValueError, match="VIF index"):
        structs.mfcctl(S4, G4, 0, {bad})
    with pytest.raises(ValueError, match="VIF index"):
        structs.mf6cctl(S6, G6, bad, set())


def test_addresses_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError, match="4 octets"):
        structs.mfcctl(S6, G4, 0, set())
    with pytest.raises(ValueError, match="16 octets"):
        structs.mf6cctl(S4, G6, 0, set())


def test_sioc_sg_req_round_trip() -> None:
    assert structs.sioc_sg_req(S4, G4) == S4 + G4 + bytes(24)
    filled = S4 + G4 + struct.pack("<QQQ", 50, 2650, 3)
    assert structs.sg_counts(filled, 4) == (50, 2650, 3)
    req6 = structs.sioc_sg_req6(S6, G6)
    assert (len(req6), req6[8:24], req6[36:52]) == (80, S6, G6)
    filled6 = req6[:56] + struct.pack("<QQQ", 7, 8, 9)
    assert structs.sg_counts(filled6, 6) == (7, 8, 9)


def igmpmsg(kind: int, vif: int, vif_hi: int = 0, mbz: int = 0) -> bytes:
    """What ipmr_cache_report queues: the packet's IP header with msgtype in the TTL octet,
    protocol 0, the VIF in the checksum octets, then an 8-octet IGMP header."""
    return bytes(8) + bytes([kind, mbz, vif, vif_hi]) + S4 + G4 + bytes([kind, 0]) + bytes(6)


@pytest.mark.parametrize(
    ("kind", "vif", "vif_hi", "expected_vif"), [(1, 0, 0, 0), (2, 3, 0, 3), (3, 4, 1, 260)]
)
def test_igmpmsg_parses(kind: int, vif: int, vif_hi: int, expected_vif: int) -> None:
    up = structs.parse_igmpmsg(igmpmsg(kind, vif, vif_hi))
    assert up == structs.RawUpcall(kind, expected_vif, S4, G4)
    assert UpcallKind(up.kind)


def test_an_igmp_packet_is_not_an_upcall() -> None:
    assert structs.parse_igmpmsg(igmpmsg(1, 0, mbz=2)) is None  # protocol 2: IGMP
    assert structs.parse_igmpmsg(igmpmsg(0, 0)) is None
    assert structs.parse_igmpmsg(igmpmsg(1, 0)[:19]) is None


def mrt6msg(kind: int, mif: int, mbz: int = 0) -> bytes:
    return struct.pack("<BBHI", mbz, kind, mif, 0) + S6 + G6


def test_mrt6msg_parses() -> None:
    assert structs.parse_mrt6msg(mrt6msg(1, 2)) == structs.RawUpcall(1, 2, S6, G6)
    assert structs.parse_mrt6msg(mrt6msg(2, 31) + b"extra") == structs.RawUpcall(2, 31, S6, G6)


def test_an_icmpv6_message_is_not_an_upcall() -> None:
    assert structs.parse_mrt6msg(mrt6msg(1, 0, mbz=143)) is None  # an MLDv2 report's type
    assert structs.parse_mrt6msg(mrt6msg(1, 0)[:39]) is None
