"""Forged packets onto a lab link: ``Lab.inject(host, iface, packets)``.

Tests play the attacker on a subscriber or upstream link: a query from a host, a report with
the wrong TTL or without Router Alert, a flood of spoofed sources. They build each IP packet
whole (with scapy, or ``mcastproxy.wire``), and the injector sends it as the host would,
from the host's namespace, out of its interface, with no help or check from the host's IP
stack: an ``AF_PACKET`` raw socket, one Ethernet frame per packet.

The frame's destination is the packet's multicast MAC (RFC 1112 §6.4: 01:00:5e and the low
23 bits of an IPv4 group; RFC 2464 §7: 33:33 and the low 32 bits of an IPv6 one), or, for a
packet to a unicast address, the MAC the caller gives (``Lab.mac`` of the target). Its
source is the interface's own MAC. What can be sent is bounded (``MAX_PACKETS`` a call).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from mcastlab.headend import in_namespace

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
MAX_PACKETS = 200_000


def multicast_mac(packet: bytes) -> bytes | None:
    """The Ethernet destination of an IP packet to a multicast address; None if unicast."""
    version = packet[0] >> 4 if packet else 0
    if version == 4 and len(packet) >= 20 and packet[16] >> 4 == 0xE:
        return b"\x01\x00\x5e" + bytes([packet[17] & 0x7F]) + packet[18:20]
    if version == 6 and len(packet) >= 40 and packet[24] == 0xFF:
        return b"\x33\x33" + packet[36:40]
    return None


def mac_of(ns: str, iface: str) -> bytes:
    """The MAC address of ``iface`` in namespace ``ns``."""
    with in_namespace(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    with s:
        s.bind((iface, 0))
        return bytes(s.getsockname()[4])


def inject(ns: str, iface: str, packets: Iterable[bytes], *, to: bytes | None = None) -> int:
    """Send each IP packet of ``packets`` out of ``iface`` in namespace ``ns`` as it is; to
    MAC ``to`` where its destination is unicast. The number sent."""
    with in_namespace(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sent = 0
    with s:
        s.bind((iface, 0))
        own = bytes(s.getsockname()[4])
        for packet in packets:
            if sent >= MAX_PACKETS:
                raise ValueError(f"more than {MAX_PACKETS} packets in one injection")
            dst = multicast_mac(packet) or to
            if dst is None:
                raise ValueError("a packet to a unicast address needs the MAC to send it to")
            kind = ETH_P_IPV6 if packet[0] >> 4 == 6 else ETH_P_IP
            s.send(dst + own + kind.to_bytes(2, "big") + packet)
            sent += 1
    return sent
