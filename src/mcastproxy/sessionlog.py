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
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mcastproxy.accounting import Accounting, Route
from mcastproxy.actions import Session
from mcastproxy.jsonlines import LineWriter

ZAP_PERIOD = 0.05  # seconds between readings of the routes of sessions waiting for a packet
ZAP_WAIT = 30.0  # how long a session waits for its first packet before its zap time is null
PENDING = 4096  # lines kept to be made at the next flush at most: past that, made at once

SessionKey = tuple[str, int, bytes, bytes | None, bytes]
Channel = tuple[str, bytes | None, bytes]
"""(link, source or None for any, group): what the sessions of its subscribers wait for."""


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


@dataclass(slots=True)
class _Waiting:
    """The sessions of one channel on one link that wait for its first packet there, and
    the routes and counters their zap was last checked against: until those change, a session
    checked once need not be checked again."""

    sessions: dict[SessionKey, _Open] = field(default_factory=dict)
    fresh: list[SessionKey] = field(default_factory=list)  # not checked yet
    seen: tuple[tuple[Route, ...], tuple[int, ...]] | None = None
    routes: tuple[Route, ...] = ()  # those delivering the channel on the link, at the last look


# A line to make at the next flush: (event, key, session, wall, upstreams then, end fields).
_Line = tuple[str, SessionKey, _Open, float, tuple[str, ...], tuple[Any, ...] | None]
_NONE: tuple[str, ...] = ()


