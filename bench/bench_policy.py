"""The cost of a realistic edge policy on the report path: the engine's mixed joins and leaves
with no policy against the same load under 1,000 permit rules and the limits, and under that
with bandwidth admission too: a channel bandwidth table with link, subscriber and upstream
budgets (README, "Policy and limits", "Bandwidth admission", "Upstream admission"); all with
the same tied upstreams (robust reception). The engines take the load a chunk at a time in
turn, so the machine's noise hits them alike.

Run: .venv/bin/python bench/bench_policy.py [--subscribers N] [--groups N] [--mixed N] [--chunk N]
Target (the edge-policy issue): with 1,000 permit rules and limits on, within 10% of without.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived
from mcastproxy.gcpolicy import GcPolicy
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


POLICIES = ("none", "rules", "budgets")
"""No policy (the built-in limits only); the issue's realistic policy: 1,000 permit rules and
the limits; and that with bandwidth admission too: a rate table and link, subscriber and
upstream budgets."""


def policy_text(kind: str) -> str:
    """The ``policy`` section's body, the budgets sized so that the load stays within them."""
    if kind == "none":
        return ""
    rules = "\n".join(f"    - {{action: permit, group: 239.{i // 256}.{i % 256}.0/24}}"
                      for i in range(1, 1001))
    text = (f"  default: deny\n  group-policy:\n{rules}\n"
            "  max-groups-per-interface: 16384\n  max-entries: 131072\n")
    if kind == "rules":
        return text + "  subscriber: {max-groups: 64, max-group-sources: 16}\n"
    rates = "\n".join(f"      - {{group: 239.{i // 256}.{i % 256}.0/24, rate: 4M}}"
                      for i in range(0, 1001, 10))
    return (text + "  subscriber: {max-groups: 64, max-group-sources: 16, max-bandwidth: 1G}\n"
            "  max-bandwidth-per-interface: 1000G\n"
            f"  bandwidth:\n    default-rate: 2M\n    channels:\n{rates}\n")


def config(kind: str) -> str:
    ups = ("{interface: u1, max-bandwidth: 1000G}, {interface: u2, max-bandwidth: 1000G}"
           if kind == "budgets" else "{interface: u1}, {interface: u2}")
    return (BASE.replace("TIES", "robust").replace("UPSTREAMS", ups)
            .replace("POLICY", policy_text(kind)))


def events(subscribers: int, groups: int, n: int, zaps: bool = False,
           ) -> tuple[list[PacketReceived], list]:
    """Every subscriber joined to every group (``zaps``: to the first half of them), and a
    mixed load of ``n`` reports: random (subscriber, group) pairs toggled, as bench_engine's
    (most are leaves); ``zaps``: a subscriber leaves a group it holds and joins one it does
    not, in pairs, so joins and leaves are even."""
    hosts = [(10 << 24 | (1 + i % 2) << 16 | (i // 2 + 2)).to_bytes(4)
             for i in range(subscribers)]
    addrs = [bytes((239, 0, 1 + g // 200, 1 + g % 200)) for g in range(groups)]

    def event(i: int, g: int, join: bool) -> PacketReceived:
        kind = RecordType.CHANGE_TO_EXCLUDE_MODE if join else RecordType.CHANGE_TO_INCLUDE_MODE
        payload = build_igmp(Report(3, (GroupRecord(kind, addrs[g]),)))
        return PacketReceived(("d1", "d2")[i % 2], 4, hosts[i], ROUTERS, payload)

    first = range(groups // 2) if zaps else range(groups)
    joins = [event(i, g, True) for g in first for i in range(subscribers)]
    rng = random.Random(2)
    mixed = []
    if zaps:
        held = [set(first) for _ in range(subscribers)]
        while len(mixed) < n:
            i = rng.randrange(subscribers)
            leave = rng.choice(sorted(held[i]))
            join = rng.choice([g for g in range(groups) if g not in held[i]])
            held[i].remove(leave)
            held[i].add(join)
            mixed += [event(i, leave, False), event(i, join, True)]
        return joins, mixed
    joined = {(i, g) for i in range(subscribers) for g in first}
    for _ in range(n):
        i, g = rng.randrange(subscribers), rng.randrange(groups)
        mixed.append(event(i, g, (i, g) not in joined))
        joined.symmetric_difference_update({(i, g)})
    return joins, mixed


def engine(kind: str, joins: list[PacketReceived]) -> Engine:
    """An engine under the policy ``kind``, every subscriber joined."""
    eng = Engine(parse_config(config(kind)), rng=random.Random(1).random)
    for name, addrs in ADDRS.items():
        eng.handle(InterfaceUp(name, addrs), 0.0)
    handle, pop = eng.handle, eng.pop_actions
    for ev in joins:
        handle(ev, 1.0)
        pop()
    return eng


def interleaved(joins: list[PacketReceived], mixed: list[PacketReceived],
                chunk: int) -> dict[str, list[float]]:
    """Each engine's seconds per chunk of the mixed load, the engines given each chunk in
    turn (in a rotating order): a burst of noise on the machine falls on all alike."""
    engines = {kind: engine(kind, joins) for kind in POLICIES}
    # The daemon's collector policy (``gcpolicy``): without it, a full collection walks every
    # engine's state and falls on whichever engine allocated last.
    collector = GcPolicy()
    collector.install()
    spent: dict[str, list[float]] = {kind: [] for kind in POLICIES}
    for n, start in enumerate(range(0, len(mixed), chunk)):
        for kind in POLICIES[n % 3:] + POLICIES[:n % 3]:
            eng = engines[kind]
            handle, pop = eng.handle, eng.pop_actions
            t0 = time.perf_counter()
            for ev in mixed[start:start + chunk]:
                handle(ev, 2.0)
                pop()
            spent[kind].append(time.perf_counter() - t0)
    collector.uninstall()
    for kind in POLICIES[1:]:
        refused = sum(n for (_, reason), n in engines[kind].dropped.by_key().items()
                      if "max" in reason.key or "policy" in reason.key)
        assert refused == 0, f"the load must stay within the policy: {refused} refused"
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--mixed", type=int, default=60_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    args = parser.parse_args()
    for zaps, load in ((False, "mixed joins and leaves (as bench_engine's)"),
                       (True, "zaps (a leave and a join in pairs)")):
        joins, mixed = events(args.subscribers, args.groups, args.mixed, zaps)
        spent = interleaved(joins, mixed, args.chunk)
        none = sum(spent["none"])
        print(f"{load}, {args.chunk:,}-report chunks in turn: none {len(mixed) / none:,.0f}/s")
        for kind, what in (("rules", "1,000 permit rules and limits"),
                           ("budgets", "and bandwidth admission (CAC, upstream budgets)")):
            ratio = none / sum(spent[kind])
            median = statistics.median(
                a / b for a, b in zip(spent["none"], spent[kind], strict=True))
            verdict = "met" if ratio >= 0.9 else "NOT met"
            target = f" (target >= 0.90: {verdict})" if kind == "rules" else ""
            print(f"  {what}: {len(mixed) / sum(spent[kind]):,.0f}/s, ratio {ratio:.2f}, "
                  f"median of the chunks' {median:.2f}{target}")


if __name__ == "__main__":
    main()
