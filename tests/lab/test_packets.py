"""The packet tap's filters keep what their table says, and the UDP helpers read a datagram.

The filters are classic BPF programs; here they run in a small interpreter of the few
instructions they use, over one packet of each kind, received and sent.
"""

from __future__ import annotations

import struct

import pytest

from mcastlab import packets
from mcastproxy.netio import sockopts

OUTGOING, INCOMING = packets.PACKET_OUTGOING, 0


def run_filter(program: list[bytes], packet: bytes, pkttype: int) -> bool:
    """Whether ``program`` keeps ``packet`` (SOCK_DGRAM: it starts at the IP header)."""
    pc, a = 0, 0
    while True:
        code, jt, jf, k = struct.unpack("@HBBI", program[pc])
        if code == sockopts.BPF_RET_K:
            return k != 0
        if code == sockopts.BPF_JEQ_K:
            pc += 1 + (jt if a == k else jf)
            continue
        if code == sockopts.BPF_LD_B_ABS:
            if k >= len(packet):
                return False  # the kernel ends the program: dropped
            a = packet[k]
        elif code == sockopts.BPF_LD_W_ABS:
            assert k == sockopts.SKF_AD_PKTTYPE & 0xFFFFFFFF
            a = pkttype
        elif code == 0x54:  # A &= k
            a &= k
        else:
            raise AssertionError(f"instruction {code:#x} not expected")
        pc += 1


def v4(proto: int) -> bytes:
    return bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 1, proto]) + bytes(10) + bytes(8)


def v6(next_header: int) -> bytes:
    return bytes([0x60, 0, 0, 0, 0, 8, next_header, 1]) + bytes(32) + bytes(8)


IGMP, UDP4, TCP4 = v4(2), v4(17), v4(6)
HBH, ICMP6, UDP6, DSTOPT6 = v6(0), v6(58), v6(17), v6(60)
ARP = bytes([0, 1, 8, 0, 6, 4, 0, 1]) + bytes(20)
CONTROL = {IGMP, HBH, ICMP6, DSTOPT6}


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        ("ctl", {(p, d) for p in CONTROL for d in (INCOMING, OUTGOING)}),
        ("data", {(p, d) for p in CONTROL | {UDP4, UDP6} for d in (INCOMING, OUTGOING)}),
        ("out", {(p, OUTGOING) for p in CONTROL}),
        ("in", {(p, INCOMING) for p in CONTROL}),
        ("off", set()),
    ],
)
def test_filters_keep_what_their_table_says(kind: str, kept: set[tuple[bytes, int]]) -> None:
    program = packets.bpf_program(kind)
    every = [IGMP, UDP4, TCP4, HBH, ICMP6, UDP6, DSTOPT6, ARP]
    got = {(p, d) for p in every for d in (INCOMING, OUTGOING) if run_filter(program, p, d)}
    assert got == kept


def test_an_unknown_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="one of ctl, data"):
        packets.bpf_program("all")


def test_udp_payload_and_port() -> None:
    udp = struct.pack("!HHHH", 40000, 5001, 12, 0) + b"data"
    pkt4 = bytes([0x45, 0, 0, 32, 0, 0, 0, 0, 1, 17, 0, 0, 10, 0, 0, 1, 239, 1, 1, 1]) + udp
    assert packets.udp_payload(pkt4) == (4, bytes([239, 1, 1, 1]), b"data")
    assert packets.udp_port(pkt4) == 5001
    group6 = bytes.fromhex("ff1e" + "00" * 12 + "0101")
    pkt6 = bytes([0x60, 0, 0, 0, 0, 12, 17, 1]) + bytes(16) + group6 + udp
    assert packets.udp_payload(pkt6) == (6, group6, b"data")
    assert packets.udp_port(pkt6) == 5001
    unicast = pkt4[:16] + bytes([10, 0, 0, 2]) + udp
    assert packets.udp_payload(unicast) is None  # not to a group
    assert packets.udp_payload(IGMP) is None
    assert packets.udp_payload(b"") is None
    assert packets.udp_port(b"") is None
