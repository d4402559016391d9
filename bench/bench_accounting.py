"""What accounting costs at 10,000 routes, in process.

Run: .venv/bin/python bench/bench_accounting.py [--routes N] [--rounds N]

- One whole sample on the fake router (``kernel.fake.FakeRouter.route_counters``): the
  Python side of a sample, per route and for all of them (every route moved on since the
  last reading, so every reading is added to its upstream, channel and links).
- The same sample as the daemon takes it (``meter.Meter``), sliced on an asyncio loop while
  a "report" callback is due every 100 µs: the sample's span, the number of slices, the
  longest slice, and the longest a report waited.
- The ioctl: ``SIOCGETSGCNT`` on a raw IGMP socket. On a kernel with multicast routing and
  root, a real table is made with ``MulticastRouter`` and 10,000 routes read one by one;
  elsewhere (CONFIG_IP_MROUTE unset) the kernel refuses the call, which still measures the
  system call and the struct packing the daemon pays per route, the MFC lookup excepted.
- The hot path: the reading taken before a route change (``Meter.reading``), per change;
  and a session's start and end lines (``SessionLog``), per session.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.accounting import Accounting
from mcastproxy.actions import Session
from mcastproxy.config import AccountingSettings
from mcastproxy.family import Family
from mcastproxy.kernel import structs
from mcastproxy.kernel.api import RouteCounters
from mcastproxy.kernel.fake import FakeRouter
from mcastproxy.meter import SAMPLE_SLICE, Meter


def routes(n: int) -> list[tuple[str, bytes, bytes]]:
    return [("u1" if i % 2 else "u2", bytes([10, 0, 1, 2]), bytes([232, 1, i // 256 % 256,
                                                                   i % 256]))
            if i < 65536 else ("u1", bytes([10, 0, i // 65536, 3]), bytes([232, 2, i // 256 % 256,
                                                                           i % 256]))
            for i in range(n)]


def filled(n: int) -> tuple[FakeRouter, Accounting, list[tuple[str, bytes, bytes]]]:
    router = FakeRouter(4)
    router.start(["u1", "u2"], ["d1", "d2", "d3"])
    acc = Accounting()
    keys = routes(n)
    for i, (table, source, group) in enumerate(keys):
        oifs = frozenset({"d1", "d2"} if i % 3 else {"d3"})
        router.set_route(table, source, group, table, oifs)
        acc.route_set((table, source, group), oifs)
    return router, acc, keys


def advance(router: FakeRouter, keys: list[tuple[str, bytes, bytes]], k: int) -> None:
    for table, source, group in keys:
        router.count(table, source, group, RouteCounters(1000 * k, 1_316_000 * k, 0))


def bench_fake(n: int, rounds: int) -> None:
    router, acc, keys = filled(n)
    times = []
    for k in range(1, rounds + 1):
        advance(router, keys, k)
        started = time.perf_counter()
        for route in keys:
            got = router.route_counters(*route)
            if got is not None:
                acc.observe(route, got.packets, got.bytes)
        times.append(time.perf_counter() - started)
    best, median = min(times), statistics.median(times)
    print(f"fake router, {n:,} routes, one whole sample: median {1e3 * median:.1f} ms, best "
          f"{1e3 * best:.1f} ms ({1e6 * median / n:.2f} µs a route, read and accounted)")
    assert acc.upstreams["u1"][0] + acc.upstreams["u2"][0] == n * 1000 * rounds


async def bench_sliced(n: int) -> None:
    router, _, keys = filled(n)
    meter = Meter(AccountingSettings(sample_interval=3600), {Family.V4: router},
                  dict)
    meter.open()
    for table, source, group in keys:
        meter.accounting.route_set((table, source, group), frozenset({"d1"}))
    advance(router, keys, 1)
    loop = asyncio.get_running_loop()
    waits: list[float] = []
    stop = False

    def report(due: float) -> None:
        # A report due at ``due``: how late the loop let it run.
        now = time.perf_counter()
        waits.append(now - due)
        if not stop:
            loop.call_later(1e-4, report, now + 1e-4)

    loop.call_soon(report, time.perf_counter())
    slices: list[float] = []
    original = meter._next_slice

    def timed(*args: object) -> None:
        started = time.perf_counter()
        original(*args)  # type: ignore[arg-type]
        slices.append(time.perf_counter() - started)

    meter._next_slice = timed  # type: ignore[method-assign]
    meter._loop = loop
    started = time.perf_counter()
    meter._on_sample()
    while meter._slicing is not None:
        await asyncio.sleep(0)
    span = time.perf_counter() - started
    stop = True
    await asyncio.sleep(0.001)
    meter._cancel()
    sample = meter.last_sample or {}
    print(f"sliced sample as the daemon takes it, {n:,} routes: span {1e3 * span:.1f} ms, "
          f"reading {sample.get('reading-ms')} ms in {len(slices)} slices of "
          f"{1e3 * SAMPLE_SLICE:.0f} ms; longest slice {1e3 * max(slices):.2f} ms; a report "
          f"due every 100 µs waited {1e3 * max(waits):.2f} ms at the most "
          f"(median {1e6 * statistics.median(waits):.0f} µs)")


def bench_ioctl(n: int) -> None:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    except PermissionError:
        print("ioctl: needs root (a raw socket); not measured")
        return
    real = _real_router(n)
    if real is not None:
        router, keys = real
        started = time.perf_counter()
        for route in keys:
            router.route_counters(*route)
        spent = time.perf_counter() - started
        print(f"real ioctl path (MulticastRouter.route_counters), {n:,} routes: "
              f"{1e3 * spent:.1f} ms ({1e6 * spent / n:.2f} µs a route)")
        router.stop()
        return
    request = structs.sioc_sg_req(bytes([10, 0, 1, 2]), bytes([232, 1, 1, 1]))
    fd = sock.fileno()
    error = None
    started = time.perf_counter()
    for _ in range(n):
        try:
            reply = fcntl.ioctl(fd, structs.SIOCGETSGCNT, request)
            structs.sg_counts(reply, Family.V4)
        except OSError as exc:
            error = exc.strerror
    spent = time.perf_counter() - started
    sock.close()
    print(f"SIOCGETSGCNT system call, {n:,} calls (refused here: {error}; no multicast "
          f"routing in this kernel): {1e3 * spent:.1f} ms ({1e6 * spent / n:.2f} µs a call, "
          "the MFC lookup excepted)")


def _real_router(n: int) -> tuple[object, list[tuple[str, bytes, bytes]]] | None:
    from mcastproxy.kernel import KernelError, MulticastRouter  # noqa: PLC0415

    try:
        router = MulticastRouter(4)
        router.start(["lo"], [])
    except (KernelError, OSError):
        return None
    keys = [("lo", s, g) for _, s, g in routes(n)]
    for table, source, group in keys:
        router.set_route(table, source, group, table, frozenset())
    return router, keys


def bench_hot_path(n: int) -> None:
    router, _, keys = filled(n)
    for on in (False, True):
        meter = Meter(AccountingSettings() if on else None, {Family.V4: router}, dict)
        meter.open()
        for route in keys:
            meter.accounting.route_set(route, frozenset({"d1"}))
        best = []
        for k in range(5):
            started = time.perf_counter()
            oifs = frozenset({"d2"} if k % 2 else {"d1"})
            for table, source, group in keys:
                reading = meter.reading(router, table, source, group)
                meter.accounting.route_set((table, source, group), oifs, reading)
            best.append(time.perf_counter() - started)
        spent = min(best)
        print(f"route change, accounting {'on ' if on else 'off'}: "
              f"{1e6 * spent / n:.2f} µs a change spent by the meter (fake router; add one "
              "ioctl on a real one with accounting on)")


def bench_sessions(n: int, tmp: Path) -> None:
    """A session's start and end lines as the meter makes them (route read, JSON, buffered
    write), per session: what a join and a leave cost more with the session log on."""
    router, _, keys = filled(n)
    meter = Meter(AccountingSettings(session_log=tmp / "sessions.log"), {Family.V4: router},
                  dict)
    meter.open()
    for route in keys:
        meter.accounting.route_set(route, frozenset({"d1"}))
    host = bytes([10, 1, 0, 7])
    started = time.perf_counter()
    for _, source, group in keys:
        meter.sessions.handle(Session("d1", 4, host, source, group, True), 0.0, 1.8e9)
    for _, source, group in keys:
        meter.sessions.handle(Session("d1", 4, host, source, group, False), 1.0, 1.8e9 + 1)
    meter.close(2.0)
    spent = time.perf_counter() - started
    size = (tmp / "sessions.log").stat().st_size
    print(f"session log: {n:,} sessions started and ended in {1e3 * spent:.1f} ms "
          f"({1e6 * spent / n:.1f} µs a session, start and end lines, {size / n / 2:.0f} "
          "octets a line)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    bench_fake(args.routes, args.rounds)
    for _ in range(3):
        asyncio.run(bench_sliced(args.routes))
    bench_ioctl(args.routes)
    bench_hot_path(args.routes)
    with tempfile.TemporaryDirectory() as tmp:
        bench_sessions(args.routes, Path(tmp))


if __name__ == "__main__":
    main()
