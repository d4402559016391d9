"""A TUN device for an AMT gateway's pseudo-interface (RFC 7450 §5.2.2), by ioctl.

``open_tun(name)`` creates a layer-3 TUN device (``IFF_TUN | IFF_NO_PI``: each read and write
is one bare IPv4 or IPv6 packet) from ``/dev/net/tun``, brings it up and returns its file
descriptor, non-blocking. A packet written to it enters the kernel as if received on the
device, so a socket that joined a group there receives it, and (a later stage) the device can
be a VIF of a multicast routing table. The device is not persistent: it disappears when the
descriptor is closed, so a gateway that dies leaves nothing behind.

Addresses are the caller's business: ``add_address`` gives the device one (by ioctl, as
``ifconfig`` does: SIOCSIFADDR, with a netmask for IPv4 and a prefix length for IPv6); an
IPv4 source-specific join by ``ip_mreq_source`` needs one, a join by interface index does not.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from typing import Final

TUN_DEVICE: Final = "/dev/net/tun"
TUNSETIFF: Final = 0x400454CA  # linux/if_tun.h: _IOW('T', 202, int)
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
SIOCGIFFLAGS: Final = 0x8913  # linux/sockios.h
SIOCSIFFLAGS: Final = 0x8914
SIOCSIFMTU: Final = 0x8922
SIOCSIFADDR: Final = 0x8916
SIOCSIFNETMASK: Final = 0x891C
IFF_UP: Final = 0x1
IFNAMSIZ: Final = 16

_ifreq_flags = struct.Struct(f"{IFNAMSIZ}sH22x")  # struct ifreq: name, then ifr_flags
_ifreq_int = struct.Struct(f"{IFNAMSIZ}si20x")  # name, then ifr_mtu
_ifreq_inet = struct.Struct(f"{IFNAMSIZ}sH2x4s8x8x")  # name, then a struct sockaddr_in
_in6_ifreq = struct.Struct("16sIi")  # linux/ipv6.h: address, prefix length, ifindex


def open_tun(name: str, *, mtu: int | None = None) -> int:
    """Create TUN device ``name``, set its MTU if given, bring it up; its descriptor
    (non-blocking, close-on-exec). ``OSError`` if the kernel refuses (no /dev/net/tun, no
    CAP_NET_ADMIN, a device of that name that is not a free TUN)."""
    raw = name.encode()
    if not 0 < len(raw) < IFNAMSIZ:
        raise ValueError(f"interface name {name!r}: 1 to {IFNAMSIZ - 1} octets")
    fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq_flags.pack(raw, IFF_TUN | IFF_NO_PI))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            if mtu is not None:
                fcntl.ioctl(s.fileno(), SIOCSIFMTU, _ifreq_int.pack(raw, mtu))
            got = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, _ifreq_flags.pack(raw, 0))
            flags = _ifreq_flags.unpack(got)[1]
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, _ifreq_flags.pack(raw, flags | IFF_UP))
    except BaseException:
        os.close(fd)
        raise
    return fd


def add_address(name: str, address: bytes, prefix_length: int) -> None:
    """Give device ``name`` the IPv4 (4 octets) or IPv6 (16 octets) ``address`` with its
    prefix length. ``OSError`` if the kernel refuses (EEXIST: it has it already)."""
    raw = name.encode()
    if len(address) == 4:
        if not 0 <= prefix_length <= 32:
            raise ValueError(f"an IPv4 prefix length is 0 to 32, not {prefix_length}")
        mask = (0xFFFFFFFF << (32 - prefix_length)) & 0xFFFFFFFF
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), SIOCSIFADDR, _ifreq_inet.pack(raw, socket.AF_INET, address))
            fcntl.ioctl(s.fileno(), SIOCSIFNETMASK,
                        _ifreq_inet.pack(raw, socket.AF_INET, mask.to_bytes(4, "big")))
        return
    if len(address) != 16:
        raise ValueError("an address is 4 (IPv4) or 16 (IPv6) octets")
    if not 0 <= prefix_length <= 128:
        raise ValueError(f"an IPv6 prefix length is 0 to 128, not {prefix_length}")
    index = socket.if_nametoindex(name)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCSIFADDR, _in6_ifreq.pack(address, prefix_length, index))


def is_tun(name: str) -> bool | None:
    """Whether the existing device ``name`` is a TUN/TAP device (sysfs has its
    ``tun_flags``); None if there is no such device."""
    base = f"/sys/class/net/{name}"
    if "/" in name or not os.path.exists(base):
        return None
    return os.path.exists(f"{base}/tun_flags")
