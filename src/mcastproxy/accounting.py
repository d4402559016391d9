"""Accounting: bytes and packets per channel, per upstream and per downstream link, from the
kernel's per-route counters (RFC 8313 §4.6: "the volume of bytes delivered through the
peering point and, separately, the number of bytes delivered to EUs").

A route is an (S,G) entry of the table of one upstream (``SetRoute.table``). The kernel
counts, per entry, the packets and octets that arrived on that upstream and were forwarded
(``SIOCGETSGCNT``; a hot standby with no outgoing interface counts too): that is what crossed
the peering point, and it is added to the (upstream, S, G) total. What was delivered on a
downstream link is the route's forwarded octets while the link is among its outgoing
interfaces: the same increase is added to every (link, S, G) of the route's oifs at the time
of the reading. So that an oif change is attributed right, the daemon reads a route's
counters just before it changes or deletes it (one ioctl); between readings, a link is
credited with what the route counted while the link was in its oifs as last set.

The kernel's counters start at zero when an entry is made and are ``unsigned long``: 64 bits
on a 64-bit kernel (no wrap in practice), 32 bits on a 32-bit one (4 GiB of octets). A reading
below the last one is either a wrap or a reset (the entry deleted and made again behind the
daemon's back); ``delta`` takes a fall of more than half the counter's span for a wrap and
anything else for a reset, counting the new value from zero. Either way the increase is never
negative and never more than one span: a total never goes back and never jumps by 2**64.

Totals are monotonic per key and outlive their route: a route deleted and made again goes on
adding to the same (upstream, S, G) and (link, S, G) totals, and so do reloads (the totals
live here, not in the engine). The per-upstream and per-link sums (``upstreams``, ``links``:
the Prometheus counters) are kept forever; the per-channel totals of channels with no route
are kept for the ``idle_limit`` most recently ended, the oldest forgotten first, so that
memory is bounded by the routes the limits allow plus that many.

No I/O and no clock: readings are given (``observe``), so the arithmetic is tested alone.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator

# The kernel's ``unsigned long``, as this process's C ABI has it (the ioctl's struct).
COUNTER_BITS = 8 * struct.calcsize("L")
IDLE_LIMIT = 65_536  # channels' totals kept once their route is gone

Route = tuple[str, bytes, bytes]
"""(table, source, group): the table is the upstream's name."""


def delta(previous: int, current: int, bits: int = COUNTER_BITS) -> int:
    """How much a counter of ``bits`` bits grew from ``previous`` to ``current``: never
    negative, never a span or more. A fall of more than half the span is a wrap; any other
    fall, a reset (the entry made again), counted from zero."""
    if current >= previous:
        return current - previous
    span = 1 << bits
    if previous < span and previous - current > span // 2:
        return span - previous + current
    return current if current < span else 0


class _Entry:
    """A route as last set, and its counters at the last reading."""

    __slots__ = ("bytes", "oifs", "packets")

    def __init__(self, oifs: frozenset[str], packets: int, octets: int) -> None:
        self.oifs = oifs
        self.packets = packets
        self.bytes = octets


