"""The answer of ``mcastproxy status``: an engine snapshot as a JSON document.

Built from ``Engine.snapshot()`` only (plain data), so answering never touches the engine's
live state. Keys:

- ``upstreams``: per candidate, ``usable``, ``priority``, ``liveness`` (its evidence) and the
  ``groups`` it reports (``mode``, ``sources``);
- ``downstream``: per link and protocol (``d1/igmp``), in RFC 8652's words (ietf-igmp-mld,
  ``interface``): ``version`` (configured; ``operating-version``: in use, RFC 9776 §7.3.1),
  ``oper-status``, ``querier`` (the querier's address, null if none is known; ``is-querier``:
  whether it is this proxy), ``statistics`` (messages ``received``, ``sent`` and in ``error``
  by type), and per ``group``: ``filter-mode``, ``expire`` (seconds left on the Group Timer;
  absent when it is not running), ``up-time``, ``last-reporter``, its ``sources`` (each with
  ``expire``, 0 for an excluded source, ``up-time``, ``host-count`` and ``host``: the tracked
  hosts whose state names the source, with their ``host-filter-mode``), every tracked
  subscriber as ``host`` (its ``filter-mode``, ``sources`` and ``expire``: explicit tracking,
  what the subscriber is getting), and, as before, the ``subscribers`` (addresses) and the
  ``upstreams`` the link asks for the group (RFC 9398's upstream view); ``admission``: the
  link's ``groups-count`` (both families) against its ``max-groups``, the ``subscribers``
  holding groups that count, and the joins ``refused`` by subscriber prefix (``-``: none) and
  reason. Times are seconds relative to when the snapshot was taken, rounded to 0.1 s (left
  out when the snapshot has no time); a timer that never runs out (a static group) has no
  ``expire``. The static groups' member is shown as ``static``;
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
from mcastproxy.snapshot import EngineSnapshot, FlowSnapshot, GroupSnapshot, whole

# Groups (or routes) one slice of the document takes, and entries one piece of its text holds:
# each well under a millisecond.
GROUPS_PER_SLICE = 64
LINK_GROUPS_PER_SLICE = 32  # a downstream group's entry (RFC 8652's leaves) costs twice as much
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
             socket_drops: Mapping[Drop, int] | None = None,
             now: float | None = None) -> dict[str, Any]:
    """The status of ``snap``; ``links`` orders the downstream links as configured; times
    are counted from ``now`` (default: when the snapshot was taken, ``snap.taken``)."""
    return whole(document_slices(snap, links, socket_drops, now))


def document_slices(snap: EngineSnapshot, links: Iterable[str],
                    socket_drops: Mapping[Drop, int] | None = None,
                    now: float | None = None,
                    ) -> Generator[None, None, dict[str, Any]]:
    """``document``, a slice at a time: each ``next`` makes a few hundred groups' entries;
    the document is the generator's return value."""
    if now is None:
        now = snap.taken
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
        if up.load is not None:
            bandwidth, max_bandwidth, count, max_groups, channels = up.load
            upstreams[up.interface]["admission"] = {
                "bandwidth-used": bandwidth, "max-bandwidth": _limit(max_bandwidth),
                "groups-count": count, "max-groups": _limit(max_groups), "channels": channels}
        yield
    order = {name: i for i, name in enumerate(links)}
    downstream = {}
    for link in sorted(snap.links, key=lambda ln: (order.get(ln.interface, len(order)),
                                                     ln.family)):
        groups = {}
        for i, lg in enumerate(link.groups, 1):
            groups[text[lg.group]] = _group(lg, text, now)
            if i % LINK_GROUPS_PER_SLICE == 0:
                yield
        querier = link.querier_address
        entry: dict[str, Any] = {
            "version": link.version, "operating-version": link.operating_version,
            "oper-status": "up" if link.interface in snap.interfaces else "down",
            "querier": None if querier is None else text[querier],
            "is-querier": link.querier,
            "statistics": {k: dict(v) for k, v in link.statistics.items()},
            "groups": groups}
        adm = link.admission
        if adm is not None:
            refused: dict[str, dict[str, int]] = {}
            for (prefix, reason), n in adm.refused.items():
                refused.setdefault(prefix, {})[str(reason)] = n
            entry["admission"] = {"groups-count": adm.link_groups_count,
                                  "max-groups": _limit(adm.max_groups),
                                  "subscribers": adm.subscribers, "refused": refused}
            if adm.bandwidth_used is not None and adm.max_bandwidth is not None:
                entry["admission"]["bandwidth-used"] = adm.bandwidth_used
                entry["admission"]["max-bandwidth"] = _limit(adm.max_bandwidth)
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
    if snap.learned is not None:
        doc["learning"] = {
            "rates": [{"source": "*" if s is None else _address(s), "group": _address(g),
                       "rate": r}
                      for (s, g), r in sorted(snap.learned.items(),
                                              key=lambda item: _channel(item[0]))],
            "empty": [{"source": "*" if s is None else _address(s), "group": _address(g)}
                      for s, g in sorted(snap.empty, key=_channel)]}
    return doc


