"""Prometheus metrics: what the proxy does, in base units, for dashboards and alerts.

The daemon's loop owns the engine; the HTTP listener (prometheus-client's, on a thread of its
own) must never read it. So the loop *publishes*: every ``PUBLISH_INTERVAL`` it copies the
engine's cheap aggregates (drops, event counts, routes, usability: dictionaries of a few
dozen entries, never per subscriber) into a ``View`` of plain data and swaps it in with one
assignment; a scrape reads the last ``View``. Durations the loop measures (handling an
event, making a status answer, a reload) go to histograms, whose updates prometheus-client
makes thread-safe.

Names follow Prometheus' conventions: the ``mcastproxy_`` prefix, base units (seconds),
``_total`` for counters. Labels never name a subscriber (per-subscriber detail stays in
``status``): interfaces, reasons, event names and upstreams only, so the series are bounded
by the configuration, not by what hosts send. A drop reason is its stable key
(``ttl-not-one``), as ``status`` shows it.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

PUBLISH_INTERVAL = 1.0  # seconds between views: a scrape is at most this old
# Handling one event: tens of microseconds normally, a full collection or a burst beyond.
HANDLE_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
                  50e-3, 100e-3, 250e-3, 1.0)
SLOW_BUCKETS = (1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class View:
    """What the loop published last: plain data, never changed after it is made."""

    drops: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(interface or "-", reason key) -> inputs dropped, engine and sockets."""
    events: Mapping[str, int] = field(default_factory=dict)
    """Engine events by name (liveness changes, takeovers, resets...)."""
    errors: Mapping[str, int] = field(default_factory=dict)
    upstreams: Mapping[str, bool] = field(default_factory=dict)
    """Candidate upstream -> usable."""
    routes: int = 0
    memberships: Mapping[str, int] = field(default_factory=dict)
    """Downstream link -> groups with members there."""
    gc: Mapping[str, float] = field(default_factory=dict)
    reloads: Mapping[str, int] = field(default_factory=dict)
    """"applied" / "refused" -> reloads."""
    messages: Mapping[tuple[str, str, str, str], int] = field(default_factory=dict)
    """(link, protocol, received/sent/error, type) -> IGMP/MLD messages (RFC 8652's
    statistics)."""
    bandwidth: tuple[Mapping[str, int], Mapping[str, int]] = ({}, {})
    """(link -> bits a second of its channels, upstream -> of those placed on it)."""
    accounting: tuple[Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]] | None = None
    """With accounting on: (upstream -> (packets, bytes) received, downstream link ->
    (packets, bytes) delivered), from the kernel's route counters (``accounting``)."""


class _ViewCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        v = self._metrics.view  # one read: the loop swaps whole views
        drops = CounterMetricFamily("mcastproxy_drops", "Inputs dropped, by interface and "
                                    "reason (status: drops)", labels=["interface", "reason"])
        for (interface, reason), n in sorted(v.drops.items()):
            drops.add_metric([interface, reason], n)
        yield drops
        events = CounterMetricFamily("mcastproxy_events", "Engine events: liveness changes, "
                                     "takeovers, swaps, resets", labels=["event"])
        for name, n in sorted(v.events.items()):
            events.add_metric([name], n)
        yield events
        errors = CounterMetricFamily("mcastproxy_errors", "Errors of the daemon's own, by "
                                     "kind (status: errors)", labels=["kind"])
        for kind, n in sorted(v.errors.items()):
            errors.add_metric([kind], n)
        yield errors
        reloads = CounterMetricFamily("mcastproxy_reloads", "Configuration reloads",
                                      labels=["result"])
        for result in ("applied", "refused"):
            reloads.add_metric([result], v.reloads.get(result, 0))
        yield reloads
        usable = GaugeMetricFamily("mcastproxy_upstream_usable", "1 if the candidate upstream "
                                   "is usable (draft §5)", labels=["upstream"])
        for name, ok in sorted(v.upstreams.items()):
            usable.add_metric([name], 1.0 if ok else 0.0)
        yield usable
        yield GaugeMetricFamily("mcastproxy_routes", "Multicast routes the proxy holds in "
                                "the kernel", value=v.routes)
        groups = GaugeMetricFamily("mcastproxy_memberships", "Groups with members, by "
                                   "downstream link", labels=["link"])
        for link, n in sorted(v.memberships.items()):
            groups.add_metric([link], n)
        yield groups
        messages = CounterMetricFamily(
            "mcastproxy_messages", "IGMP and MLD messages on the downstream links, by "
            "direction (received, sent, error: dropped whole) and type (RFC 8652 statistics)",
            labels=["link", "protocol", "direction", "type"])
        for key, n in sorted(v.messages.items()):
            messages.add_metric(list(key), n)
        yield messages
        links, ups = v.bandwidth
        if links:
            gauge = GaugeMetricFamily("mcastproxy_link_bandwidth_bits_per_second", "The rates "
                                      "of the channels on the link (bandwidth admission)",
                                      labels=["link"])
            for name, bps in sorted(links.items()):
                gauge.add_metric([name], bps)
            yield gauge
        if ups:
            gauge = GaugeMetricFamily("mcastproxy_upstream_bandwidth_bits_per_second", "The "
                                      "rates of the channels placed on the upstream (upstream "
                                      "admission)", labels=["upstream"])
            for name, bps in sorted(ups.items()):
                gauge.add_metric([name], bps)
            yield gauge
        if v.accounting is not None:
            yield from _accounting(*v.accounting)
        if v.gc:
            yield GaugeMetricFamily("mcastproxy_gc_frozen_objects", "Objects the collector "
                                    "no longer traverses (gcpolicy)", value=v.gc["frozen"])
            yield CounterMetricFamily("mcastproxy_gc_full_collections", "Full collections",
                                      value=v.gc["full-collections"])
            yield GaugeMetricFamily("mcastproxy_gc_longest_pause_seconds", "The longest "
                                    "collection so far", value=v.gc["longest-pause-ms"] / 1e3)


