"""The longest pause at 1,000,000 memberships: the collector's full collections, with and
without the daemon's policy (``mcastproxy.gcpolicy``), the engine in process.

Run: .venv/bin/python bench/bench_pause.py [--subscribers N] [--groups N]
Target (issue 16): no pause of the loop longer than 20 ms at 1,000,000 memberships.

Each policy in a fresh process: every subscriber joins every group (any-source joins, the
engine benchmark's load), then 100,000 mixed joins and leaves. Printed per phase: the longest
single ``handle`` (a report with whatever collection it set off), the longest collection of
each generation and how many full ones ran; then one explicit full collection (what a full
collection costs at this size under the policy), and under the policy the cyclic garbage it
stranded (``gcpolicy.stranded``).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_engine import Load, make_engine
from mcastproxy.gcpolicy import GcPolicy, stranded

TARGET_MS = 20.0


class Pauses:
    """Every collection's duration, by generation."""

    def __init__(self) -> None:
        self.by_gen: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.by_gen[info["generation"]].append(time.perf_counter() - self._t)

    def line(self) -> str:
        worst = {g: max(d, default=0.0) * 1e3 for g, d in self.by_gen.items()}
        return (f"longest collection gen0 {worst[0]:.1f} ms, gen1 {worst[1]:.1f} ms, gen2 "
                f"{worst[2]:.1f} ms ({len(self.by_gen[2])} full)")


def timed(engine: Any, events: list[Any], now: float) -> tuple[float, float]:
    """(reports per second, longest single report in ms)."""
    handle, pop = engine.handle, engine.pop_actions
    worst = 0.0
    t0 = time.perf_counter()
    for ev in events:
        t = time.perf_counter()
        handle(ev, now)
        pop()
        worst = max(worst, time.perf_counter() - t)
    return len(events) / (time.perf_counter() - t0), worst * 1e3


def one(policy_on: bool, subscribers: int, groups: int) -> list[str]:
    out = []
    policy = GcPolicy()
    if policy_on:
        policy.install()  # as the daemon does once it runs
    pauses = Pauses()
    gc.callbacks.append(pauses)
    load = Load(4, subscribers, groups)
    engine = make_engine()
    joins = [load.event(i, g, True) for g in load.groups for i in range(subscribers)]
    rate, worst = timed(engine, joins, 1.0)
    out.append(f"joins {rate:,.0f}/s, longest report {worst:.1f} ms; {pauses.line()}")
    del joins
    rng = random.Random(2)
    joined = {(i, g) for i in range(subscribers) for g in range(groups)}
    mixed = []
    for _ in range(100_000):
        i, g = rng.randrange(subscribers), rng.randrange(groups)
        mixed.append(load.event(i, load.groups[g], (i, g) not in joined))
        joined ^= {(i, g)}
    pauses.__init__()  # type: ignore[misc]
    rate, worst = timed(engine, mixed, 2.0)
    out.append(f"mixed {rate:,.0f}/s, longest report {worst:.1f} ms; {pauses.line()}")
    t = time.perf_counter()
    gc.collect()
    out.append(f"one full collection now: {(time.perf_counter() - t) * 1e3:.0f} ms")
    if policy_on:
        out.append(f"cyclic garbage stranded by the policy: {stranded()} objects")
        policy.uninstall()
    gc.callbacks.remove(pauses)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10)
    a = ap.parse_args()
    print(f"{a.subscribers * a.groups:,} memberships ({a.subscribers:,} subscribers x "
          f"{a.groups} groups), IGMPv3")
    ctx = multiprocessing.get_context("spawn")
    for name, on in (("default collector", False), ("gcpolicy (the daemon's)", True)):
        with ctx.Pool(1) as pool:
            lines = pool.apply(one, (on, a.subscribers, a.groups))
        print(f"{name}:")
        for line in lines:
            print(f"  {line}")
    print(f"target: no pause over {TARGET_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