def _address(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


def _channel(channel: tuple[bytes | None, bytes]) -> tuple[bytes, bytes]:
    """Orders (source or None, group) channels by group, then source."""
    source, group = channel
    return group, source or b""


def _group(lg: GroupSnapshot, text: _Texts, now: float | None) -> dict[str, Any]:
    """One group of a downstream link (RFC 8652 ``group``; see the module's comment)."""
    entry: dict[str, Any] = {"filter-mode": lg.filter_mode.name.lower()}
    if now is not None:
        if lg.expire is not None and lg.expire != _NEVER:
            entry["expire"] = _left(lg.expire, now)
        if lg.up_since is not None:
            entry["up-time"] = _since(lg.up_since, now)
    entry["last-reporter"] = None if lg.last_reporter is None else text[lg.last_reporter]
    # Each source's hosts, from one pass over the subscribers (not one per source).
    named: dict[bytes, dict[str, Any]] = {}
    hosts: dict[str, Any] = {}
    for address, sub in sorted((text[sub.address], sub) for sub in lg.subscribers):
        mode = sub.filter_mode.name.lower()
        for s in sub.sources:
            named.setdefault(s, {})[address] = {"host-filter-mode": mode}
        host: dict[str, Any] = {"filter-mode": mode,
                                "sources": sorted(text[s] for s in sub.sources)}
        if now is not None and sub.expire != _NEVER:
            host["expire"] = _left(sub.expire, now)
        hosts[address] = host
    sources: dict[str, Any] = {}
    up_since = lg.source_up_since
    for s in sorted(lg.sources):
        timer = lg.sources[s]
        source: dict[str, Any] = {}
        if now is not None:
            if timer is None:
                source["expire"] = 0.0  # at zero: excluded (RFC 9776 §6.2.1, Y)
            elif timer != _NEVER:
                source["expire"] = _left(timer, now)
            since = up_since.get(s)
            if since is not None:
                source["up-time"] = _since(since, now)
        those = named.get(s, {})
        source["host-count"] = len(those)
        source["host"] = those
        sources[text[s]] = source
    entry["sources"] = sources
    entry["host"] = hosts
    entry["subscribers"] = list(hosts)
    entry["upstreams"] = list(lg.upstreams)
    return entry


_NEVER = float("inf")  # a timer that never runs out (a static group's)


def _left(deadline: float, now: float) -> float:
    """Seconds from ``now`` to ``deadline``, 0 if past, to 0.1 s."""
    return round(deadline - now, 1) if deadline > now else 0.0


def _since(start: float, now: float) -> float:
    """Seconds from ``start`` to ``now``, to 0.1 s."""
    return round(now - start, 1) if now > start else 0.0


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
