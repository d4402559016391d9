"""``mcastproxy status VIEW``: one part of the running proxy's status, filtered, as rows.

The daemon answers with the whole document (``status``); an operator asking "what is this
subscriber getting, and from which upstream" wants a few rows of it. Each view is made from
the document alone, on the client's side (the proxy is not asked to do more):

- ``memberships``: a row per (link, group, subscriber): the subscriber's ``filter-mode`` and
  ``sources`` (explicit tracking), ``expire`` (seconds until it is forgotten unless it reports
  again; for a row without a subscriber, the group's), the group's ``up-time`` and
  ``last-reporter`` (RFC 8652's words), and the upstreams the link asks for the group; a group
  with untracked listeners only has one row with no subscriber;
- ``upstreams``: a row per (upstream, group) it has joined, with its mode and sources, and
  the upstream's usability;
- ``flows``: a row per route, (source, group) from an upstream to the links it feeds;
- ``drops``: a row per (interface, reason) with its count;
- ``interfaces``: a row per downstream link and protocol: ``oper-status``, ``version`` in use,
  the ``querier``'s address and whether it is this proxy, groups, admission counts, and the
  messages received and in error (RFC 8652 ``statistics``).

Filters (``--subscriber``, ``--group``, ``--interface``) keep the rows that match; addresses
are compared as addresses (``ff1e::1:1`` is ``ff1e:0::1:1``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

VIEWS = ("memberships", "upstreams", "flows", "drops", "interfaces")
Row = dict[str, Any]


def _same(a: str | None, b: str) -> bool:
    if a is None:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _link(name: str) -> tuple[str, str]:
    """"d1/igmp" -> ("d1", "igmp")."""
    link, _, proto = name.partition("/")
    return link, proto


def memberships(state: dict[str, Any], subscriber: str | None = None,
                group: str | None = None, interface: str | None = None) -> list[Row]:
    rows = []
    for name, link in state.get("downstream", {}).items():
        iface, proto = _link(name)
        if interface is not None and iface != interface:
            continue
        for g, info in link.get("groups", {}).items():
            if not _same(group, g):
                continue
            subscribers = info.get("subscribers") or [None]
            hosts = info.get("host", {})
            for sub in subscribers:
                if subscriber is not None and (sub is None or not _same(subscriber, sub)):
                    continue
                host = hosts.get(sub, {}) if sub is not None else {}
                rows.append({"interface": iface, "protocol": proto, "group": g,
                             "subscriber": sub,
                             "filter-mode": host.get("filter-mode", info.get("filter-mode")),
                             "sources": host.get("sources", []),
                             "expire": host.get("expire") if sub is not None
                             else info.get("expire"),
                             "up-time": info.get("up-time"),
                             "last-reporter": info.get("last-reporter"),
                             "upstreams": info.get("upstreams", [])})
    return rows


def upstreams(state: dict[str, Any], group: str | None = None,
              interface: str | None = None) -> list[Row]:
    rows = []
    for name, up in state.get("upstreams", {}).items():
        if interface is not None and name != interface:
            continue
        for g, info in up.get("groups", {}).items():
            if _same(group, g):
                rows.append({"upstream": name, "usable": up.get("usable"), "group": g,
                             "mode": info.get("mode"), "sources": info.get("sources", [])})
    return rows


def flows(state: dict[str, Any], group: str | None = None,
          interface: str | None = None) -> list[Row]:
    return [dict(r) for r in state.get("routes", [])
            if _same(group, r["group"]) and (interface is None or interface == r["upstream"]
                                             or interface in r.get("downstream", []))]


def drops(state: dict[str, Any], interface: str | None = None) -> list[Row]:
    return [{"interface": iface, "reason": reason, "count": n}
            for iface, reasons in sorted(state.get("drops", {}).items())
            if interface is None or iface == interface
            for reason, n in reasons.items()]


def interfaces(state: dict[str, Any], interface: str | None = None) -> list[Row]:
    rows = []
    for name, link in state.get("downstream", {}).items():
        iface, proto = _link(name)
        if interface is None or iface == interface:
            adm = link.get("admission") or {}
            stats = link.get("statistics") or {}
            rows.append({"interface": iface, "protocol": proto,
                         "oper-status": link.get("oper-status"),
                         "version": link.get("operating-version", link.get("version")),
                         "querier": link.get("querier"), "is-querier": link.get("is-querier"),
                         "groups": len(link.get("groups", {})),
                         "max-groups": adm.get("max-groups"),
                         "subscribers": adm.get("subscribers"),
                         "received": (stats.get("received") or {}).get("total"),
                         "errors": (stats.get("error") or {}).get("total")})
    return rows


def view(state: dict[str, Any], name: str, *, subscriber: str | None = None,
         group: str | None = None, interface: str | None = None) -> list[Row]:
    """The rows of view ``name``; ValueError for a filter the view does not take."""
    if subscriber is not None and name != "memberships":
        raise ValueError("--subscriber filters memberships only")
    if group is not None and name in ("drops", "interfaces"):
        raise ValueError(f"--group does not filter {name}")
    makers: dict[str, Callable[..., list[Row]]] = {
        "memberships": lambda: memberships(state, subscriber, group, interface),
        "upstreams": lambda: upstreams(state, group, interface),
        "flows": lambda: flows(state, group, interface),
        "drops": lambda: drops(state, interface),
        "interfaces": lambda: interfaces(state, interface),
    }
    if name not in makers:
        raise ValueError(f"no view {name!r} ({', '.join(VIEWS)})")
    return makers[name]()


def text(name: str, rows: list[Row]) -> str:
    """The rows as aligned text, a header first; a line saying so when there are none."""
    if not rows:
        return f"no {name} match"
    columns = list(rows[0])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)
