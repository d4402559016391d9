"""Helper of bench/bench_failover.py: a recorder of numbered packets, run in a lab namespace.

Run as ``python bench/_failover_lab.py --port 5001 [--udp IFACE]... [--packet IFACE]...``
(``bench_failover.py`` starts it with ``ip netns exec``). It keeps, per interface, the
sequence number and the kernel's arrival timestamp (``SO_TIMESTAMPNS``: ``CLOCK_REALTIME``,
the clock of ``time.time_ns()``) of every lab payload (``mcastlab.payload``) sent to
the UDP port, in compact arrays, so a benchmark of minutes at 1,000 packets/s costs a few
megabytes and no JSON per packet:

``--udp IFACE``
    A UDP socket bound to the port on IFACE (IPv4 and IPv6), as a subscriber's application
    receives the stream: it joins nothing itself (another socket holds the membership, and
    Linux delivers a group joined on the interface to every socket bound to the port).

``--packet IFACE``
    The lab's packet tap (``mcastlab.packets``) on IFACE, incoming packets only: what
    arrives on a proxy's upstream link, whether the proxy forwards it or not.

Commands on stdin, one JSON line answered each (``id`` echoed)::

    dump ID T0 T1   -> {"e": "dump", "id": ID, "series": {IFACE: [[seq...], [t_ns...]]}}
    stats ID        -> {"e": "stats", "id": ID, "packets": {IFACE: n}, "duplicates": {...}}

``dump`` gives the arrivals with T0 <= t <= T1; ``duplicates`` counts, per interface, the
arrivals of a sequence number already received there. It ends at end of stdin, on SIGTERM
or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from array import array
from collections.abc import Sequence
from typing import Any

from _daemon_lab import emit
from mcastlab.packets import (
    PACKET_OUTGOING,
    SO_TIMESTAMPNS,
    kernel_time,
    packet_socket,
    udp_payload,
    udp_port,
)
from mcastlab.payload import MAX_COUNT, PayloadError, parse_payload


class Series:
    """The arrivals on one interface: two parallel arrays and a bitmap of the seqs seen."""

    __slots__ = ("dups", "seen", "seqs", "times")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.times = array("q")
        self.seen = bytearray(MAX_COUNT)
        self.dups = 0

    def add(self, seq: int, t: int) -> None:
        if 0 <= seq < MAX_COUNT:
            if self.seen[seq]:
                self.dups += 1
            self.seen[seq] = 1
        self.seqs.append(seq)
        self.times.append(t)

    def between(self, t0: int, t1: int) -> list[list[int]]:
        # Arrivals come in time order, nearly: a linear scan from the end is short.
        seqs, times = [], []
        for i in range(len(self.times) - 1, -1, -1):
            t = self.times[i]
            if t < t0 - 1_000_000_000:  # well before the window: done
                break
            if t0 <= t <= t1:
                seqs.append(self.seqs[i])
                times.append(t)
        return [seqs[::-1], times[::-1]]


def udp_sockets(iface: str, port: int) -> list[socket.socket]:
    out = []
    for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((any_addr, port))
        s.setblocking(False)
        out.append(s)
    return out


def seq_of(body: bytes) -> int | None:
    try:
        return parse_payload(body).seq
    except PayloadError:
        return None


def run(a: argparse.Namespace) -> int:
    series: dict[str, Series] = {}
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, None)
    for iface in a.udp:
        series[iface] = Series()
        for s in udp_sockets(iface, a.port):
            sel.register(s, selectors.EVENT_READ, ("udp", iface))
    for iface in a.packet:
        series[iface] = Series()
        sel.register(packet_socket(iface, "data"), selectors.EVENT_READ, ("packet", iface))
    emit({"e": "ready", "pid": os.getpid()})
    deadline = time.monotonic() + a.max_seconds
    pending = b""

    def drain(sock: socket.socket, kind: str, iface: str) -> None:
        for _ in range(10_000):
            try:
                data, anc, _flags, addr = sock.recvmsg(65535, 64)
            except BlockingIOError:
                return
            t = kernel_time(anc) or time.time_ns()
            if kind == "packet":
                if addr[2] == PACKET_OUTGOING:
                    continue
                u = udp_payload(data)
                if u is None or udp_port(data) != a.port:
                    continue
                data = u[2]
            seq = seq_of(data)
            if seq is not None:
                series[iface].add(seq, t)

    def command(words: list[str]) -> dict[str, Any]:
        if words[0] == "dump":
            t0, t1 = int(words[2]), int(words[3])
            return {"e": "dump", "id": words[1],
                    "series": {k: s.between(t0, t1) for k, s in series.items()}}
        if words[0] == "stats":
            return {"e": "stats", "id": words[1],
                    "packets": {k: len(s.seqs) for k, s in series.items()},
                    "duplicates": {k: s.dups for k, s in series.items()}}
        return {"e": "error", "error": f"unknown command {words[0]!r}"}

    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            if key.data is not None:
                drain(key.fileobj, *key.data)  # type: ignore[arg-type]
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if words:
                    emit(command(words))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="_failover_lab.py")
    ap.add_argument("--port", type=int, default=5001)
    ap.add_argument("--udp", action="append", default=[], help="a UDP socket on IFACE")
    ap.add_argument("--packet", action="append", default=[], help="an AF_PACKET tap on IFACE")
    ap.add_argument("--max-seconds", type=float, default=900.0)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        return run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
