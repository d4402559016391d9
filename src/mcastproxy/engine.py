"""The protocol engine: IGMP/MLD proxying over several upstreams, with no I/O.

Theory of operation. Events come in with the time they happened (``handle(event, now)``);
actions go out (``pop_actions()``); the engine says when it next needs waking
(``next_deadline()``). The engine dispatches; each concept lives in a module of its own:

1. Downstream links (``downstream``, over ``membership.RouterLink``, RFC 9776 §6 / RFC 9777
   §7): the router side, per link and family. Reports build each link's per-group state and
   each subscriber's (explicit tracking), as far as the edge policy and the limits admit
   (``admission``, ``policy``; RFC 8313 §6.1): a refused join makes no state, so nothing of
   it reaches the ledger or an upstream.
2. The subscription ledger (``ledger``, draft §3-§4.2): each subscriber's state split into
   shares per upstream by the draft's selection (``candidates``), merged per upstream
   (RFC 4605 §4.1).
3. Upstreams (``upstreams``, over ``upstream.UpstreamHost``, RFC 9776 §5 / RFC 9777 §6): the
   host side, per upstream and family, reporting the merge of its shares. Dirty merges are
   reported once per event, after every share has moved.
4. The forwarding plan (``forwarding``, draft §3.3): a route per flow the kernel saw, one
   feeder per link, hot standbys.
5. Takeover (``takeover``, draft §5.1-§5.2; ``channel_takeover``, per channel) and moves
   between upstreams, make before break (``moves``).

If handling an event raises (a fault of the engine, never of the input: bad input is a
counted drop), the engine does not go on from a state the event left half-changed: it resets
from its configuration as a router restart would (routes deleted, links started afresh,
subscribers re-learned from the next queries), logs and counts it, and re-raises.

Nothing here reads the clock, sleeps, or touches a socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import get_args

from mcastproxy.actions import Action, DeleteRoute, Outbox, SendPacket
from mcastproxy.candidates import Addresses, Candidates
from mcastproxy.channel_takeover import ChannelTakeover
from mcastproxy.config import Config
from mcastproxy.downstream import DownstreamLinks, own_address
from mcastproxy.drops import Drop, DropCounts
from mcastproxy.events import (
    ClearGroups,
    ConfigChanged,
    CountersSampled,
    Event,
    HelloReceived,
    InterfaceDown,
    InterfaceUp,
    NewFlow,
    PacketReceived,
    RatesMeasured,
    Shutdown,
    TimerExpired,
    UpstreamUsability,
)
from mcastproxy.family import BY_VERSION, Family
from mcastproxy.flowwatch import FlowWatch, Health
from mcastproxy.forwarding import Forwarding, Route
from mcastproxy.learning import Learning
from mcastproxy.ledger import Avoid, Ledger
from mcastproxy.membership.router import RouterLink
from mcastproxy.membership.validity import check_upstream_query
from mcastproxy.moves import Moves
from mcastproxy.snapshot import EngineSnapshot, Slices, whole
from mcastproxy.snapshot import take_slices as take_snapshot_slices
from mcastproxy.takeover import Takeover
from mcastproxy.upstream.host import UpstreamHost
from mcastproxy.upstream.merge import InterfaceState
from mcastproxy.upstreams import Upstreams
from mcastproxy.wire import WireError, build_igmp, build_mld, parse_igmp, parse_mld
from mcastproxy.wire.messages import Query

_EVENTS = get_args(Event)
_UNSPECIFIED = frozenset(f.unspecified for f in Family)  # 0.0.0.0, ::


class Engine:
    """The whole proxy: ``handle(event, now)``, ``pop_actions()``, ``next_deadline()``, and
    ``snapshot()`` for what the outside sees."""

    def __init__(self, config: Config, *, rng: Callable[[], float],
                 addresses: Addresses | None = None) -> None:
        self._rng = rng
        self._outbox = Outbox()
        self._drops = DropCounts()
        self.resets = 0
        self.last_error: str | None = None
        self._build(config, addresses)

    def _build(self, config: Config, addresses: Addresses | None) -> None:
        """The engine's state, fresh from ``config``: no links, flows or subscriptions."""
        outbox = self._outbox
        self._addresses: dict[str, tuple[bytes, ...]] = {}  # interfaces that are up
        links: dict[tuple[str, Family], RouterLink] = {}
        avoid: Avoid = {}
        cands = self._candidates = Candidates(config, addresses)
        ledger = self._ledger = Ledger(cands, avoid)
        fwd = self._forwarding = Forwarding(links, ledger, cands, outbox, FlowWatch({}, {}))
        self._downstream = DownstreamLinks(links, ledger, fwd, self._send, outbox,
                                           cands.placement)
        self._learning = Learning(cands, ledger, links, outbox)
        moves = self._moves = Moves(ledger, cands, outbox, lambda: self._downstream.names,
                                    fwd.refresh, fwd.delivering)
        fwd.bridged, fwd.end_bridges = moves.bridges, moves.end
        channels = self._channels = ChannelTakeover(cands, fwd, moves, outbox)
        channels.avoid = avoid
        self._takeover = Takeover(cands, fwd, moves, channels, outbox)
        self._upstreams = Upstreams(ledger, fwd, channels, cands, outbox, self._send, self._rng)
        self._started = False  # liveness starts with the first event, which has a time
        self._configure(config)

    def _configure(self, config: Config) -> None:
        self._config = config
        families = [f for f, on in ((Family.V4, config.igmp), (Family.V6, config.mld)) if on]
        self._forwarding.watch.configure(config.data_intervals(), {
            c.interface: c.hold_down if c.hold_down is not None else config.upstream.hold_down
            for c in config.upstream.candidates})
        # Sessions (subscriber, channel) are put out only for a session log to write.
        self._downstream.sessions = (config.accounting is not None
                                     and config.accounting.session_log is not None)
        self._downstream.configure(config, families)
        self._upstreams.configure(config, families)
        self._learning.configure(config)

    # --- surface ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> None:
        """Take in one event that happened at ``now``."""
        if not isinstance(event, _EVENTS):
            raise TypeError(f"not an engine event: {event!r}")
        if not self._started:
            self._takeover.start(self._config, now)
            self._started = True
        config = self._config  # the one in force before the event (a reload may fail)
        try:
            self._dispatch(event, now)
            self._settle(now)
        except Exception as exc:
            self._reset(exc, now, config)
            raise

    def handle_burst(self, events: Sequence[Event], now: float) -> None:
        """Take in a burst of events (the reports one socket read brought): each handled in
        order, then what changed upstream reported and the routes refreshed once for all
        (a state-change report carries the burst's records together). A fault resets the
        engine as ``handle`` does: the burst is not half applied."""
        if not all(isinstance(event, _EVENTS) for event in events):
            raise TypeError(f"not engine events: {events!r}")
        if not self._started:
            self._takeover.start(self._config, now)
            self._started = True
        config = self._config
        try:
            for event in events:
                self._dispatch(event, now)
            self._settle(now)
        except Exception as exc:
            self._reset(exc, now, config)
            raise

    def _settle(self, now: float) -> None:
        """After the event: report what changed upstream, then the routes, so that a flow
        whose upstream was just left is not set first."""
        upstreams = self._upstreams
        if self._ledger.dirty or upstreams.unsent:  # (most reports change nothing upstream)
            upstreams.report_dirty(now)
        if self._forwarding.stale:
            self._forwarding.refresh_stale()

    def _dispatch(self, event: Event, now: float) -> None:
        if isinstance(event, PacketReceived):
            self._packet(event, now)
        elif isinstance(event, TimerExpired):
            self._timers(now)
        elif isinstance(event, NewFlow):
            drop = self._forwarding.new_flow(event.interface, event.source, event.group, now)
            if drop is not None:
                self._drops.add(event.interface, drop)
        elif isinstance(event, InterfaceUp):
            self._interface_up(event, now)
        elif isinstance(event, InterfaceDown):
            self._interface_down(event, now)
        elif isinstance(event, UpstreamUsability):
            self._outbox.log("info" if event.usable else "warning", "override",
                             f"upstream {event.interface} set "
                             f"{'usable' if event.usable else 'unusable'}: {event.cause}",
                             upstream=event.interface, cause=event.cause)
            self._takeover.force(event.interface, event.usable, now)
        elif isinstance(event, HelloReceived):
            if event.interface in self._candidates.names:
                self._signal(event.interface, event.source, "hello", now)
            else:
                self._drops.add(event.interface, Drop.HELLO_NOT_ON_UPSTREAM)
        elif isinstance(event, CountersSampled):
            self._channels.sampled(event.packets, now)
        elif isinstance(event, RatesMeasured):
            self._learning.measured(event.rates, now)
        elif isinstance(event, ClearGroups):
            cleared = self._downstream.clear(event.interface, event.group, event.source,
                                             event.family)
            self._outbox.log("info", "clear-groups", f"cleared {cleared} group states on "
                             f"{event.interface or 'every link'}", cleared=cleared)
        elif isinstance(event, ConfigChanged):
            self._reconfigure(event.config, now, event.reselect)
        elif isinstance(event, Shutdown) and self._config.upstream.leave_on_stop:
            self._outbox.log("info", "leave-on-stop", "stopping: leaving every group joined "
                             "upstream")
            self._upstreams.leave_all(now)

    def pop_actions(self) -> list[Action]:
        """The actions asked for since the last call, in order."""
        return self._outbox.pop()

    def next_deadline(self) -> float | None:
        """When the engine next needs a ``TimerExpired``; None when nothing is pending."""
        # Asked after every event the daemon handles: plain comparisons, no generators.
        best = _earliest(self._downstream.links.values(), None)
        best = _earliest(self._upstreams.hosts.values(), best)
        for d in (self._takeover.next_deadline(), self._moves.next_deadline(),
                  self._channels.next_deadline()):
            if d is not None and (best is None or d < best):
                best = d
        return best

    def snapshot(self, now: float | None = None) -> EngineSnapshot:
        """What status, metrics and an API show: plain data, detached from the engine;
        ``now``: the time it is taken at, that status counts relative times from."""
        return whole(self.snapshot_slices(now))

    def snapshot_slices(self, now: float | None = None) -> Slices:
        """``snapshot()`` a slice at a time, for a caller that handles events in between (the
        status server): the snapshot is the generator's return value."""
        return take_snapshot_slices(
            self._config, self._addresses, self._downstream.links, self._upstreams.hosts,
            self._ledger, self._forwarding,
            self._takeover.liveness if self._takeover.started else None,
            self._candidates.unusable, self._moves.bridges, self.dropped, self._outbox.counts,
            self.resets, self.last_error, self._downstream.entries, now, self._learning)

    def _reset(self, exc: Exception, now: float, config: Config) -> None:
        """Handling an event failed half-way: start again from ``config`` (the one in force
        before the event: a reload that fails is not half taken), as a router restart would,
        rather than go on from a state nobody can vouch for."""
        routes = list(self._forwarding.routes)
        up = dict(self._addresses)
        downstream = self._downstream  # what it knew of the links' subnets is kept
        self._outbox.pop()  # the failed event's actions: none of them is trustworthy
        self.resets += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._outbox.counts["engine reset"] += 1
        self._build(config, None)
        for upstream, source, group in routes:
            self._outbox.append(DeleteRoute(upstream, source, group))
        self._outbox.log("error", "engine-reset",
                         f"internal error ({self.last_error}): state reset from the "
                         "configuration; subscribers are learned again from the next queries",
                         error=self.last_error)
        self._takeover.start(self._config, now)
        self._started = True
        try:
            for name, addresses in up.items():
                lengths = downstream.prefix_lengths(name, addresses)
                self._interface_up(InterfaceUp(name, addresses, lengths), now)
            self._settle(now)
        except Exception:  # a second fault must not hide the first: counted, not raised
            self._outbox.counts["engine reset failed"] += 1

    # --- views, for status and tests ------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @property
    def unusable(self) -> frozenset[str]:
        """Candidate upstreams that are down or inactive."""
        return self._candidates.unusable

    @property
    def dropped(self) -> DropCounts:
        """Inputs dropped, by interface and reason (the router links' own drops included)."""
        counts = DropCounts()
        counts.merge(self._drops)
        for name, reason, n in self._downstream.drops():
            counts.add(name, reason, n)
        return counts

    @property
    def counts(self) -> Mapping[str, int]:
        """Liveness changes, takeovers, swaps, resets: by a short stable name."""
        return dict(self._outbox.counts)

    def memberships(self) -> dict[str, int]:
        """Groups with members per downstream link (IGMP and MLD summed), cheaply: for
        metrics, published every second."""
        return self._downstream.group_counts()

    def messages(self) -> dict[tuple[str, str, str, str], int]:
        """IGMP/MLD messages per (link, protocol, received/sent/error, type): for metrics."""
        return self._downstream.messages()

    def bandwidth(self) -> tuple[dict[str, int], dict[str, int]]:
        """(link -> bits a second of its channels, upstream -> of the channels placed on
        it), where a table rates channels and placement is on: for metrics."""
        placement = self._candidates.placement
        ups = ({u: load.bandwidth for u, load in placement.load().items()}
               if placement.active else {})
        return self._downstream.bandwidth(), ups

    def routes(self) -> Mapping[Route, frozenset[str]]:
        """(upstream, source, group) -> the downstream links it is forwarded to (read-only:
        the daemon reads it every counter sample, too often to copy thousands of routes)."""
        return MappingProxyType(self._forwarding.routes)

    def feeders(self, link: str, group: bytes) -> dict[str, InterfaceState]:
        """Which upstreams this link asks for the group, and what of it."""
        return self._ledger.feeders(link, group)

    def bridged(self) -> frozenset[bytes]:
        """Groups with subscriptions kept on their old upstream until the new one delivers."""
        return frozenset(self._moves.bridges)

    def flow_health(self) -> dict[Route, Health]:
        """The data liveness of the flows on watched upstreams."""
        return dict(self._forwarding.watch.flows())

    # --- configuration ----------------------------------------------------------------------

    def _reconfigure(self, config: Config, now: float, reselect: bool = False) -> None:
        self._candidates.configure(config, self._selector_addresses())
        if self._candidates.placement.activated:
            self._ledger.recount_placement()
        self._configure(config)
        self._takeover.reconfigure(config, now, set(self._addresses))
        self._channels.forget()  # per-channel takeovers are selected again under new rules
        if reselect:
            # A controller's change: every subscription selected afresh, bridged on its old
            # upstream until the new one delivers (make before break).
            self._moves.reselect(now, lambda share: True, fresh=True, bridge=True)
        else:
            # Remembered selections stay (smooth migration) unless their upstream is gone.
            self._moves.reselect(now, lambda share: True)
        self._downstream.retune(now)  # running links take their new settings now
        self._outbox.log("info", "config", "configuration applied")

    def _selector_addresses(self) -> dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
        return {
            name: [ipaddress.ip_address(a) for a in addrs]
            for name, addrs in self._addresses.items()
            if name in self._candidates.names
        }

    # --- packets and timers -------------------------------------------------------------------

    def _packet(self, ev: PacketReceived, now: float) -> None:
        family = BY_VERSION[ev.family]
        limiter = self._downstream.limiters.get(ev.interface)
        if limiter is not None:
            # Report rate limits: a flooding host's excess costs no decoding and no state.
            source = ev.source
            drop = limiter.admit(None if source in _UNSPECIFIED else source, now)
            if drop is not None:
                self._drops.add(ev.interface, drop)
                return
        try:
            if family is Family.V4:
                msg = parse_igmp(ev.payload)
            else:
                msg = parse_mld(ev.payload, ev.source, ev.destination)
        except WireError as exc:
            self._drops.add(ev.interface, Drop(exc.reason))
            return
        if ev.interface in self._candidates.names:
            # RFC 4605 §2: the router side never runs on an upstream; only queries matter.
            if isinstance(msg, Query) and (ev.interface, family) in self._upstreams.hosts:
                # An invalid query (membership.validity) is no evidence of life either.
                drop = check_upstream_query(family, ev.source, ev.ttl, ev.router_alert)
                if drop is None:
                    drop = self._takeover.signal(ev.interface, ev.source, "query", now)
                if drop is not None:
                    self._drops.add(ev.interface, drop)  # not from its routers: no effect
                    return
                self._upstreams.query(ev.interface, family, msg, now)
            else:
                self._drops.add(ev.interface, Drop.NOT_A_QUERY_ON_UPSTREAM)
            return
        drop = self._downstream.receive(ev.interface, family, msg, ev.source, now, ev.ttl,
                                        ev.router_alert)
        if drop is not None:
            self._drops.add(ev.interface, drop)

    def _signal(self, upstream: str, source: bytes, kind: str, now: float) -> None:
        drop = self._takeover.signal(upstream, source, kind, now)
        if drop is not None:
            self._drops.add(upstream, drop)

    def _timers(self, now: float) -> None:
        self._takeover.handle_timers(now)
        self._moves.due(now)
        self._channels.due(now)
        self._downstream.due(now)
        self._upstreams.due(now)

    # --- interfaces -----------------------------------------------------------------------

    def _interface_up(self, ev: InterfaceUp, now: float) -> None:
        was_up = ev.interface in self._addresses
        self._addresses[ev.interface] = ev.addresses
        if ev.interface in self._downstream.names:
            self._downstream.up(ev.interface, ev.addresses, now, ev.prefix_lengths)
        elif ev.interface in self._candidates.names:
            # The §4.4 fallback compares candidate addresses: compile them in.
            self._candidates.readdress(self._selector_addresses())
            if not was_up:
                self._outbox.log("info", "upstream-up", f"upstream {ev.interface} is up",
                                 upstream=ev.interface)
                self._takeover.link(ev.interface, True, now)

    def _interface_down(self, ev: InterfaceDown, now: float) -> None:
        if self._addresses.pop(ev.interface, None) is None:
            return
        if ev.interface in self._downstream.names:
            self._downstream.down(ev.interface, now)
        elif ev.interface in self._candidates.names:
            self._candidates.readdress(self._selector_addresses())
            self._outbox.log("warning", "upstream-down", f"upstream {ev.interface} is down",
                             upstream=ev.interface)
            self._takeover.link(ev.interface, False, now)

    def _send(self, interface: str, family: Family, destination: bytes, message: object) -> None:
        addrs = self._addresses.get(interface)
        if addrs is None:
            self._drops.add(interface, Drop.SEND_ON_DOWN_INTERFACE)
            return
        if family is Family.V4:
            payload = build_igmp(message)  # type: ignore[arg-type]
        else:
            source = own_address(addrs, Family.V6)
            if source is None:
                self._drops.add(interface, Drop.NO_LINK_LOCAL_ADDRESS)
                return
            payload = build_mld(message, source, destination)  # type: ignore[arg-type]
        self._outbox.append(SendPacket(interface, family, destination, payload))


def _earliest(timed: Iterable[RouterLink | UpstreamHost], best: float | None) -> float | None:
    """The earliest of ``best`` and the deadlines of ``timed``."""
    for t in timed:
        d = t.next_deadline()
        if d is not None and (best is None or d < best):
            best = d
    return best
