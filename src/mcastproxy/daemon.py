"""The daemon: the engine run against the real world, in one asyncio loop.

In the manner of aioquic's asyncio layer: every input (an IGMP/MLD packet, a kernel upcall, a
netlink change, a signal, the engine's own deadline) becomes one engine event handled with
``loop.time()``; then the actions the engine asked for are applied (packets sent, kernel
routes set, log lines written) and the one timer handle is re-armed if the deadline moved.
Nothing else decides anything here.

What the daemon reads and writes comes from a ``Platform``: a factory each for the kernel
adapter (one ``MulticastRouting`` per family), the IGMP/MLD socket and the PIM listener of a
family, the ``InterfaceMap`` and the netlink ``LinkWatcher``. ``Platform()`` is the system
(``MulticastRouter``, ``IgmpSocket``/``MldSocket``, ``PimListener``, ...); tests give
in-memory ones, so the loop below runs as it does in production, without root.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mcastproxy.actions import Action, DeleteRoute, Log, SendPacket, SetRoute
from mcastproxy.config import Config, ConfigError, load_config
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import (
    ConfigChanged,
    CountersSampled,
    Event,
    HelloReceived,
    InterfaceUp,
    NewFlow,
    PacketReceived,
    Shutdown,
    TimerExpired,
)
from mcastproxy.family import BY_LENGTH, BY_VERSION, Family
from mcastproxy.kernel import KernelError, MulticastRouter, MulticastRouting, Role, UpcallKind
from mcastproxy.links import LinkEvent, LinkWatcher
from mcastproxy.netio import IgmpSocket, InterfaceMap, MldSocket, Received
from mcastproxy.netio.pim import PimListener
from mcastproxy.status import document

DEFAULT_STATUS_SOCKET = Path("/run/mcastproxy.sock")
log = logging.getLogger("mcastproxy")


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


class FieldsFormatter(logging.Formatter):
    """Log lines with the engine's event name and fields after the message, as
    ``key=value`` pairs (``event=upstream-join upstream=u1 group=239.1.1.1``), so that a log
    shipper can take them without parsing the prose."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        event = getattr(record, "event", None)
        if event is None:
            return line
        pairs = {"event": event, **getattr(record, "fields", {})}
        return line + " " + " ".join(f"{k}={_value(v)}" for k, v in pairs.items())


def _value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


# --- what the daemon runs on -----------------------------------------------------------------


class PacketSocket(Protocol):
    """IGMP (``netio.IgmpSocket``) or MLD (``netio.MldSocket``) in and out, for every
    interface of one family."""

    @property
    def family(self) -> Family: ...

    @property
    def dropped(self) -> Mapping[Drop, int]:
        """Packets received and not returned, by reason."""
        ...

    def fileno(self) -> int: ...

    def receive(self) -> list[Received]:
        """What is queued now, without blocking; never raises on bad input."""
        ...

    def send(self, interface: str, destination: bytes, payload: bytes) -> bool: ...

    def listen(self, interface: str) -> None:
        """Receive reports and leaves on this downstream (again if it came back)."""
        ...

    def close(self) -> None: ...


class HelloSocket(Protocol):
    """PIM Hellos of one family (``netio.pim.PimListener``): (interface, source) of each."""

    @property
    def dropped(self) -> Mapping[Drop, int]: ...

    def fileno(self) -> int: ...

    def receive(self) -> list[tuple[str, bytes]]: ...

    def listen(self, interface: str) -> None: ...

    def close(self) -> None: ...


