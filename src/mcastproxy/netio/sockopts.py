"""Socket options Python 3.11's ``socket`` module lacks, and classic BPF socket filters.

Values are from ``linux/in.h``, ``linux/in6.h``, ``linux/icmpv6.h``,
``asm-generic/socket.h`` and ``linux/filter.h``.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Sequence

IP_ROUTER_ALERT = 5  # put a raw socket in the Router Alert chain (ip_ra_control)
IP_PKTINFO = 8
IP_MULTICAST_ALL = 49
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_HOPOPTS = 54
ICMP6_FILTER = 1  # at level IPPROTO_ICMPV6
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33

# struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }
IN_PKTINFO = struct.Struct("@i4s4s")
# struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
IN6_PKTINFO = struct.Struct("@16si")
# struct ip_mreqn { struct in_addr imr_multiaddr, imr_address; int imr_ifindex; }
IP_MREQN = struct.Struct("@4s4si")
# struct ipv6_mreq { struct in6_addr ipv6mr_multiaddr; int ipv6mr_ifindex; }
IPV6_MREQ = struct.Struct("@16si")

# Classic BPF (linux/filter.h): struct sock_filter { u16 code; u8 jt, jf; u32 k; }
_SOCK_FILTER = struct.Struct("@HBBI")
BPF_LD_B_ABS = 0x30  # A = packet[k] (one octet)
BPF_LD_W_ABS = 0x20  # A = packet[k..k+4] (network order)
BPF_JEQ_K = 0x15  # if A == k goto jt else jf
BPF_RET_K = 0x06  # return k octets of the packet (0: drop)
SKF_AD_PKTTYPE = -0x1000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE: the packet's skb->pkt_type
PACKET_LOOPBACK = 5


def bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    """One ``struct sock_filter`` instruction."""
    return _SOCK_FILTER.pack(code, jt, jf, k & 0xFFFFFFFF)


def attach_filter(sock: socket.socket, program: Sequence[bytes]) -> None:
    """Attach a classic BPF program (SO_ATTACH_FILTER): packets it returns 0 for are dropped
    before they are queued on the socket, so they never wake the reader."""
    code = b"".join(program)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def icmp6_filter(passed: Sequence[int]) -> bytes:
    """A ``struct icmp6_filter`` (256 bits, a set bit blocks that type) passing ``passed``."""
    words = [0xFFFFFFFF] * 8
    for t in passed:
        words[t >> 5] &= ~(1 << (t & 31))
    return struct.pack("@8I", *words)


def set_rcvbuf(sock: socket.socket, size: int) -> None:
    """Ask for a receive buffer of ``size`` octets, past net.core.rmem_max if privileged."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
