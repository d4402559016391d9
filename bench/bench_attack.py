"""One subscriber's cost, and another subscriber's join while it floods: the engine in process.

Run: .venv/bin/python bench/bench_attack.py [--family 4|6] [--groups N] [--spoofed N]
     [--breakdown] [--no-gc] [--only one-host|spoofed|victim]

A host on a downstream link is untrusted (DESIGN.md, "Trust at the edge"). Here, on the
engine alone (no sockets; reports built beforehand, each as full as an Ethernet MTU allows,
as an attacker would send them):

1. One host joins k groups, k = 1,000 / 10,000 / 50,000, each on a fresh engine: the time
   per join must stay flat as k grows (nothing in one subscriber's work worse than linear),
   and the memory per membership (RSS grown, per (subscriber, group)) under DESIGN.md's
   target of 500 B.
2. 5,000 spoofed source addresses on one link, each joining the same 10 groups (each
   address is a subscriber the router side tracks): memory per membership again.
3. Another subscriber (the victim, on the same link) joins a group of its own between the
   attacker's frames: its report's processing time (``handle`` and ``pop_actions``) while
   each flood goes on, against the same on a quiet engine. DESIGN.md's target: within 2x.

Memory per membership is given twice: the growth of the resident set in a fresh process
(so that what an earlier measurement freed cannot hide what this one takes), and the bytes
Python allocated for the engine's state (tracemalloc: exact, without the allocator's slack).
Both after the retransmissions, in the steady state. ``--breakdown`` prints the allocated
bytes by module.

Times are the best of ``--repeat`` runs. ``--no-gc`` times the joins with the cyclic garbage
collector off: what is left is the engine's own work, without the full collections whose
cost grows with the heap. The victim's quiet and flood figures are taken in turns, one join
on each engine after every step of the flood, so that other load on the machine weighs on
both alike.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_engine import ADDRS, V3_ROUTERS  # the same interfaces as the engine benchmark
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived, TimerExpired
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

TARGET_BYTES = 500
TARGET_RATIO = 2.0

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates: [{interface: u1}]
policy:  # no limits: what one host would cost without them is what is measured here
  max-entries: unlimited
  max-groups-per-interface: unlimited
  subscriber: {max-groups: unlimited}
  report-rate: {subscriber: unlimited, link: unlimited}
"""
ATTACKER = {4: bytes((10, 1, 0, 66)), 6: bytes.fromhex("fe800000000000000000000000d10066")}
VICTIM = {4: bytes((10, 1, 0, 7)), 6: bytes.fromhex("fe800000000000000000000000d10007")}
RECORDS_PER_FRAME = {4: (1500 - 24 - 8) // 8, 6: (1500 - 48 - 8) // 20}  # 183, 72


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def group(family: int, block: int, i: int) -> bytes:
    """Group ``i`` of a block: 239.<block>.x.y, or ff1e::<block>:xxxx:xxxx."""
    if family == 4:
        return ((239 << 24) | (block << 16) | i).to_bytes(4)
    return bytes.fromhex("ff1e") + bytes(8) + block.to_bytes(2) + i.to_bytes(4)


def subscriber(family: int, i: int) -> bytes:
    """A spoofed link address on d1: 10.1.128.0/17, or fe80::1:0:0/96."""
    if family == 4:
        return ((10 << 24) | (1 << 16) | 0x8000 | i).to_bytes(4)
    return bytes.fromhex("fe80") + bytes(8) + (0x10000 << 16 | i).to_bytes(6)


def frames(family: int, host: bytes, groups: list[bytes], per: int) -> list[PacketReceived]:
    """``host``'s reports joining ``groups`` (TO_EX({}), any source), ``per`` records each."""
    dst = V3_ROUTERS[family]
    out = []
    for start in range(0, len(groups), per):
        records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, g)
                        for g in groups[start:start + per])
        report = Report(3 if family == 4 else 2, records)
        payload = build_igmp(report) if family == 4 else build_mld(report, host, dst)
        out.append(PacketReceived("d1", family, host, dst, payload))
    return out


