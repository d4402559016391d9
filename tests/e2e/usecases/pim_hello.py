"""Send PIM Hellos (RFC 7761 §4.9.2) out of an interface, as an upstream router would:
``python pim_hello.py IFACE FAMILY COUNT INTERVAL [SOURCE]``. Bounded by COUNT. With SOURCE,
from that address of the interface (a second router, or a host forging hellos)."""

from __future__ import annotations

import socket
import struct
import sys
import time

from mcastproxy.wire import inet_checksum


def hello() -> bytes:
    holdtime = struct.pack("!HHH", 1, 2, 105)  # option 1: Holdtime, 105 s
    body = bytes((0x20, 0, 0, 0)) + holdtime
    return body[:2] + struct.pack("!H", inet_checksum(body)) + body[4:]


def main() -> None:
    iface, family, count, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(
        sys.argv[4])
    source = sys.argv[5] if len(sys.argv) > 5 else None
    index = socket.if_nametoindex(iface)
    if family == 4:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 103)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                     struct.pack("@4s4si", bytes(4), bytes(4), index))
        dest: tuple[object, ...] = ("224.0.0.13", 0)
        payload = hello()
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 103)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        s.setsockopt(socket.IPPROTO_IPV6, 7, 2)  # IPV6_CHECKSUM at offset 2: the kernel sums
        dest = ("ff02::d", 0, 0, index)
        payload = bytes((0x20, 0, 0, 0)) + struct.pack("!HHH", 1, 2, 105)
    if source is not None:
        s.bind((source, 0) if family == 4 else (source, 0, 0, index))
    for _ in range(count):
        s.sendto(payload, dest)
        print("sent", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
