"""AMT upstreams (RFC 7450) run by the daemon: a candidate whose interface is a TUN device.

Theory of operation
===================

An upstream candidate with ``amt:`` settings is an upstream like any other to the engine: the
daemon makes its interface, a TUN device, before the kernel's multicast tables are set up,
so that it becomes that upstream's VIF in its own table; selection, takeover, per-channel
data liveness, hot standby and accounting then apply to it unchanged. What makes it AMT is
behind the device, here:

- ``AmtUpstream`` (one candidate): the TUN device (``tun.open_tun``, given the candidate's
  ``address`` list, /32 and /128), and gateways (``runner.GatewayRunner``: a ``Gateway`` on a
  UDP socket of its own, each a tunnel of its own at its relay), one per relay and inner
  family the proxy speaks (IGMPv3 with ``igmp``, MLDv2 with ``mld``). The configured relay's
  (or discovery address's) gateways are made at ``open`` and live as long as the upstream.
- Out of the TUN: the packets the kernel sends there, among them the reports of the proxy's
  upstream host side (it sends them on this interface as on any upstream). The
  pseudo-interface's ``HostMembership`` of their family rebuilds the host's membership from
  them; ``split.RelaySplit`` says each relay's part of it and the changes in it, which go to
  that relay's gateway (``MembershipChanged``): it sends them in Membership Updates and
  answers every relay query with the whole of its part.
- DRIAD (``driad: true``, RFC 8777): a joined source's relay is looked up in DNS
  (``resolver.DriadResolver``, a task on the loop, at most ``MAX_LOOKUPS`` at once) and kept
  in ``driad.DriadCache`` for its TTL; its channels wait for the first answer, then go to
  that relay through a gateway made for it (at most ``max-relays`` of them per family; the
  sources of any more go to the configured relay), which is stopped (Teardown) when nothing
  is joined through it any more. Any-source joins, sources with no record and failed
  lookups go to the configured relay. When an answer expires it is asked again, and a
  source whose relay changed moves: BLOCK at the old relay, ALLOW at the new. A DRIAD
  relay's gateway gives up on a relay that does not answer its Relay Discovery or Request
  (``give_up``, about 7 s with the default back-off): its sources fail over to their next
  relays (RFC 8777 §4.2.1), after the last to the configured relay, counted in
  ``driad.failovers``; the relay is passed over for a while (``driad.passed-over``).
- Into the TUN: the configured relay's General Queries (``QueryReceived``), with the
  configured querier source (``pseudo.relay_query_packet``): the host side hears a querier
  there, evidence of life for an upstream whose ``liveness`` counts queries, and answers them
  (the answer changes nothing: it is not sent twice). With query liveness on, those gateways
  keep the query exchange running with nothing joined (``keep_querier``), so the upstream is
  usable before anything is joined through it. Multicast Data from every gateway,
  decapsulated, is written in as it arrives: the kernel's multicast routing forwards it as
  any upstream's traffic. A DRIAD relay's queries stay with its gateway.
- ``stop()``: the reports the host side sent last (its leaves, on a graceful stop) are read
  from the TUN and sent, then each gateway's Teardown, then the sockets and the TUN are
  closed: the device goes with its descriptor.

Bad input never raises: a datagram that is not the relay's, a forged or truncated message, a
packet out of the TUN that is not a report are dropped and counted by reason (``status()``);
a DNS answer that dnspython refuses, or that names no usable relay, is a failed lookup,
counted by reason.

``AmtUpstreams`` is the daemon's handle on all of them: ``open()`` before the kernel is
touched (a device that cannot be made refuses the start), ``start(loop)``, ``stop()`` after
the kernel's tables are removed, ``status()``; and for a reload ``stage(old, new)`` (the TUN
devices of added upstreams made before the kernel's VIFs), then ``commit()`` (added ones
started; changed ones given new gateways on the same TUN; removed ones stopped, Teardown
sent, once the kernel's VIFs are gone) or ``abort()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from mcastproxy.amt.actions import Action, GatewayState, QueryReceived, StateChanged
from mcastproxy.amt.driad import UNRESOLVED, Answer, DriadCache, RelayTarget
from mcastproxy.amt.events import MembershipChanged
from mcastproxy.amt.gateway import Gateway, GatewayTimers
from mcastproxy.amt.pseudo import STATE_CHANGE, HostMembership, relay_query_packet
from mcastproxy.amt.resolver import DriadResolver
from mcastproxy.amt.runner import GatewayRunner, SocketMaker, udp_socket
from mcastproxy.amt.split import RelaySplit
from mcastproxy.amt.tun import add_address, is_tun, open_tun
from mcastproxy.config import AmtSettings, Candidate, Config
from mcastproxy.drops import Drop
from mcastproxy.family import Family

BATCH = 64
"""TUN packets read per wake-up before the loop gets its turn back."""
READ_SIZE = 65536
MAX_LOOKUPS = 16
"""DRIAD lookups under way at once; more wait their turn."""
STATUS_SOURCES = 256
"""DRIAD's cached sources status shows (the most recently used); ``cached`` counts all."""
DEFAULT_QUERIER = {Family.V4: bytes(4), Family.V6: ipaddress.IPv6Address("fe80::1").packed}
"""The source of the relay's queries inside the TUN when ``querier`` names none."""