def _accounting(upstreams: Mapping[str, tuple[int, int]],
                links: Mapping[str, tuple[int, int]]) -> Iterator[Metric]:
    """RFC 8313 §4.6: what crossed each peering point, and what each link was delivered."""
    for unit, i in (("packets", 0), ("bytes", 1)):
        received = CounterMetricFamily(
            f"mcastproxy_upstream_received_{unit}", f"Multicast data received on the upstream "
            f"for the proxy's routes, in {unit} (the kernel's route counters, sampled)",
            labels=["upstream"])
        for name, totals in sorted(upstreams.items()):
            received.add_metric([name], totals[i])
        yield received
    for unit, i in (("packets", 0), ("bytes", 1)):
        delivered = CounterMetricFamily(
            f"mcastproxy_downstream_delivered_{unit}", f"Multicast data forwarded onto the "
            f"downstream link, in {unit}: its routes' counts while the link was among their "
            "outgoing interfaces", labels=["link"])
        for name, totals in sorted(links.items()):
            delivered.add_metric([name], totals[i])
        yield delivered


class Durations(Collector):
    """A histogram of durations the loop measures on its hot path (an engine pass per
    wake-up): ``observe`` is a bisection and two additions, a quarter of prometheus-client's
    ``Histogram.observe`` (a lock, a loop over the buckets, three locked increments). A scrape
    reads it from the listener's thread: one copy of the counts (a single call under the
    GIL), so that the count it shows is the sum of the buckets it shows; the sum may be a
    few observations ahead of them."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0
        self._bucket = functools.partial(bisect.bisect_left, self.bounds)

    def observe(self, seconds: float) -> None:
        # Prometheus' buckets are "less than or equal": the first bound >= seconds.
        self.counts[self._bucket(seconds)] += 1
        self.total += seconds

    def collect(self) -> Iterator[Metric]:
        counts = list(self.counts)
        total = self.total
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=cumulative,
                                    sum_value=total)


class Metrics:
    """The proxy's metrics: the loop ``publish``-es views and ``observe``-s durations; a
    listener (``serve``) answers scrapes from its own thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.view = View()
        self.handling = Durations(
            "mcastproxy_event_handling_seconds", "Handling one event (a report, a timer, an "
            "upcall) or one burst of reports: the engine and applying what it asks",
            HANDLE_BUCKETS)
        self.registry.register(self.handling)
        self.status = Histogram(
            "mcastproxy_status_seconds", "Making and sending one status answer (sliced: the "
            "loop handles reports in between)", buckets=SLOW_BUCKETS, registry=self.registry)
        self.reload = Histogram(
            "mcastproxy_reload_seconds", "Applying or refusing one reload",
            buckets=SLOW_BUCKETS, registry=self.registry)
        self.registry.register(_ViewCollector(self))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def publish(self, view: View) -> None:
        self.view = view

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Answer scrapes at http://HOST:PORT/metrics (port 0: any free one); the address
        bound. Raises OSError if it cannot bind."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def drop_keys(by_interface: Iterable[tuple[tuple[str | None, Any], int]],
              sockets: Mapping[Any, int]) -> dict[tuple[str, str], int]:
    """The drops of a ``View``: the engine's by (interface, ``Drop``), the sockets' (no
    interface: "-") by ``Drop``; reasons by their stable key."""
    out: dict[tuple[str, str], int] = {}
    for (interface, reason), n in by_interface:
        key = (interface or "-", reason.key)
        out[key] = out.get(key, 0) + n
    for reason, n in sockets.items():
        key = ("-", reason.key)
        out[key] = out.get(key, 0) + n
    return out
