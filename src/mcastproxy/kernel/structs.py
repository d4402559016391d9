"""The kernel's multicast routing structures, packed and unpacked (``linux/mroute.h``,
``linux/mroute6.h``).

Layouts use native alignment (``@``) with the C types of the headers, so ``unsigned long``
counters and the padding the compiler inserts come out right on any Linux ABI:

- ``struct vifctl`` (16 octets): the VIF to add or delete (MRT_ADD_VIF / MRT_DEL_VIF); with
  VIFF_USE_IFINDEX the union holds the interface index instead of a local address.
- ``struct mfcctl`` (60): an (S,G) entry, its parent VIF and one TTL threshold per VIF
  (MRT_ADD_MFC / MRT_DEL_MFC). A threshold of 0 (or 255) does not forward to that VIF; 1
  forwards packets whose TTL is above 1.
- ``struct mif6ctl`` (12) and ``struct mf6cctl`` (92): the IPv6 counterparts, with the
  outgoing MIFs as a bit set (``struct if_set``, 256 bits) and addresses as
  ``sockaddr_in6``.
- ``struct igmpmsg`` (20) / ``struct mrt6msg`` (40): the upcalls read from a mroute socket.
  ``igmpmsg`` overlays an IPv4 header whose protocol octet (``im_mbz``) is 0, which is how a
  reader tells it from an IGMP packet; ``mrt6msg`` starts with ``im6_mbz`` = 0 where an
  ICMPv6 message has its (never 0) type.
- ``struct sioc_sg_req`` / ``sioc_sg_req6``: per-entry counters (SIOCGETSGCNT[_IN6]).

Nothing here opens a socket; ``ipmr`` is the only caller of the options named here.
"""

from __future__ import annotations

import socket
import struct
from enum import IntEnum
from typing import NamedTuple

from mcastproxy.family import Family

# linux/mroute.h and linux/mroute6.h: the same numbers at IPPROTO_IP and IPPROTO_IPV6.
MRT_BASE = 200
MRT_INIT = MRT_BASE  # activate multicast routing on this socket (one table)
MRT_DONE = MRT_BASE + 1  # deactivate: flushes the table's VIFs and entries
MRT_ADD_VIF = MRT_BASE + 2  # MRT6_ADD_MIF
MRT_DEL_VIF = MRT_BASE + 3  # MRT6_DEL_MIF
MRT_ADD_MFC = MRT_BASE + 4
MRT_DEL_MFC = MRT_BASE + 5
MRT_VERSION = MRT_BASE + 6
MRT_ASSERT = MRT_BASE + 7
MRT_TABLE = MRT_BASE + 9  # before MRT_INIT: the table this socket will own

MAXVIFS = 32
"""VIFs (MIFs) per table: fixed in the kernel's uapi headers (MAXVIFS, MAXMIFS)."""

VIFF_USE_IFINDEX = 0x8  # vifc_lcl_ifindex names the interface, not vifc_lcl_addr
SIOCPROTOPRIVATE = 0x89E0
SIOCGETSGCNT = SIOCPROTOPRIVATE + 1  # SIOCGETSGCNT_IN6 too

IF_SETSIZE = 256  # bits in struct if_set


class UpcallKind(IntEnum):
    """``im_msgtype`` / ``im6_msgtype`` (IGMPMSG_* / MRT6MSG_*, same numbers)."""

    NOCACHE = 1  # data arrived on a VIF for an (S,G) with no entry
    WRONGVIF = 2  # data arrived on another VIF than the entry's parent (MRT_ASSERT only)
    WHOLEPKT = 3  # a whole packet for a PIM register VIF
    WRVIFWHOLE = 4  # both (MRT_ASSERT with PIM)


_VIFCTL = struct.Struct("@HBBIi4s")
_MFCCTL = struct.Struct("@4s4sH32sIIIi")
_MIF6CTL = struct.Struct("@HBBHI")
_SOCKADDR_IN6 = "HHI16sI"  # family, port, flowinfo, address, scope id
_MF6CCTL = struct.Struct(f"@{_SOCKADDR_IN6}{_SOCKADDR_IN6}H{IF_SETSIZE // 32}I")
_SIOC_SG_REQ = struct.Struct("@4s4sLLL")
_SIOC_SG_REQ6 = struct.Struct(f"@{_SOCKADDR_IN6}{_SOCKADDR_IN6}LLL")
_IGMPMSG = struct.Struct("@IIBBBB4s4s")
_MRT6MSG = struct.Struct("@BBHI16s16s")

VIFCTL_SIZE = _VIFCTL.size
MFCCTL_SIZE = _MFCCTL.size
MIF6CTL_SIZE = _MIF6CTL.size
MF6CCTL_SIZE = _MF6CCTL.size
SIOC_SG_REQ_SIZE = _SIOC_SG_REQ.size
SIOC_SG_REQ6_SIZE = _SIOC_SG_REQ6.size
IGMPMSG_SIZE = _IGMPMSG.size
MRT6MSG_SIZE = _MRT6MSG.size


