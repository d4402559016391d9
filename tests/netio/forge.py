"""Forged IGMP and MLD packets, and a program that puts them on a link of a lab namespace as
whole frames (an AF_PACKET socket, so that nothing in the sender's IP stack fixes them up)::

    ip netns exec NS python tests/netio/forge.py IFACE < packets

reads one packet a line (hex, from its IP header on), and sends each in an Ethernet frame to
the MAC address of its multicast destination (RFC 1112 §6.4, RFC 2464 §7), in order. A frame
the link refuses (ENOBUFS: a veth whose peer's backlog is full) is sent again shortly, so
that every frame gets onto the link. It prints ``{"sent": N, "refused": M}`` at the end.

On the test side, ``ipv4``, ``ipv6``, ``hop_by_hop`` and ``fragment`` build packets, and
``forge(lab, host, packets)`` sends them from ``host``'s eth0.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcastproxy.wire import build_ipv4, inet_checksum

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
NEXT_HOP_BY_HOP, NEXT_FRAGMENT, NEXT_ICMPV6 = 0, 44, 58
ROUTER_ALERT_MLD = bytes([5, 2, 0, 0])  # RFC 2711: type 5, length 2, value 0


def ipv4(src: bytes, dst: bytes, igmp: bytes, *, ttl: int = 1, router_alert: bool = True,
         fragment: int = 0x4000) -> bytes:
    """An IPv4 packet of IGMP (``fragment``: the flags and offset word; DF by default)."""
    packet = bytearray(build_ipv4(src, dst, igmp, ttl=ttl, router_alert=router_alert))
    struct.pack_into("!H", packet, 6, fragment)
    struct.pack_into("!H", packet, 10, 0)
    header = (packet[0] & 0x0F) * 4
    struct.pack_into("!H", packet, 10, inet_checksum(bytes(packet[:header])))
    return bytes(packet)


def hop_by_hop(options: bytes = ROUTER_ALERT_MLD, next_header: int = NEXT_ICMPV6) -> bytes:
    """A Hop-by-Hop Options header holding ``options``, padded with a PadN to 8-octet units."""
    body = bytes([next_header, 0]) + options
    pad = -len(body) % 8
    if pad == 1:
        body += b"\x00"  # Pad1
    elif pad:
        body += bytes([1, pad - 2]) + bytes(pad - 2)
    return bytes([next_header, len(body) // 8 - 1]) + body[2:]


def fragment(offset: int = 0, more: bool = True, ident: int = 1) -> bytes:
    """A Fragment header (RFC 8200 §4.5) in front of ICMPv6."""
    return struct.pack("!BBHI", NEXT_ICMPV6, 0, offset << 3 | more, ident)


def ipv6(src: bytes, dst: bytes, message: bytes, *, hop_limit: int = 1,
         chain: tuple[int, bytes] | None = None, payload_length: int | None = None) -> bytes:
    """An IPv6 packet: the header, the extension headers of ``chain`` (the header's Next
    Header and their octets; default a Hop-by-Hop header with the MLD Router Alert) and
    ``message`` (its ICMPv6 checksum as given)."""
    first, extension = chain if chain is not None else (NEXT_HOP_BY_HOP, hop_by_hop())
    length = len(extension) + len(message) if payload_length is None else payload_length
    return struct.pack("!IHBB", 6 << 28, length, first, hop_limit) + src + dst + extension + message


def destination_mac(packet: bytes) -> bytes:
    """The Ethernet address of the packet's multicast destination."""
    if packet[0] >> 4 == 4:
        return bytes([0x01, 0x00, 0x5E, packet[17] & 0x7F]) + packet[18:20]
    return b"\x33\x33" + packet[36:40]


def main() -> int:
    iface = sys.argv[1]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    sent = refused = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        packet = bytes.fromhex(line.strip())
        proto = ETH_P_IP if packet[0] >> 4 == 4 else ETH_P_IPV6
        for _ in range(10_000):
            try:
                s.sendto(packet, (iface, proto, 0, 0, destination_mac(packet)))
                break
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                refused += 1
                time.sleep(0.0002)  # the peer's backlog drains in a softirq
        else:
            raise RuntimeError("the link refused a frame 10,000 times")
        sent += 1
    print(json.dumps({"sent": sent, "refused": refused}), flush=True)
    return 0


def forge(lab: Any, host: str, packets: Iterable[bytes], iface: str = "eth0") -> int:
    """Send ``packets`` from ``host``'s ``iface`` as they are, in order; how many were sent."""
    text = "".join(p.hex() + "\n" for p in packets)
    out = lab.run(host, sys.executable, str(Path(__file__).resolve()), iface, input=text,
                  timeout=60)
    return int(json.loads(out.strip().splitlines()[-1])["sent"])


if __name__ == "__main__":
    sys.exit(main())
