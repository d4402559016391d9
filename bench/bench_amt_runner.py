"""The daemon's AMT runner (``amt.upstream.AmtUpstream``): Multicast Data datagrams read from its
UDP socket, decapsulated and written into the TUN, per second on one core, through real system
calls.

Run: .venv/bin/python bench/bench_amt_runner.py   (a few seconds; no root needed)

``bench_amt.py`` measures the gateway's core alone; this adds what the runner does for each
packet: a ``recvfrom`` from the socket (read ``BATCH`` at a time per wake-up of the asyncio
loop) and a ``write`` into the TUN. The relay is the lab's ``RelayCore`` on a loopback
socket; the TUN is one end of an AF_UNIX datagram socket pair (a write costs about what a
TUN's does: a copy into a socket buffer, no IP stack). The socket's receive buffer is filled
first (``FILL`` datagrams of a 1,316-octet UDP payload in IPv4), then the loop runs until the
runner has written them all: the figure is the runner's own rate, not the sender's. Best of
``ROUNDS``. The target (issue 17) is 100,000 packets per second.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab" / "src"))

from mcastlab.amtrelay import RelayCore, udp_packet
from mcastproxy.amt.inner import report_packet
from mcastproxy.amt.upstream import AmtUpstream
from mcastproxy.config import AmtSettings
from mcastproxy.family import Family
from mcastproxy.wire.amt import MulticastData, build_amt
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

TARGET = 100_000
FILL = 3000
ROUNDS = 30
BUFFER = 16 << 20
SOURCE, GROUP = bytes([10, 0, 9, 1]), bytes([232, 1, 1, 1])


async def measure() -> float:
    loop = asyncio.get_running_loop()
    relay_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay_sock.bind(("127.0.0.1", 0))
    relay_sock.setblocking(False)
    core = RelayCore(bytes([127, 0, 0, 1]), secret=b"bench", query_interval=125)

    def relay_read() -> None:
        try:
            while True:
                data, (host, port) = relay_sock.recvfrom(65535)
                for dst, dport, out in core.receive(socket.inet_aton(host), port, data,
                                                    loop.time()):
                    relay_sock.sendto(out, (socket.inet_ntoa(dst), dport))
        except BlockingIOError:
            pass

    loop.add_reader(relay_sock.fileno(), relay_read)
    kernel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (kernel, theirs):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)

    def tun(name: str) -> int:
        fd = os.dup(theirs.fileno())
        os.set_blocking(fd, False)
        return fd

    def udp(family: Family) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
        return s

    port = relay_sock.getsockname()[1]
    up = AmtUpstream("amt1", AmtSettings(relay="127.0.0.1", port=port), [Family.V4],
                     tun_opener=tun, socket_maker=udp)
    up.open()
    up.start(loop)
    kernel.send(report_packet(Family.V4, bytes(4), Report(3, (
        GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, GROUP, (SOURCE,)),))))
    while not core.tunnels or not any(t.channels() for t in core.tunnels.values()):
        await asyncio.sleep(0.001)
    gateway_port = up.status()["gateways"]["igmp"]["local-port"]
    message = build_amt(MulticastData(udp_packet(SOURCE, GROUP, 5001, bytes(7 * 188))))
    loop.remove_reader(relay_sock.fileno())
    best = 0.0
    kernel.setblocking(False)
    for _ in range(ROUNDS):
        start_count = up.tun_counts["packets-written"]
        for _ in range(FILL):  # the receive buffer filled before the loop gets to it
            relay_sock.sendto(message, ("127.0.0.1", gateway_port))
        started = time.perf_counter()
        while up.tun_counts["packets-written"] - start_count < FILL:
            await asyncio.sleep(0)
        took = time.perf_counter() - started
        best = max(best, FILL / took)
        try:
            while True:
                kernel.recv(65535)
        except BlockingIOError:
            pass
    dropped = up.status()["dropped"]
    up.close()
    relay_sock.close()
    kernel.close()
    theirs.close()
    if dropped:
        raise SystemExit(f"drops: {dropped}")
    return best


def main() -> int:
    rate = asyncio.run(measure())
    print(f"Python {sys.version.split()[0]}; one core; {FILL} datagrams of 1346 octets a round, "
          f"best of {ROUNDS}")
    print(f"runner: recvfrom + gateway + TUN write       {rate:12,.0f}/s  "
          f"({1e6 / rate:5.2f} µs)")
    verdict = "met" if rate >= TARGET else "NOT met"
    print(f"target >= {TARGET:,}/s: {verdict} ({rate:,.0f}/s, {rate / TARGET:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
