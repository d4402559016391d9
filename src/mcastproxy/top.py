"""``mcastproxy top``: a live view of the running proxy, refreshed every second.

What an operator watches at a domain edge, on one screen: each upstream (usable, the groups it
is asked for, its load against its budgets), each downstream link (groups, subscribers, the
joins refused), the busiest channels (subscribers, the upstream carrying each, the links it
feeds and its rate), and the refusals by reason. It reads the status socket, as ``status``
does, so it never holds the proxy up; rates are the accounting's byte counters (with an
``accounting:`` section) between two answers.

``frame`` makes one screen from two status documents and is pure: the tests drive it with
documents made by the engine, and ``--once`` prints a single frame (for scripts).
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from mcastproxy.bandwidth import format_rate

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen (ANSI: every terminal since the VT100)


def _channel_rates(before: dict[str, Any] | None, now: dict[str, Any],
                   seconds: float) -> dict[tuple[str, str], float]:
    """(source, group) -> bits a second received, from the accounting's totals."""
    if before is None or seconds <= 0:
        return {}
    old = {(c["upstream"], c["source"], c["group"]): c["bytes"]
           for c in ((before.get("accounting") or {}).get("channels") or [])}
    rates: dict[tuple[str, str], float] = {}
    for c in (now.get("accounting") or {}).get("channels") or []:
        key = (c["upstream"], c["source"], c["group"])
        if key in old:
            bps = 8.0 * max(0, c["bytes"] - old[key]) / seconds
            rates[c["source"], c["group"]] = max(rates.get((c["source"], c["group"]), 0.0), bps)
    return rates


def frame(state: dict[str, Any], before: dict[str, Any] | None = None, seconds: float = 0.0,
          rows: int = 20, at: datetime.datetime | None = None) -> str:
    """One screen of the proxy's state; rates between ``before`` and ``state``, ``seconds``
    apart."""
    at = at or datetime.datetime.now(datetime.UTC)
    lines = [f"mcastproxy top  {at:%Y-%m-%d %H:%M:%S}Z  pid {state.get('pid', '?')}  "
             f"{state.get('config', '')}"]
    lines.append("")
    lines.append(f"{'UPSTREAM':<12} {'STATE':<9} {'GROUPS':>7} {'LOAD':>22}")
    for name, up in state.get("upstreams", {}).items():
        adm = up.get("admission")
        load = ""
        if adm:
            cap = adm["max-bandwidth"]
            load = (f"{format_rate(adm['bandwidth-used'])} of "
                    f"{cap if isinstance(cap, str) else format_rate(cap)}")
        lines.append(f"{name:<12} {'usable' if up.get('usable') else 'DOWN':<9} "
                     f"{len(up.get('groups', {})):>7} {load:>22}")
    lines.append("")
    lines.append(f"{'LINK':<12} {'QUERIER':<8} {'GROUPS':>7} {'SUBSCRIBERS':>12} "
                 f"{'REFUSED':>8} {'BANDWIDTH':>22}")
    refused_by_reason: Counter[str] = Counter()
    for name, link in state.get("downstream", {}).items():
        adm = link.get("admission") or {}
        refused = 0
        for by_reason in (adm.get("refused") or {}).values():
            for reason, n in by_reason.items():
                refused += n
                refused_by_reason[reason] += n
        subscribers = {s for g in link.get("groups", {}).values()
                       for s in g.get("subscribers", []) if s != "static"}
        bandwidth = ""
        if "bandwidth-used" in adm:
            cap = adm["max-bandwidth"]
            bandwidth = (f"{format_rate(adm['bandwidth-used'])} of "
                         f"{cap if isinstance(cap, str) else format_rate(cap)}")
        lines.append(f"{name:<12} {'yes' if link.get('is-querier') else 'no':<8} "
                     f"{len(link.get('groups', {})):>7} {len(subscribers):>12} "
                     f"{refused:>8} {bandwidth:>22}")
    lines.append("")
    lines += _channels(state, _channel_rates(before, state, seconds), rows)
    if refused_by_reason:
        lines.append("")
        lines.append("REFUSED JOINS")
        for reason, n in refused_by_reason.most_common(5):
            lines.append(f"  {n:>10,}  {reason}")
    return "\n".join(lines) + "\n"


def _channels(state: dict[str, Any], rates: dict[tuple[str, str], float],
              rows: int) -> list[str]:
    """The busiest channels: (S,G) of each route, with the subscribers of its group."""
    watchers: Counter[str] = Counter()
    for link in state.get("downstream", {}).values():
        for group, g in link.get("groups", {}).items():
            watchers[group] += sum(1 for s in g.get("subscribers", []) if s != "static")
    routes = state.get("routes", [])
    table = []
    for r in routes:
        rate = rates.get((r["source"], r["group"]))
        table.append((watchers[r["group"]], r["group"], r["source"], r["upstream"],
                      ",".join(r.get("downstream", [])) or "(standby)", rate,
                      r.get("data", "")))
    joined = {g for up in state.get("upstreams", {}).values() for g in up.get("groups", {})}
    flowing = {r["group"] for r in routes}
    for group in joined - flowing:  # asked upstream, nothing has arrived
        table.append((watchers[group], group, "*", "", "", None, "no data yet"))
    table.sort(key=lambda t: (-t[0], t[1], t[2]))
    out = [f"{'CHANNEL':<36} {'UPSTREAM':<10} {'LINKS':<14} {'SUBS':>6} {'RATE':>12}  DATA"]
    for subs, group, source, upstream, links, rate, data in table[:rows]:
        channel = f"({source}, {group})"
        shown = format_rate(int(rate)) if rate is not None else "-"
        out.append(f"{channel:<36} {upstream:<10} {links:<14} {subs:>6} {shown:>12}  {data}")
    if len(table) > rows:
        out.append(f"... {len(table) - rows:,} more")
    if not table:
        out.append("(no channels)")
    return out


async def _watch(path: Path, interval: float, once: bool, rows: int, out: TextIO) -> int:
    from mcastproxy.daemon import query_status  # noqa: PLC0415 - the daemon's client side

    loop = asyncio.get_running_loop()
    before: dict[str, Any] | None = None
    then = loop.time()
    while True:
        state = await query_status(path)
        now = loop.time()
        text = frame(state, before, now - then, rows)
        if once:
            out.write(text)
            return 0
        out.write(CLEAR + text)
        out.flush()
        before, then = state, now
        await asyncio.sleep(interval)


def run(path: Path, interval: float = 1.0, once: bool = False, rows: int = 20,
        out: TextIO = sys.stdout) -> int:
    """Watch the proxy at ``path`` until interrupted; OSError if it does not answer."""
    try:
        return asyncio.run(_watch(path, interval, once, rows, out))
    except KeyboardInterrupt:
        return 0
