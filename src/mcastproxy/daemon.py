"""The daemon: the engine run against the real world, in one asyncio loop.

In the manner of aioquic's asyncio layer: every input (an IGMP/MLD packet, a kernel upcall, a
netlink change, a signal, the engine's own deadline) becomes one engine event handled with
``loop.time()``; then the actions the engine asked for are applied (packets sent, kernel
routes set, log lines written) and the one timer handle is re-armed if the deadline moved.
Nothing else decides anything here.

Signals: SIGHUP reloads the configuration (a bad file is refused with the reason and the old
one stays); SIGTERM and SIGINT stop, removing everything the daemon added to the kernel.
A status server on a UNIX socket answers ``mcastproxy status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from mcastproxy.actions import Action, DeleteRoute, Log, SendPacket, SetRoute
from mcastproxy.config import Config, ConfigError, load_config
from mcastproxy.engine import Engine
from mcastproxy.events import (
    ConfigChanged,
    CountersSampled,
    Event,
    HelloReceived,
    InterfaceDown,
    InterfaceUp,
    NewFlow,
    PacketReceived,
    TimerExpired,
)
from mcastproxy.kernel import KernelError, MulticastRouter, Role, UpcallKind
from mcastproxy.links import LinkWatcher
from mcastproxy.netio import IgmpSocket, InterfaceMap, MldSocket
from mcastproxy.netio.pim import PimListener

DEFAULT_STATUS_SOCKET = Path("/run/mcastproxy.sock")
log = logging.getLogger("mcastproxy")


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


class Daemon:
    """One running proxy: ``await Daemon(path, config).run()`` until stopped."""

    def __init__(
        self, config_path: Path, config: Config, *, status_socket: Path | None = None
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.status_socket = status_socket
        self.engine = Engine(config, rng=random.random)
        self.interfaces = InterfaceMap()
        self.sockets: dict[int, IgmpSocket | MldSocket] = {}
        self.routers: dict[int, MulticastRouter] = {}
        self.hellos: dict[int, PimListener] = {}
        self.errors: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._stopping: asyncio.Event | None = None
        self._links: LinkWatcher | None = None
        self._status: asyncio.AbstractServer | None = None
        self._sampler: asyncio.TimerHandle | None = None

    # --- life cycle -----------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 if the kernel refused to start."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            self._start()
        except KernelError as exc:
            log.error("cannot start: %s", exc)
            self._stop_kernel()
            return 1
        except PermissionError:
            log.error("cannot start: mcastproxy needs root (CAP_NET_ADMIN and CAP_NET_RAW)")
            self._stop_kernel()
            return 1
        try:
            self._links = LinkWatcher(self._names(), self._link_event)
            await self._links.start()
            # Signals first: the status socket appearing tells that SIGHUP is safe to send.
            for sig, handler in ((signal.SIGHUP, self.reload), (signal.SIGTERM, self.stop),
                                 (signal.SIGINT, self.stop)):
                self._loop.add_signal_handler(sig, handler)
            if self.status_socket is not None:
                await self._serve_status()
            self._arm_sampler()
            log.info("running: %s", self._summary())
            await self._stopping.wait()
        finally:
            await self._shutdown()
        return 0

    def _start(self) -> None:
        cfg = self.config
        upstreams = [c.interface for c in cfg.upstream.candidates]
        downstreams = [d.interface for d in cfg.downstream]
        for name in (*upstreams, *downstreams):
            self.interfaces.refresh(name)
        families = [f for f, on in ((4, cfg.igmp), (6, cfg.mld)) if on]
        for family in families:
            router = MulticastRouter(family)
            self.routers[family] = router
            router.start(upstreams, downstreams)
            self._loop.add_reader(router.fileno(), self._on_upcalls, router)  # type: ignore[union-attr]
            sock = IgmpSocket(self.interfaces) if family == 4 else MldSocket(self.interfaces)
            self.sockets[family] = sock
            self._loop.add_reader(sock.fileno(), self._on_packets, sock)  # type: ignore[union-attr]
            if any(c.liveness.hellos for c in cfg.upstream.candidates):
                pim = self.hellos[family] = PimListener(family, self.interfaces)
                self._loop.add_reader(pim.fileno(), self._on_hellos, pim)  # type: ignore[union-attr]
        for name in downstreams:
            self._listen(name)
        for name in upstreams:
            self._listen_hellos(name)

    def stop(self) -> None:
        log.info("stopping")
        if self._stopping is not None:
            self._stopping.set()

    async def _shutdown(self) -> None:
        for handle in (self._timer, self._sampler):
            if handle is not None:
                handle.cancel()
        if self._links is not None:
            await self._links.close()
        if self._status is not None:
            self._status.close()
            with contextlib.suppress(OSError):
                self.status_socket.unlink()  # type: ignore[union-attr]
        for sock in (*self.sockets.values(), *self.hellos.values()):
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())  # type: ignore[union-attr]
            sock.close()
        self._stop_kernel()
        log.info("stopped; kernel state removed")

    def _stop_kernel(self) -> None:
        for router in self.routers.values():
            with contextlib.suppress(Exception):
                if self._loop is not None:
                    self._loop.remove_reader(router.fileno())
            router.stop()

    def _names(self) -> list[str]:
        cfg = self.config
        return [*(c.interface for c in cfg.upstream.candidates),
                *(d.interface for d in cfg.downstream)]

    def _summary(self) -> str:
        cfg = self.config
        fams = " and ".join(p for p, on in (("IGMP", cfg.igmp), ("MLD", cfg.mld)) if on)
        ups = ", ".join(c.interface for c in cfg.upstream.candidates)
        downs = ", ".join(d.interface for d in cfg.downstream)
        return f"{fams}; upstream {ups}; downstream {downs}"

    # --- configuration reload -------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: apply the file if it is good; otherwise say why and keep the old one."""
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("reload refused, keeping the running configuration: %s", issue)
            return
        old = self.config
        if (new.igmp is None) != (old.igmp is None) or (new.mld is None) != (old.mld is None):
            log.error("reload refused: turning IGMP or MLD on or off needs a restart")
            return
        old_up = {c.interface for c in old.upstream.candidates}
        new_up = {c.interface for c in new.upstream.candidates}
        old_down = {d.interface for d in old.downstream}
        new_down = {d.interface for d in new.downstream}
        self.config = new
        for router in self.routers.values():
            for name in sorted((old_up - new_up) | (old_down - new_down)):
                router.remove_interface(name)
            for name in sorted(new_up - old_up):
                router.add_interface(name, Role.UPSTREAM)
            for name in sorted(new_down - old_down):
                router.add_interface(name, Role.DOWNSTREAM)
        for name in sorted(new_up | new_down):
            self.interfaces.refresh(name)
        for name in sorted(new_down - old_down):
            self._listen(name)
        self._handle(ConfigChanged(new))
        self._arm_sampler()
        if self._links is not None:
            self._links.watch(self._names())
        log.info("configuration reloaded from %s: %s", self.config_path, self._summary())

    # --- inputs ---------------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time()  # type: ignore[union-attr]

    def _handle(self, event: Event, *, arm: bool = True) -> None:
        try:
            self.engine.handle(event, self._now())
        except Exception:  # the engine must never take the daemon down with it
            self.errors["engine"] += 1
            log.exception("engine failed on %r", event)
        self._apply(self.engine.pop_actions())
        if arm:
            self._arm_timer()

    def _on_packets(self, sock: IgmpSocket | MldSocket) -> None:
        # A burst is handled packet by packet, each at once (no added latency), and the
        # timer re-armed once for all of them.
        family = sock.family
        for rx in sock.receive():
            self._handle(PacketReceived(rx.interface, family, rx.source, rx.destination,
                                        rx.payload), arm=False)
        self._arm_timer()

    def _on_hellos(self, pim: PimListener) -> None:
        for interface, source in pim.receive():
            self._handle(HelloReceived(interface, source))

    def _listen_hellos(self, name: str) -> None:
        if self.interfaces.get(name) is None:
            return
        for pim in self.hellos.values():
            try:
                pim.listen(name)
            except OSError as exc:
                self.errors["listen"] += 1
                log.warning("cannot listen for PIM hellos on %s: %s", name, exc)

    def _on_upcalls(self, router: MulticastRouter) -> None:
        for up in router.read_upcalls():
            if up.kind is UpcallKind.NOCACHE and up.interface is not None:
                self._handle(NewFlow(up.interface, up.source, up.group))

    def _link_event(self, event: InterfaceUp | InterfaceDown) -> None:
        name = event.interface
        known = self.interfaces.get(name)
        now = self.interfaces.refresh(name)
        if (known is None) != (now is None) or (known and now and known.index != now.index):
            # Appeared, disappeared or came back as another device: VIFs follow.
            for router in self.routers.values():
                router.interface_changed(name)
        if isinstance(event, InterfaceUp):
            if name in {d.interface for d in self.config.downstream}:
                self._listen(name)
            else:
                self._listen_hellos(name)
        self._handle(event)

    def _listen(self, name: str) -> None:
        for sock in self.sockets.values():
            if self.interfaces.get(name) is None:
                continue
            try:
                sock.listen(name)
            except OSError as exc:
                self.errors["listen"] += 1
                log.warning("cannot listen on %s: %s", name, exc)

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = None
        self._handle(TimerExpired())

    def _arm_timer(self) -> None:
        deadline = self.engine.next_deadline()
        if deadline == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)  # type: ignore[union-attr]

    def _arm_sampler(self) -> None:
        """Read the route counters of data-watched upstreams every quarter data interval."""
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        period = self.config.sample_period()
        if period is not None and self._loop is not None:
            self._sampler = self._loop.call_later(period, self._on_sample)

    def _on_sample(self) -> None:
        watched = self.config.data_intervals()
        tables = {u for u, _, _ in self.engine.routes() if u in watched}
        packets: dict[tuple[str, bytes, bytes], int] = {}
        started = self._now()
        for router in self.routers.values():
            for table in tables:
                try:
                    counted = router.counters(table)
                except (KernelError, OSError, ValueError):
                    continue
                packets.update((key, c.packets) for key, c in counted.items())
        spent, period = self._now() - started, self.config.sample_period() or 0.0
        if spent > period / 2:
            # One ioctl per route: thousands of watched routes do not fit a short interval.
            self.errors["slow counter sample"] += 1
            if self.errors["slow counter sample"] in (1, 100, 10_000):
                log.warning("reading %d route counters took %.1f ms, more than half the "
                            "%.0f ms between readings: channel deaths are seen late; "
                            "raise liveness.data", len(packets), 1e3 * spent, 1e3 * period)
        if tables:
            self._handle(CountersSampled(packets))
        self._arm_sampler()

    # --- actions --------------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendPacket):
                sock = self.sockets.get(action.family)
                if sock is not None:
                    sock.send(action.interface, action.destination, action.payload)
            elif isinstance(action, SetRoute):
                router = self.routers[4 if len(action.group) == 4 else 6]
                try:
                    router.set_route(action.table, action.source, action.group, action.iif,
                                     action.oifs)
                except (KernelError, OSError) as exc:
                    self.errors["set route"] += 1
                    log.warning("route (%s, %s) in %s: %s", _text(action.source),
                                _text(action.group), action.table, exc)
            elif isinstance(action, DeleteRoute):
                router = self.routers[4 if len(action.group) == 4 else 6]
                try:
                    router.delete_route(action.table, action.source, action.group)
                except (KernelError, OSError) as exc:
                    self.errors["delete route"] += 1
                    log.warning("delete (%s, %s) in %s: %s", _text(action.source),
                                _text(action.group), action.table, exc)
            elif isinstance(action, Log):
                level = logging.getLevelName(action.level.upper())
                log.log(level if isinstance(level, int) else logging.INFO, "%s", action.message)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status`` shows."""
        engine = self.engine
        links = {}
        for d in self.config.downstream:
            for family in self.routers:
                link = engine.link(d.interface, family)
                if link is None:
                    continue
                groups = {}
                for g in link.groups():
                    subs = link.subscribers(g)
                    groups[_text(g)] = {
                        "subscribers": sorted(_text(s) for s in subs),
                        "upstreams": sorted(engine.feeders(d.interface, g)),
                    }
                links[f"{d.interface}/{'igmp' if family == 4 else 'mld'}"] = {
                    "querier": link.is_querier, "groups": groups}
        upstreams = {}
        for c in self.config.upstream.candidates:
            joined = {}
            for family in self.routers:
                host = engine.host(c.interface, family)
                if host is None:
                    continue
                for g in host.groups():
                    mode, sources = host.state(g)
                    joined[_text(g)] = {"mode": mode.name.lower(),
                                        "sources": sorted(_text(s) for s in sources)}
            upstreams[c.interface] = {"usable": c.interface not in engine.unusable,
                                      "priority": c.priority, "groups": joined,
                                      "liveness": engine.liveness(c.interface)}
        health = engine.flow_health()
        routes = [
            {"upstream": u, "source": _text(s), "group": _text(g), "downstream": sorted(o)}
            | ({"data": health[u, s, g].value} if (u, s, g) in health else {})
            for (u, s, g), o in sorted(engine.routes().items())
        ]
        dropped = dict(engine.dropped)
        for sock in self.sockets.values():
            dropped.update({f"socket: {k}": v for k, v in sock.dropped.items()})
        return {"pid": os.getpid(), "config": str(self.config_path), "upstreams": upstreams,
                "downstream": links, "routes": routes, "events": dict(engine.counts),
                "dropped": dropped,
                "errors": dict(self.errors)}

    async def _serve_status(self) -> None:
        path = self.status_socket
        assert path is not None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(json.dumps(self.status()).encode() + b"\n")
                await writer.drain()
            finally:
                writer.close()

        self._status = await asyncio.start_unix_server(answer, path=str(path))
        path.chmod(0o600)


def run(config_path: Path, *, status_socket: Path | None = DEFAULT_STATUS_SOCKET) -> int:
    """``mcastproxy run``: load, check, run until stopped."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("%s: %s", config_path, issue)
        return 2
    return asyncio.run(Daemon(config_path, config, status_socket=status_socket).run())


async def query_status(path: Path) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    data = await reader.read()
    writer.close()
    return json.loads(data)  # type: ignore[no-any-return]
