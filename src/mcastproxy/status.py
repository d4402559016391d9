"""The answer of ``mcastproxy status``: an engine snapshot as a JSON document.

Built from ``Engine.snapshot()`` only (plain data), so answering never touches the engine's
live state. Keys:

- ``upstreams``: per candidate, ``usable``, ``priority``, ``liveness`` (its evidence) and the
  ``groups`` it reports (``mode``, ``sources``);
- ``downstream``: per link and protocol (``d1/igmp``), ``querier`` and per group the tracked
  ``subscribers`` and the ``upstreams`` the link asks for it;
- ``routes``: each flow's ``upstream``, ``source``, ``group``, the ``downstream`` links it
  feeds (none: hot standby) and its ``data`` health where data liveness watches it;
- ``events``: counted events (liveness changes, takeovers, swaps, resets);
- ``dropped``: inputs dropped, by reason, summed over interfaces (``socket: ...`` for drops
  in the sockets); ``drops``: the same by interface, then reason (``-`` for none);
- ``engine``: its ``resets`` after internal faults and the ``last-error``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from mcastproxy.drops import Drop
from mcastproxy.snapshot import EngineSnapshot


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


def document(snap: EngineSnapshot, links: Iterable[str],
             socket_drops: Mapping[Drop, int] | None = None) -> dict[str, Any]:
    """The status of ``snap``; ``links`` orders the downstream links as configured."""
    upstreams = {}
    for up in snap.upstreams:
        upstreams[up.interface] = {
            "usable": up.usable, "priority": up.priority,
            "groups": {_text(g.group): {"mode": g.filter_mode.name.lower(),
                                        "sources": sorted(_text(s) for s in g.sources)}
                       for g in up.groups},
            "liveness": dict(up.liveness),
        }
    order = {name: i for i, name in enumerate(links)}
    downstream = {}
    for link in sorted(snap.links, key=lambda ln: (order.get(ln.interface, len(order)),
                                                     ln.family)):
        downstream[f"{link.interface}/{link.family.protocol}"] = {
            "querier": link.querier,
            "groups": {_text(g.group): {"subscribers": sorted(_text(s.address)
                                                              for s in g.subscribers),
                                        "upstreams": list(g.upstreams)}
                       for g in link.groups},
        }
    routes = [
        {"upstream": f.upstream, "source": _text(f.source), "group": _text(f.group),
         "downstream": sorted(f.downstream)} | ({"data": f.health} if f.health else {})
        for f in sorted(snap.flows, key=lambda f: (f.upstream, f.source, f.group))
    ]
    dropped: dict[str, int] = {str(r): n for r, n in snap.drops_by_reason().items()}
    by_interface: dict[str, dict[str, int]] = {}
    for (interface, reason), n in snap.drops.items():
        by_interface.setdefault(interface or "-", {})[str(reason)] = n
    for reason, n in (socket_drops or {}).items():
        dropped[f"socket: {reason}"] = n
    return {"upstreams": upstreams, "downstream": downstream, "routes": routes,
            "events": dict(snap.counts), "dropped": dropped, "drops": by_interface,
            "engine": {"resets": snap.resets, "last-error": snap.last_error}}
