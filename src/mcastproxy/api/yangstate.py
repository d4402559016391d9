"""The operational state in RFC 8652 and RFC 9398's shape, from the status document.

The status document (``status``) already names things as RFC 8652 does; here it is placed in
the routing tree (RFC 7951 JSON, ``config false`` nodes), to be merged with the
configuration (``yangdata.to_yang``) for an NMDA operational view (RFC 8342):

- per protocol (``igmp``, ``mld``): ``global`` with ``entries-count``, ``groups-count`` and
  the ``statistics`` of every link summed (``received``, ``sent``, ``error``: ``total``,
  ``query``, ``report``, ``leave``); per ``interface``: ``oper-status``, ``querier``, and
  each ``group`` (``expire``, ``filter-mode``, ``up-time``, ``last-reporter``) with its
  ``source`` entries (``expire``, ``up-time``, ``host-count`` and the tracked ``host``\\ s);
- per upstream (RFC 9398's ``igmp-proxy``, ``mld-proxy``): whether it is ``usable`` (the
  module's leaf) and the ``group`` entries reported on it (``filter-mode``; each ``source``
  with the ``downstream-interface`` entries its route feeds).

Times are whole seconds (RFC 8652's ``uint32``): rounded. A group with no timer running (a
static one) shows no ``expire``. A state of tens of thousands of groups is placed a slice at
a time (``state_slices``), as the status document is
made, so that the loop handles reports in between.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator
from typing import Any

from mcastproxy.api.yangdata import FAMILIES, NAME, ROUTING

_STATS = ("total", "query", "report", "leave")
GROUPS_PER_SLICE = 64


def _seconds(value: Any) -> int | None:
    return None if value is None else round(value)


def _family_of(address: str) -> int:
    return ipaddress.ip_address(address).version


def state_slices(state: dict[str, Any]) -> Generator[None, None, dict[str, Any]]:
    """The routing tree's state nodes of status document ``state``, a slice at a time:
    each ``next`` places a few dozen groups; the tree is the generator's value."""
    protocols: list[dict[str, Any]] = []
    links = state.get("downstream", {})
    routes = state.get("routes", [])
    for kind, proxy, protocol, family in FAMILIES:
        mine = {key.partition("/")[0]: entry for key, entry in links.items()
                if key.endswith("/" + protocol)}
        if not mine:
            continue
        interfaces = []
        for name, entry in mine.items():
            interfaces.append((yield from _link(name, entry)))
        statistics = {d: dict.fromkeys(_STATS, 0) for d in ("received", "sent", "error")}
        groups = 0
        for entry in mine.values():
            groups += len(entry.get("groups", {}))
            for direction, counts in entry.get("statistics", {}).items():
                for key in _STATS:
                    if direction in statistics:
                        statistics[direction][key] += counts.get(key, 0)
        glob: dict[str, Any] = {"groups-count": groups, "statistics": {
            d: {k: str(v) for k, v in counts.items()} for d, counts in statistics.items()}}
        admission = state.get("admission")
        if admission is not None:
            glob["entries-count"] = admission.get("entries-count", 0)
        protocols.append({"type": kind, "name": NAME, kind: {
            "global": glob, "interfaces": {"interface": interfaces}}})
        upstreams = []
        for name, up in state.get("upstreams", {}).items():
            upstreams.append(_upstream(name, up, routes, family))
            yield
        protocols.append({"type": proxy, "name": NAME,
                          proxy: {"interfaces": {"interface": upstreams}}})
    return {ROUTING: {"control-plane-protocols": {"control-plane-protocol": protocols}}}


def _link(name: str, entry: dict[str, Any]) -> Generator[None, None, dict[str, Any]]:
    out: dict[str, Any] = {"interface-name": name, "oper-status": entry.get("oper-status",
                                                                            "down")}
    if entry.get("querier") is not None:
        out["querier"] = entry["querier"]
    groups = []
    for address, group in entry.get("groups", {}).items():
        g: dict[str, Any] = {"group-address": address, "filter-mode": group["filter-mode"]}
        for key in ("expire", "up-time"):
            if group.get(key) is not None:
                g[key] = _seconds(group[key])
        if group.get("last-reporter") not in (None, "static"):
            g["last-reporter"] = group["last-reporter"]
        sources = []
        for s, source in group.get("sources", {}).items():
            entry_s: dict[str, Any] = {"source-address": s}
            for key in ("expire", "up-time"):
                if source.get(key) is not None:
                    entry_s[key] = _seconds(source[key])
            entry_s["host-count"] = source.get("host-count", 0)
            hosts = [{"host-address": h, "host-filter-mode": v["host-filter-mode"]}
                     for h, v in source.get("host", {}).items() if h != "static"]
            if hosts:
                entry_s["host"] = hosts
            sources.append(entry_s)
        if sources:
            g["source"] = sources
        groups.append(g)
        if len(groups) % GROUPS_PER_SLICE == 0:
            yield
    if groups:
        out["group"] = groups
    return out


def _upstream(name: str, up: dict[str, Any], routes: list[dict[str, Any]],
              family: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mcastproxy:usable": up.get("usable", False)}
    feeds: dict[tuple[str, str], list[str]] = {}
    for route in routes:
        if route.get("upstream") == name:
            feeds.setdefault((route["group"], route["source"]), []).extend(
                route.get("downstream", []))
    groups = []
    for address, group in up.get("groups", {}).items():
        if _family_of(address) != family:
            continue
        g: dict[str, Any] = {"group-address": address, "filter-mode": group["mode"]}
        sources = [{"source-address": s, "downstream-interface": [
            {"name": d} for d in sorted(set(feeds.get((address, s), [])))]}
            for s in group.get("sources", [])]
        if sources:
            g["source"] = sources
        groups.append(g)
    if groups:
        out["group"] = groups
    return out