def _check_vifi(vifi: int) -> None:
    if not 0 <= vifi < MAXVIFS:
        raise ValueError(f"VIF index {vifi} out of 0..{MAXVIFS - 1}")


def vifctl(vifi: int, ifindex: int, threshold: int = 1) -> bytes:
    """A ``struct vifctl`` naming the interface by index (VIFF_USE_IFINDEX)."""
    _check_vifi(vifi)
    return _VIFCTL.pack(vifi, VIFF_USE_IFINDEX, threshold, 0, ifindex, bytes(4))


def mfcctl(source: bytes, group: bytes, parent: int, oifs: frozenset[int] | set[int]) -> bytes:
    """A ``struct mfcctl``: (source, group) arriving on VIF ``parent``, out of VIFs ``oifs``.

    Each outgoing VIF gets TTL threshold 1 (RFC 1112 §6 scoping by TTL is not used).
    """
    if len(source) != 4 or len(group) != 4:
        raise ValueError("IPv4 addresses are 4 octets")
    _check_vifi(parent)
    ttls = bytearray(MAXVIFS)
    for v in oifs:
        _check_vifi(v)
        ttls[v] = 1
    return _MFCCTL.pack(source, group, parent, bytes(ttls), 0, 0, 0, 0)


def mif6ctl(mifi: int, ifindex: int, threshold: int = 1) -> bytes:
    """A ``struct mif6ctl`` for a physical interface (no MIFF_REGISTER)."""
    _check_vifi(mifi)
    return _MIF6CTL.pack(mifi, 0, threshold, ifindex, 0)


def _sockaddr_in6(addr: bytes) -> tuple[int, int, int, bytes, int]:
    if len(addr) != 16:
        raise ValueError("IPv6 addresses are 16 octets")
    return (socket.AF_INET6, 0, 0, addr, 0)


def mf6cctl(source: bytes, group: bytes, parent: int, oifs: frozenset[int] | set[int]) -> bytes:
    """A ``struct mf6cctl``: (source, group) arriving on MIF ``parent``, out of MIFs ``oifs``."""
    _check_vifi(parent)
    words = [0] * (IF_SETSIZE // 32)
    for m in oifs:
        _check_vifi(m)
        words[m // 32] |= 1 << (m % 32)  # IF_SET
    return _MF6CCTL.pack(*_sockaddr_in6(source), *_sockaddr_in6(group), parent, *words)


def sioc_sg_req(source: bytes, group: bytes) -> bytes:
    """A ``struct sioc_sg_req`` asking for the counters of (source, group)."""
    return _SIOC_SG_REQ.pack(source, group, 0, 0, 0)


def sioc_sg_req6(source: bytes, group: bytes) -> bytes:
    """A ``struct sioc_sg_req6`` asking for the counters of (source, group)."""
    return _SIOC_SG_REQ6.pack(*_sockaddr_in6(source), *_sockaddr_in6(group), 0, 0, 0)


def sg_counts(reply: bytes, family: Family) -> tuple[int, int, int]:
    """(packets, bytes, wrong interface) from a filled ``sioc_sg_req`` / ``sioc_sg_req6``."""
    if family == Family.V4:
        return _SIOC_SG_REQ.unpack(reply)[2:5]
    return _SIOC_SG_REQ6.unpack(reply)[10:13]


class RawUpcall(NamedTuple):
    """An upcall as the kernel wrote it: kind, VIF/MIF index, source and group (packed)."""

    kind: int
    vif: int
    source: bytes
    group: bytes


def parse_igmpmsg(data: bytes) -> RawUpcall | None:
    """The ``struct igmpmsg`` at the start of ``data``, or None if it is not an upcall
    (shorter than one, or an IP header whose protocol octet ``im_mbz`` is not 0)."""
    if len(data) < IGMPMSG_SIZE:
        return None
    _, _, kind, mbz, vif, vif_hi, src, dst = _IGMPMSG.unpack_from(data)
    if mbz != 0 or kind == 0:
        return None
    return RawUpcall(kind, vif | vif_hi << 8, src, dst)


def parse_mrt6msg(data: bytes) -> RawUpcall | None:
    """The ``struct mrt6msg`` at the start of ``data``, or None if it is not an upcall
    (shorter than one, or an ICMPv6 message: its type octet, ``im6_mbz``, is never 0)."""
    if len(data) < MRT6MSG_SIZE:
        return None
    mbz, kind, mif, _pad, src, dst = _MRT6MSG.unpack_from(data)
    if mbz != 0 or kind == 0:
        return None
    return RawUpcall(kind, mif, src, dst)