class LinkWatching(Protocol):
    """Reports the configured interfaces' state as ``InterfaceUp``/``InterfaceDown``
    (``links.LinkWatcher``): all of them at ``start()``, then every change."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def watch(self, names: Iterable[str]) -> None:
        """Follow these interfaces instead (reported at once if new)."""
        ...


def _packet_socket(family: Family, interfaces: InterfaceMap) -> PacketSocket:
    return IgmpSocket(interfaces) if family is Family.V4 else MldSocket(interfaces)


@dataclass(frozen=True, slots=True)
class Platform:
    """Where the daemon's inputs and outputs come from; the defaults are the system's.

    ``router(family)``: the kernel adapter of a family. ``packets(family, interfaces)``: its
    IGMP or MLD socket; ``hellos(family, interfaces)``: its PIM listener (made only when a
    candidate watches hellos). ``interfaces()``: the name/index/address map the sockets share,
    which the daemon ``refresh``-es as netlink reports changes. ``links(names, emit)``: the
    netlink watcher, calling ``emit`` with each ``InterfaceUp``/``InterfaceDown``.
    """

    router: Callable[[Family], MulticastRouting] = MulticastRouter
    packets: Callable[[Family, InterfaceMap], PacketSocket] = _packet_socket
    hellos: Callable[[Family, InterfaceMap], HelloSocket] = PimListener
    interfaces: Callable[[], InterfaceMap] = InterfaceMap
    links: Callable[[Iterable[str], Callable[[LinkEvent], None]], LinkWatching] = LinkWatcher


# --- the daemon --------------------------------------------------------------------------------


class Daemon:
    """One running proxy: ``await Daemon(path, config).run()`` until stopped.

    ``platform`` gives its I/O (the system's by default); ``engine``, one made from ``config``
    if not given. ``ready`` is set once it runs (signals handled, status served).
    """

    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        status_socket: Path | None = None,
        platform: Platform | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.status_socket = status_socket
        self.platform = platform if platform is not None else Platform()
        self.engine = engine if engine is not None else Engine(config, rng=random.random)
        self.interfaces = self.platform.interfaces()
        self.sockets: dict[Family, PacketSocket] = {}
        self.routers: dict[Family, MulticastRouting] = {}
        self.hellos: dict[Family, HelloSocket] = {}
        self.errors: Counter[str] = Counter()
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._links: LinkWatching | None = None
        self._status: asyncio.AbstractServer | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._signals: list[signal.Signals] = []

    # --- life cycle -----------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 if the kernel refused to start."""
        self._loop = asyncio.get_running_loop()
        try:
            try:
                self._start()
            except KernelError as exc:
                log.error("cannot start: %s", exc)
                return 1
            except PermissionError:
                log.error("cannot start: mcastproxy needs root (CAP_NET_ADMIN and CAP_NET_RAW)")
                return 1
            self._links = self.platform.links(self._names(), self._link_event)
            await self._links.start()
            # Signals first: the status socket appearing tells that SIGHUP is safe to send.
            for sig, handler in ((signal.SIGHUP, self.reload), (signal.SIGTERM, self.stop),
                                 (signal.SIGINT, self.stop)):
                self._loop.add_signal_handler(sig, handler)
                self._signals.append(sig)
            if self.status_socket is not None:
                await self._serve_status()
            self._arm_sampler()
            log.info("running: %s", self._summary())
            self.ready.set()
            await self._stopping.wait()
        finally:
            await self._shutdown()
        return 0

    def _start(self) -> None:
        cfg = self.config
        upstreams = [c.interface for c in cfg.upstream.candidates]
        downstreams = [d.interface for d in cfg.downstream]
        loop = self._loop
        assert loop is not None
        for name in (*upstreams, *downstreams):
            self.interfaces.refresh(name)
        for family in self._families(cfg):
            router = self.routers[family] = self.platform.router(family)
            router.start(upstreams, downstreams)
            loop.add_reader(router.fileno(), self._on_upcalls, router)
            sock = self.sockets[family] = self.platform.packets(family, self.interfaces)
            loop.add_reader(sock.fileno(), self._on_packets, sock)
            if any(c.liveness.hellos for c in cfg.upstream.candidates):
                pim = self.hellos[family] = self.platform.hellos(family, self.interfaces)
                loop.add_reader(pim.fileno(), self._on_hellos, pim)
        for name in downstreams:
            self._listen(name)
        for name in upstreams:
            self._listen_hellos(name)

    def stop(self) -> None:
        log.info("stopping")
        self._stopping.set()

    async def _shutdown(self) -> None:
        """Undo whatever of the start-up was done, in reverse."""
        loop = self._loop
        assert loop is not None
        running = self.ready.is_set()
        self.ready.clear()
        for handle in (self._timer, self._sampler):
            if handle is not None:
                handle.cancel()
        self._timer = self._sampler = self._deadline = None
        if running:
            # Leave upstream what was joined (upstream.leave-on-stop) while the sockets are
            # still open.
            self._handle(Shutdown(), arm=False)
        if self._status is not None:
            self._status.close()
            self._status = None
            with contextlib.suppress(OSError):
                self.status_socket.unlink()  # type: ignore[union-attr]
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        if self._links is not None:
            await self._links.close()
            self._links = None
        for sock in (*self.sockets.values(), *self.hellos.values()):
            with contextlib.suppress(Exception):
                loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()
        self.hellos.clear()
        for router in self.routers.values():
            with contextlib.suppress(Exception):
                loop.remove_reader(router.fileno())
            router.stop()
        self.routers.clear()
        if running:
            log.info("stopped; kernel state removed")

    @staticmethod
    def _families(cfg: Config) -> list[Family]:
        return [f for f, on in ((Family.V4, cfg.igmp), (Family.V6, cfg.mld)) if on]

    def _names(self) -> list[str]:
        cfg = self.config
        return [*(c.interface for c in cfg.upstream.candidates),
                *(d.interface for d in cfg.downstream)]

    def _summary(self) -> str:
        cfg = self.config
        fams = " and ".join(f.protocol.upper() for f in self._families(cfg))
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
        try:
            self._reroute_interfaces(old, new)
        except (KernelError, OSError, ValueError) as exc:
            self.errors["reload"] += 1
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        self.config = new
        for name in sorted(_roles(new)):
            self.interfaces.refresh(name)
        old_down = {d.interface for d in old.downstream}
        for name in sorted({d.interface for d in new.downstream} - old_down):
            self._listen(name)
        self._handle(ConfigChanged(new))
        self._arm_sampler()
        if self._links is not None:
            self._links.watch(self._names())
        log.info("configuration reloaded from %s: %s", self.config_path, self._summary())

    def _reroute_interfaces(self, old: Config, new: Config) -> None:
        """Give the routers the interfaces ``new`` adds, or none of them if the kernel refuses
        one (then raise); then take away those it drops."""
        was, now = _roles(old), _roles(new)
        moved = sorted(n for n in was.keys() & now.keys() if was[n] != now[n])
        undo: list[Callable[[], object]] = []
        try:
            for router in self.routers.values():
                for name in moved:
                    router.remove_interface(name)
                    undo.append(lambda r=router, n=name: r.add_interface(n, was[n]))
                for name in [*sorted(now.keys() - was.keys()), *moved]:
                    router.add_interface(name, now[name])
                    undo.append(lambda r=router, n=name: r.remove_interface(n))
        except BaseException:
            for step in reversed(undo):
                with contextlib.suppress(KernelError, OSError, ValueError):
                    step()
            raise
        for router in self.routers.values():
            for name in sorted(was.keys() - now.keys()):
                try:
                    router.remove_interface(name)
                except (KernelError, OSError, ValueError) as exc:
                    self.errors["remove interface"] += 1
                    log.warning("removing %s from the IPv%d routing: %s", name, router.family, exc)

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

    def _on_packets(self, sock: PacketSocket) -> None:
        # A burst is handled packet by packet, each at once (no added latency), and the
        # timer re-armed once for all of them.
        family = sock.family
        for rx in sock.receive():
            self._handle(PacketReceived(rx.interface, family, rx.source, rx.destination,
                                        rx.payload), arm=False)
        self._arm_timer()

    def _on_hellos(self, pim: HelloSocket) -> None:
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

    def _on_upcalls(self, router: MulticastRouting) -> None:
        for up in router.read_upcalls():
            if up.kind is UpcallKind.NOCACHE and up.interface is not None:
                self._handle(NewFlow(up.interface, up.source, up.group))

    def _link_event(self, event: LinkEvent) -> None:
        name = event.interface
        known = self.interfaces.get(name)
        now = self.interfaces.refresh(name)
        if (known is None) != (now is None) or (known and now and known.index != now.index):
            # Appeared, disappeared or came back as another device: VIFs follow.
            for router in self.routers.values():
                try:
                    router.interface_changed(name)
                except (KernelError, OSError) as exc:
                    self.errors["interface"] += 1
                    log.warning("VIFs of %s in the IPv%d routing: %s", name, router.family, exc)
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
                sock = self.sockets.get(BY_VERSION[action.family])
                if sock is not None:
                    sock.send(action.interface, action.destination, action.payload)
            elif isinstance(action, SetRoute):
                router = self.routers[BY_LENGTH[len(action.group)]]
                try:
                    # A table holds the routes of the upstream it is named by: that is the
                    # interface its flows arrive on.
                    router.set_route(action.table, action.source, action.group, action.table,
                                     action.oifs)
                except (KernelError, OSError, ValueError) as exc:
                    self.errors["set route"] += 1
                    log.warning("route (%s, %s) in %s: %s", _text(action.source),
                                _text(action.group), action.table, exc)
            elif isinstance(action, DeleteRoute):
                router = self.routers[BY_LENGTH[len(action.group)]]
                try:
                    router.delete_route(action.table, action.source, action.group)
                except (KernelError, OSError, ValueError) as exc:
                    self.errors["delete route"] += 1
                    log.warning("delete (%s, %s) in %s: %s", _text(action.source),
                                _text(action.group), action.table, exc)
            elif isinstance(action, Log):
                level = logging.getLevelName(action.level.upper())
                # The event's name and fields ride on the record (``FieldsFormatter``).
                log.log(level if isinstance(level, int) else logging.INFO, "%s", action.message,
                        extra={"event": action.event, "fields": action.fields})

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status`` shows: the engine's snapshot (``status.document``),
        the sockets' drops, and the daemon's own errors."""
        socket_drops: Counter[Drop] = Counter()
        for sock in self.sockets.values():
            socket_drops.update(sock.dropped)
        doc = document(self.engine.snapshot(), [d.interface for d in self.config.downstream],
                       socket_drops)
        return {"pid": os.getpid(), "config": str(self.config_path), **doc,
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


def _roles(config: Config) -> dict[str, Role]:
    """The interfaces of ``config`` and what each is."""
    return {**{d.interface: Role.DOWNSTREAM for d in config.downstream},
            **{c.interface: Role.UPSTREAM for c in config.upstream.candidates}}


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
