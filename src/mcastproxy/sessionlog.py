"""The session log: one JSON line when a subscriber's reception of a channel on a link begins
and one when it ends, for usage and access logs handed to a peer domain and for settlement
(RFC 8313 §4.3.3 "usage information logs", "access logs (EU)"; §4.6 bytes delivered to EUs).

The engine says when a session begins and ends (``actions.Session``); a session is keyed by
(link, family, subscriber, source or any, group). At its start the routes that can carry it
are read (one ioctl each), so that its bytes count from then: the bytes and packets of a
session are what the link was delivered of that (S,G) (of every source of G, for an any-source
session) between its start and its end (``accounting``). Several subscribers of a link
watching one channel each see the link's one copy: a sum of sessions by link counts that copy
once per subscriber; the link's own delivered total is in the accounting counters.

Zap time is from the join to the channel's first packet on the link: the first reading in
which the packet counter of a route delivering the channel on the link is above its value at
the join. Routes of sessions still waiting are read every ``ZAP_PERIOD`` (only while some
wait, and for ``ZAP_WAIT`` at the most: a channel with no traffic costs nothing after that),
so a zap time is late by up to that period; null when no packet came.

Lines (``event`` "start" or "end"; times ISO 8601 UTC with milliseconds)::

    {"event":"start","time":T,"link":"d1","family":4,"subscriber":"10.1.0.7","source":"*",
     "group":"239.1.1.1","upstream":["u1"],"start":T}
    {"event":"end","time":T2,"link":"d1","family":4,"subscriber":"10.1.0.7","source":"*",
     "group":"239.1.1.1","upstream":["u1"],"start":T,"end":T2,"duration":12.345,
     "zap-ms":41.7,"packets":1200,"bytes":1624800,"ended-by":"leave"}

``ended-by`` is "leave" (the engine ended it), "stop" (the proxy stopped with it open),
"reload" (a reload turned the session log off) or "reset" (the engine reset itself after an
error, forgetting its subscribers, as a router restart would).
Open sessions are bounded by the membership limits (a subscriber's ``max-groups`` and
``max-group-sources`` on each link, the link's ``max-groups``, the proxy's ``max-entries``):
one entry each here, with a few routes' counters for the waiting ones.
"""

from __future__ import annotations

import functools
import json
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mcastproxy.accounting import Accounting, Route
from mcastproxy.actions import Session
from mcastproxy.jsonlines import LineWriter

ZAP_PERIOD = 0.05  # seconds between readings of the routes of sessions waiting for a packet
ZAP_WAIT = 30.0  # how long a session waits for its first packet before its zap time is null

SessionKey = tuple[str, int, bytes, bytes | None, bytes]


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def iso(wall: float) -> str:
    """``wall`` (seconds since the epoch) as ISO 8601 UTC with milliseconds."""
    ms = math.floor(wall * 1000)
    second = ms // 1000
    if _second[0] != second:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=256)
def _name(interface: str) -> str:
    return json.dumps(interface, ensure_ascii=True)


def _text(address: bytes | None) -> str:
    if address is None:
        return "*"
    if len(address) == 4:
        return socket.inet_ntop(socket.AF_INET, address)
    if len(address) == 16:
        return socket.inet_ntop(socket.AF_INET6, address)
    return "-"  # none (a report from the unspecified address), or not an address


@dataclass(slots=True)
class _Open:
    started: float  # loop time
    wall: float
    at_start: tuple[int, int]
    upstreams: set[str]
    baseline: dict[Route, int] = field(default_factory=dict)
    head: str = ""  # what names it, the same in each of its lines (JSON members)
    zap: float | None = None
    waiting: bool = True


