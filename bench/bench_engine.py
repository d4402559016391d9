"""The protocol engine under load, one core, no I/O: reports handled per second, timer cost,
and memory per (subscriber, group) membership.

Run: .venv/bin/python bench/bench_engine.py [--subscribers N] [--groups N] [--profile]
Targets: mixed joins and leaves at 1,000,000 memberships >= 150,000 reports per second
compiled, >= 75,000 pure Python (issue 16; DESIGN.md asks 100,000 and 40,000); <= 500 B
per membership at 1,000,000.

Two downstream links and two upstreams selected by group prefix. Every subscriber joins every
group (any-source joins: the common IPTV case), then a mixed load of joins and leaves is
timed: reports are built beforehand, so the figure is decode + router state + selection +
upstream merge + state-change reports + route plan, per report.

It runs the mcastproxy that is installed (the compiled build, in .venv-compiled), else the
sources of this tree, and says which: compare the builds by running it with each Python.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import pstats
import random
import sys
import time
from pathlib import Path

if importlib.util.find_spec("mcastproxy") is None:  # not installed: the sources here
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import mcastproxy
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived, TimerExpired
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

TARGET_RATE = {"compiled": 150_000, "pure Python": 75_000}  # by mcastproxy.build()
TARGET_BYTES = 500

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  candidates:
    - interface: u1
      records: [{group: 239.0.0.0/9}, {group: "ff1e::/17"}]
    - interface: u2
policy:  # every report at one instant of the virtual clock: the rates are not under test
  report-rate: {subscriber: unlimited, link: unlimited}
"""
ADDRS = {
    "u1": (bytes((192, 0, 2, 1)), bytes.fromhex("fe800000000000000000000000010001")),
    "u2": (bytes((198, 51, 100, 1)), bytes.fromhex("fe800000000000000000000000020001")),
    "d1": (bytes((10, 1, 0, 1)), bytes.fromhex("fe800000000000000000000000d10001")),
    "d2": (bytes((10, 2, 0, 1)), bytes.fromhex("fe800000000000000000000000d20001")),
}
V3_ROUTERS = {4: bytes((224, 0, 0, 22)), 6: bytes.fromhex("ff020000000000000000000000000016")}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class Load:
    """Pre-built report events for one family."""

    def __init__(self, family: int, subscribers: int, groups: int) -> None:
        self.family = family
        if family == 4:
            self.hosts = [(10 << 24 | (1 + i % 2) << 16 | (i // 2 + 2)).to_bytes(4)
                          for i in range(subscribers)]
            self.groups = [bytes((239, 128 * (g % 2), 0, 1 + g // 2)) for g in range(groups)]
        else:
            self.hosts = [bytes.fromhex("fe80000000000000") + (i + 2).to_bytes(8)
                          for i in range(subscribers)]
            self.groups = [bytes.fromhex("ff1e") + bytes(12) + (0x8000 * (g % 2) + g // 2 + 1
                                                                ).to_bytes(2)
                           for g in range(groups)]
        self.link = ["d1", "d2"]

    def event(self, i: int, group: bytes, join: bool) -> PacketReceived:
        host = self.hosts[i]
        kind = RecordType.CHANGE_TO_EXCLUDE_MODE if join else RecordType.CHANGE_TO_INCLUDE_MODE
        report = Report(3 if self.family == 4 else 2, (GroupRecord(kind, group),))
        dst = V3_ROUTERS[self.family]
        payload = build_igmp(report) if self.family == 4 else build_mld(report, host, dst)
        return PacketReceived(self.link[i % 2], self.family, host, dst, payload)


def make_engine() -> Engine:
    engine = Engine(parse_config(CONFIG), rng=random.Random(1).random)
    for name, addrs in ADDRS.items():
        engine.handle(InterfaceUp(name, addrs), 0.0)
    engine.pop_actions()
    return engine


def run(engine: Engine, events: list[PacketReceived], now: float) -> float:
    handle, pop = engine.handle, engine.pop_actions
    t0 = time.perf_counter()
    for ev in events:
        handle(ev, now)
        pop()
    return time.perf_counter() - t0


def bench_family(family: int, subscribers: int, groups: int, profile: bool) -> None:
    name = "IGMPv3" if family == 4 else "MLDv2"
    load = Load(family, subscribers, groups)
    engine = make_engine()
    gc.collect()
    base = rss_bytes()
    joins = [load.event(i, g, True) for g in load.groups for i in range(subscribers)]
    built = rss_bytes()
    took = run(engine, joins, 1.0)
    gc.collect()
    memberships = subscribers * groups
    per = (rss_bytes() - built) / memberships
    print(f"{name}: {memberships:,} memberships ({subscribers:,} subscribers x {groups} groups)"
          f" joined at {len(joins) / took:,.0f} reports/s")
    print(f"{name}: memory per membership: {per:,.0f} bytes (target <= {TARGET_BYTES})")
    del joins
    _ = base
    # A mixed load: random subscribers leave a group and join another, in pairs.
    rng = random.Random(2)
    mixed = []
    joined = {(i, g) for i in range(subscribers) for g in range(groups)}
    for _ in range(100_000):
        i = rng.randrange(subscribers)
        g = rng.randrange(groups)
        join = (i, g) not in joined
        mixed.append(load.event(i, load.groups[g], join))
        joined.symmetric_difference_update({(i, g)})
    if profile:
        prof = cProfile.Profile()
        prof.enable()
    took = run(engine, mixed, 2.0)
    if profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    rate = len(mixed) / took
    target = TARGET_RATE[mcastproxy.build()]
    verdict = "met" if rate >= target else "NOT met"
    print(f"{name}: mixed joins and leaves: {rate:,.0f} reports/s (target >= {target:,} "
          f"{mcastproxy.build()}: {verdict})")
    # Timer cost: a quiet stretch of virtual time at this load, through a General Query
    # cycle and then the expiry of every membership that is not refreshed.
    t0 = time.perf_counter()
    now = 2.0
    timer_events = 0
    while (deadline := engine.next_deadline()) is not None and deadline < 400.0:
        now = deadline
        engine.handle(TimerExpired(), now)
        engine.pop_actions()
        timer_events += 1
    took = time.perf_counter() - t0
    print(f"{name}: timers over {now - 2.0:.0f} s of virtual time ({timer_events} wake-ups, "
          f"every membership expiring): {took:.2f} s of CPU, {took / (now - 2.0) * 1000:.1f} ms "
          "per virtual second")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--family", type=int, choices=(4, 6), action="append")
    args = parser.parse_args()
    print(f"mcastproxy ({mcastproxy.build()}) from {Path(mcastproxy.__file__).parent}; "
          f"Python {sys.version.split()[0]}")
    for family in args.family or (4, 6):
        bench_family(family, args.subscribers, args.groups, args.profile)


if __name__ == "__main__":
    main()
