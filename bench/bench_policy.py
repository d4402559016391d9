"""The cost of a realistic edge policy on the report path: the engine's mixed joins and leaves
with no policy against the same load under 1,000 permit rules, the limits, a channel bandwidth
table with link, subscriber and upstream budgets (README, "Policy and limits", "Bandwidth
admission", "Upstream admission"); both with the same tied upstreams (robust reception). The two
engines take the load a chunk at a time in turn, so the machine's noise hits both alike.

Run: .venv/bin/python bench/bench_policy.py [--subscribers N] [--groups N] [--chunk N]
Target (the edge-policy issue): with the policy, within 10% of without.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived
from mcastproxy.wire import build_igmp
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

BASE = """
igmp: {version: 3}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  ties: TIES
  candidates: [UPSTREAMS]
policy:
  report-rate: {subscriber: unlimited, link: unlimited}  # one instant of the virtual clock
POLICY
"""
ADDRS = {
    "u1": (bytes((192, 0, 2, 1)),), "u2": (bytes((198, 51, 100, 1)),),
    "d1": (bytes((10, 1, 0, 1)),), "d2": (bytes((10, 2, 0, 1)),),
}
ROUTERS = bytes((224, 0, 0, 22))


def realistic() -> str:
    """1,000 permit rules (one per channel block of a line-up), a default deny, the limits,
    a rate per block and budgets that the load stays within."""
    rules = "\n".join(f"    - {{action: permit, group: 239.{i // 256}.{i % 256}.0/24}}"
                      for i in range(1, 1001))
    rates = "\n".join(f"      - {{group: 239.{i // 256}.{i % 256}.0/24, rate: 4M}}"
                      for i in range(0, 1001, 10))
    return (f"  default: deny\n  group-policy:\n{rules}\n"
            "  subscriber: {max-groups: 64, max-group-sources: 16, max-bandwidth: 1G}\n"
            "  max-groups-per-interface: 16384\n  max-entries: 131072\n"
            "  max-bandwidth-per-interface: 1000G\n"
            f"  bandwidth:\n    default-rate: 2M\n    channels:\n{rates}\n")


def config(policy: bool) -> str:
    ups = ("{interface: u1, max-bandwidth: 1000G}, {interface: u2, max-bandwidth: 1000G}"
           if policy else "{interface: u1}, {interface: u2}")
    return (BASE.replace("TIES", "robust").replace("UPSTREAMS", ups)
            .replace("POLICY", realistic() if policy else ""))


def events(subscribers: int, groups: int, n: int) -> tuple[list[PacketReceived], list]:
    hosts = [(10 << 24 | (1 + i % 2) << 16 | (i // 2 + 2)).to_bytes(4)
             for i in range(subscribers)]
    addrs = [bytes((239, 0, 1 + g // 200, 1 + g % 200)) for g in range(groups)]

    def event(i: int, g: int, join: bool) -> PacketReceived:
        kind = RecordType.CHANGE_TO_EXCLUDE_MODE if join else RecordType.CHANGE_TO_INCLUDE_MODE
        payload = build_igmp(Report(3, (GroupRecord(kind, addrs[g]),)))
        return PacketReceived(("d1", "d2")[i % 2], 4, hosts[i], ROUTERS, payload)

    joins = [event(i, g, True) for g in range(groups) for i in range(subscribers)]
    rng = random.Random(2)
    joined = {(i, g) for i in range(subscribers) for g in range(groups)}
    mixed = []
    for _ in range(n):
        i, g = rng.randrange(subscribers), rng.randrange(groups)
        mixed.append(event(i, g, (i, g) not in joined))
        joined.symmetric_difference_update({(i, g)})
    return joins, mixed


def engine(policy: bool, joins: list[PacketReceived]) -> Engine:
    """An engine under the policy (or none), every subscriber joined."""
    eng = Engine(parse_config(config(policy)), rng=random.Random(1).random)
    for name, addrs in ADDRS.items():
        eng.handle(InterfaceUp(name, addrs), 0.0)
    handle, pop = eng.handle, eng.pop_actions
    for ev in joins:
        handle(ev, 1.0)
        pop()
    return eng


def interleaved(joins: list[PacketReceived], mixed: list[PacketReceived],
                chunk: int) -> dict[bool, float]:
    """Reports a second of each engine, the mixed load given to them a chunk at a time in
    turn: a burst of noise on the machine falls on both alike."""
    engines = {False: engine(False, joins), True: engine(True, joins)}
    spent = {False: 0.0, True: 0.0}
    for start in range(0, len(mixed), chunk):
        for policy in (False, True) if start // chunk % 2 == 0 else (True, False):
            eng = engines[policy]
            handle, pop = eng.handle, eng.pop_actions
            t0 = time.perf_counter()
            for ev in mixed[start:start + chunk]:
                handle(ev, 2.0)
                pop()
            spent[policy] += time.perf_counter() - t0
    refused = sum(n for (_, reason), n in engines[True].dropped.by_key().items()
                  if "max" in reason.key or "policy" in reason.key)
    assert refused == 0, f"the load must stay within the policy: {refused} refused"
    return {p: len(mixed) / t for p, t in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--mixed", type=int, default=60_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    args = parser.parse_args()
    joins, mixed = events(args.subscribers, args.groups, args.mixed)
    rates = interleaved(joins, mixed, args.chunk)
    ratio = rates[True] / rates[False]
    verdict = "met" if ratio >= 0.9 else "NOT met"
    print(f"mixed joins and leaves, {args.chunk:,}-report chunks in turn: none "
          f"{rates[False]:,.0f}/s, realistic policy {rates[True]:,.0f}/s: ratio {ratio:.2f} "
          f"(target >= 0.90: {verdict})")


if __name__ == "__main__":
    main()
