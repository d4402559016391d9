"""What answering ``mcastproxy status`` costs at scale, in process, no I/O.

Run: .venv/bin/python bench/bench_status.py [--groups N] [--memberships N]
Target (DESIGN.md): status never blocks the loop more than 5 ms.

An engine with IGMPv3 on two downstream links and two upstreams selected by group prefix is
filled with ``--memberships`` (subscriber, group) memberships over ``--groups`` groups (every
group joined by as many subscribers, half on each link) and a route per group. Then:

- the whole answer at once: ``Engine.snapshot()``, ``status.document()`` and ``json.dumps``,
  each timed (what the loop would be blocked for, were the answer made in one go);
- a full garbage collection of that heap (which the daemon holds back while it answers);
- the answer in slices, as the daemon makes it: ``Engine.snapshot_slices``,
  ``status.document_slices``, ``status.encode``, and ``snapshot.release`` of the snapshot
  and of the document (freed in one go, they too would hold the loop), the loop given a
  turn every ``daemon.STATUS_SLICE``: the total time, the steps, and the longest the loop
  waits for a turn, which is the longest a report waits while status is answered.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.config import parse_config
from mcastproxy.daemon import STATUS_SLICE
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, NewFlow, PacketReceived
from mcastproxy.snapshot import release
from mcastproxy.status import document, document_slices, encode
from mcastproxy.wire import build_igmp
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

TARGET_STALL = 0.005
RECORDS_PER_REPORT = 50

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates:
    - interface: u1
      records: [{group: 239.0.0.0/9}]
    - interface: u2
policy:  # a few hosts hold 50,000 groups here: the limits are not under test
  max-groups-per-interface: unlimited
  subscriber: {max-groups: unlimited}
  report-rate: {subscriber: unlimited, link: unlimited}
"""
ADDRS = {"u1": (bytes((192, 0, 2, 1)),), "u2": (bytes((198, 51, 100, 1)),),
         "d1": (bytes((10, 1, 0, 1)),), "d2": (bytes((10, 2, 0, 1)),)}
ALL_V3_ROUTERS = bytes((224, 0, 0, 22))


def group_address(g: int) -> bytes:
    return (239 << 24 | (g % 2) << 23 | (g // 2 + 1)).to_bytes(4)


def build(groups: int, memberships: int) -> Engine:
    """An engine holding ``memberships`` over ``groups`` groups, and a route per group."""
    engine = Engine(parse_config(CONFIG), rng=random.Random(1).random)
    for name, addrs in ADDRS.items():
        engine.handle(InterfaceUp(name, addrs), 0.0)
    per_group = max(1, memberships // groups)
    # Subscriber k of every group is host k; hosts alternate between d1 and d2, and each
    # reports its groups RECORDS_PER_REPORT to a report.
    join = RecordType.CHANGE_TO_EXCLUDE_MODE
    for k in range(per_group):
        link = "d1" if k % 2 == 0 else "d2"
        host = (10 << 24 | (1 + k % 2) << 16 | (k // 2 + 2)).to_bytes(4)
        for first in range(0, groups, RECORDS_PER_REPORT):
            last = min(groups, first + RECORDS_PER_REPORT)
            report = Report(3, tuple(GroupRecord(join, group_address(g))
                                     for g in range(first, last)))
            engine.handle(PacketReceived(link, 4, host, ALL_V3_ROUTERS, build_igmp(report)), 1.0)
            engine.pop_actions()
    source = bytes((192, 0, 2, 99))
    for g in range(groups):
        upstream = "u1" if g % 2 == 0 else "u2"
        engine.handle(NewFlow(upstream, source, group_address(g)), 2.0)
    engine.pop_actions()
    return engine


def step_times(run: Iterator[object]) -> list[float]:
    """Drive ``run`` to its end: the time each step took (the last, to its end)."""
    steps: list[float] = []
    start = time.perf_counter()
    for _ in run:
        now = time.perf_counter()
        steps.append(now - start)
        start = time.perf_counter()
    steps.append(time.perf_counter() - start)
    return steps


def waits(steps: list[float], turn_every: float) -> list[float]:
    """How long the loop waits between turns when it is given one once ``turn_every``
    seconds of steps have run (as ``Daemon._paced`` does)."""
    out: list[float] = []
    spent = 0.0
    for step in steps:
        spent += step
        if spent >= turn_every:
            out.append(spent)
            spent = 0.0
    out.append(spent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=50_000)
    parser.add_argument("--memberships", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    engine = build(args.groups, args.memberships)
    print(f"engine with {args.groups:,} groups, {args.memberships:,} memberships and "
          f"{args.groups:,} routes built in {time.perf_counter() - t0:.1f} s")
    gc.collect()

    t0 = time.perf_counter()
    snap = engine.snapshot()
    t1 = time.perf_counter()
    doc = document(snap, ["d1", "d2"])
    t2 = time.perf_counter()
    text = json.dumps(doc)
    t3 = time.perf_counter()
    del snap, doc
    t4 = time.perf_counter()
    print(f"at once: snapshot {1e3 * (t1 - t0):.0f} ms, document {1e3 * (t2 - t1):.0f} ms, "
          f"json {1e3 * (t3 - t2):.0f} ms, freeing them {1e3 * (t4 - t3):.0f} ms: the loop "
          f"blocked {1e3 * (t4 - t0):.0f} ms for {len(text) / 2**20:.1f} MiB")
    t0 = time.perf_counter()
    gc.collect()
    print(f"a full garbage collection of this heap: {1e3 * (time.perf_counter() - t0):.0f} ms "
          "(the daemon holds automatic ones back while it answers)")

    def sliced(pieces: list[str]) -> Generator[None, None, None]:
        snap = yield from engine.snapshot_slices()
        doc = yield from document_slices(snap, ["d1", "d2"])
        parts = release(snap)
        del snap
        yield from parts
        for piece in encode(doc):
            pieces.append(piece)  # what the daemon writes to the socket
            yield
        parts = release(doc)
        del doc
        yield from parts

    # Each step is the same work in every run: the least each took is its cost, without
    # what else the machine ran meanwhile.
    runs = []
    gc.disable()
    for _ in range(args.runs):
        pieces: list[str] = []
        t0 = time.perf_counter()
        runs.append(step_times(sliced(pieces)))
        total = time.perf_counter() - t0
        assert json.loads("".join(pieces)) == json.loads(text)
    gc.enable()
    steps = sorted(min(run) for run in zip(*runs, strict=True))
    loop_waits = waits([min(run) for run in zip(*runs, strict=True)], STATUS_SLICE)
    seen = max(max(waits(run, STATUS_SLICE)) for run in runs)
    verdict = "met" if max(loop_waits) <= TARGET_STALL else "NOT met"
    print(f"in slices: {1e3 * total:.0f} ms in all, {len(steps):,} steps (median "
          f"{1e6 * steps[len(steps) // 2]:.0f} us, longest {1e3 * steps[-1]:.2f} ms); with a "
          f"turn every {1e3 * STATUS_SLICE:.0f} ms the loop waits at most "
          f"{1e3 * max(loop_waits):.2f} ms (target <= {1e3 * TARGET_STALL:.0f} ms: {verdict}); "
          f"the longest wait seen in {args.runs} runs, with this machine's other work: "
          f"{1e3 * seen:.1f} ms")


if __name__ == "__main__":
    main()
