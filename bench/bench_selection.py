"""Upstream selection rate with 10,000 address prefix records, one core.

Run: .venv/bin/python bench/bench_selection.py
Target (DESIGN.md): >= 200,000 selections per second.

The records mix what an operator writes: channels (/32 groups), channel blocks (/24), SSM
channels (source /32 + group /32 or /24), source blocks, and subscriber prefixes (/24, /28);
memberships are random subscribers, sources and groups, half of them any-source, many of
which match no record (the fallback path).
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.config import parse_config
from mcastproxy.selection import Selector

TARGET = 200_000
RECORDS = 10_000
CANDIDATES = 8


def make_config(rng: random.Random, v6: bool) -> str:
    def host(base: str, v6: bool) -> str:
        if v6:
            return f"{base}::{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}"
        return f"{base}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"

    def prefix(base: str, plen: int) -> str:
        # IPv6 prefixes are the IPv4 lengths shifted into the low 32 bits.
        return str(ipaddress.ip_network(f"{host(base, v6)}/{plen + 96 * v6}", strict=False))

    def grp(plen: int) -> str:
        return prefix("ff3e" if v6 else "232", plen)

    def uni(base: str, plen: int) -> str:
        return prefix(base, plen)

    src, sub = ("2001:db8", "fe80") if v6 else ("10", "100")
    kinds = [
        lambda: f'{{group: "{grp(32)}"}}',
        lambda: f'{{group: "{grp(24)}"}}',
        lambda: f'{{source: "{uni(src, 32)}", group: "{grp(32)}"}}',
        lambda: f'{{source: "{uni(src, 32)}", group: "{grp(24)}"}}',
        lambda: f'{{source: "{uni(src, 24)}"}}',
        lambda: f'{{subscriber: "{uni(sub, 24)}"}}',
        lambda: f'{{subscriber: "{uni(sub, 28)}", group: "{grp(16)}"}}',
    ]
    per: list[set[str]] = [set() for _ in range(CANDIDATES)]
    n = 0
    while n < RECORDS:
        rec = rng.choice(kinds)()
        cand = per[rng.randrange(CANDIDATES)]
        if rec not in cand:
            cand.add(rec)
            n += 1
    cands = "".join(
        f"    - interface: u{i}\n      priority: {rng.randrange(3)}\n      records:\n"
        + "".join(f"        - {r}\n" for r in sorted(recs))
        for i, recs in enumerate(per)
    )
    return (
        "igmp: {}\nmld: {}\ndownstream: [{interface: d1}]\nupstream:\n  default: u0\n"
        "  candidates:\n" + cands
    )


def memberships(
    rng: random.Random, v6: bool, n: int, selector: Selector
) -> list[tuple[bytes, bytes | None, bytes]]:
    """Half aimed inside a random record's prefixes, half anywhere in the same ranges."""
    width = 16 if v6 else 4
    recs = [r for c in selector.candidates for r in c.records]

    def addr(base: int, bits: int) -> bytes:
        return (base | rng.getrandbits(bits)).to_bytes(width)

    def inside(net: ipaddress.IPv4Network | ipaddress.IPv6Network | None, other: bytes) -> bytes:
        if net is None:
            return other
        free = net.max_prefixlen - net.prefixlen
        return (int(net.network_address) | (rng.getrandbits(free) if free else 0)).to_bytes(width)

    if v6:
        sub, src, grp = (int(ipaddress.ip_address(x)) for x in ("fe80::", "2001:db8::", "ff3e::"))
        bits = 32
    else:
        sub, src, grp = (int(ipaddress.ip_address(x)) for x in ("100.0.0.0", "10.0.0.0",
                                                                  "232.0.0.0"))
        bits = 24
    out = []
    for i in range(n):
        h, s, g = addr(sub, bits), addr(src, bits), addr(grp, bits)
        if i % 2:
            rec = rng.choice(recs)
            h, s, g = inside(rec.subscriber, h), inside(rec.source, s), inside(rec.group, g)
            out.append((h, s if rec.source or rng.random() < 0.5 else None, g))
        else:
            out.append((h, s if rng.random() < 0.5 else None, g))
    return out


def rate(selector: Selector, batch: list[tuple[bytes, bytes | None, bytes]],
         down: frozenset[str]) -> float:
    best = 0.0
    select = selector.select
    for _ in range(3):
        t0 = time.perf_counter()
        for h, s, g in batch:
            select(h, s, g, down)
        best = max(best, len(batch) / (time.perf_counter() - t0))
    return best


def main() -> None:
    rng = random.Random(1)
    for v6 in (False, True):
        family = "IPv6" if v6 else "IPv4"
        t0 = time.perf_counter()
        selector = Selector(parse_config(make_config(rng, v6)))
        compile_s = time.perf_counter() - t0
        batch = memberships(rng, v6, 200_000, selector)
        matched = sum(1 for h, s, g in batch[:20_000] if selector.select(h, s, g).record)
        all_up = rate(selector, batch, frozenset())
        one_down = rate(selector, batch, frozenset({"u1"}))
        print(f"{family}: {RECORDS} records over {CANDIDATES} candidates, parsed and compiled in "
              f"{compile_s:.2f} s; {matched / 200:.0f}% of memberships match a record")
        print(f"{family}: selections/s, all upstreams usable:     {all_up:12,.0f}")
        print(f"{family}: selections/s, one down (takeover walk): {one_down:12,.0f}")
        verdict = "met" if all_up >= TARGET else "NOT met"
        print(f"{family}: target >= {TARGET:,}/s (all usable): {verdict}")


if __name__ == "__main__":
    main()