class SessionLog:
    """Open sessions, their zap times and their lines (written to ``writer``, or nowhere).

    ``read(route)`` reads a route's counters into ``accounting`` (the daemon's ioctl)."""

    def __init__(self, accounting: Accounting, writer: LineWriter | None,
                 read: Callable[[Route], None]) -> None:
        self.accounting = accounting
        self.writer = writer
        self.read = read
        self.open: dict[SessionKey, _Open] = {}
        self._waiting: set[SessionKey] = set()  # of ``open``: no first packet yet
        self.ended = 0
        self.zaps = 0

    @property
    def waiting(self) -> int:
        """Sessions waiting for their first packet."""
        return len(self._waiting)

    def handle(self, action: Session, now: float, wall: float) -> None:
        key: SessionKey = (action.interface, action.family, action.subscriber, action.source,
                           action.group)
        if action.start:
            self._start(key, now, wall)
        else:
            self._end(key, now, wall, "leave")

    def _start(self, key: SessionKey, now: float, wall: float) -> None:
        if key in self.open:
            return  # begun already: the first start holds
        link, _, _, source, group = key
        acc = self.accounting
        matching = list(acc.matching(source, group))
        for route in matching:
            self.read(route)
        baseline = {r: acc.packets(r) or 0 for r in matching}
        upstreams = {table for table, _, _ in acc.carrying(link, source, group)}
        session = self.open[key] = _Open(now, wall, acc.on_link(link, source, group),
                                         upstreams, baseline)
        self._waiting.add(key)
        self._write("start", key, session, wall)

    def _end(self, key: SessionKey, now: float, wall: float, why: str) -> None:
        session = self.open.pop(key, None)
        if session is None:
            return  # never begun (or begun before a restart)
        self._waiting.discard(key)
        link, _, _, source, group = key
        acc = self.accounting
        for route in list(acc.carrying(link, source, group)):
            self.read(route)
            session.upstreams.add(route[0])
        packets, octets = acc.on_link(link, source, group)
        p0, b0 = session.at_start
        self.ended += 1
        self._write("end", key, session, wall, {
            "end": iso(wall), "duration": round(max(now - session.started, 0.0), 3),
            "zap-ms": None if session.zap is None else round(1e3 * session.zap, 1),
            "packets": max(packets - p0, 0), "bytes": max(octets - b0, 0), "ended-by": why})

    def end_all(self, now: float, wall: float, why: str = "stop") -> None:
        """End every open session (the proxy stops)."""
        for key in list(self.open):
            self._end(key, now, wall, why)

    # --- zap times --------------------------------------------------------------------------

    def zap_routes(self, now: float) -> set[Route]:
        """The routes to read for the sessions waiting (those waiting too long stop)."""
        routes: set[Route] = set()
        for key in list(self._waiting):
            session = self.open[key]
            if now - session.started > ZAP_WAIT:
                session.waiting = False
                self._waiting.discard(key)
                continue
            routes.update(self.accounting.carrying(key[0], key[3], key[4]))
        return routes

    def check_zaps(self, now: float) -> None:
        """After the routes of ``zap_routes`` were read: each waiting session whose link now
        has a packet of its channel (a counter above its value at the join) has its zap."""
        acc = self.accounting
        for key in list(self._waiting):
            session = self.open[key]
            for route in acc.carrying(key[0], key[3], key[4]):
                session.upstreams.add(route[0])
                if (acc.packets(route) or 0) > session.baseline.get(route, 0):
                    session.zap = max(now - session.started, 0.0)
                    session.waiting = False
                    self._waiting.discard(key)
                    self.zaps += 1
                    break

    # --- lines --------------------------------------------------------------------------------

    def _write(self, event: str, key: SessionKey, session: _Open, wall: float,
               more: dict[str, object] | None = None) -> None:
        if self.writer is None:
            return
        # Made by hand rather than by json.dumps each time (a third of a session's cost):
        # what could hold a quote or a backslash (interface names) goes through json.dumps.
        if not session.head:
            link, family, subscriber, source, group = key
            session.head = json.dumps(
                {"link": link, "family": family, "subscriber": _text(subscriber),
                 "source": _text(source), "group": _text(group), "start": iso(session.wall)},
                separators=(",", ":"), ensure_ascii=True)[1:-1]
        upstreams = ",".join(_name(u) for u in sorted(session.upstreams))
        line = (f'{{"event":"{event}","time":"{iso(wall)}",{session.head},'
                f'"upstream":[{upstreams}]')
        if more:
            line += "," + json.dumps(more, separators=(",", ":"), ensure_ascii=True)[1:-1]
        self.writer.write_line(line + "}")

    def sessions(self) -> Iterator[tuple[SessionKey, float]]:
        """(key, loop time it began) of each open session."""
        for key, session in self.open.items():
            yield key, session.started
