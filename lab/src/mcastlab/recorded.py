"""``python -m mcastlab.recorded run -c FILE [...]``: mcastproxy's daemon with its multicast
routes recorded in memory rather than installed in the kernel.

Everything else is the daemon as ``mcastproxy run`` starts it: the same command line, the
real IGMP and MLD sockets on the lab's links, netlink, the status socket, reloads, signals.
Only the kernel adapter is ``RecordedRouter`` (``mcastproxy.kernel.fake.FakeRouter``), so the
daemon runs on a kernel built without multicast routing (``CONFIG_IP_MROUTE``), where
``mcastproxy run`` refuses to start. What it decides to forward shows in its status
(``routes``), not in traffic: tests of what the proxy says and hears on the wire (queries,
reports upstream, what it drops) run here on any kernel; tests of what it forwards need the
kernel's routing. ``Lab.proxy(config, forwarding="recorded")`` starts it.

Data, simulated: a test may write ``FILE.data.json`` beside the configuration (``data_path``)
to say what arrived on the upstreams, as totals since the start::

    {"flows": [{"upstream": "u1", "source": "10.0.9.1", "group": "232.1.0.5",
                "packets": 100, "bytes": 131600}]}

The router reads it every ``POLL`` seconds (a thread of its own) and does what the kernel
would: a flow that grew with no route for it raises a NOCACHE upcall on its upstream (the
daemon then sets a route, as for real data), and a route's counters are what arrived since
the route was made (a route deleted and made again counts from zero, as a kernel entry does).
So accounting, zap times and data liveness can be tested end to end without forwarding.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from mcastproxy import cli
from mcastproxy.family import Family
from mcastproxy.kernel.api import RouteCounters, Upcall, UpcallKind
from mcastproxy.kernel.fake import FakeRouter
from mcastproxy.platform import Platform

POLL = 0.02  # seconds between looks at the data file

Flow = tuple[str, bytes, bytes]


def data_path(config: str | Path) -> Path:
    """Where a test says what data arrived, for the proxy run with ``config``."""
    return Path(f"{config}.data.json")


class DataFeed:
    """A test's upstream data, kept arriving: every ``interval`` seconds (a thread of its
    own) each flowing channel's totals in ``data_path(config)`` grow by ``packets``, written
    whole (a new file renamed over the old). ``stop(upstream)`` silences an upstream's
    channels, ``start(...)`` makes them flow again; ``close()`` ends the thread."""

    def __init__(self, config: str | Path, interval: float = 0.02, packets: int = 2) -> None:
        self.path = data_path(config)
        self.interval = interval
        self.packets = packets
        self._flows: dict[tuple[str, str, str], int] = {}
        self._flowing: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="data-feed")
        self._thread.start()

    def start(self, upstream: str, source: str, group: str) -> None:
        with self._lock:
            self._flows.setdefault((upstream, source, group), 0)
            self._flowing.add((upstream, source, group))

    def stop(self, upstream: str) -> None:
        with self._lock:
            self._flowing = {f for f in self._flowing if f[0] != upstream}

    def _run(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        while not self._stop.wait(self.interval):
            with self._lock:
                for flow in self._flowing:
                    self._flows[flow] += self.packets
                flows = [{"upstream": u, "source": s, "group": g, "packets": n,
                          "bytes": 1316 * n} for (u, s, g), n in self._flows.items()]
            tmp.write_text(json.dumps({"flows": flows}))
            tmp.replace(self.path)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class RecordedRouter(FakeRouter):
    """``FakeRouter`` fed data by ``data`` (a ``FILE.data.json``; None: no data)."""

    def __init__(self, family: int, data: Path | None = None) -> None:
        super().__init__(family)
        self.data = data
        self._lock = threading.Lock()
        self._arrived: dict[Flow, tuple[int, int]] = {}
        self._base: dict[Flow, tuple[int, int]] = {}
        self._raised: dict[Flow, int] = {}  # packets when an upcall was last raised
        self._stamp: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, upstreams: list[str], downstreams: list[str]) -> None:
        super().start(upstreams, downstreams)
        if self.data is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name=f"recorded-data-v{int(self.family)}")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            super().stop()

    # --- the kernel's side of the data ---------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(POLL):
            with contextlib.suppress(Exception):  # a file half written: read again next time
                self._read()

    def _read(self) -> None:
        assert self.data is not None
        try:
            info = self.data.stat()
        except FileNotFoundError:
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        flows = json.loads(self.data.read_text())["flows"]
        self._stamp = stamp
        with self._lock:
            if not self.running:
                return
            for flow in flows:
                source = ipaddress.ip_address(flow["source"])
                if source.version != int(self.family):
                    continue
                key = (str(flow["upstream"]), source.packed,
                       ipaddress.ip_address(flow["group"]).packed)
                packets, octets = int(flow["packets"]), int(flow.get("bytes", 0))
                self._arrived[key] = (packets, octets)
                table, s, g = key
                if table not in self.routes:
                    continue
                if (s, g) in self.routes[table]:
                    self._recount(key)
                elif packets > self._raised.get(key, -1):
                    self._raised[key] = packets
                    self.push_upcall(Upcall(UpcallKind.NOCACHE, table, table, s, g))

    def _recount(self, key: Flow) -> None:
        packets, octets = self._arrived.get(key, (0, 0))
        base_p, base_b = self._base.get(key, (0, 0))
        self.count(*key, RouteCounters(max(packets - base_p, 0), max(octets - base_b, 0), 0))

    def set_route(self, table: str, source: bytes, group: bytes, iif: str,
                  oifs: frozenset[str]) -> None:
        with self._lock:
            new = table in self.routes and (source, group) not in self.routes[table]
            super().set_route(table, source, group, iif, oifs)
            key = (table, source, group)
            if new:  # a new kernel entry counts from zero
                self._base[key] = self._arrived.get(key, (0, 0))
                self._recount(key)

    def delete_route(self, table: str, source: bytes, group: bytes) -> None:
        with self._lock:
            super().delete_route(table, source, group)
            self._raised.pop((table, source, group), None)

    def route_counters(self, table: str, source: bytes, group: bytes) -> RouteCounters | None:
        with self._lock:
            return super().route_counters(table, source, group)

    def counters(self, table: str | None = None) -> dict[Flow, RouteCounters]:
        with self._lock:
            return super().counters(table)

    def read_upcalls(self) -> list[Upcall]:
        with self._lock:
            return super().read_upcalls()


def main(argv: Sequence[str] | None = None) -> int:
    """``mcastproxy run``'s arguments; its exit status."""
    args = cli.build_parser().parse_args(argv)
    if args.command != "run":
        print("mcastlab.recorded: only `run` (the daemon) is recorded", file=sys.stderr)
        return cli.EXIT_USAGE
    data = data_path(args.config)

    def router(family: Family) -> RecordedRouter:
        return RecordedRouter(family, data)

    args.platform = Platform(router=router)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
