"""``Meter``: the daemon's accounting, session log and security log, kept off its hot path.

The daemon tells the meter of each route it sets or deletes and each ``Session`` and ``Log``
action; the meter reads the kernel's per-route counters (``route_counters``, one
``SIOCGETSGCNT`` ioctl a route) into ``accounting.Accounting``:

- every ``sample-interval``, every route, in slices of ``SAMPLE_SLICE`` seconds with the loop
  given a turn between them: 10,000 routes (tens of milliseconds of ioctls) never hold a
  report for more than about a slice (``bench/bench_accounting.py``);
- one route just before the daemon changes or deletes it, so that what it counted goes to the
  links it had (one ioctl per route change, only with accounting on);
- the routes of sessions waiting for their first packet, every ``sessionlog.ZAP_PERIOD``,
  only while some wait;
- and whatever the data-liveness sampler read anyway (``observe``).

With learned rates or empty channels configured (``learning``), the samples also give each
channel's rate every ``MEASURE_WINDOW`` or more (``on_rates``: (S,G) -> bits a second, the
highest over the upstreams that carry it), whether or not accounting is configured.

Every second the logs are flushed (so a crash loses at most a second of lines) and the
security log is given the drop totals. SIGHUP reopens both logs (logrotate); a reload that
names other paths opens them before anything else of the reload is applied, and a path that
cannot be opened refuses the reload (``stage``/``commit``/``abort``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from mcastproxy.accounting import Accounting, Route
from mcastproxy.actions import DeleteRoute, Log, Session, SetRoute
from mcastproxy.config import AccountingSettings
from mcastproxy.family import BY_LENGTH, Family
from mcastproxy.jsonlines import LineWriter
from mcastproxy.kernel import MulticastRouting
from mcastproxy.securitylog import SecurityLog
from mcastproxy.sessionlog import ZAP_PERIOD, SessionLog, iso

SAMPLE_SLICE = 0.001  # seconds of reading before the loop gets a turn
FLUSH_PERIOD = 1.0  # seconds between flushes of the logs (what a crash may lose)
STATUS_ROWS = 512  # rows of the status document made between two turns of the loop
MEASURE_WINDOW = 5.0  # seconds over which a channel's rate is measured, at least
MEASURE_INTERVAL = 1.0  # seconds between samples when only rates are measured
log = logging.getLogger("mcastproxy")


@dataclass(frozen=True, slots=True)
class Staged:
    """What a reload would switch to: the settings and the logs opened for them."""

    settings: AccountingSettings | None
    sessions: LineWriter | None
    security: LineWriter | None


class Meter:
    """Accounting of the daemon's routes, and its logs. ``routers``: the daemon's, by family
    (filled once it starts); ``drops``: the drop totals by (interface, reason key)."""

    def __init__(self, settings: AccountingSettings | None,
                 routers: Mapping[Family, MulticastRouting],
                 drops: Callable[[], Mapping[tuple[str, str], int]],
                 *, wall: Callable[[], float] = time.time) -> None:
        self.routers = routers
        self.drops = drops
        self.wall = wall
        self.accounting = Accounting()
        self.settings: AccountingSettings | None = None
        self.sessions = SessionLog(self.accounting, None, self.read)
        self.security: SecurityLog | None = None
        self.errors = 0
        self.last_sample: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._slicing: asyncio.TimerHandle | None = None
        self._zapper: asyncio.TimerHandle | None = None
        self._flusher: asyncio.TimerHandle | None = None
        self._configured = settings
        # Rates for ``learning``: set by the daemon when the configuration asks for them.
        self.on_rates: Callable[[dict[tuple[bytes, bytes], float]], None] | None = None
        self._measured: tuple[float, dict[Route, int]] | None = None

    def open(self) -> None:
        """Open the logs of the settings it was made with; OSError if one cannot be."""
        self.commit(self.stage(self._configured))

    @property
    def on(self) -> bool:
        return self.settings is not None

    @property
    def sampling(self) -> bool:
        """Whether the routes' counters are read: for accounting, or for rates."""
        return self.settings is not None or self.on_rates is not None

    def measure(self, on_rates: Callable[[dict[tuple[bytes, bytes], float]], None] | None,
                ) -> None:
        """Hand channel rates to ``on_rates`` (None: stop measuring)."""
        was = self.sampling
        self.on_rates = on_rates
        if on_rates is None:
            self._measured = None
        if self._loop is not None and self.sampling and not was:
            self._arm_sample()

    # --- configuration ------------------------------------------------------------------------

    def stage(self, settings: AccountingSettings | None) -> Staged:
        """Open the logs ``settings`` names (the ones already open stay: reopened at commit);
        OSError if one cannot be opened, with nothing left open."""
        opened: list[LineWriter] = []
        writers: list[LineWriter | None] = []
        paths = (None, None) if settings is None else (settings.session_log,
                                                       settings.security_log)
        try:
            for path, current in zip(paths, self._writers(), strict=True):
                if path is None or settings is None:
                    writers.append(None)
                elif current is not None and current.path == path:
                    writers.append(current)
                else:
                    writer = LineWriter(path, max_size=settings.max_size, keep=settings.keep)
                    opened.append(writer)
                    writers.append(writer)
        except OSError:
            for writer in opened:
                writer.close()
            raise
        return Staged(settings, writers[0], writers[1])

    def abort(self, staged: Staged) -> None:
        """The reload was refused: close what ``stage`` opened."""
        for new, old in zip((staged.sessions, staged.security), self._writers(), strict=True):
            if new is not None and new is not old:
                new.close()

    def commit(self, staged: Staged) -> None:
        """Switch to ``staged``: logs no longer named are closed, kept ones reopened."""
        settings = staged.settings
        if staged.sessions is None and self.sessions.open:
            # No session log any more: what is open ends in the old one, said so.
            now = self._loop.time() if self._loop is not None else 0.0
            self.sessions.end_all(now, self.wall(), "reload")
        self.sessions.flush()  # the lines noted go to the log they were noted for
        for new, old in zip((staged.sessions, staged.security), self._writers(), strict=True):
            if old is not None and old is not new:
                old.close()
            if new is not None and new is old and settings is not None:
                new.max_size, new.keep = settings.max_size, settings.keep
                self._reopen(new)
        was_on = self.on
        self.settings = settings
        self.sessions.writer = staged.sessions
        if staged.security is None:
            self.security = None
        elif self.security is None or self.security.writer is not staged.security:
            self.security = SecurityLog(staged.security)
            self.security.baseline(self.drops())
        if self._loop is not None:
            if not was_on and self.on:
                self.start(self._loop)
            elif was_on and not self.on:
                self._cancel()
                if self.sampling:  # rates are still measured
                    self._arm_sample()
            elif self.on:
                self._arm_sample()

    def _writers(self) -> tuple[LineWriter | None, LineWriter | None]:
        """The session log's and the security log's writers."""
        return (self.sessions.writer, None if self.security is None else self.security.writer)

    def reopen(self) -> None:
        """SIGHUP: the logs reopened at their paths (logrotate moved them away)."""
        self.sessions.flush()
        for writer in self._writers():
            if writer is not None:
                self._reopen(writer)

    def _reopen(self, writer: LineWriter) -> None:
        try:
            writer.reopen()
        except OSError as exc:
            self.errors += 1
            log.warning("cannot reopen %s, writing on to the file open: %s", writer.path,
                        exc.strerror or exc)

    # --- life cycle -----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin sampling and flushing (once the daemon's routers are started)."""
        self._loop = loop
        if self.sampling:
            self._arm_sample()
        if self.on:
            self._flusher = loop.call_later(FLUSH_PERIOD, self._on_flush)

    def close(self, now: float) -> None:
        """The daemon stops: open sessions end ("stop"), the logs are written and closed."""
        self._cancel()
        if self.on:
            self.sessions.end_all(now, self.wall())
            if self.security is not None:
                self.security.tick(now, self.wall(), self.drops())
        self.sessions.flush()
        for writer in self._writers():
            if writer is not None:
                writer.close()
        self._loop = None

    def _cancel(self) -> None:
        for handle in (self._sampler, self._slicing, self._zapper, self._flusher):
            if handle is not None:
                handle.cancel()
        self._sampler = self._slicing = self._zapper = self._flusher = None

    # --- what the daemon does -------------------------------------------------------------------

    def reading(self, router: MulticastRouting, table: str, source: bytes,
                group: bytes) -> tuple[int, int] | None:
        """A route's counters just before the daemon changes or deletes it (only for a route
        accounted, with accounting on)."""
        if not self.on or (table, source, group) not in self.accounting.routes:
            return None
        try:
            got = router.route_counters(table, source, group)
        except (OSError, ValueError, RuntimeError):
            self.errors += 1
            return None
        return None if got is None else (got.packets, got.bytes)

    def route_set(self, action: SetRoute, reading: tuple[int, int] | None) -> None:
        self.accounting.route_set((action.table, action.source, action.group), action.oifs,
                                  reading)

    def route_deleted(self, action: DeleteRoute, reading: tuple[int, int] | None) -> None:
        self.accounting.route_deleted((action.table, action.source, action.group), reading)

    def session(self, action: Session, now: float) -> None:
        if self.sessions.writer is None:
            return
        self.sessions.handle(action, now, self.wall())
        if self.sessions.waiting and self._zapper is None and self._loop is not None:
            self._zapper = self._loop.call_later(ZAP_PERIOD, self._on_zap)

    def log(self, action: Log, now: float) -> None:
        if self.security is not None:
            self.security.event(action, now, self.wall())
        if action.event == "engine-reset":
            # The engine forgot its subscribers (a router restart): their sessions end now,
            # rather than never.
            self.sessions.end_all(now, self.wall(), "reset")

    def observe(self, counted: Mapping[tuple[str, bytes, bytes], Any]) -> None:
        """Readings taken anyway (the data-liveness sampler's RouteCounters)."""
        if self.on:
            for route, c in counted.items():
                self.accounting.observe(route, c.packets, c.bytes)

    # --- reading the counters -------------------------------------------------------------------

    def read(self, route: Route) -> None:
        """Read one route's counters into the accounting."""
        router = self.routers.get(BY_LENGTH.get(len(route[2]), Family.V4))
        if router is None:
            return
        try:
            got = router.route_counters(*route)
        except (OSError, ValueError, RuntimeError):
            self.errors += 1
            return
        if got is not None:
            self.accounting.observe(route, got.packets, got.bytes)

    def _arm_sample(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._slicing is None and self._loop is not None and self.sampling:
            interval = (self.settings.sample_interval if self.settings is not None
                        else MEASURE_INTERVAL)
            self._sampler = self._loop.call_later(interval, self._on_sample)

    def _on_sample(self) -> None:
        self._sampler = None
        routes = list(self.accounting.routes)
        self._next_slice(routes, 0, time.perf_counter(), 0.0)

    def _next_slice(self, routes: list[Route], at: int, began: float, spent: float) -> None:
        """Read ``routes[at:]`` for ``SAMPLE_SLICE`` seconds, then give the loop a turn."""
        self._slicing = None
        started = time.perf_counter()
        turn = started + SAMPLE_SLICE
        read, n = self.read, len(routes)
        while at < n:
            read(routes[at])
            at += 1
            if at % 32 == 0 and time.perf_counter() >= turn:
                break
        spent += time.perf_counter() - started
        if at < n and self._loop is not None:
            # A timer, not call_soon: the loop runs the callbacks of what became readable
            # (reports) before the timers that fell due, so a report waits one slice at most.
            self._slicing = self._loop.call_later(0, self._next_slice, routes, at, began, spent)
            return
        self.last_sample = {"at": iso(self.wall()), "routes": n,
                            "reading-ms": round(1e3 * spent, 3),
                            "span-ms": round(1e3 * (time.perf_counter() - began), 3)}
        if self.on_rates is not None and self._loop is not None:
            self._rates(self._loop.time())
        self._arm_sample()

    def _rates(self, now: float) -> None:
        """Each channel's rate since the last measurement, once ``MEASURE_WINDOW`` has
        passed: the increase of its routes' received bytes (monotonic, ``accounting``)."""
        received = {route: total[1] for route, total in self.accounting.channels.items()
                    if route in self.accounting.routes}
        if self._measured is None:
            self._measured = (now, received)
            return
        since, before = self._measured
        if now - since < MEASURE_WINDOW:
            return
        self._measured = (now, received)
        rates: dict[tuple[bytes, bytes], float] = {}
        for (table, source, group), octets in received.items():
            bps = 8.0 * (octets - before.get((table, source, group), octets)) / (now - since)
            if bps > rates.get((source, group), 0.0):
                rates[source, group] = bps
            else:
                rates.setdefault((source, group), 0.0)
        if self.on_rates is not None:
            self.on_rates(rates)

    def _on_zap(self) -> None:
        self._zapper = None
        if self._loop is None:
            return
        now = self._loop.time()
        for route in self.sessions.zap_routes(now):
            self.read(route)
        self.sessions.check_zaps(now)
        if self.sessions.waiting:
            self._zapper = self._loop.call_later(ZAP_PERIOD, self._on_zap)

    def _on_flush(self) -> None:
        self._flusher = None
        if self._loop is None:
            return
        if self.security is not None:
            self.security.tick(self._loop.time(), self.wall(), self.drops())
        self.sessions.flush()
        for writer in self._writers():
            if writer is not None:
                writer.flush()
        self._flusher = self._loop.call_later(FLUSH_PERIOD, self._on_flush)

    # --- what the outside sees -------------------------------------------------------------------

    def totals(self) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
        """(upstream -> (packets, bytes), link -> (packets, bytes)) for the metrics."""
        acc = self.accounting
        return ({k: (v[0], v[1]) for k, v in acc.upstreams.items()},
                {k: (v[0], v[1]) for k, v in acc.links.items()})

    def document_slices(self) -> Generator[None, None, dict[str, Any] | None]:
        """``status``' ``accounting``, a few hundred rows at a time; None when off."""
        if not self.on:
            return None
        assert self.settings is not None
        acc = self.accounting
        channels: list[dict[str, Any]] = []
        for i, ((table, source, group), (packets, octets)) in enumerate(
                list(acc.channels.items())):
            channels.append({"upstream": table, "source": _text(source), "group": _text(group),
                             "packets": packets, "bytes": octets})
            if i % STATUS_ROWS == STATUS_ROWS - 1:
                yield
        delivered: list[dict[str, Any]] = []
        for i, ((link, source, group), (packets, octets)) in enumerate(
                list(acc.delivered.items())):
            delivered.append({"link": link, "source": _text(source), "group": _text(group),
                              "packets": packets, "bytes": octets})
            if i % STATUS_ROWS == STATUS_ROWS - 1:
                yield
        upstreams, links = self.totals()
        logs = {name: writer.state() for name, writer in
                zip(("session-log", "security-log"), self._writers(), strict=True)
                if writer is not None}
        return {
            "sample-interval": self.settings.sample_interval,
            "last-sample": None if self.last_sample is None else dict(self.last_sample),
            "upstreams": {k: {"packets": p, "bytes": b} for k, (p, b) in sorted(upstreams.items())},
            "links": {k: {"packets": p, "bytes": b} for k, (p, b) in sorted(links.items())},
            "channels": channels, "delivered": delivered,
            "counter-resets": acc.resets, "errors": self.errors,
            "sessions": {"open": len(self.sessions.open), "waiting-first-packet":
                         self.sessions.waiting, "ended": self.sessions.ended},
            "security-suppressed": self.security.suppressed if self.security else 0,
            "logs": logs,
        }


def _text(address: bytes) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(address))
    return address.hex()