def make_engine() -> Engine:
    engine = Engine(parse_config(CONFIG), rng=lambda: 0.5)
    for name, addrs in ADDRS.items():
        engine.handle(InterfaceUp(name, addrs), 0.0)
    engine.pop_actions()
    return engine


def feed(engine: Engine, events: list[PacketReceived], now: float) -> float:
    handle, pop = engine.handle, engine.pop_actions
    t0 = time.perf_counter()
    for ev in events:
        handle(ev, now)
        pop()
    return time.perf_counter() - t0


class Victim:
    """The victim's joins: one report, one new group each."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.next = 0
        self.times: list[float] = []

    def join(self, engine: Engine, now: float) -> None:
        (ev,) = frames(self.family, VICTIM[self.family], [group(self.family, 200, self.next)], 1)
        self.next += 1
        t0 = time.perf_counter()
        engine.handle(ev, now)
        engine.pop_actions()
        self.times.append(time.perf_counter() - t0)

    def figures(self) -> tuple[float, float]:
        """Median and 90th percentile, in microseconds."""
        us = sorted(t * 1e6 for t in self.times)
        return statistics.median(us), us[len(us) * 9 // 10]


def one_host_frames(family: int, k: int) -> list[PacketReceived]:
    return frames(family, ATTACKER[family], [group(family, 1, i) for i in range(k)],
                  RECORDS_PER_FRAME[family])


def spoofed_frames(family: int, hosts: int, groups: int) -> list[PacketReceived]:
    targets = [group(family, 2, i) for i in range(groups)]
    return [f for i in range(hosts) for f in frames(family, subscriber(family, i), targets,
                                                    groups)]


def fill(events: list[PacketReceived]) -> Engine:
    """A fresh engine after ``events`` and the retransmissions of its State-Change Reports
    (within 1 s): the steady state."""
    engine = make_engine()
    feed(engine, events, 1.0)
    while (deadline := engine.next_deadline()) is not None and deadline <= 3.0:
        engine.handle(TimerExpired(), deadline)
        engine.pop_actions()
    return engine


def rss_growth(family: int, scenario: str, a: int, b: int) -> int:
    """In a fresh process: how much the resident set grows while the engine takes in a
    scenario's frames (built before the first reading)."""
    events = one_host_frames(family, a) if scenario == "one host" else spoofed_frames(
        family, a, b)
    gc.collect()
    base = rss_bytes()
    engine = fill(events)
    gc.collect()
    grown = rss_bytes() - base
    del engine
    return grown


def traced(events: list[PacketReceived], memberships: int, breakdown: bool) -> float:
    """Bytes per membership allocated by Python for the engine's state (without the
    allocator's slack), by module if asked."""
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    engine = fill(events)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del engine
    by_file: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        name = name.split("/src/")[-1] if "/src/" in name else Path(name).name
        by_file[name] += stat.size_diff
    if breakdown:
        for name, size in by_file.most_common(8):
            print(f"      {size / memberships:7,.1f} B  {name}")
    return sum(by_file.values()) / memberships


