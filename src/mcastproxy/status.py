"""The answer of ``mcastproxy status``: an engine snapshot as a JSON document.

Built from ``Engine.snapshot()`` only (plain data), so answering never touches the engine's
live state. Keys:

- ``upstreams``: per candidate, ``usable``, ``priority``, ``liveness`` (its evidence) and the
  ``groups`` it reports (``mode``, ``sources``);
- ``downstream``: per link and protocol (``d1/igmp``), ``querier`` and per group the tracked
  ``subscribers`` and the ``upstreams`` the link asks for it; ``admission``: the link's
  ``groups-count`` (both families) against its ``max-groups``, the ``subscribers`` holding
  groups that count, and the joins ``refused`` by subscriber prefix (``-``: none) and reason;
- ``routes``: each flow's ``upstream``, ``source``, ``group``, the ``downstream`` links it
  feeds (none: hot standby) and its ``data`` health where data liveness watches it;
- ``events``: counted events (liveness changes, takeovers, swaps, resets);
- ``dropped``: inputs dropped, by reason, summed over interfaces (``socket: ...`` for drops
  in the sockets); ``drops``: the same by interface, then reason (``-`` for none);
- ``engine``: its ``resets`` after internal faults and the ``last-error``;
- ``admission``: the proxy's ``entries-count`` ((link, group) pairs that count) against its
  ``max-entries`` (RFC 8652's names; ``unlimited`` for none).

A document of tens of thousands of groups takes a while to make and to encode: the daemon makes
it a slice at a time (``document_slices``, from a snapshot taken in slices, see ``snapshot``)
and encodes it in pieces (``encode``), handling reports in between, so that answering
``status`` never holds up the proxy. ``document`` is the same made in one go.
"""

from __future__ import annotations

import heapq
import ipaddress
import json
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.policy import UNLIMITED
from mcastproxy.snapshot import EngineSnapshot, FlowSnapshot, whole

# Groups (or routes) one slice of the document takes, and entries one piece of its text holds:
# each well under a millisecond.
GROUPS_PER_SLICE = 64
ENTRIES_PER_PIECE = 64


_STATIC_HOSTS = frozenset(f.all_routers for f in Family)


class _Texts(dict[bytes, str]):
    """Address -> its text, each made once per document (groups and subscribers recur)."""

    def __missing__(self, address: bytes) -> str:
        if address in _STATIC_HOSTS:  # the subscriber of static groups (RouterLink)
            text = self[address] = "static"
            return text
        text = self[address] = ("{}.{}.{}.{}".format(*address) if len(address) == 4
                                else str(ipaddress.IPv6Address(address)))
        return text


def document(snap: EngineSnapshot, links: Iterable[str],
             socket_drops: Mapping[Drop, int] | None = None) -> dict[str, Any]:
    """The status of ``snap``; ``links`` orders the downstream links as configured."""
    return whole(document_slices(snap, links, socket_drops))


