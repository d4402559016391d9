"""``DataSampler``: the kernel's packet counters of the routes of data-watched upstreams, read
every quarter of the shortest ``liveness.data`` interval and handed to the engine as one
``CountersSampled`` event (per-channel data liveness, draft §5 in the manner of RFC 7431).

One ``SIOCGETSGCNT`` ioctl per route: thousands of watched routes do not fit a short
interval, so a reading that takes more than half the time between readings is counted
(``errors["slow counter sample"]``) and warned of. What it reads is also the accounting's
(``Meter.observe``): no route is read twice for the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from mcastproxy.config import Config
from mcastproxy.events import CountersSampled, Event
from mcastproxy.family import Family
from mcastproxy.kernel import KernelError, MulticastRouting
from mcastproxy.meter import Meter

log = logging.getLogger("mcastproxy")


class DataSampler:
    """Reads for ``config()`` what ``tables()`` holds, and ``handle``-s the event."""

    def __init__(self, config: Callable[[], Config], tables: Callable[[], Iterable[str]],
                 routers: Mapping[Family, MulticastRouting], meter: Meter,
                 errors: Counter[str], handle: Callable[[Event], object]) -> None:
        self.config = config
        self.tables = tables
        self.routers = routers
        self.meter = meter
        self.errors = errors
        self.handle = handle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """(Re)start the readings at the configuration's period (none if nothing is
        watched)."""
        if loop is not None:
            self._loop = loop
        self.cancel()
        period = self.config().sample_period()
        if period is not None and self._loop is not None:
            self._handle = self._loop.call_later(period, self._on_sample)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _on_sample(self) -> None:
        self._handle = None
        assert self._loop is not None
        config = self.config()
        watched = config.data_intervals()
        tables = {u for u in self.tables() if u in watched}
        packets: dict[tuple[str, bytes, bytes], int] = {}
        started = self._loop.time()
        for router in self.routers.values():
            for table in tables:
                try:
                    counted = router.counters(table)
                except (KernelError, OSError, ValueError):
                    continue
                packets.update((key, c.packets) for key, c in counted.items())
                self.meter.observe(counted)
        spent, period = self._loop.time() - started, config.sample_period() or 0.0
        if spent > period / 2:
            self.errors["slow counter sample"] += 1
            if self.errors["slow counter sample"] in (1, 100, 10_000):
                log.warning("reading %d route counters took %.1f ms, more than half the "
                            "%.0f ms between readings: channel deaths are seen late; "
                            "raise liveness.data", len(packets), 1e3 * spent, 1e3 * period)
        if tables:
            self.handle(CountersSampled(packets))
        self.arm()
