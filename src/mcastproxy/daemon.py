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
A reload applies wholly or not at all: every step it takes (the kernel's interfaces, the
interface map, the engine, netlink) is undone if a later one fails, whatever the error.

A status server on a UNIX socket answers ``mcastproxy status``. The socket is created 0600 (it
shows every subscriber), and its path is claimed before the kernel is touched: held by another
proxy (``PATH.lock``) or answered on by another process, the start is refused; a socket left by
a crash is replaced. The answer is made, written and let go of a slice at a time (the engine's
``snapshot_slices``, ``status.document_slices``, ``status.encode``, ``snapshot.release``), the
loop given a turn every ``STATUS_SLICE`` seconds, so that reports are handled while it is made,
at any scale. Automatic garbage collection waits until the answer is let go of: a full
collection of a large engine's heap would hold the loop for most of a second, and the answer's
objects, freed by their counts, need none.

Log lines of the engine's events are rate-limited per event name (``LogLimiter``): a host that
floods or spoofs gets ten lines per event in ten seconds, then one saying how many were not
written.

Actions are applied by ``applier.Applier``; accounting (the kernel's per-route counters read
off the hot path, RFC 8313 §4.6), the session log and the security log (§4.3.3) are the
``meter.Meter``'s, configured by ``accounting:``. Its logs are opened before the kernel is
touched and at a reload before anything else of it is applied (a path that cannot be opened
refuses the start or the reload); SIGHUP reopens them (logrotate).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import socket
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

from mcastproxy import rerouting
from mcastproxy.amt.upstream import AmtError, AmtUpstreams
from mcastproxy.applier import Applier
from mcastproxy.config import Config, ConfigError, load_config
from mcastproxy.datasampler import DataSampler
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import (
    ClearGroups,
    ConfigChanged,
    Event,
    HelloReceived,
    InterfaceUp,
    NewFlow,
    PacketReceived,
    RatesMeasured,
    Shutdown,
    TimerExpired,
)
from mcastproxy.family import Family
from mcastproxy.gcpolicy import GcPolicy
from mcastproxy.kernel import KernelError, MulticastRouting, UpcallKind
from mcastproxy.links import LinkEvent
from mcastproxy.logs import LogLimiter
from mcastproxy.meter import Meter
from mcastproxy.metrics import PUBLISH_INTERVAL, Metrics, View, drop_keys
from mcastproxy.platform import HelloSocket, LinkWatching, PacketSocket, Platform
from mcastproxy.statusserver import (  # noqa: F401 - query_status, STATUS_SLICE: the daemon's words too
    STATUS_SLICE,
    StatusServer,
    query_status,
)
from mcastproxy.statussocket import (
    StatusSocketError,
    why,
)

# The systemd unit's RuntimeDirectory (contrib/mcastproxy.service): one path for both.
DEFAULT_STATUS_SOCKET = Path("/run/mcastproxy/mcastproxy.sock")
# Packets of one read handled in one engine pass: the last of a burst waits for the others
# (about 30 us each), so a burst is short enough to keep a join's latency within a millisecond
# or two, and long enough that the upstream reports and routes of a flood are settled together.
BURST = 32
log = logging.getLogger("mcastproxy")
T = TypeVar("T")


class ConfigRefusedError(Exception):
    """A configuration the running proxy does not move to, nothing of it applied. ``fault``:
    ``"config"``, it asks for what needs a restart; ``"system"``, a step of applying it
    failed (the kernel refused, a log could not be opened) and was undone."""

    def __init__(self, reason: str, *, fault: str = "config") -> None:
        super().__init__(reason)
        self.fault = fault