def document_slices(snap: EngineSnapshot, links: Iterable[str],
                    socket_drops: Mapping[Drop, int] | None = None,
                    ) -> Generator[None, None, dict[str, Any]]:
    """``document``, a slice at a time: each ``next`` makes a few hundred groups' entries;
    the document is the generator's return value."""
    text = _Texts()
    upstreams = {}
    for up in snap.upstreams:
        groups: dict[str, Any] = {}
        for i, g in enumerate(up.groups, 1):
            groups[text[g.group]] = {"mode": g.filter_mode.name.lower(),
                                     "sources": sorted(text[s] for s in g.sources)}
            if i % GROUPS_PER_SLICE == 0:
                yield
        upstreams[up.interface] = {"usable": up.usable, "priority": up.priority,
                                   "groups": groups, "liveness": dict(up.liveness)}
        yield
    order = {name: i for i, name in enumerate(links)}
    downstream = {}
    for link in sorted(snap.links, key=lambda ln: (order.get(ln.interface, len(order)),
                                                     ln.family)):
        groups = {}
        for i, lg in enumerate(link.groups, 1):
            groups[text[lg.group]] = {
                "subscribers": sorted(text[s.address] for s in lg.subscribers),
                "upstreams": list(lg.upstreams)}
            if i % GROUPS_PER_SLICE == 0:
                yield
        entry: dict[str, Any] = {"querier": link.querier, "groups": groups}
        adm = link.admission
        if adm is not None:
            refused: dict[str, dict[str, int]] = {}
            for (prefix, reason), n in adm.refused.items():
                refused.setdefault(prefix, {})[str(reason)] = n
            entry["admission"] = {"groups-count": adm.link_groups_count,
                                  "max-groups": _limit(adm.max_groups),
                                  "subscribers": adm.subscribers, "refused": refused}
        downstream[f"{link.interface}/{link.family.protocol}"] = entry
        yield
    # Sorted a slice at a time, then merged as it is read.
    flows = snap.flows
    runs = []
    for start in range(0, len(flows), GROUPS_PER_SLICE):
        runs.append(sorted(flows[start:start + GROUPS_PER_SLICE], key=_route_order))
        yield
    routes = []
    for i, f in enumerate(heapq.merge(*runs, key=_route_order), 1):
        route = {"upstream": f.upstream, "source": text[f.source], "group": text[f.group],
                 "downstream": sorted(f.downstream)}
        if f.health:
            route["data"] = f.health
        routes.append(route)
        if i % GROUPS_PER_SLICE == 0:
            yield
    del runs, flows
    yield
    text.clear()  # each text is in the document already: only counts drop
    yield
    dropped: dict[str, int] = {str(r): n for r, n in snap.drops_by_reason().items()}
    by_interface: dict[str, dict[str, int]] = {}
    for (interface, reason), n in snap.drops.items():
        by_interface.setdefault(interface or "-", {})[str(reason)] = n
    for reason, n in (socket_drops or {}).items():
        dropped[f"socket: {reason}"] = n
    doc = {"upstreams": upstreams, "downstream": downstream, "routes": routes,
           "events": dict(snap.counts), "dropped": dropped, "drops": by_interface,
           "engine": {"resets": snap.resets, "last-error": snap.last_error}}
    if snap.entries is not None:
        used, maximum = snap.entries
        doc["admission"] = {"entries-count": used, "max-entries": _limit(maximum)}
    return doc


def _limit(value: int) -> int | str:
    return "unlimited" if value >= UNLIMITED else value


def _route_order(flow: FlowSnapshot) -> tuple[str, bytes, bytes]:
    return flow.upstream, flow.source, flow.group


def encode(doc: Any) -> Iterator[str]:
    """``doc`` as JSON text, in pieces of about ``ENTRIES_PER_PIECE`` entries each: joined,
    they are ``json.dumps(doc)``. A large dict or list is written a batch of entries at a
    time (each batch by one ``json.dumps``), a large entry by the same rule, a small one whole.
    """
    if not _large(doc):
        yield json.dumps(doc)
        return
    is_dict = isinstance(doc, dict)
    opening, closing = ("{", "}") if is_dict else ("[", "]")
    items: Iterable[tuple[Any, Any]] = doc.items() if is_dict else enumerate(doc)
    yield opening
    first = True
    batch: list[tuple[Any, Any]] = []

    def flush() -> str:
        text = json.dumps(dict(batch) if is_dict else [v for _, v in batch])[1:-1]
        batch.clear()
        return text

    for key, value in items:
        if _large(value):
            if batch:
                yield ("" if first else ", ") + flush()
                first = False
            yield ("" if first else ", ") + (json.dumps(key) + ": " if is_dict else "")
            first = False
            yield from encode(value)
            continue
        batch.append((key, value))
        if len(batch) >= ENTRIES_PER_PIECE:
            yield ("" if first else ", ") + flush()
            first = False
    if batch:
        yield ("" if first else ", ") + flush()
    yield closing


def _large(value: Any) -> bool:
    """Whether ``value`` holds more than ``ENTRIES_PER_PIECE`` entries, nested ones counted
    (looking no further than that)."""
    if not isinstance(value, dict | list | tuple):
        return False
    budget = ENTRIES_PER_PIECE
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            budget -= len(v)
            todo += v.values()
        elif isinstance(v, list | tuple):
            budget -= len(v)
            todo += v
        if budget < 0:
            return True
    return False