def memory(family: int, scenario: str, a: int, b: int, memberships: int,
           breakdown: bool) -> str:
    """The memory per membership after a scenario, as text."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        grown = pool.apply(rss_growth, (family, scenario, a, b))
    events = one_host_frames(family, a) if scenario == "one host" else spoofed_frames(
        family, a, b)
    allocated = traced(events, memberships, breakdown)
    return (f"{grown / memberships:,.0f} B resident, {allocated:,.0f} B allocated "
            f"(target <= {TARGET_BYTES})")


def best(engine_events: list[PacketReceived], repeat: int) -> float:
    took = []
    for _ in range(repeat):
        engine = make_engine()
        took.append(feed_timed(engine, engine_events, 1.0))
        del engine
        gc.collect()
    return min(took)


COLLECTOR = {"on": True}  # --no-gc: the cyclic collector stays off while joins are timed


def feed_timed(engine: Engine, events: list[PacketReceived], now: float) -> float:
    if COLLECTOR["on"]:
        return feed(engine, events, now)
    gc.disable()
    try:
        return feed(engine, events, now)
    finally:
        gc.enable()


def one_host(family: int, ks: list[int], repeat: int, breakdown: bool) -> None:
    name = "IGMPv3" if family == 4 else "MLDv2"
    print(f"{name}: one host joins k groups ({RECORDS_PER_FRAME[family]} records per frame), "
          f"fresh engine each, best of {repeat}")
    for k in ks:
        events = one_host_frames(family, k)
        took = best(events, repeat)
        print(f"  k = {k:>6,}: {len(events):>4,} frames, {took:6.2f} s, "
              f"{took / k * 1e6:5.1f} us per join")
    k = max(ks)
    print(f"  memory per membership, one host x {k:,} groups: "
          + memory(family, "one host", k, 0, k, breakdown))


def spoofed(family: int, hosts: int, groups: int, repeat: int, breakdown: bool) -> None:
    name = "IGMPv3" if family == 4 else "MLDv2"
    took = best(spoofed_frames(family, hosts, groups), repeat)
    print(f"{name}: {hosts:,} spoofed addresses on d1 x {groups} groups: {took:.2f} s, "
          f"{took / (hosts * groups) * 1e6:.1f} us per join")
    print("  memory per membership: "
          + memory(family, "spoofed", hosts, groups, hosts * groups, breakdown))


def victim(family: int, flood_groups: int, hosts: int, groups: int) -> None:
    name = "IGMPv3" if family == 4 else "MLDv2"
    floods = {
        f"one host joining {flood_groups:,} groups": one_host_frames(family, flood_groups),
        f"{hosts:,} spoofed addresses x {groups} groups": spoofed_frames(family, hosts, groups),
    }
    print(f"{name}: the victim's join on d1 (one report, one new group), quiet and while "
          "one host floods, in turns")
    for label, events in floods.items():
        flooded, quiet = make_engine(), make_engine()
        hit, calm = Victim(family), Victim(family)
        step = max(1, len(events) // 300)  # about 300 of the victim's joins in the flood
        now = 1.0
        for start in range(0, len(events), step):
            feed(flooded, events[start:start + step], now)
            hit.join(flooded, now)
            calm.join(quiet, now)
            now += 0.001
        median, p90 = hit.figures()
        q_median, q_p90 = calm.figures()
        ratio = median / q_median
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"  {label} ({len(events):,} frames): median {median:.1f} us (p90 {p90:.1f}) "
              f"against {q_median:.1f} us (p90 {q_p90:.1f}) quiet: {ratio:.2f}x "
              f"(target <= {TARGET_RATIO:g}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", type=int, choices=(4, 6), action="append")
    parser.add_argument("--groups", type=int, action="append",
                        help="k for one host (default 1,000, 10,000, 50,000)")
    parser.add_argument("--spoofed", type=int, default=5_000)
    parser.add_argument("--spoofed-groups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--no-gc", action="store_true",
                        help="time joins with the cyclic garbage collector off")
    parser.add_argument("--only", choices=("one-host", "spoofed", "victim"), action="append")
    args = parser.parse_args()
    COLLECTOR["on"] = not args.no_gc
    ks = sorted(args.groups or (1_000, 10_000, 50_000))
    parts = args.only or ("one-host", "spoofed", "victim")
    for family in args.family or (4, 6):
        if "one-host" in parts:
            one_host(family, ks, args.repeat, args.breakdown)
        if "spoofed" in parts:
            spoofed(family, args.spoofed, args.spoofed_groups, args.repeat, args.breakdown)
        if "victim" in parts:
            victim(family, max(ks), args.spoofed, args.spoofed_groups)


if __name__ == "__main__":
    main()