class Daemon(StatusServer):
    """One running proxy: ``await Daemon(path, config).run()`` until stopped.

    ``platform`` gives its I/O (the system's by default); ``engine``, one made from ``config``
    if not given; ``log_limit``, how many lines of each engine event it logs (10 in 10 s by
    default). ``ready`` is set once it runs (signals handled, status served).
    """

    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        status_socket: Path | None = None,
        platform: Platform | None = None,
        engine: Engine | None = None,
        log_limit: LogLimiter | None = None,
        metrics: tuple[str, int] | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.status_socket = status_socket
        self.platform = platform if platform is not None else Platform()
        self.engine = engine if engine is not None else Engine(config, rng=random.random)
        self.log_limit = log_limit if log_limit is not None else LogLimiter()
        self.gc = GcPolicy()
        """The garbage collector's policy while it runs (``gcpolicy``)."""
        if metrics is None and config.metrics is not None:
            metrics = config.metrics.listen
        self.metrics_listen = metrics
        """Where Prometheus scrapes (host, port), or None for no listener: ``metrics``, else
        the configuration's ``metrics.listen``."""
        self.metrics = Metrics()
        self.metrics_address: tuple[str, int] | None = None
        """The address the metrics listener bound (port 0 asked: the one given)."""
        self._publisher: asyncio.TimerHandle | None = None
        self._reloads: Counter[str] = Counter()
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
        self._status_listener: socket.socket | None = None
        self._status_inode: int | None = None  # of the socket file this daemon made
        self._status_lock_file: int | None = None  # held while this daemon runs
        self._status_lock = asyncio.Lock()  # one answer made at a time
        self._collection_paused = 0  # answers under way with garbage collection waiting
        self._collection_was_on = True
        self._log_flush: asyncio.TimerHandle | None = None
        self._signals: list[signal.Signals] = []
        self._reload_waiting = False  # a SIGHUP came before the start was done
        self.api: Any = None
        """The controller API's server (``mcastproxy.api.ApiServer``) while it serves."""
        self.event_sinks: list[Callable[[int, str, str, Mapping[str, Any]], None]] = []
        """Told every event ``_log`` is given, before its rate limit (the API's stream)."""
        self.meter = Meter(config.accounting, self.routers, self._drop_totals)
        """Accounting, the session log and the security log (``meter``)."""
        self.amt = AmtUpstreams(config)
        """The AMT upstreams' TUN devices and gateways (``amt.upstream``)."""
        self.applier = Applier(self.routers, self.sockets, self.meter, self.errors, self._log,
                               self._now)
        self.sampler = DataSampler(lambda: self.config, lambda: (u for u, _, _ in
                                   self.engine.routes()), self.routers, self.meter,
                                   self.errors, self._handle)
        """The route counters of data-watched upstreams (``datasampler``)."""

    # --- life cycle -----------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 if it cannot start (the kernel
        refused, or the status socket is another proxy's or cannot be made)."""
        self._loop = asyncio.get_running_loop()
        try:
            # Signals first: the status socket appearing tells that SIGHUP is safe to send
            # (a reload asked for before the start is done waits for it).
            for sig, handler in ((signal.SIGHUP, self._on_sighup), (signal.SIGTERM, self.stop),
                                 (signal.SIGINT, self.stop)):
                self._loop.add_signal_handler(sig, handler)
                self._signals.append(sig)
            if self.status_socket is not None:
                # Before the kernel: a second proxy must not touch a running one's tables.
                try:
                    self._claim_status_socket(self.status_socket)
                except OSError as exc:
                    log.error("cannot start: status socket %s: %s", self.status_socket,
                              exc.strerror or exc)
                    return 1
                except StatusSocketError as exc:
                    log.error("cannot start: %s", exc)
                    return 1
            try:
                self.meter.open()  # before the kernel too: a log that cannot be written
            except OSError as exc:
                log.error("cannot start: accounting log %s: %s", exc.filename,
                          exc.strerror or exc)
                return 1
            try:
                self.amt.open()  # before the kernel: each TUN becomes its upstream's VIF
            except AmtError as exc:
                log.error("cannot start: %s", exc)
                return 1
            self.amt.start(self._loop)
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
            if self.status_socket is not None:
                try:
                    await self._serve_status(self.status_socket)
                except OSError as exc:
                    log.error("cannot start: status socket %s: %s", self.status_socket,
                              exc.strerror or exc)
                    return 1
            if self.config.api is not None:
                from mcastproxy.api import ApiServer  # noqa: PLC0415 (aiohttp: only if on)

                try:
                    self.api = ApiServer(self)
                    await self.api.start()
                except (OSError, ValueError) as exc:
                    log.error("cannot start: api: %s", why(exc))
                    return 1
            if self.metrics_listen is not None:
                try:
                    self.metrics_address = self.metrics.serve(*self.metrics_listen)
                except OSError as exc:
                    host, port = self.metrics_listen
                    log.error("cannot start: metrics listener %s port %d: %s", host, port,
                              exc.strerror or exc)
                    return 1
                self._publish()
            self.sampler.arm(self._loop)
            self._measure_rates(self.config)
            self.meter.start(self._loop)
            self.gc.install()  # after start-up: what it made is frozen (gcpolicy)
            log.info("running: %s", self._summary())
            self.ready.set()
            if self._reload_waiting:
                self._reload_waiting = False
                self.reload()
            await self._stopping.wait()
        finally:
            await self._shutdown()
        return 0

    def _on_sighup(self) -> None:
        if self.ready.is_set():
            self.reload()
        elif not self._reload_waiting:
            self._reload_waiting = True
            log.info("reload asked for while starting: done once started")

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
        self.gc.uninstall()
        self.sampler.cancel()
        for handle in (self._timer, self._publisher):
            if handle is not None:
                handle.cancel()
        self._publisher = None
        self.metrics.close()
        self._timer = self._deadline = None
        if running:
            # Leave upstream what was joined (upstream.leave-on-stop) while the sockets are
            # still open.
            self._handle(Shutdown(), arm=False)
        self.meter.close(self._now())
        self._close_status()
        if self.api is not None:
            await self.api.close()
            self.api = None
        if self._log_flush is not None:
            self._log_flush.cancel()
            self._log_flush = None
        self._log_suppressed(float("inf"))  # said now, not never
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        if self._links is not None:
            await self._links.close()
            self._links = None
        opened: list[PacketSocket | HelloSocket] = [*self.sockets.values(),
                                                    *self.hellos.values()]
        for sock in opened:
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
        self.amt.stop()  # the last reports and Teardown sent; the TUN devices go
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
        """SIGHUP: apply the file if it is good; otherwise say why and keep the old one.

        Never raises: whatever fails, the running configuration stays whole."""
        with self.metrics.reload.time():
            applied = self._reload()
        if not applied:
            self.meter.reopen()  # SIGHUP is logrotate's signal too
        self._reloads["applied" if applied else "refused"] += 1

    def _reload(self) -> bool:
        """``reload``; whether the new file was applied."""
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("reload refused, keeping the running configuration: %s", issue)
            return False
        except Exception as exc:  # the loader's own fault: the file is refused all the same
            self.errors["reload"] += 1
            log.exception("reload refused, keeping the running configuration: reading %s "
                          "failed: %s", self.config_path, why(exc))
            return False
        try:
            self._adopt(new)
        except ConfigRefusedError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self._told("reload-refused", {"by": "SIGHUP", "reason": str(exc)})
            return False
        log.info("configuration reloaded from %s: %s", self.config_path, self._summary())
        if self.api is not None:
            self.api.reloaded()  # its tokens file again, and the file's document
        self._told("reloaded", {"by": "SIGHUP"})
        return True

    def apply_config(self, new: Config, who: str) -> None:
        """A controller's configuration (``mcastproxy.api``), already validated as the file
        is, applied through the reload's own path: wholly, or not at all
        (``ConfigRefusedError``)."""
        with self.metrics.reload.time():
            try:
                self._adopt(new, reselect=True)
            except ConfigRefusedError as exc:
                self._reloads["refused"] += 1
                log.error("change by %s refused, keeping the running configuration: %s",
                          who, exc)
                self._told("reload-refused", {"by": who, "reason": str(exc)})
                raise
        self._reloads["applied"] += 1
        log.info("configuration changed by %s: %s", who, self._summary())
        self._told("reloaded", {"by": who})

    def _told(self, event: str, fields: Mapping[str, Any]) -> None:
        for sink in self.event_sinks:
            sink(logging.INFO, event, event, fields)

    def _adopt(self, new: Config, *, reselect: bool = False) -> None:
        """Move to ``new`` (validated), make-before-break; ``ConfigRefusedError`` saying why
        not, with nothing of it applied. ``reselect``: running subscriptions follow the new
        selection (a controller's change) rather than stay (a SIGHUP's)."""
        old = self.config
        if (new.igmp is None) != (old.igmp is None) or (new.mld is None) != (old.mld is None):
            raise ConfigRefusedError("turning IGMP or MLD on or off needs a restart")
        try:
            self.amt.stage(old, new)  # an added AMT upstream's TUN, before the kernel's VIF
        except AmtError as exc:
            raise ConfigRefusedError(str(exc), fault=exc.fault) from None
        try:
            staged = self.meter.stage(new.accounting)  # the logs' new paths, opened first
        except OSError as exc:
            self.amt.abort()
            raise ConfigRefusedError(f"accounting log {exc.filename}: {exc.strerror or exc}",
                                fault="system") from None
        try:
            self._apply_config(old, new, reselect)
        except Exception as exc:
            self.meter.abort(staged)
            self.amt.abort()
            self.errors["reload"] += 1
            raise ConfigRefusedError(why(exc), fault="system") from None
        self.meter.commit(staged)
        self._measure_rates(new)
        rerouting.remove_interfaces(self.routers.values(), old, new, self.errors)
        self.amt.commit()  # added ones start; removed ones send Teardown, their TUN goes
        if new.metrics != old.metrics:
            log.warning("metrics.listen changed: the listener keeps %s until a restart",
                        self.metrics_listen or "off")
        if new.api != old.api and self.api is not None:
            self.api.settings_changed(new.api)

    def _measure_rates(self, config: Config) -> None:
        """Channel rates for the engine's learned rates and empty channels (``learning``),
        measured from the route counters when the configuration asks for either."""
        table = config.policy.bandwidth
        wanted = table.learn or table.empty_after is not None
        self.meter.measure(self._rates_measured if wanted else None)

    def _rates_measured(self, rates: dict[tuple[bytes, bytes], float]) -> None:
        self._handle(RatesMeasured(rates))

    def clear_groups(self, interface: str | None, group: bytes | None,
                     source: bytes | None, who: str, family: int | None = None) -> None:
        """RFC 8652 clear-groups, asked by a controller: the engine forgets that state (of
        ``family``, 4 or 6; None: both)."""
        log.info("clear-groups by %s: interface %s", who, interface or "every link")
        self._handle(ClearGroups(interface, group, source, family))

    def _apply_config(self, old: Config, new: Config, reselect: bool = False) -> None:
        """Move from ``old`` to ``new``: the kernel's interfaces, the interface map, the
        engine, the sockets and netlink. If any step raises, those done are undone in reverse
        and the error raised: nothing of ``new`` is left."""
        undo: list[Callable[[], object]] = []
        old_names = self._names()
        try:
            rerouting.add_interfaces(self.routers.values(), old, new, undo, self.errors)
            for name in sorted(rerouting.roles(new).keys() - rerouting.roles(old).keys()):
                undo.append(functools.partial(self.interfaces.remove, name))
            for name in sorted(rerouting.roles(new)):
                self.interfaces.refresh(name)
            undo.append(lambda: setattr(self, "config", old))
            self.config = new
            # If the engine fails on the new configuration, it resets itself: it is given the
            # old one back, on which the rest of the daemon stays.
            undo.append(lambda: self.engine.config is old or self._handle(ConfigChanged(old)))
            if not self._handle(ConfigChanged(new, reselect)):
                raise RuntimeError(f"the engine failed on the new configuration "
                                   f"({self.engine.last_error}); it was reset")
            if self._links is not None:
                undo.append(functools.partial(self._links.watch, old_names))
                self._links.watch(self._names())
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except Exception as exc:  # undo the rest all the same
                    self.errors["reload undo"] += 1
                    log.warning("undoing a refused reload: %s", why(exc))
            raise
        old_down = {d.interface for d in old.downstream}
        for name in sorted({d.interface for d in new.downstream} - old_down):
            self._listen(name)
        self.sampler.arm()

    # --- inputs ---------------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time()  # type: ignore[union-attr]

    def _handle(self, event: Event, *, arm: bool = True) -> bool:
        """Hand ``event`` to the engine and apply what it asks; False if the engine failed
        on it (and reset itself)."""
        return self._engine_pass(self.engine.handle, event, arm)

    def _handle_burst(self, events: list[Event]) -> bool:
        """``_handle`` for a burst of packets, in one engine pass (``Engine.handle_burst``);
        the caller re-arms the timer."""
        if len(events) == 1:
            return self._engine_pass(self.engine.handle, events[0], False)
        return self._engine_pass(self.engine.handle_burst, events, False)

    def _engine_pass(self, handle: Callable[[T, float], None], what: T, arm: bool) -> bool:
        """``handle(what, now)``, then what the engine asks applied, the pass timed (metrics)
        and, with ``arm``, the timer re-armed; False if the engine failed on it (and reset
        itself)."""
        started = perf_counter()
        handled = True
        try:
            handle(what, self._loop.time())  # type: ignore[union-attr]
        except Exception:  # the engine must never take the daemon down with it
            handled = False
            self.errors["engine"] += 1
            log.exception("engine failed on %s", f"a burst of {len(what)} events"
                          if isinstance(what, list) else repr(what))
        actions = self.engine.pop_actions()
        if actions:
            self.applier.apply(actions)
        self.metrics.handling.observe(perf_counter() - started)
        if arm:
            self._arm_timer()
        return handled

    def _on_packets(self, sock: PacketSocket) -> None:
        # What one read brought is handled in bursts of at most ``BURST`` packets, each one
        # engine pass (``Engine.handle_burst``: upstream reports and routes settled once per
        # burst), and the timer re-armed once for all of them.
        family = sock.family
        events: list[Event] = [
            PacketReceived(interface, family, source, destination, payload, ttl, alert)
            for interface, _, source, destination, payload, ttl, alert in sock.receive()]
        if len(events) <= BURST:
            if not events:
                return  # nothing handed on (drops are counted): the deadline is where it was
            self._handle_burst(events)
        else:
            for start in range(0, len(events), BURST):
                self._handle_burst(events[start:start + BURST])
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
            except (OSError, ValueError) as exc:
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

    # --- actions --------------------------------------------------------------------------

    def _log(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        """A line of ``event``, if its rate allows (``log_limit``). The event's name and
        fields ride on the record (``FieldsFormatter``)."""
        for sink in self.event_sinks:  # the API's event streams: each bounded, never blocks
            sink(level, event, message, fields)
        if not log.isEnabledFor(level):
            return
        if self.log_limit.allow(event, self._now()):
            log.log(level, "%s", message, extra={"event": event, "fields": fields})
        elif self._log_flush is None and self._loop is not None:
            deadline = self.log_limit.next_deadline()
            if deadline is not None:
                self._log_flush = self._loop.call_at(deadline, self._on_log_flush)

    def _on_log_flush(self) -> None:
        self._log_flush = None
        self._log_suppressed(self._now())
        deadline = self.log_limit.next_deadline()
        if deadline is not None and self._loop is not None:
            self._log_flush = self._loop.call_at(deadline, self._on_log_flush)

    def _log_suppressed(self, now: float) -> None:
        """One line per event name that had lines not written, saying how many."""
        for event, lines, since in self.log_limit.due(now):
            took = min(now, self._now()) - since
            log.warning("%d more %s lines not written in %.0f s (at most %d in %.0f s)",
                        lines, event, took, self.log_limit.burst, self.log_limit.period,
                        extra={"event": event, "fields": {"suppressed": lines}})

    # --- metrics ----------------------------------------------------------------------------

    def _publish(self) -> None:
        """Hand the metrics listener a new view of the engine's aggregates (``metrics``),
        and again every ``PUBLISH_INTERVAL``."""
        engine = self.engine
        unusable = engine.unusable
        self.metrics.publish(View(
            accounting=self.meter.totals() if self.meter.on else None,
            drops=self._drop_totals(),
            events=dict(engine.counts), errors=dict(self.errors),
            upstreams={c.interface: c.interface not in unusable
                       for c in self.config.upstream.candidates},
            routes=len(engine.routes()), memberships=engine.memberships(),
            messages=engine.messages(), bandwidth=engine.bandwidth(),
            gc=self.gc.counts() if self.gc.installed else {},
            reloads=dict(self._reloads)))
        assert self._loop is not None
        self._publisher = self._loop.call_later(PUBLISH_INTERVAL, self._publish)

    def _drop_totals(self) -> dict[tuple[str, str], int]:
        """Drops by (interface or "-", reason key): the engine's and the sockets'."""
        socket_drops: Counter[Drop] = Counter()
        for sock in self.sockets.values():
            socket_drops.update(sock.dropped)
        return drop_keys(self.engine.dropped.by_key().items(), socket_drops)


def run(config_path: Path, *, status_socket: Path | None = DEFAULT_STATUS_SOCKET,
        platform: Platform | None = None) -> int:
    """``mcastproxy run``: load, check, run until stopped (on ``platform``: the system's
    unless given)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("%s: %s", config_path, issue)
        return 2
    return asyncio.run(
        Daemon(config_path, config, status_socket=status_socket, platform=platform).run())

