"""Multicast socket options of the Linux host stack, and the structs they take (x86_64 layouts).

The lab's receiver joins groups the way an application on a subscriber host does, so the
kernel's own IGMP/MLD host side sends the reports. Python 3.11's ``socket`` module lacks
several of these constants; their values are from ``linux/in.h`` and ``linux/in6.h``.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

# linux/in.h (Python 3.12 has the first four; 3.11 does not)
IP_ADD_SOURCE_MEMBERSHIP = 39
IP_DROP_SOURCE_MEMBERSHIP = 40
IP_MULTICAST_ALL = 49
# Protocol-independent API of RFC 3678, at level IPPROTO_IP or IPPROTO_IPV6.
MCAST_JOIN_GROUP = 42
MCAST_LEAVE_GROUP = 45
MCAST_JOIN_SOURCE_GROUP = 46
MCAST_LEAVE_SOURCE_GROUP = 47
# linux/in6.h; socket has IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP / IPV6_RECVPKTINFO already.
IPV6_JOIN_GROUP = socket.IPV6_JOIN_GROUP  # 20, also called IPV6_ADD_MEMBERSHIP
IPV6_LEAVE_GROUP = socket.IPV6_LEAVE_GROUP  # 21
IPV6_PKTINFO = 50
IP_PKTINFO = 8
SIOCGIFADDR = 0x8915

SOCKADDR_STORAGE_SIZE = 128
"""``struct __kernel_sockaddr_storage``: 128 octets, 8-aligned on x86_64."""

# struct ip_mreqn { struct in_addr imr_multiaddr, imr_address; int imr_ifindex; }
_IP_MREQN = struct.Struct("=4s4si")
# struct ip_mreq_source { __be32 imr_multiaddr, imr_interface, imr_sourceaddr; }
_IP_MREQ_SOURCE = struct.Struct("=4s4s4s")
# struct ipv6_mreq { struct in6_addr ipv6mr_multiaddr; int ipv6mr_ifindex; }
_IPV6_MREQ = struct.Struct("=16si")
# struct group_req { __u32 gr_interface; <4 octets padding>; sockaddr_storage gr_group; }
_GROUP_REQ = struct.Struct(f"=I4x{SOCKADDR_STORAGE_SIZE}s")
# struct group_source_req { __u32 gsr_interface; <4 padding>; sockaddr_storage gsr_group,
#                           gsr_source; }: the storage members are 8-aligned, hence the padding.
_GROUP_SOURCE_REQ = struct.Struct(f"=I4x{SOCKADDR_STORAGE_SIZE}s{SOCKADDR_STORAGE_SIZE}s")
# struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }
IN_PKTINFO = struct.Struct("=i4s4s")
# struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
IN6_PKTINFO = struct.Struct("=16si")


def packed(addr: str) -> bytes:
    """An address as packed network-order bytes (4 or 16)."""
    return ipaddress.ip_address(addr).packed


def family_of(addr: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an address."""
    return socket.AF_INET if ipaddress.ip_address(addr).version == 4 else socket.AF_INET6


def sockaddr_storage(addr: str) -> bytes:
    """A ``sockaddr_in`` / ``sockaddr_in6`` (port 0) padded to a ``sockaddr_storage``."""
    a = ipaddress.ip_address(addr)
    if a.version == 4:
        raw = struct.pack("=H2x4s8x", socket.AF_INET, a.packed)  # family, port, addr, zero
    else:
        # family, port, flowinfo, addr, scope_id
        raw = struct.pack("=H2xI16sI", socket.AF_INET6, 0, a.packed, 0)
    return raw.ljust(SOCKADDR_STORAGE_SIZE, b"\0")


def ip_mreqn(group: str, ifindex: int) -> bytes:
    """For IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP / IP_MULTICAST_IF, by interface index."""
    return _IP_MREQN.pack(packed(group), bytes(4), ifindex)


def ip_mreq_source(group: str, interface_addr: str, source: str) -> bytes:
    """For IP_ADD_SOURCE_MEMBERSHIP / IP_DROP_SOURCE_MEMBERSHIP (interface by its address)."""
    return _IP_MREQ_SOURCE.pack(packed(group), packed(interface_addr), packed(source))


def ipv6_mreq(group: str, ifindex: int) -> bytes:
    """For IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP."""
    return _IPV6_MREQ.pack(packed(group), ifindex)


def group_req(group: str, ifindex: int) -> bytes:
    """For MCAST_JOIN_GROUP / MCAST_LEAVE_GROUP."""
    return _GROUP_REQ.pack(ifindex, sockaddr_storage(group))


def group_source_req(group: str, source: str, ifindex: int) -> bytes:
    """For MCAST_JOIN_SOURCE_GROUP / MCAST_LEAVE_SOURCE_GROUP."""
    return _GROUP_SOURCE_REQ.pack(ifindex, sockaddr_storage(group), sockaddr_storage(source))


def interface_ipv4(ifname: str) -> str | None:
    """The primary IPv4 address of ``ifname`` in this namespace (SIOCGIFADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", ifname.encode()))
        except OSError:
            return None
    return socket.inet_ntoa(res[20:24])  # struct ifreq: name[16], then sockaddr_in