log = logging.getLogger("mcastproxy.amt")

TunOpener = Callable[[str], int]
"""Make the TUN device of that name; its descriptor (non-blocking)."""
ResolverMaker = Callable[[AmtSettings], DriadResolver]


class AmtError(Exception):
    """An AMT upstream cannot be set up (its TUN device, its socket): ``fault`` "system"; or
    a reload asks for what needs a restart: "config"."""

    def __init__(self, reason: str, *, fault: str = "system") -> None:
        super().__init__(reason)
        self.fault = fault


def _sysctl(path: str, value: str) -> None:
    """Best effort: a kernel without the setting leaves the default."""
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


def _system_tun(name: str) -> int:
    """The TUN device ``name``, made and up, with the kernel's settings an AMT pseudo-interface
    wants: no reverse-path filter on it (its sources are routed elsewhere, if at all)."""
    if is_tun(name) is False:
        raise OSError(f"{name} exists and is not a TUN device")
    fd = open_tun(name)
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/rp_filter", "0")
    _sysctl(f"/proc/sys/net/ipv6/conf/{name}/router_solicitations", "0")
    return fd


def _system_resolver(settings: AmtSettings) -> DriadResolver:
    return DriadResolver(settings.resolver, prefer=Family(settings.target.version))


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


class AmtUpstream:
    """The AMT upstream candidate ``interface``: its TUN device and gateways (module
    comment). ``families``: the inner families the proxy speaks."""

    def __init__(
        self,
        interface: str,
        settings: AmtSettings,
        families: Iterable[Family],
        *,
        addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
        keep_querier: bool = False,
        timers: GatewayTimers | None = None,
        tun_opener: TunOpener = _system_tun,
        socket_maker: SocketMaker = udp_socket,
        nonce: Callable[[], int] | None = None,
        resolver_maker: ResolverMaker = _system_resolver,
    ) -> None:
        self.interface = interface
        self.families = tuple(dict.fromkeys(Family(f) for f in families))
        self.addresses = tuple(addresses)
        self.timers = timers
        self._tun_opener = tun_opener
        self._socket_maker = socket_maker
        self._resolver_maker = resolver_maker
        self._nonce = nonce or (lambda: secrets.randbits(32))
        self._tun: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._membership = {f: HostMembership(f) for f in self.families}
        self._runners: dict[tuple[Hashable, Family], GatewayRunner] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: deque[bytes] = deque()
        self._driad_timer: asyncio.TimerHandle | None = None
        self.tun_counts: Counter[str] = Counter()
        self.tun_dropped: Counter[Drop] = Counter()
        self.driad_counts: Counter[str] = Counter()
        self.driad_failures: Counter[str] = Counter()
        self._configure(settings, keep_querier)

    def _configure(self, settings: AmtSettings, keep_querier: bool) -> None:
        self.settings = settings
        self.keep_querier = keep_querier
        self.transport = Family(settings.target.version)
        self.default = RelayTarget(settings.target.packed, discover=settings.relay is None)
        self._splits = {f: RelaySplit(f, self.default) for f in self.families}
        self._querier = {f: DEFAULT_QUERIER[f] for f in Family}
        for q in settings.querier:
            self._querier[Family(q.version)] = q.packed
        self._driad = (DriadCache(min_ttl=settings.min_ttl, max_ttl=settings.max_ttl)
                       if settings.driad else None)
        self._resolver = self._resolver_maker(settings) if settings.driad else None
        self._unusable: set[RelayTarget] = set()

    # --- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Make the TUN device (with its addresses) and the configured relay's gateways;
        ``AmtError`` if any cannot be, with nothing left behind."""
        try:
            self._tun = self._tun_opener(self.interface)
            if self._tun_opener is _system_tun:
                for address in self.addresses:
                    add_address(self.interface, address.packed, address.max_prefixlen)
                if Family.V6 not in self.families:  # nothing of IPv6 to say or hear there
                    _sysctl(f"/proc/sys/net/ipv6/conf/{self.interface}/disable_ipv6", "1")
            self._runners.update(self._default_runners())
        except (OSError, ValueError) as exc:
            self.close()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AmtError(f"AMT upstream {self.interface}: {why}") from exc

    def _default_runners(self) -> dict[tuple[Hashable, Family], GatewayRunner]:
        made: dict[tuple[Hashable, Family], GatewayRunner] = {}
        try:
            for family in self.families:
                made[(self.default, family)] = self._runner(self.default, family,
                                                            self.keep_querier)
        except BaseException:
            for runner in made.values():
                runner.close()
            raise
        return made

    def _runner(self, target: RelayTarget, family: Family, keep_querier: bool, *,
                give_up: bool = False) -> GatewayRunner:
        own = [a.packed for a in self.addresses if a.version == family]
        gateway = Gateway(
            family, target.address, nonce=self._nonce, discover=target.discover,
            report_source=own[0] if own else None, timers=self.timers, name=self.interface,
            port=self.settings.port, keep_querier=keep_querier, give_up=give_up,
        )  # fmt: skip
        sock = self._socket_maker(Family.of(target.address))
        return GatewayRunner(gateway, sock, on_packets=self._write, on_action=self._on_action)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the TUN and the sockets on ``loop``; the gateways start (Relay Discovery, or
        the relay taken as found)."""
        if self._tun is None:
            raise RuntimeError("open() first")
        self._loop = loop
        loop.add_reader(self._tun, self._on_tun)
        for runner in self._runners.values():
            runner.start(loop)

    def stop(self) -> None:
        """Send what the host side said last (read from the TUN), then each gateway's
        Teardown; close the sockets and the TUN (the device goes with it)."""
        if self._loop is not None and self._tun is not None:
            for runner in self._runners.values():
                runner.gateway.keep_querier = False  # the last leave asks for no more queries
            self._on_tun(limit=None)
            self._cancel_lookups()
            for runner in list(self._runners.values()):
                runner.stop()
        self.close()

    def close(self) -> None:
        """Close everything at once (nothing sent)."""
        self._cancel_lookups()
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        loop = self._loop
        if self._tun is not None:
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._tun)
            with contextlib.suppress(OSError):
                os.close(self._tun)
            self._tun = None
        self._loop = None

    def retune(self, settings: AmtSettings, keep_querier: bool) -> None:
        """New settings on the same TUN (a reload): new gateways for the configured relay
        (``AmtError`` if they cannot be made, nothing changed then); the old ones send their
        Teardown and go; the membership is said again, whole, to the new ones."""
        old_settings, old_keep = self.settings, self.keep_querier
        old_runners, old_splits = self._runners, self._splits
        old_driad, old_resolver = self._driad, self._resolver
        self._configure(settings, keep_querier)
        try:
            fresh = self._default_runners()
        except (OSError, ValueError) as exc:
            self._configure(old_settings, old_keep)
            self._runners, self._splits = old_runners, old_splits
            self._driad, self._resolver = old_driad, old_resolver
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AmtError(f"AMT upstream {self.interface}: {why}") from exc
        self._cancel_lookups()
        for runner in old_runners.values():
            runner.gateway.keep_querier = False
            runner.stop()
        self._runners = fresh
        if self._loop is not None:
            for runner in fresh.values():
                runner.start(self._loop)
            self._sync(self.families)

    # --- what arrives -----------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_tun(self, limit: int | None = BATCH) -> None:
        """Packets the kernel sent out of the TUN: the host side's reports among them."""
        tun = self._tun
        if tun is None:
            return
        changed: set[Family] = set()
        touched: dict[Family, set[bytes]] = {}
        n = 0
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while limit is None or n < limit:
                packet = os.read(tun, READ_SIZE)
                n += 1
                self.tun_counts["packets-read"] += 1
                family = Family.V4 if packet[:1] and packet[0] >> 4 == 4 else (
                    Family.V6 if packet[:1] and packet[0] >> 4 == 6 else None)
                if family is None:
                    self.tun_dropped[Drop.NOT_IP] += 1
                    continue
                membership = self._membership.get(family)
                if membership is None:
                    self.tun_dropped[Drop.NOT_PROXIED] += 1
                    continue
                result = membership.read(packet)
                if isinstance(result, Drop):
                    self.tun_dropped[result] += 1
                elif result is not None:
                    self.tun_counts["reports-carried"] += 1
                    changed.add(family)
                    touched.setdefault(family, set()).update(
                        r.group for r in result.records if r.type in STATE_CHANGE)
        if changed:
            self._sync(changed, touched)

    def _on_action(self, runner: GatewayRunner, action: Action) -> None:
        gateway = runner.gateway
        if isinstance(action, QueryReceived):
            if self._runners.get((self.default, gateway.family)) is runner:
                self._write([relay_query_packet(gateway.family, self._querier[gateway.family],
                                                action.query)])
                self.tun_counts["queries-written"] += 1
        elif isinstance(action, StateChanged):
            if action.state is GatewayState.UNANSWERED and self._loop is not None:
                # Not from within the runner's own flush: the failover stops it.
                self._loop.call_soon(self._failover, runner)
            relay = _text(action.relay) if action.relay is not None else "none"
            log.info("AMT upstream %s, %s gateway: %s (%s; relay %s)", self.interface,
                     gateway.family.protocol.upper(), action.state, action.why, relay,
                     extra={"event": "amt-gateway", "fields": {
                         "interface": self.interface, "state": str(action.state),
                         "why": action.why, "relay": relay}})

    def _failover(self, runner: GatewayRunner) -> None:
        """A DRIAD relay's gateway gave up: its sources go on to their next relays."""
        key = next((k for k, r in self._runners.items() if r is runner), None)
        if key is None or self._driad is None or self._loop is None:
            return  # stopped or retuned meanwhile
        target, family = key
        assert isinstance(target, RelayTarget)
        moved = self._driad.unanswered(target, family, self._now())
        log.warning("AMT upstream %s: relay %s does not answer; %d source(s) fail over to "
                    "their next relay (DRIAD)", self.interface, target, len(moved),
                    extra={"event": "amt-driad-failover", "fields": {
                        "interface": self.interface, "relay": str(target),
                        "sources": ",".join(_text(s) for s in moved)}})
        self._tell(family, ())
        if self._runners.get(key) is runner:  # nothing moved off it: it goes all the same
            runner.stop()
            del self._runners[key]
            self._splits[family].forget(target)
        self._arm_driad()

    # --- the membership, split over the relays -----------------------------------------------

    def _sync(self, families: Iterable[Family],
              touched: dict[Family, set[bytes]] | None = None) -> None:
        """The membership of ``families`` changed (or a source's relay did): each relay's
        gateway is told its part."""
        if self._driad is not None and self._loop is not None:
            sources = {s for m in self._membership.values()
                       for exclude, ss in m.groups().values() if not exclude for s in ss}
            for source in self._driad.want(sources, self._now()):
                self._ask(source)
            self._arm_driad()
        for family in families:
            self._tell(family, (touched or {}).get(family, ()))

    def _tell(self, family: Family, touched: Iterable[bytes]) -> None:
        split = self._splits[family]
        changes = split.update(self._membership[family].groups(), self._key_of(family), touched)
        for key, change in changes.items():
            runner = self._runners.get((key, family))
            if runner is None:  # its gateway could not be made: said to the default instead
                continue
            runner.handle(MembershipChanged(change.current, change.changes))
            if key != self.default and not change.current:
                runner.stop()  # its Teardown is out; the relay carries nothing for us now
                del self._runners[(key, family)]
                split.forget(key)

    def _key_of(self, family: Family) -> Callable[[bytes], Hashable | None]:
        driad, default = self._driad, self.default
        if driad is None:
            return lambda source: default

        def key_of(source: bytes) -> Hashable | None:
            relay = driad.relay(source)
            if relay is UNRESOLVED:
                return None  # waits for its first answer
            if relay is None or relay == default or relay in self._unusable:
                return default
            assert isinstance(relay, RelayTarget)
            if (relay, family) in self._runners:
                return relay
            others = sum(1 for k, f in self._runners if f is family and k != default)
            if others >= self.settings.max_relays:
                self.driad_counts["relays-full"] += 1
                return default
            try:
                runner = self._runner(relay, family, keep_querier=False, give_up=True)
            except (OSError, ValueError):  # no socket of its family, say: the default
                self.driad_counts["gateway-errors"] += 1
                if len(self._unusable) >= 64:
                    self._unusable.clear()
                self._unusable.add(relay)
                return default
            self._runners[(relay, family)] = runner
            if self._loop is not None:
                runner.start(self._loop)
            return relay

        return key_of

    # --- DRIAD lookups ----------------------------------------------------------------------

    def _ask(self, source: bytes) -> None:
        if len(self._tasks) >= MAX_LOOKUPS:
            self._waiting.append(source)
            return
        assert self._loop is not None
        assert self._resolver is not None
        task = self._loop.create_task(self._lookup(source, self._resolver))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lookup(self, source: bytes, resolver: DriadResolver) -> None:
        answer = await resolver.lookup(source)
        if resolver is not self._resolver or self._driad is None or self._loop is None:
            return  # retuned or stopped meanwhile
        self._answered(source, answer)

    def _answered(self, source: bytes, answer: Answer) -> None:
        assert self._driad is not None
        self.driad_counts[str(answer.lookup)] += 1
        if answer.why:
            self.driad_failures[answer.why] += 1
        before = self._driad.relay(source)
        moved = self._driad.complete(source, answer, self._now())
        if moved and before is not UNRESOLVED:
            log.info("AMT upstream %s: source %s now through relay %s (DRIAD)", self.interface,
                     _text(source), self._driad.relay(source) or "configured",
                     extra={"event": "amt-driad", "fields": {
                         "interface": self.interface, "source": _text(source),
                         "relay": str(self._driad.relay(source) or "configured")}})
        while self._waiting and len(self._tasks) < MAX_LOOKUPS:
            self._ask(self._waiting.popleft())
        if moved:
            family = Family.of(source)
            if family in self._splits:
                self._tell(family, ())
        self._arm_driad()

    def _arm_driad(self) -> None:
        if self._driad_timer is not None:
            self._driad_timer.cancel()
            self._driad_timer = None
        deadline = self._driad.next_deadline() if self._driad is not None else None
        if deadline is not None and self._loop is not None:
            self._driad_timer = self._loop.call_at(deadline, self._on_driad_timer)

    def _on_driad_timer(self) -> None:
        self._driad_timer = None
        if self._driad is None or self._loop is None:
            return
        for source in self._driad.expired(self._now() + 0.001):  # a handle may run early
            self._ask(source)
        self._arm_driad()

    def _cancel_lookups(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self._waiting.clear()
        if self._driad_timer is not None:
            self._driad_timer.cancel()
            self._driad_timer = None

    # --- what goes out ----------------------------------------------------------------------

    def _write(self, packets: list[bytes]) -> None:
        tun = self._tun
        if tun is None:
            return
        written = 0
        for packet in packets:
            try:
                os.write(tun, packet)
                written += 1
            except OSError:
                self.tun_counts["write-errors"] += 1
        self.tun_counts["packets-written"] += written

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status`` shows of this upstream (plain data)."""
        target = self.settings.target
        dropped: Counter[str] = Counter({str(r): n for r, n in self.tun_dropped.items()})
        gateways: dict[str, Any] = {}
        relays: dict[str, Any] = {}
        for (key, family), runner in self._runners.items():
            st = runner.status()
            st["groups"] = len(self._splits[family].part(key))
            for reason, n in st["dropped"].items():
                dropped[reason] += n
            if key == self.default:
                gateways[family.protocol] = st
            else:
                relays[f"{key} {family.protocol}"] = st
        status: dict[str, Any] = {
            "relay" if self.settings.relay is not None else "discovery": str(target),
            "port": self.settings.port,
            "transport": f"ipv{self.transport}",
            "gateways": gateways,
            "tun": {**dict(sorted(self.tun_counts.items())),
                    "dropped": {str(r): n for r, n in sorted(self.tun_dropped.items())}},
            "dropped": dict(sorted(dropped.items())),
        }
        if self._driad is not None:
            server = self.settings.resolver
            status["driad"] = {
                "resolver": f"{server[0]}:{server[1]}" if server else "system",
                "lookups": dict(sorted(self.driad_counts.items())),
                "failures": dict(sorted(self.driad_failures.items())),
                "asking": self._driad.asking(), "cached": len(self._driad),
                "failovers": self._driad.failovers,
                "passed-over": self._driad.passed_over(self._loop.time() if self._loop
                                                       else 0.0),
                "sources": self._driad.snapshot(STATUS_SOURCES),
                "gateways": relays,
            }  # fmt: skip
        return status


def _families(config: Config) -> list[Family]:
    return [f for f, on in ((Family.V4, config.igmp), (Family.V6, config.mld)) if on]


def _amt(config: Config) -> dict[str, Candidate]:
    return {c.interface: c for c in config.upstream.candidates if c.amt is not None}


class AmtUpstreams:
    """The daemon's AMT upstreams: one ``AmtUpstream`` per candidate with ``amt:``."""

    def __init__(self, config: Config, **options: Any) -> None:
        self._options = options
        self._families = _families(config)
        self.upstreams = {name: self._make(c) for name, c in _amt(config).items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._staged: tuple[dict[str, AmtUpstream], dict[str, Candidate], list[str]] | None = None

    def _make(self, c: Candidate) -> AmtUpstream:
        assert c.amt is not None
        return AmtUpstream(c.interface, c.amt, self._families, addresses=c.address,
                           keep_querier=c.liveness.queries, **self._options)

    def __bool__(self) -> bool:
        return bool(self.upstreams)

    def open(self) -> None:
        """Make every TUN device and socket; ``AmtError`` (all closed again) if one fails."""
        _open_all(self.upstreams.values())

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for upstream in self.upstreams.values():
            upstream.start(loop)

    def stop(self) -> None:
        self.abort()
        for upstream in self.upstreams.values():
            _stop(upstream)

    def status(self) -> dict[str, Any]:
        return {name: u.status() for name, u in self.upstreams.items()}

    # --- a reload ---------------------------------------------------------------------------

    def stage(self, old: Config, new: Config) -> None:
        """Make the TUN devices of the AMT upstreams ``new`` adds (before the kernel makes
        them VIFs); ``AmtError`` if one cannot be (nothing is left made). Changed and removed
        ones are left to ``commit``."""
        self.abort()
        was, now = _amt(old), _amt(new)
        for name in sorted(was.keys() & now.keys()):
            if was[name].address != now[name].address:
                raise AmtError(f"AMT upstream {name}: changing its address needs a restart "
                               "(its TUN device keeps the one it was made with)", fault="config")
        added = {name: self._make(now[name]) for name in sorted(now.keys() - was.keys())}
        _open_all(added.values())
        changed = {name: now[name] for name in sorted(was.keys() & now.keys())
                   if (was[name].amt, was[name].liveness.queries)
                   != (now[name].amt, now[name].liveness.queries)}
        self._staged = (added, changed, sorted(was.keys() - now.keys()))

    def commit(self) -> None:
        """The reload is applied: added upstreams start, changed ones get their new gateways,
        removed ones stop (their last reports and Teardown sent, their TUN gone)."""
        if self._staged is None:
            return
        added, changed, removed = self._staged
        self._staged = None
        for name in removed:
            upstream = self.upstreams.pop(name, None)
            if upstream is not None:
                _stop(upstream)
        for name, c in changed.items():
            assert c.amt is not None
            try:
                self.upstreams[name].retune(c.amt, c.liveness.queries)
            except AmtError as exc:  # keeps its old gateways: said, not undone
                log.error("reload: %s", exc)
        for name, upstream in added.items():
            self.upstreams[name] = upstream
            if self._loop is not None:
                upstream.start(self._loop)

    def abort(self) -> None:
        """The reload is refused: what ``stage`` made is closed."""
        if self._staged is not None:
            for upstream in self._staged[0].values():
                upstream.close()
            self._staged = None


def _stop(upstream: AmtUpstream) -> None:
    try:
        upstream.stop()
    except Exception:  # the others stop all the same
        log.exception("stopping AMT upstream %s", upstream.interface)
        upstream.close()


def _open_all(upstreams: Iterable[AmtUpstream]) -> None:
    """Open each of ``upstreams``; if one fails, close those opened and raise."""
    opened: list[AmtUpstream] = []
    try:
        for upstream in upstreams:
            upstream.open()
            opened.append(upstream)
    except BaseException:
        for upstream in opened:
            upstream.close()
        raise