class Accounting:
    """Monotonic totals per (upstream, S, G), (link, S, G), (link, G), upstream and link."""

    def __init__(self, *, bits: int = COUNTER_BITS, idle_limit: int = IDLE_LIMIT) -> None:
        self.bits = bits
        self.idle_limit = idle_limit
        self.routes: dict[Route, _Entry] = {}
        self.by_group: dict[bytes, set[tuple[str, bytes]]] = {}
        """group -> (table, source) of its routes: the routes of a (*,G) session."""
        self.channels: dict[Route, list[int]] = {}
        """(upstream, S, G) -> [packets, bytes] received."""
        self.delivered: dict[tuple[str, bytes, bytes], list[int]] = {}
        """(link, S, G) -> [packets, bytes] forwarded onto the link."""
        self.delivered_group: dict[tuple[str, bytes], list[int]] = {}
        """(link, G) -> [packets, bytes], every source of G."""
        self.upstreams: dict[str, list[int]] = {}
        self.links: dict[str, list[int]] = {}
        self.resets = 0
        """Readings below the last one (a wrap or an entry made again)."""
        self._idle: OrderedDict[Route, None] = OrderedDict()
        self._idle_links: dict[Route, set[str]] = {}

    # --- routes -------------------------------------------------------------------------------

    def route_set(self, route: Route, oifs: frozenset[str],
                  reading: tuple[int, int] | None = None) -> None:
        """The route was set with ``oifs``. ``reading``: its counters just before, if read
        (what it counted until now goes to the old oifs). A new route counts from zero."""
        entry = self.routes.get(route)
        if entry is None:
            self.routes[route] = _Entry(oifs, 0, 0)
            self.by_group.setdefault(route[2], set()).add((route[0], route[1]))
            if route in self._idle:
                del self._idle[route]
                self._idle_links.pop(route, None)
            self.channels.setdefault(route, [0, 0])
            for link in oifs:
                self.delivered.setdefault((link, route[1], route[2]), [0, 0])
                self.delivered_group.setdefault((link, route[2]), [0, 0])
            return
        if reading is not None:
            self.observe(route, *reading)
        entry.oifs = oifs
        for link in oifs:
            self.delivered.setdefault((link, route[1], route[2]), [0, 0])
            self.delivered_group.setdefault((link, route[2]), [0, 0])

    def route_deleted(self, route: Route, reading: tuple[int, int] | None = None) -> None:
        """The route was deleted; ``reading``, its counters just before, if read."""
        if reading is not None:
            self.observe(route, *reading)
        entry = self.routes.pop(route, None)
        if entry is None:
            return
        table, source, group = route
        held = self.by_group.get(group)
        if held is not None:
            held.discard((table, source))
            if not held:
                del self.by_group[group]
        self._idle[route] = None
        self._idle_links[route] = set(entry.oifs)
        while len(self._idle) > self.idle_limit:
            old, _ = self._idle.popitem(last=False)
            self._forget(old, self._idle_links.pop(old, set()))

    def _forget(self, route: Route, links: set[str]) -> None:
        _, source, group = route
        self.channels.pop(route, None)
        live = self.by_group.get(group, set())
        for link in links:
            # Another table's route of the same (S,G) may still deliver on the link.
            if not any(s == source and link in self.routes[t, s, group].oifs for t, s in live):
                self.delivered.pop((link, source, group), None)
            if not live:
                self.delivered_group.pop((link, group), None)

    # --- readings -----------------------------------------------------------------------------

    def observe(self, route: Route, packets: int, octets: int) -> None:
        """A reading of ``route``'s counters: the increase since the last one is added to
        its upstream's totals and to those of every link in its oifs."""
        entry = self.routes.get(route)
        if entry is None:
            return
        if packets < entry.packets or octets < entry.bytes:
            self.resets += 1
        dp = delta(entry.packets, packets, self.bits)
        db = delta(entry.bytes, octets, self.bits)
        entry.packets, entry.bytes = packets, octets
        if not dp and not db:
            return
        table, source, group = route
        _add(self.channels.setdefault(route, [0, 0]), dp, db)
        _add(self.upstreams.setdefault(table, [0, 0]), dp, db)
        for link in entry.oifs:
            _add(self.delivered.setdefault((link, source, group), [0, 0]), dp, db)
            _add(self.delivered_group.setdefault((link, group), [0, 0]), dp, db)
            _add(self.links.setdefault(link, [0, 0]), dp, db)

    def packets(self, route: Route) -> int | None:
        """The route's packet counter at its last reading (None: no such route)."""
        entry = self.routes.get(route)
        return None if entry is None else entry.packets

    def carrying(self, link: str, source: bytes | None, group: bytes) -> Iterator[Route]:
        """The routes that deliver (S,G), or any source of G (``source`` None), on ``link``."""
        for table, s in self.by_group.get(group, ()):
            if source is not None and s != source:
                continue
            route = (table, s, group)
            if link in self.routes[route].oifs:
                yield route

    def matching(self, source: bytes | None, group: bytes) -> Iterator[Route]:
        """The routes of (S,G), or of any source of G, whatever their oifs."""
        for table, s in self.by_group.get(group, ()):
            if source is None or s == source:
                yield (table, s, group)

    def on_link(self, link: str, source: bytes | None, group: bytes) -> tuple[int, int]:
        """(packets, bytes) delivered on ``link`` so far of (S,G), or of G's every source."""
        got = (self.delivered_group.get((link, group)) if source is None
               else self.delivered.get((link, source, group)))
        return (got[0], got[1]) if got else (0, 0)

    def set_upstreams(self, names: Iterable[str], links: Iterable[str]) -> None:
        """Make the configured upstreams and links show, at zero until they carry."""
        for name in names:
            self.upstreams.setdefault(name, [0, 0])
        for name in links:
            self.links.setdefault(name, [0, 0])


def _add(total: list[int], packets: int, octets: int) -> None:
    total[0] += packets
    total[1] += octets
