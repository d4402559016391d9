"""Socket options Python 3.11's ``socket`` module lacks, and classic BPF socket filters.

Values are from ``linux/in.h``, ``linux/in6.h``, ``linux/icmpv6.h``, ``linux/if_packet.h``,
``linux/if_ether.h``, ``asm-generic/socket.h`` and ``linux/filter.h``.
"""

from __future__ import annotations

import ctypes
import functools
import os
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
SO_TIMESTAMPNS = 35  # each message comes with the kernel's receive time (SCM_TIMESTAMPNS)
SO_RXQ_OVFL = 40  # ... and the socket's count of packets dropped for a full queue

# Packet sockets (AF_PACKET)
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_DROP_MEMBERSHIP = 2
PACKET_MR_ALLMULTI = 2
# struct packet_mreq { int mr_ifindex; unsigned short mr_type, mr_alen; u8 mr_address[8]; }
PACKET_MREQ = struct.Struct("@iHH8s")
# struct sockaddr_ll { u16 family; be16 protocol; int ifindex; u16 hatype; u8 pkttype, halen;
# u8 addr[8]; }
_SOCKADDR_LL = struct.Struct("@HHiHBB8s")

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
BPF_LD_H_ABS = 0x28  # A = packet[k..k+2] (network order)
BPF_LD_W_ABS = 0x20  # A = packet[k..k+4] (network order)
BPF_LD_B_IND = 0x50  # A = packet[X + k] (one octet)
BPF_ALU_ADD_K = 0x04  # A += k
BPF_ALU_AND_K = 0x54  # A &= k
BPF_ALU_LSH_K = 0x64  # A <<= k
BPF_TAX = 0x07  # X = A
BPF_JEQ_K = 0x15  # if A == k goto jt else jf
BPF_JGT_K = 0x25  # if A > k goto jt else jf (unsigned)
BPF_JGE_K = 0x35  # if A >= k goto jt else jf (unsigned)
BPF_RET_K = 0x06  # return k octets of the packet (0: drop)
SKF_AD_PKTTYPE = -0x1000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE: the packet's skb->pkt_type
SKF_NET_OFF = -0x100000  # SKF_NET_OFF + k: octet k from the network (IP) header
# skb->pkt_type (linux/if_packet.h)
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
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


def bind_packet_socket(sock: socket.socket, protocol: int, ifindex: int = 0) -> None:
    """Bind an AF_PACKET socket to ``protocol`` (an ETH_P_* value) on interface ``ifindex``;
    0 is every interface. Python's ``bind`` takes a name and cannot say "every interface",
    so libc's is called with the ``sockaddr_ll`` itself."""
    address = _SOCKADDR_LL.pack(socket.AF_PACKET, socket.htons(protocol), ifindex, 0, 0, 0, b"")
    buf = ctypes.create_string_buffer(address, len(address))
    if _libc().bind(sock.fileno(), buf, len(address)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


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