class SessionLog:
    """Open sessions, their zap times and their lines (written to ``writer``, or nowhere).

    ``read(route)`` reads a route's counters into ``accounting`` (the daemon's ioctl).

    A line is made (its JSON text) at ``flush``, which the daemon calls every second before
    the writer's own, not when its session begins or ends: the report path only notes what
    the line will say. Sessions waiting for their first packet are kept by channel
    (``_Waiting``), so that a zap check costs a look at each channel's routes and nothing per
    subscriber while their counters stand still, and a session's wait ends by the order
    they began in (``ZAP_WAIT``)."""

    def __init__(self, accounting: Accounting, writer: LineWriter | None,
                 read: Callable[[Route], None]) -> None:
        self.accounting = accounting
        self.writer = writer
        self.read = read
        self.open: dict[SessionKey, _Open] = {}
        self._channels: dict[Channel, _Waiting] = {}
        self._began: deque[tuple[SessionKey, _Open]] = deque()  # waiting ones, oldest first
        self._waiting = 0
        self._lines: list[_Line] = []
        self.ended = 0
        self.zaps = 0

    @property
    def waiting(self) -> int:
        """Sessions waiting for their first packet."""
        return self._waiting

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
        if matching:
            for route in matching:
                self.read(route)
            baseline = {r: acc.packets(r) or 0 for r in matching}
            upstreams = {table for table, _, _ in acc.carrying(link, source, group)}
        else:  # no route yet (the join goes upstream first): nothing to read
            baseline, upstreams = {}, set()
        session = self.open[key] = _Open(now, wall, acc.on_link(link, source, group),
                                         upstreams, baseline)
        channel = (link, source, group)
        waiting = self._channels.get(channel)
        if waiting is None:
            waiting = self._channels[channel] = _Waiting()
        waiting.sessions[key] = session
        waiting.fresh.append(key)
        self._waiting += 1
        self._began.append((key, session))
        self._line(("start", key, session, wall, tuple(upstreams) if upstreams else _NONE,
                    None))

    def _end(self, key: SessionKey, now: float, wall: float, why: str) -> None:
        session = self.open.pop(key, None)
        if session is None:
            return  # never begun (or begun before a restart)
        if session.waiting:
            self._stop_waiting(key, session)
        link, _, _, source, group = key
        acc = self.accounting
        for route in list(acc.carrying(link, source, group)):
            self.read(route)
            session.upstreams.add(route[0])
        packets, octets = acc.on_link(link, source, group)
        p0, b0 = session.at_start
        self.ended += 1
        self._line(("end", key, session, wall, tuple(session.upstreams), (
            wall, round(max(now - session.started, 0.0), 3),
            None if session.zap is None else round(1e3 * session.zap, 1),
            max(packets - p0, 0), max(octets - b0, 0), why)))

    def end_all(self, now: float, wall: float, why: str = "stop") -> None:
        """End every open session (the proxy stops)."""
        for key in list(self.open):
            self._end(key, now, wall, why)

    # --- zap times --------------------------------------------------------------------------

    def _stop_waiting(self, key: SessionKey, session: _Open) -> None:
        session.waiting = False
        self._waiting -= 1
        channel = (key[0], key[3], key[4])
        waiting = self._channels[channel]
        del waiting.sessions[key]
        if not waiting.sessions:
            del self._channels[channel]
        if not self._waiting:
            self._began.clear()  # none waits: what it holds is of sessions done waiting

    def zap_routes(self, now: float) -> set[Route]:
        """The routes to read for the sessions waiting (those waiting too long stop)."""
        began = self._began
        while began and now - began[0][1].started > ZAP_WAIT:
            key, session = began.popleft()
            if session.waiting:
                self._stop_waiting(key, session)
        while began and not began[0][1].waiting:  # ended or zapped since
            began.popleft()
        if len(began) > 2 * self._waiting + 1024:  # mostly done waiting: keep the rest
            self._began = deque(entry for entry in began if entry[1].waiting)
        routes: set[Route] = set()
        acc = self.accounting
        routed = acc.by_group  # no route of the group: nothing to read (most, at a flash crowd)
        for (link, source, group), waiting in self._channels.items():
            if group in routed:
                waiting.routes = tuple(acc.carrying(link, source, group))
                routes.update(waiting.routes)
            else:
                waiting.routes = ()
        return routes

    def check_zaps(self, now: float) -> None:
        """After the routes of ``zap_routes`` were read: each waiting session whose link now
        has a packet of its channel (a counter above its value at the join) has its zap."""
        packets_of = self.accounting.packets
        for waiting in list(self._channels.values()):
            routes = waiting.routes  # as ``zap_routes`` found them, before the reads
            if not routes:  # nothing can have come: no check now, a whole one once routed
                waiting.seen = None
                waiting.fresh.clear()
                continue
            packets = tuple([packets_of(route) or 0 for route in routes])
            seen = (routes, packets)
            keys = waiting.fresh if seen == waiting.seen else list(waiting.sessions)
            waiting.seen, waiting.fresh = seen, []
            for key in keys:
                session = waiting.sessions.get(key)
                if session is None:
                    continue  # ended since
                for route, count in zip(routes, packets, strict=True):
                    session.upstreams.add(route[0])
                    if count > session.baseline.get(route, 0):
                        session.zap = max(now - session.started, 0.0)
                        self._stop_waiting(key, session)
                        self.zaps += 1
                        break

    # --- lines --------------------------------------------------------------------------------

    def _line(self, line: _Line) -> None:
        if self.writer is None:
            return
        self._lines.append(line)
        if len(self._lines) >= PENDING:
            self.flush()

    def flush(self) -> None:
        """Make the lines noted since the last call and hand them to the writer (which the
        caller flushes)."""
        lines, self._lines = self._lines, []
        writer = self.writer
        if writer is None:
            return
        write = writer.write_line
        for event, key, session, wall, upstreams, end in lines:
            # Made by hand rather than by json.dumps (a third of a session's cost): what
            # could hold a quote or a backslash (interface names) goes through json.dumps.
            if not session.head:
                link, family, subscriber, source, group = key
                session.head = (f'"link":{_name(link)},"family":{int(family)},'
                                f'"subscriber":"{_text(subscriber)}","source":"{_text(source)}",'
                                f'"group":"{_text(group)}","start":"{iso(session.wall)}"')
            names = ",".join([_name(u) for u in sorted(upstreams)]) if upstreams else ""
            text = (f'{{"event":"{event}","time":"{iso(wall)}",{session.head},'
                    f'"upstream":[{names}]')
            if end is not None:
                ended, duration, zap, packets, octets, why = end
                text += (f',"end":"{iso(ended)}","duration":{duration!r},'
                         f'"zap-ms":{"null" if zap is None else repr(zap)},'
                         f'"packets":{packets},"bytes":{octets},"ended-by":{_name(why)}')
            write(text + "}")

    def sessions(self) -> Iterator[tuple[SessionKey, float]]:
        """(key, loop time it began) of each open session."""
        for key, session in self.open.items():
            yield key, session.started
