"""A classic BPF interpreter for the instructions ``mcastproxy.netio.filters`` uses, as the
kernel runs them on a socket filter (``net/core/filter.c``): loads past the end of the packet
end the program with 0 (dropped), k's negative ranges are the ancillary data
(``SKF_AD_OFF``, of which only the packet type) and the network header (``SKF_NET_OFF``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from mcastproxy.netio import sockopts as so

SKF_AD_OFF = -0x1000
_INSTRUCTION = struct.Struct("@HBBI")
_SIZES = {so.BPF_LD_W_ABS: 4, so.BPF_LD_H_ABS: 2, so.BPF_LD_B_ABS: 1, so.BPF_LD_B_IND: 1}
_MASK = 0xFFFFFFFF


def run(
    program: Sequence[bytes], packet: bytes, *, pkttype: int = so.PACKET_MULTICAST,
    network: bytes | None = None,
) -> int:
    """What ``program`` returns for ``packet`` (octets to keep; 0: dropped). ``network`` is the
    packet from its IP header on, for SKF_NET_OFF loads (default: ``packet`` itself)."""
    net = packet if network is None else network
    a = x = pc = 0
    for _ in range(4096):  # BPF_MAXINSNS; the programs only jump forward anyway
        code, jt, jf, k = _INSTRUCTION.unpack(program[pc])
        pc += 1
        signed = k - (1 << 32) if k & 0x80000000 else k
        if code == so.BPF_RET_K:
            return k
        if code in _SIZES:
            offset = signed + (x if code == so.BPF_LD_B_IND else 0)
            size = _SIZES[code]
            if offset == so.SKF_AD_PKTTYPE and code == so.BPF_LD_W_ABS:
                a = pkttype
                continue
            data = packet
            if SKF_AD_OFF <= offset < 0:
                raise AssertionError(f"ancillary load {offset:#x} not expected")
            if so.SKF_NET_OFF <= offset < SKF_AD_OFF:
                data, offset = net, offset - so.SKF_NET_OFF
            elif offset < 0:
                raise AssertionError(f"load at {offset:#x} not expected")
            if offset + size > len(data):
                return 0
            a = int.from_bytes(data[offset : offset + size], "big")
        elif code == so.BPF_ALU_AND_K:
            a &= k
        elif code == so.BPF_ALU_ADD_K:
            a = (a + k) & _MASK
        elif code == so.BPF_ALU_LSH_K:
            a = (a << k) & _MASK
        elif code == so.BPF_TAX:
            x = a
        elif code == so.BPF_JEQ_K:
            pc += jt if a == k else jf
        elif code == so.BPF_JGT_K:
            pc += jt if a > k else jf
        elif code == so.BPF_JGE_K:
            pc += jt if a >= k else jf
        else:
            raise AssertionError(f"instruction {code:#x} not expected")
    raise AssertionError("the program did not end")
