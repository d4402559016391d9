"""Helpers of bench/bench_daemon.py: three small programs that run inside lab namespaces.

Run as ``python bench/_daemon_lab.py PROGRAM ...`` (``DaemonLab`` in bench_daemon.py starts
them with ``ip netns exec``); each talks JSON lines, one object per line, on stdout, takes
commands on stdin, and ends at end of stdin, on SIGTERM or after ``--max-seconds``.

``tap``
    The lab's packet tap (``mcastlab.packets``): one ``AF_PACKET`` socket on one interface
    or, with no ``--iface``, on every interface of the namespace at once, with
    ``SO_TIMESTAMPNS``: every packet carries the kernel's timestamp (``CLOCK_REALTIME``,
    taken in ``__netif_receive_skb`` for a packet coming in and in ``dev_queue_xmit_nit``
    for one going out). One socket, one clock: the incoming report on d1 and the outgoing
    report on u1 are stamped by the same kernel clock and read in arrival order. Its BPF
    filter, chosen by ``mode``, keeps IGMP/MLD (``ctl``), IGMP/MLD and UDP (``data``),
    outgoing IGMP/MLD only (``out``) or nothing (``off``), so the tap costs nothing while a
    blast of reports goes by. IGMP/MLD packets are decoded (``mcastproxy.wire``) and each
    written as one line; UDP data is summarised
    as bursts: a ``start`` line at the first packet of a stream on an (interface, direction,
    group) after a quiet gap of ``--gap-ms``, and a ``stop`` line once it has been quiet for
    that long. An outgoing start carries the arrival time of the same packet (and of the one
    before) on the interface it came in on, so a zap can be split into "waiting for the next
    packet" and the rest.

``reporter``
    Sends IGMPv3 / MLDv2 reports built with ``mcastproxy.wire`` from any source address, as
    whole frames through an ``AF_PACKET`` socket (so one subscriber namespace can speak for
    hundreds of subscribers): one report on command, or a paced blast of thousands.

``echo``
    The floor under any proxy in Python: an asyncio program that answers each report read
    from a raw IGMP socket with a report out of the upstream, and nothing else.

``upstream``
    An upstream router for the proxy's upstream link: it reads the proxy's reports there
    and, for each group joined, sends a stream of lab payloads (``mcastlab.payload``)
    from the provider's address at the rate configured for the group's prefix, stopping
    at the leave or after the stream's time limit. The first packet leaves as soon as the
    join is read, so "channel not yet flowing" includes the whole path: the proxy's join
    upstream, the data's first packet, the kernel's NOCACHE upcall and the route.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any

from mcastlab.packets import (
    ETH_P_ALL,
    ETH_P_IP,
    ETH_P_IPV6,
    FILTERS,
    PACKET_OUTGOING,
    SO_SNDBUFFORCE,
    extract,
    kernel_time,
    packet_socket,
    set_filter,
    statistics,
    udp_payload,
)
from mcastlab.payload import MAX_RATE, Payload, PayloadError, build_payload, parse_payload
from mcastproxy.wire import (
    GroupRecord,
    Leave,
    Query,
    RecordType,
    Report,
    WireError,
    build_igmp,
    build_ipv4,
    build_mld,
    parse_igmp,
    parse_mld,
)

V3_ROUTERS = {4: socket.inet_aton("224.0.0.22"), 6: socket.inet_pton(socket.AF_INET6, "ff02::16")}
V3_ROUTERS_MAC = {4: bytes.fromhex("01005e000016"), 6: bytes.fromhex("333300000016")}
# Hop-by-Hop header: next header ICMPv6, length 0, Router Alert (MLD), PadN of 2.
_HBH_RA = bytes([58, 0, 5, 2, 0, 0, 1, 0])
_IPV6_HEADER = struct.Struct("!IHBB16s16s")
JOIN_TYPES = frozenset({RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE,
                        RecordType.ALLOW_NEW_SOURCES})


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def decode_ctl(family: int, src: bytes, dst: bytes, payload: bytes) -> dict[str, Any] | None:
    """{"m": "R"/"Q"/"L", "r": [[record type, group], ...]} of an IGMP/MLD message."""
    try:
        msg = parse_igmp(payload) if family == 4 else parse_mld(payload, src, dst)
    except WireError:
        return None
    if isinstance(msg, Report):
        return {"m": "R", "v": msg.version,
                "r": [[int(r.type), text(r.group), len(r.sources)] for r in msg.records]}
    if isinstance(msg, Leave):
        return {"m": "L", "r": [[int(RecordType.CHANGE_TO_INCLUDE_MODE), text(msg.group), 0]]}
    if isinstance(msg, Query):
        return {"m": "Q", "g": text(msg.group)}
    return None


# -- tap ------------------------------------------------------------------------------------------


def run_tap(a: argparse.Namespace) -> int:
    s = packet_socket(a.iface, a.mode)
    gap = int(a.gap_ms * 1_000_000)
    bursts: dict[tuple[str, bool, bytes], list[int]] = {}  # key -> [first t, last t, n, seq0]
    arrivals: dict[bytes, dict[int, int]] = {}  # group -> seq -> arrival time (incoming)
    stats = [0, 0]
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(s, selectors.EVENT_READ, "packet")
    emit({"e": "ready", "t": time.time_ns(), "mode": a.mode})
    deadline = time.monotonic() + a.max_seconds
    pending = b""

    def read_stats() -> None:
        packets, drops = statistics(s)
        stats[0] += packets
        stats[1] += drops

    def stop_quiet(now: int) -> None:
        for key in [k for k, b in bursts.items() if now - b[1] > gap]:
            b = bursts.pop(key)
            emit({"e": "stop", "if": key[0], "o": key[1],
                  "g": text(key[2]), "t0": b[0], "t": b[1], "n": b[2]})

    def handle(data: bytes, anc: list[tuple[int, int, bytes]], sa: Any) -> None:
        t = kernel_time(anc)
        if t is None:
            return
        out = sa[2] == PACKET_OUTGOING
        got = extract(data)
        if got is not None:
            fam, src, dst, payload = got
            d = decode_ctl(fam, src, dst, payload)
            if d is not None:
                d.update({"e": "c", "t": t, "if": sa[0], "o": out, "f": fam,
                          "s": text(src)})
                emit(d)
            return
        u = udp_payload(data)
        if u is None:
            return
        fam, group, body = u
        try:
            seq = parse_payload(body).seq
        except PayloadError:
            seq = -1
        if not out:
            seen = arrivals.setdefault(group, {})
            seen[seq] = t
            if len(seen) > 256:
                for old in sorted(seen)[:128]:
                    del seen[old]
        bkey = (sa[0], out, group)
        b = bursts.get(bkey)
        if b is not None and t - b[1] <= gap:
            b[1] = t
            b[2] += 1
            return
        if b is not None:
            bursts.pop(bkey)
            emit({"e": "stop", "if": sa[0], "o": out, "g": text(group),
                  "t0": b[0], "t": b[1], "n": b[2]})
        bursts[bkey] = [t, t, 1, seq]
        ev: dict[str, Any] = {"e": "start", "if": sa[0], "o": out, "g": text(group),
                              "t": t, "seq": seq}
        if out:
            seen = arrivals.get(group, {})
            ev["in"] = seen.get(seq)
            ev["in_prev"] = seen.get(seq - 1)
        emit(ev)

    poll = a.poll_ms / 1000
    if poll > 0:
        sel.unregister(s)

    def drain() -> None:
        for _ in range(100_000):
            try:
                data, anc, _flags, sa = s.recvmsg(65535, 64)
            except BlockingIOError:
                return
            handle(data, anc, sa)

    while time.monotonic() < deadline:
        if poll > 0:
            events = sel.select(timeout=poll)
            drain()
        else:
            events = sel.select(timeout=0.005 if bursts else 0.2)
        for key, _ in events:
            if key.data == "packet":
                drain()
                continue
            if key.data == "stdin":
                chunk = os.read(0, 4096)
                if not chunk:
                    read_stats()
                    return 0
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == "mode":
                        set_filter(s, words[1])
                        emit({"e": "mode", "mode": words[1], "t": time.time_ns()})
                    elif words[0] == "stats":
                        read_stats()
                        emit({"e": "stats", "packets": stats[0], "drops": stats[1]})
                    elif words[0] == "mark":
                        drain()
                        emit({"e": "mark", "id": words[1] if len(words) > 1 else "",
                              "t": time.time_ns()})
                continue
        if bursts:
            stop_quiet(time.time_ns())
    return 0


# -- reporter -----------------------------------------------------------------------------------


def report_frame(family: int, src: bytes, records: Sequence[tuple[int, bytes]]) -> bytes:
    """An IGMPv3 / MLDv2 report from ``src``, from the IP header on."""
    recs = tuple(GroupRecord(RecordType(t), g) for t, g in records)
    dst = V3_ROUTERS[family]
    if family == 4:
        return build_ipv4(src, dst, build_igmp(Report(3, recs)))
    mld = build_mld(Report(2, recs), src, dst)
    head = _IPV6_HEADER.pack(0x60000000, len(_HBH_RA) + len(mld), 0, 1, src, dst)
    return head + _HBH_RA + mld


def run_reporter(a: argparse.Namespace) -> int:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
    dests = {f: (a.iface, ETH_P_IP if f == 4 else ETH_P_IPV6, 0, 0, V3_ROUTERS_MAC[f])
             for f in (4, 6)}
    emit({"e": "ready"})
    deadline = time.monotonic() + a.max_seconds
    for line in sys.stdin:
        if time.monotonic() > deadline:
            break
        if not line.strip():
            continue
        cmd = json.loads(line)
        fam = cmd["fam"]
        dest = dests[fam]
        if cmd["op"] == "send":
            frame = report_frame(fam, addr(cmd["src"]), [(t, addr(g)) for t, g in cmd["rec"]])
            t = time.time_ns()
            s.sendto(frame, dest)
            emit({"e": "sent", "id": cmd.get("id"), "t": t})
        elif cmd["op"] == "blast":
            emit(blast(s, dest, fam, cmd))
    return 0


def blast(s: socket.socket, dest: tuple[Any, ...], fam: int, cmd: dict[str, Any]) -> dict[str, Any]:
    """Send one single-record report per (group, subscriber), group by group, at ``rate`` per
    second (0: as fast as the socket takes them), then the sentinel report."""
    kind = cmd["type"]
    srcs = [addr(x) for x in cmd["srcs"]]
    frames = [report_frame(fam, src, [(kind, addr(g))]) for g in cmd["groups"] for src in srcs]
    sentinel = cmd.get("sentinel")
    rate = float(cmd["rate"])
    sendto = s.sendto
    errors = 0
    first_error = None
    n = len(frames)
    t0 = time.time_ns()
    p0 = time.perf_counter()
    i = 0
    while i < n:
        if rate > 0:
            due = min(n, int((time.perf_counter() - p0) * rate) + 1)
            if due <= i:
                ahead = (i + 1 - (time.perf_counter() - p0) * rate) / rate
                time.sleep(min(0.0005, max(0.0, ahead)))
                continue
        else:
            due = n
        while i < due:
            try:
                sendto(frames[i], dest)
            except OSError as e:
                errors += 1
                first_error = first_error or str(e)
            i += 1
    t1 = time.time_ns()
    ts = None
    if sentinel is not None:
        frame = report_frame(fam, addr(sentinel["src"]),
                             [(t, addr(g)) for t, g in sentinel["rec"]])
        ts = time.time_ns()
        sendto(frame, dest)
    return {"e": "blasted", "id": cmd.get("id"), "sent": n - errors, "errors": errors,
            "first_error": first_error, "t0": t0, "t1": t1, "ts": ts}


# -- upstream router ------------------------------------------------------------------------------


class Stream:
    __slots__ = ("dest", "due", "end", "interval", "sent", "sock")

    def __init__(self, sock: socket.socket, dest: tuple[Any, ...], rate: float, seconds: float,
                 now: float) -> None:
        self.sock = sock
        self.dest = dest
        self.interval = 1.0 / rate
        self.due = now
        self.end = now + seconds
        self.sent = 0


def run_upstream(a: argparse.Namespace) -> int:
    rules = []  # (network, rate, seconds), most specific first
    for spec in a.stream:
        prefix, _, rest = spec.partition("=")
        rate, _, seconds = rest.partition(":")
        rules.append((ipaddress.ip_network(prefix), float(rate), float(seconds)))
    rules.sort(key=lambda r: -r[0].prefixlen)
    ifindex = socket.if_nametoindex(a.iface)
    socks = {}
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
    s4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                  struct.pack("=4s4si", bytes(4), bytes(4), ifindex))
    s4.bind((a.src4, 0))
    socks[4] = s4
    if a.src6:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 8)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s6.bind((a.src6, 0))
        socks[6] = s6
    for sk in socks.values():
        sk.setblocking(False)
    cap = packet_socket(a.iface, "in")
    streams: dict[bytes, Stream] = {}
    spent: set[bytes] = set()  # streams that ran out of time: restarted only after a leave
    seqs: dict[bytes, int] = {}
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(cap, selectors.EVENT_READ, "packet")
    emit({"e": "ready"})
    deadline = time.monotonic() + a.max_seconds
    refused = 0

    def rule_for(group: bytes) -> tuple[float, float] | None:
        ip = ipaddress.ip_address(group)
        for net, rate, seconds in rules:
            if ip.version == net.version and ip in net:
                return rate, seconds
        return None

    def stop(group: bytes, why: str) -> None:
        st = streams.pop(group)
        emit({"e": "stop", "g": text(group), "why": why, "sent": st.sent, "t": time.time_ns()})

    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        # Send what is due, on a fixed schedule per stream (a late wake-up catches up).
        for group, st in list(streams.items()):
            while st.due <= now:
                seq = seqs.get(group, 0)
                seqs[group] = seq + 1
                body = build_payload(Payload("up", seq, time.monotonic_ns()))
                with contextlib.suppress(BlockingIOError):
                    st.sock.sendto(body, st.dest)
                st.sent += 1
                st.due += st.interval
            if now >= st.end:
                spent.add(group)
                stop(group, "time")
        wake = min((st.due for st in streams.values()), default=now + 0.2)
        for key, _ in sel.select(timeout=max(0.0, min(wake, deadline) - time.monotonic())):
            if key.data == "stdin":
                if not os.read(0, 4096):
                    return 0
                continue
            for _ in range(1000):
                try:
                    data = cap.recv(65535)
                except BlockingIOError:
                    break
                got = extract(data)
                if got is None:
                    continue
                fam, src, dst, payload = got
                d = decode_ctl(fam, src, dst, payload)
                if d is None or d["m"] not in ("R", "L"):
                    continue
                for rtype, gtext, nsrc in d["r"]:
                    group = addr(gtext)
                    join = rtype in JOIN_TYPES and (nsrc or rtype != RecordType.ALLOW_NEW_SOURCES)
                    leave = not join and nsrc == 0 and rtype in (
                        RecordType.CHANGE_TO_INCLUDE_MODE, RecordType.MODE_IS_INCLUDE)
                    if join and group not in streams and group not in spent:
                        rule = rule_for(group)
                        if rule is None:
                            continue
                        total = sum(1.0 / st.interval for st in streams.values())
                        if total + rule[0] > MAX_RATE:
                            refused += 1
                            emit({"e": "refused", "g": gtext, "total": total})
                            continue
                        ip = ipaddress.ip_address(group)
                        dest = ((gtext, a.port) if ip.version == 4 else (gtext, a.port, 0, 0))
                        streams[group] = Stream(socks[ip.version], dest, rule[0], rule[1],
                                                time.monotonic())
                        emit({"e": "start", "g": gtext, "t": time.time_ns()})
                    elif leave:
                        spent.discard(group)
                        if group in streams:
                            stop(group, "leave")
    return 0


# -- echo ---------------------------------------------------------------------------------------


def run_echo(a: argparse.Namespace) -> int:
    """The least a proxy in Python can do: an asyncio loop reading IGMP from a raw socket
    (as mcastproxy's does: 224.0.0.22 joined on the downstream, Router Alert chain) and, for
    each report, sending a report for its first group out of the upstream."""
    import asyncio  # noqa: PLC0415 - only this program needs it

    down, up = socket.if_nametoindex(a.down), socket.if_nametoindex(a.up)
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("=4s4si", V3_ROUTERS[4], bytes(4), down))
    r.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("=4s4si", bytes(4),
                                                                        bytes(4), up))
    r.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    r.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    r.setblocking(False)
    src = addr(a.src)
    dst = (text(V3_ROUTERS[4]), 0)

    def readable() -> None:
        while True:
            try:
                data = r.recv(65535)
            except BlockingIOError:
                return
            if data[12:16] == src:
                continue
            try:
                msg = parse_igmp(data[(data[0] & 0x0F) * 4:])
            except WireError:
                continue
            if isinstance(msg, Report) and msg.records:
                rec = GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, msg.records[0].group)
                r.sendto(build_ipv4(src, V3_ROUTERS[4], build_igmp(Report(3, (rec,)))), dst)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(r.fileno(), readable)
        loop.add_reader(0, lambda: os.read(0, 4096) or done.set())
        emit({"e": "ready"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), a.max_seconds)

    done = asyncio.Event()
    asyncio.run(serve())
    return 0


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="_daemon_lab.py")
    sub = ap.add_subparsers(dest="program", required=True)
    tap = sub.add_parser("tap")
    tap.add_argument("--iface", default=None, help="one interface (default: all of them)")
    tap.add_argument("--mode", default="ctl", choices=FILTERS)
    tap.add_argument("--gap-ms", type=float, default=20.0)
    tap.add_argument("--poll-ms", type=float, default=0.0,
                     help="read every this many ms rather than on each packet (0: on each)")
    tap.add_argument("--max-seconds", type=float, default=900.0)
    rep = sub.add_parser("reporter")
    rep.add_argument("--iface", required=True)
    rep.add_argument("--max-seconds", type=float, default=900.0)
    up = sub.add_parser("upstream")
    up.add_argument("--iface", required=True)
    up.add_argument("--src4", required=True)
    up.add_argument("--src6", default=None)
    up.add_argument("--port", type=int, default=5001)
    up.add_argument("--stream", action="append", default=[],
                    help="PREFIX=RATE:SECONDS, packets per second and time limit per group")
    up.add_argument("--max-seconds", type=float, default=900.0)
    echo = sub.add_parser("echo")
    echo.add_argument("--down", default="d1")
    echo.add_argument("--up", default="u1")
    echo.add_argument("--src", default="10.0.1.1")
    echo.add_argument("--max-seconds", type=float, default=120.0)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run = {"tap": run_tap, "reporter": run_reporter, "upstream": run_upstream,
           "echo": run_echo}[a.program]
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        return run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
