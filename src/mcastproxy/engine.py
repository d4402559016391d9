"""The protocol engine: IGMP/MLD proxying over several upstreams, with no I/O.

Theory of operation. Events come in with the time they happened; actions go out; the engine
says when it next needs waking. In between, four layers pass changes along:

1. Downstream links (``RouterLink``, RFC 9776 §6 / RFC 9777 §7): the router side. Reports
   build each link's per-group state and the state of each subscriber (explicit tracking).
2. Subscriptions: each subscriber's state for a group is split into shares per upstream by
   the draft's selection (``subscriptions.split``). Shares of a link and group are kept
   per upstream (which upstream wants what for this link) and per upstream and group over
   all links (what this upstream must report).
3. Upstreams (``UpstreamHost``, RFC 9776 §5 / RFC 9777 §6): the host side. Each reports the
   merge of the shares it was given (RFC 4605 §4.1).
4. Forwarding: for each (source, group) that the kernel saw arrive on an upstream, the links
   it is forwarded to: those whose router state wants it and which that upstream feeds. A link
   is fed by one upstream only; other upstreams that also carry the flow for it keep a route
   with no outgoing links, as hot standby (draft §3.3).

Subscribers that are no longer tracked still count while the link forwards what they asked:
a subscriber that leaves without fast leave keeps its shares ("lingering") until the link's
last-member queries end, so the upstream is not left before the link is; and when a link
wants more than its tracked subscribers explain (older hosts suppress reports, IGMP reports
from 0.0.0.0), an anonymous share selected for an unknown subscriber covers the rest.

Nothing here reads the clock, sleeps, or touches a socket.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from mcastproxy.actions import Action, DeleteRoute, Log, SendPacket, SetRoute
from mcastproxy.config import Config
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
    UpstreamUsability,
)
from mcastproxy.flowwatch import FlowWatch, Health
from mcastproxy.liveness import Liveness
from mcastproxy.membership.outputs import GroupChanged, SendQuery, SubscriberChanged
from mcastproxy.membership.router import RouterLink
from mcastproxy.membership.state import FilterMode
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.selection import Channels, Selector
from mcastproxy.subscriptions import NOTHING, Choice, Shares, split
from mcastproxy.upstream.host import UpstreamHost
from mcastproxy.upstream.merge import EMPTY, InterfaceState, MergedGroup
from mcastproxy.wire import WireError, build_igmp, build_mld, parse_igmp, parse_mld
from mcastproxy.wire.messages import Query

IN, EX = FilterMode.INCLUDE, FilterMode.EXCLUDE
# Linux keeps a (source, group) with no route "unresolved" for 10 s (ipmr/ip6mr), queueing a
# few packets and raising no new upcall meanwhile.
KERNEL_UNRESOLVED_HOLD = 10.0
MAX_UNASKED_SOURCES = 64
# Packets the kernel queued this long ago for a flow with no route are stale: resolve them
# into nothing rather than deliver them late (or twice, when another upstream delivered them).
STALE_QUEUE = 0.05
# A subscription moved to an upstream that is usable again stays on the old one until the
# new one delivers (make before break), but no longer than this: an upstream join through
# PIM can take a few seconds.
BRIDGE_TIMEOUT = 5.0
Subscriber = bytes | None  # None: the anonymous share of a link
LinkKey = tuple[str, bytes]  # (downstream link, group)


def _wants(state: InterfaceState, source: bytes) -> bool:
    mode, sources = state
    return (source in sources) if mode is IN else (source not in sources)


def _timers(config: Config, link: str) -> ProtocolTimers:
    t = config.downstream_timers(link)
    return ProtocolTimers(
        robustness=t.robustness,
        query_interval=t.query_interval,
        query_response_interval=t.query_response_interval,
        last_member_query_interval=t.last_member_query_interval,
        last_member_query_count=t.last_member_query_count,
        startup_query_interval=t.startup_query_interval,
        startup_query_count=t.startup_query_count,
        unsolicited_report_interval=t.unsolicited_report_interval,
    )


class _Share:
    """One subscriber's contribution for a (link, group): its state and where it went."""

    __slots__ = ("choice", "shares", "state")

    def __init__(self, state: InterfaceState, shares: Shares, choice: Choice) -> None:
        self.state = state
        self.shares = shares
        self.choice = choice


class _LinkGroup:
    """What one downstream link asks for one group, by subscriber and by upstream."""

    __slots__ = ("bridging", "by_upstream", "lingering", "members", "routed", "tracked")

    def __init__(self) -> None:
        self.members: dict[Subscriber, _Share] = {}  # tracked subscribers and anonymous
        self.lingering: dict[bytes, list[_Share]] = {}  # departed, until the link catches up
        # Moved to another upstream that does not deliver yet: the old shares stay meanwhile.
        self.bridging: dict[Subscriber, _Share] = {}
        self.tracked = MergedGroup()  # merge of the tracked subscribers' states
        self.by_upstream: dict[str, MergedGroup] = {}  # merge of the shares given to each
        self.routed: object = None  # what the link's routes were last computed from

    def route_inputs(self, wanted: InterfaceState) -> object:
        """What this link's part of the routes depends on, besides flows and liveness (which
        recompute the routes themselves when they change)."""
        return (wanted, len(self.bridging),
                tuple((u, m.state()) for u, m in self.by_upstream.items()))

    def empty(self) -> bool:
        return not (self.members or self.lingering or self.bridging)


class Engine:
    """The whole proxy: ``handle(event, now)``, ``pop_actions()``, ``next_deadline()``."""

    def __init__(
        self,
        config: Config,
        *,
        rng: Callable[[], float],
        addresses: Mapping[str, Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]]
        | None = None,
    ) -> None:
        self._rng = rng
        self._actions: list[Action] = []
        self.dropped: Counter[str] = Counter()
        self._addresses: dict[str, tuple[bytes, ...]] = {}  # interfaces that are up
        self._links: dict[tuple[str, int], RouterLink] = {}
        self._hosts: dict[tuple[str, int], UpstreamHost] = {}
        self._liveness: Liveness | None = None  # made at the first event, which has a time
        self._unusable: frozenset[str] = frozenset()
        self._rejected_from: set[tuple[str, bytes]] = set()  # logged once each
        self._link_groups: dict[LinkKey, _LinkGroup] = {}
        self._upstream_groups: dict[tuple[str, bytes], MergedGroup] = {}
        self._routes: dict[tuple[str, bytes, bytes], frozenset[str]] = {}
        self._flows_by_group: dict[bytes, set[tuple[str, bytes]]] = {}
        self._dirty: set[tuple[str, bytes]] = set()  # (upstream, group) merges changed
        # Sources the kernel saw on an upstream for a group it had not joined, and when.
        self._unasked: dict[tuple[str, bytes], dict[bytes, float]] = {}
        self._stale_routes: set[tuple[bytes, str]] = set()  # (group, link) to recompute
        self._watch = FlowWatch({}, {})
        # Per-channel takeover: group -> source (None: any source) -> upstreams on which
        # that channel alone is dead.
        self._avoid: dict[bytes, dict[bytes | None, frozenset[str]]] = {}
        # When each per-channel mark is lifted and the channel tried there again (no entry:
        # hold-down "never"): (group, source or None, upstream) -> time.
        self._avoid_until: dict[tuple[bytes, bytes | None, str], float] = {}
        self._bridges: dict[bytes, float] = {}  # group -> when its bridging shares end
        self.counts: Counter[str] = Counter()  # liveness changes, takeovers, swaps
        self._configure(config, addresses)

    # --- surface ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> None:
        """Take in one event that happened at ``now``."""
        self._now = now
        if self._liveness is None:
            self._liveness = Liveness(self._config, now)
            self._unusable = self._liveness.unusable()
        try:
            self._dispatch(event, now)
        finally:
            self._report_dirty()

    def _dispatch(self, event: Event, now: float) -> None:
        if isinstance(event, PacketReceived):
            self._packet(event, now)
        elif isinstance(event, TimerExpired):
            self._timers(now)
        elif isinstance(event, NewFlow):
            self._new_flow(event)
        elif isinstance(event, InterfaceUp):
            self._interface_up(event, now)
        elif isinstance(event, InterfaceDown):
            self._interface_down(event, now)
        elif isinstance(event, UpstreamUsability):
            self._usability(event, now)
        elif isinstance(event, HelloReceived):
            self._hello(event, now)
        elif isinstance(event, CountersSampled):
            self._counters(event, now)
        elif isinstance(event, ConfigChanged):
            self._reconfigure(event.config, now)
        else:
            raise TypeError(f"not an engine event: {event!r}")

    def pop_actions(self) -> list[Action]:
        """The actions asked for since the last call, in order."""
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        """When the engine next needs a ``TimerExpired``; None when nothing is pending."""
        deadlines = [m.next_deadline() for m in (*self._links.values(), *self._hosts.values())]
        if self._liveness is not None:
            deadlines.append(self._liveness.next_deadline())
        if self._bridges:
            deadlines.append(min(self._bridges.values()))
        if self._avoid_until:
            deadlines.append(min(self._avoid_until.values()))
        return min((d for d in deadlines if d is not None), default=None)

    # --- views, for status and tests ------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._config

    @property
    def unusable(self) -> frozenset[str]:
        """Candidate upstreams that are down or inactive."""
        return self._unusable

    def liveness(self, upstream: str) -> dict[str, object]:
        """The evidence about ``upstream`` and what it says."""
        assert self._liveness is not None
        return self._liveness.describe(upstream)

    def link(self, name: str, family: int) -> RouterLink | None:
        return self._links.get((name, family))

    def host(self, name: str, family: int) -> UpstreamHost | None:
        return self._hosts.get((name, family))

    def routes(self) -> Mapping[tuple[str, bytes, bytes], frozenset[str]]:
        """(upstream, source, group) -> the downstream links it is forwarded to."""
        return self._routes

    def feeders(self, link: str, group: bytes) -> dict[str, InterfaceState]:
        """Which upstreams this link asks for the group, and what of it."""
        lg = self._link_groups.get((link, group))
        if lg is None:
            return {}
        return {u: m.state() for u, m in lg.by_upstream.items() if not m.empty}

    def bridged(self) -> frozenset[bytes]:
        """Groups with subscriptions kept on their old upstream until the new one delivers."""
        return frozenset(self._bridges)

    def flow_health(self) -> dict[tuple[str, bytes, bytes], Health]:
        """The data liveness of the flows on watched upstreams."""
        return dict(self._watch.flows())

    # --- configuration ----------------------------------------------------------------------

    def _configure(
        self,
        config: Config,
        addresses: Mapping[str, Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]] | None,
    ) -> None:
        self._config = config
        self._selector = Selector(config, addresses)
        self._candidates = {c.interface for c in config.upstream.candidates}
        self._order = {c.interface: i for i, c in enumerate(config.upstream.candidates)}
        self._priority = {c.interface: c.priority for c in config.upstream.candidates}
        self._downstream = {d.interface for d in config.downstream}
        self._families = [f for f, on in ((4, config.igmp), (6, config.mld)) if on]
        self._resilient = Channels(config.upstream.resilient)
        self._watch.configure(config.data_intervals(), {
            c.interface: c.hold_down if c.hold_down is not None else config.upstream.hold_down
            for c in config.upstream.candidates})
        t = config.timers
        for name in self._candidates:
            for fam in self._families:
                if (name, fam) not in self._hosts:
                    self._hosts[name, fam] = UpstreamHost(
                        fam,
                        robustness=t.robustness,
                        unsolicited_report_interval=t.unsolicited_report_interval,
                        query_interval=t.query_interval,
                        query_response_interval=t.query_response_interval,
                        rng=self._rng,
                    )

    def _still_good(self, ups: tuple[str, ...]) -> bool:
        if not all(u in self._candidates for u in ups):
            return False
        return not (self._config.upstream.takeover and any(u in self._unusable for u in ups))

    def _reconfigure(self, config: Config, now: float) -> None:
        self._configure(config, self._selector_addresses())
        self._liveness = Liveness(config, now, previous=self._liveness)
        for name in self._candidates:
            self._liveness.link(name, name in self._addresses, now)
        self._liveness.pop_changes()
        self._unusable = self._liveness.unusable()
        self._avoid.clear()  # per-channel takeovers are selected again under the new rules
        self._avoid_until.clear()
        # Remembered selections stay (smooth migration) unless their upstream is gone.
        self._reselect(now, lambda share: True)
        self._log("info", "config", "configuration applied")

    def _selector_addresses(self) -> dict[str, list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
        return {
            name: [ipaddress.ip_address(a) for a in addrs]
            for name, addrs in self._addresses.items()
            if name in self._candidates
        }

    # --- packets ------------------------------------------------------------------------

    def _packet(self, ev: PacketReceived, now: float) -> None:
        try:
            if ev.family == 4:
                msg = parse_igmp(ev.payload)
            else:
                msg = parse_mld(ev.payload, ev.source, ev.destination)
        except WireError as exc:
            self.dropped[f"malformed: {exc.reason}"] += 1
            return
        if ev.interface in self._candidates:
            # RFC 4605 §2: the router side never runs on an upstream; only queries matter.
            if isinstance(msg, Query) and (host := self._hosts.get((ev.interface, ev.family))):
                self._signal(ev.interface, ev.source, "query", now)
                host.receive_query(msg, now)
                self._flush_host(ev.interface, ev.family, host)
            else:
                self.dropped["not a query, on an upstream"] += 1
            return
        link = self._links.get((ev.interface, ev.family))
        if link is None:
            self.dropped["not a proxied interface or family"] += 1
            return
        link.receive(msg, ev.source, now)
        self._flush_link(ev.interface, ev.family, link, now)

    def _timers(self, now: float) -> None:
        assert self._liveness is not None
        self._liveness.handle_timers(now)
        self._apply_liveness(now)
        for group in [g for g, end in self._bridges.items() if end <= now]:
            self._end_bridges(group, delivered=False)
        retry = {}
        for (group, key, upstream), end in list(self._avoid_until.items()):
            if end <= now:
                self._lift_avoid(frozenset((upstream,)), group, key)
                retry[group] = upstream
        for group, upstream in retry.items():
            # After the hold-down, the channel is selected afresh: joined again where it
            # died while it stays where it is, until the first upstream delivers.
            self._log("info", "channel-retry",
                      f"{_text(group)} tried again on {upstream} after its hold-down",
                      upstream=upstream, group=_text(group))
            self._reselect(now, lambda share: True, fresh=True, group_only=group, bridge=True)
        for (name, fam), link in self._links.items():
            deadline = link.next_deadline()
            if deadline is not None and deadline <= now:
                link.handle_timers(now)
                self._flush_link(name, fam, link, now)
        for (name, fam), host in self._hosts.items():
            deadline = host.next_deadline()
            if deadline is not None and deadline <= now:
                host.handle_timers(now)
                self._flush_host(name, fam, host)

    def _flush_link(self, name: str, family: int, link: RouterLink, now: float) -> None:
        # Groups to settle once each, in order, with what the link now forwards of each (the
        # outputs come after the whole input, so that holds for all of them).
        touched: dict[bytes, InterfaceState] = {}
        for out in link.pop_outputs():
            if isinstance(out, SendQuery):
                self._send(name, family, out.destination, out.query)
            elif isinstance(out, SubscriberChanged):
                group = out.group
                wanted = touched.get(group)
                if wanted is None:
                    wanted = touched[group] = link.forwarded(group)
                self._subscriber_changed(name, link, group, out.subscriber, wanted)
            elif isinstance(out, GroupChanged) and out.group not in touched:
                touched[out.group] = link.forwarded(out.group)
        for group, wanted in touched.items():
            self._settle(name, group, wanted)

    def _flush_host(self, name: str, family: int, host: UpstreamHost) -> None:
        for out in host.pop_outputs():
            self._send(name, family, out.destination, out.message)

    def _send(self, interface: str, family: int, destination: bytes, message: object) -> None:
        addrs = self._addresses.get(interface)
        if addrs is None:
            self.dropped["send on an interface that is down"] += 1
            return
        if family == 4:
            payload = build_igmp(message)  # type: ignore[arg-type]
        else:
            source = next((a for a in addrs if len(a) == 16 and a[:2] == b"\xfe\x80"), None)
            if source is None:
                self.dropped["no IPv6 link-local address to send from"] += 1
                return
            payload = build_mld(message, source, destination)  # type: ignore[arg-type]
        self._actions.append(SendPacket(interface, family, destination, payload))

    # --- subscriptions --------------------------------------------------------------------

    def _subscriber_changed(
        self, name: str, link: RouterLink, group: bytes, subscriber: bytes,
        wanted: InterfaceState,
    ) -> None:
        lg = self._link_groups.get((name, group))
        if lg is None:
            lg = self._link_groups[name, group] = _LinkGroup()
        state = link.subscriber(group, subscriber)
        if (bridge := lg.bridging.pop(subscriber, None)) is not None:
            self._unshare(group, lg, bridge)  # what it asks now is shared afresh
        old = lg.members.pop(subscriber, None)
        if old is not None:
            lg.tracked.remove(*old.state)
            if wanted != NOTHING:
                # The link may still forward what it asked: keep its shares until it stops.
                lg.lingering.setdefault(subscriber, []).append(old)
            else:
                self._unshare(group, lg, old)
        if state is not None:
            new = (state.filter_mode, state.sources)
            lg.tracked.add(*new)
            self._share(group, lg, subscriber, new, old.choice if old else None)

    def _settle(self, name: str, group: bytes, wanted: InterfaceState) -> None:
        """Bring the lingering and anonymous shares of (link, group) in line with what the
        link forwards (``wanted``), once the link's outputs for an event are in."""
        lg = self._link_groups.get((name, group))
        if lg is None:
            if wanted == NOTHING:
                return
            lg = self._link_groups[name, group] = _LinkGroup()
        explained = wanted == NOTHING or wanted == lg.tracked.state()
        if lg.lingering and explained:
            for olds in lg.lingering.values():
                for old in olds:
                    self._unshare(group, lg, old)
            lg.lingering.clear()
        explained = explained or bool(lg.lingering)
        anon = lg.members.get(None)
        if (explained or anon is None or anon.state != wanted) and (
                bridge := lg.bridging.pop(None, None)) is not None:
            self._unshare(group, lg, bridge)
        if explained and anon is not None:
            self._unshare(group, lg, anon)
            del lg.members[None]
        elif not explained and (anon is None or anon.state != wanted):
            if anon is not None:
                self._unshare(group, lg, anon)
            self._share(group, lg, None, wanted, anon.choice if anon else None)
        if lg.empty():
            del self._link_groups[name, group]
        elif group in self._flows_by_group and self._selector_ignores_subscribers(group):
            # A subscriber joining a channel the link already gets changes none of its routes:
            # skip the recomputation (a popular channel sees many such joins).
            inputs = lg.route_inputs(wanted)
            if inputs == lg.routed:
                return
            lg.routed = inputs
        if group in self._flows_by_group:
            self._stale_routes.add((group, name))

    def _selector_ignores_subscribers(self, group: bytes) -> bool:
        return not self._selector.by_subscriber(len(group)) and not self._resilient.by_subscriber

    def _share(
        self,
        group: bytes,
        lg: _LinkGroup,
        subscriber: Subscriber,
        state: InterfaceState,
        previous: Choice | None,
    ) -> _Share:
        takeover = self._config.upstream.takeover
        shares, choice = split(
            self._selector, subscriber, group, state, self._unusable, previous, self._still_good,
            self._avoid.get(group) if takeover else None,
            self._resilient.match if self._resilient else None,
        )
        share = lg.members[subscriber] = _Share(state, shares, choice)
        for upstream, part in shares.items():
            lg.by_upstream.setdefault(upstream, MergedGroup()).add(*part)
            self._upstream_merge(upstream, group).add(*part)
            self._dirty.add((upstream, group))
        return share

    def _unshare(self, group: bytes, lg: _LinkGroup, share: _Share) -> None:
        for upstream, part in share.shares.items():
            per_link = lg.by_upstream[upstream]
            per_link.remove(*part)
            if per_link.empty:
                del lg.by_upstream[upstream]
            self._upstream_groups[upstream, group].remove(*part)
            self._dirty.add((upstream, group))

    def _upstream_merge(self, upstream: str, group: bytes) -> MergedGroup:
        merged = self._upstream_groups.get((upstream, group))
        if merged is None:
            merged = self._upstream_groups[upstream, group] = MergedGroup()
        return merged

    def _report_dirty(self) -> None:
        """Report what changed upstream. Done once per event, after every share moved, so a
        subscription that moves between upstreams is joined on the new one and its merge on
        the old one is settled in one pass: nothing is left and joined again."""
        while self._dirty:
            upstream, group = self._dirty.pop()
            self._report(upstream, group)
        # Then the routes, so that a flow whose upstream was just left is not set first.
        while self._stale_routes:
            group, link = self._stale_routes.pop()
            self._refresh_flows(group, link)

    def _report(self, upstream: str, group: bytes) -> None:
        """Hand the upstream's merged state of ``group`` to its host side."""
        family = 4 if len(group) == 4 else 6
        host = self._hosts.get((upstream, family))
        merged = self._upstream_groups.get((upstream, group))
        if merged is not None and merged.empty:
            del self._upstream_groups[upstream, group]
        state = merged.state() if merged is not None else (IN, EMPTY)
        if host is None:
            return
        before = host.state(group)
        if before == state:
            return
        host.set_state(group, state[0], state[1], self._now)
        self._flush_host(upstream, family, host)
        if state == (IN, EMPTY) or before == (IN, EMPTY):
            joined = state != (IN, EMPTY)
            self._log("info", "upstream-join" if joined else "upstream-leave",
                      f"{'joined' if joined else 'left'} {_text(group)} on {upstream}",
                      upstream=upstream, group=_text(group))
        if state == (IN, EMPTY):
            self._drop_flows(upstream, group)
            if group in self._avoid and not any(
                    (u, group) in self._upstream_groups for u in self._candidates):
                self._lift_avoid(frozenset(self._candidates), group)  # nobody asks: forget
        elif before == (IN, EMPTY):
            # Data the kernel saw just before the join is still queued: route it now.
            recent = self._unasked.pop((upstream, group), {})
            for source, seen in recent.items():
                if self._now - seen <= KERNEL_UNRESOLVED_HOLD:
                    self._add_flow(upstream, source, group, seen)

    def _reselect(self, now: float, which: Callable[[_Share], bool], fresh: bool = False,
                  group_only: bytes | None = None, bridge: bool = False) -> None:
        """Split again the shares ``which`` picks (all remembered choices dropped if
        ``fresh``; only of ``group_only`` if given), after the selection's inputs changed.

        Make before break: the new shares are added before the old are taken back, and with
        ``bridge`` a share moving off upstreams that are still usable stays on them until
        the new upstream delivers (``_add_flow``) or ``BRIDGE_TIMEOUT`` passes."""
        for (_link, group), lg in list(self._link_groups.items()):
            if group_only is not None and group != group_only:
                continue
            for subscriber, share in list(lg.members.items()):
                if not which(share):
                    continue
                new = self._share(group, lg, subscriber, share.state,
                                  None if fresh else share.choice)
                left = share.shares.keys() - new.shares.keys()
                if (bridge and left and subscriber not in lg.bridging
                        and not left & self._unusable and left <= self._candidates):
                    lg.bridging[subscriber] = share
                    self._bridges.setdefault(group, now + BRIDGE_TIMEOUT)
                else:
                    self._unshare(group, lg, share)
            self._refresh_flows(group)

    def _end_bridges(self, group: bytes, delivered: bool = True) -> None:
        """The moved subscriptions of ``group`` leave their old upstreams now; or, if the new
        ones did not deliver in time, they go back where they were (what works is not
        given up for what does not)."""
        self._bridges.pop(group, None)
        family = 4 if len(group) == 4 else 6
        for name, fam in self._links:
            lg = self._link_groups.get((name, group)) if fam == family else None
            if lg is None or not lg.bridging:
                continue
            for subscriber, old in lg.bridging.items():
                new = lg.members.get(subscriber)
                if delivered or new is None:
                    self._unshare(group, lg, old)
                else:
                    self._unshare(group, lg, new)
                    lg.members[subscriber] = old
            lg.bridging.clear()
            if lg.empty():
                del self._link_groups[name, group]
        if not delivered:
            self.counts["move abandoned"] += 1
            self._log("warning", "move-abandoned",
                      f"{_text(group)}: the upstream it moved to did not deliver within "
                      f"{BRIDGE_TIMEOUT:g} s; it stays where it was", group=_text(group))
        self._refresh_flows(group)

    # --- forwarding ---------------------------------------------------------------------

    def _new_flow(self, ev: NewFlow) -> None:
        if ev.interface not in self._candidates:
            self.dropped["data on an interface that is not an upstream"] += 1
            return
        key = (ev.interface, ev.source, ev.group)
        if key in self._routes:
            return
        if (ev.interface, ev.group) not in self._upstream_groups:
            # Not asked of this upstream: no route. The kernel holds the packets a few
            # seconds and asks no more meanwhile; should the upstream join the group in that
            # time, the route is made then (``_report``).
            self.dropped["data for a group this upstream has not joined"] += 1
            recent = self._unasked.setdefault((ev.interface, ev.group), {})
            if len(recent) < MAX_UNASKED_SOURCES:
                recent[ev.source] = self._now
            return
        self._add_flow(ev.interface, ev.source, ev.group, self._now)

    def _add_flow(self, upstream: str, source: bytes, group: bytes, seen: float) -> None:
        """A route for a flow the kernel saw arrive on ``upstream`` at ``seen``."""
        key = (upstream, source, group)
        self._flows_by_group.setdefault(group, set()).add((upstream, source))
        self._routes[key] = frozenset()
        self._watch.add(key, self._now)
        # The kernel forwards the packets it queued as soon as the route exists. Old ones, or
        # ones another upstream may already have delivered, go nowhere: the route is made
        # empty first. Fresh ones of a new channel go out at once (zapping).
        others = any(u != upstream for u, s in self._flows_by_group[group] if s == source)
        if others or self._now - seen > STALE_QUEUE:
            self._actions.append(SetRoute(upstream, source, group, upstream, frozenset()))
            self._refresh_flows(group)
            if group in self._bridges and self._routes[key]:
                self._end_bridges(group)  # the new upstream delivers: the old one may go
            return
        self._refresh_flows(group)
        if not self._routes[key]:  # counts packets all the same: a hot standby
            self._actions.append(SetRoute(upstream, source, group, upstream, frozenset()))

    def _refresh_flows(self, group: bytes, link: str | None = None) -> None:
        """Recompute the routes of ``group``'s flows: for ``link`` only, or for every link.

        Every route is decided before any changes, and the routes that only lose links are
        written first: a link moving from one upstream to another is never fed by both."""
        flows = self._flows_by_group.get(group)
        if not flows:
            return
        family = 4 if len(group) == 4 else 6
        links = [link] if link is not None else [n for n, f in self._links if f == family]
        fed: dict[tuple[str, bytes], set[str]] = {flow: set() for flow in flows}
        sources = {s for _, s in flows}
        for name in links:
            rl = self._links.get((name, family))
            if rl is None:
                continue
            for source in sources:
                if rl.wants(group, source):
                    feeder = self._feeder(name, source, group)
                    if feeder is not None and (feeder, source) in fed:
                        fed[feeder, source].add(name)
        growing = []
        for (upstream, source), now_fed in fed.items():
            key = (upstream, source, group)
            current = self._routes[key]
            oifs = (current - set(links)) | now_fed
            if oifs == current:
                continue
            self._routes[key] = oifs
            action = SetRoute(upstream, source, group, upstream, frozenset(oifs))
            if oifs - current:
                growing.append(action)
            else:
                self._actions.append(action)
        self._actions.extend(growing)

    def _feeder(self, link: str, source: bytes, group: bytes) -> str | None:
        """The one upstream that feeds (source, group) to ``link``."""
        lg = self._link_groups.get((link, group))
        if lg is None:
            return None
        candidates = [u for u, m in lg.by_upstream.items() if m.wants(source)]
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        # Several upstreams carry it for this link. First the usable ones whose flow delivers
        # (data liveness); then the best-ranked selection with the source known (an any-source
        # join and a source record may both cover it; a resilient channel's standby is not
        # selected); among equals (robust reception) the one feeding now, so that nothing
        # flaps; then by priority and configuration order.
        best: tuple[object, ...] | None = None
        chosen: set[str] = set()
        standby: set[str] = set()
        # Without subscriber prefixes, every member's selection is the same: one is enough
        # (a group on a link may have thousands of members).
        one = self._selector_ignores_subscribers(group)
        for subscriber, share in lg.members.items():
            if not _wants(share.state, source):
                continue
            sel = self._selector.select(subscriber, source, group, self._unusable)
            if best is None or sel.rank > best:
                best, chosen = sel.rank, set(sel.upstreams)
            elif sel.rank == best:
                chosen |= set(sel.upstreams)
            if self._resilient and self._resilient.match(subscriber, source, group):
                skip = self._unusable | frozenset(sel.upstreams)
                standby.update(self._selector.select(subscriber, source, group, skip).upstreams)
            if one:
                break
        standby -= self._unusable
        # Only what selection picks feeds (a resilient channel's standby too), unless nothing
        # it picks carries the flow (a subscription kept where it was across a reload).
        bridged = {u for share in lg.bridging.values() for u in share.shares}
        candidates = [u for u in candidates if u in chosen or u in standby or u in bridged
                      ] or candidates
        routes, watch = self._routes, self._watch
        flowing = [u for u in candidates if (u, source, group) in routes]
        return min(flowing, default=None, key=lambda u: (
            u in self._unusable, not watch.delivering((u, source, group)), u not in chosen,
            link not in routes[u, source, group], -self._priority.get(u, 0),
            self._order.get(u, 0)))

    def _drop_flows(self, upstream: str, group: bytes) -> None:
        flows = self._flows_by_group.get(group)
        if not flows:
            return
        for up, source in [f for f in flows if f[0] == upstream]:
            flows.discard((up, source))
            del self._routes[up, source, group]
            self._watch.remove((up, source, group))
            self._actions.append(DeleteRoute(up, source, group))
        if not flows:
            del self._flows_by_group[group]

    def _counters(self, ev: CountersSampled, now: float) -> None:
        """Per-channel data liveness: a flow that stops moves its links to a standby that
        delivers; with none, and takeover on, the channel alone is selected again without
        that upstream (draft §5: an active upstream is per channel)."""
        touched: set[bytes] = set()
        for (upstream, source, group), health, cause in self._watch.sample(ev.packets, now):
            touched.add(group)
            self.counts[f"channel {health.value}"] += 1
            self._log("warning" if health is Health.DEAD else "info", "channel-liveness",
                      f"({_text(source)}, {_text(group)}) on {upstream} is {health.value}: "
                      f"{cause}", upstream=upstream, source=_text(source), group=_text(group),
                      health=health.value, cause=cause)
            if health is Health.DEAD:
                self._channel_dead(upstream, source, group, now)
            elif health is Health.DELIVERING:
                self._lift_avoid(frozenset((upstream,)), group, source)
        for group in touched:
            self._refresh_flows(group)

    def _channel_dead(self, upstream: str, source: bytes, group: bytes, now: float) -> None:
        flows = self._flows_by_group.get(group, set())
        standby = [u for u, s in flows if s == source and u != upstream
                   and u not in self._unusable and self._watch.delivering((u, source, group))]
        if standby or not self._config.upstream.takeover:
            return  # a hot standby takes the links over (``_refresh_flows``), or nothing moves
        avoid = self._avoid.setdefault(group, {})
        keys: list[bytes | None] = [source]
        if all(not self._watch.delivering((u, s, group)) for u, s in flows if u == upstream):
            keys.append(None)  # the any-source joins too
        hold = self._watch.hold_down(upstream)
        for key in keys:
            avoid[key] = avoid.get(key, frozenset()) | {upstream}
            if hold is not None:
                self._avoid_until[group, key, upstream] = now + hold
        self.counts["channel takeover"] += 1
        self._log("warning", "channel-takeover",
                  f"({_text(source)}, {_text(group)}) selected again without {upstream}",
                  upstream=upstream, source=_text(source), group=_text(group))
        self._reselect(now, lambda share: _uses(share, upstream), group_only=group)

    def _lift_avoid(self, upstreams: frozenset[str], group: bytes,
                    source: bytes | None = None) -> None:
        """``upstreams`` may carry ``group`` again (the channel of ``source`` only, if given,
        and the group's any-source joins)."""
        avoid = self._avoid.get(group)
        if avoid is None:
            return
        for key in list(avoid) if source is None else (source, None):
            if key in avoid:
                for upstream in avoid[key] & upstreams:
                    self._avoid_until.pop((group, key, upstream), None)
                avoid[key] -= upstreams
                if not avoid[key]:
                    del avoid[key]
        if not avoid:
            del self._avoid[group]

    # --- interfaces and liveness ----------------------------------------------------------

    def _interface_up(self, ev: InterfaceUp, now: float) -> None:
        was_up = ev.interface in self._addresses
        self._addresses[ev.interface] = ev.addresses
        if ev.interface in self._downstream:
            for fam in self._families:
                own = _own_address(ev.addresses, fam)
                link = self._links.get((ev.interface, fam))
                if link is None:
                    proto = self._config.igmp if fam == 4 else self._config.mld
                    assert proto is not None
                    fast = next(d.fast_leave for d in self._config.downstream
                                if d.interface == ev.interface)
                    link = self._links[ev.interface, fam] = RouterLink(
                        _timers(self._config, ev.interface), fam, proto.version, own, fast,
                        ssm_ranges=proto.ssm_ranges,
                    )
                    link.start(now)
                else:
                    link.set_address(own, now)
                self._flush_link(ev.interface, fam, link, now)
        elif ev.interface in self._candidates:
            # The §4.4 fallback compares candidate addresses: compile them in.
            self._selector = Selector(self._config, self._selector_addresses())
            if not was_up:
                self._log("info", "upstream-up", f"upstream {ev.interface} is up",
                          upstream=ev.interface)
                assert self._liveness is not None
                self._liveness.link(ev.interface, True, now)
                self._apply_liveness(now)

    def _interface_down(self, ev: InterfaceDown, now: float) -> None:
        if self._addresses.pop(ev.interface, None) is None:
            return
        if ev.interface in self._downstream:
            for fam in self._families:
                link = self._links.get((ev.interface, fam))
                if link is not None:
                    link.set_address(None, now)
                    self._flush_link(ev.interface, fam, link, now)
        elif ev.interface in self._candidates:
            self._selector = Selector(self._config, self._selector_addresses())
            self._log("warning", "upstream-down", f"upstream {ev.interface} is down",
                      upstream=ev.interface)
            assert self._liveness is not None
            self._liveness.link(ev.interface, False, now)
            self._apply_liveness(now)

    def _usability(self, ev: UpstreamUsability, now: float) -> None:
        """An override from outside (operator, controller, tests): usable or not."""
        assert self._liveness is not None
        self._log("info" if ev.usable else "warning", "override",
                  f"upstream {ev.interface} set {'usable' if ev.usable else 'unusable'}: "
                  f"{ev.cause}", upstream=ev.interface, cause=ev.cause)
        self._liveness.force(ev.interface, ev.usable, now)
        self._apply_liveness(now)

    def _hello(self, ev: HelloReceived, now: float) -> None:
        if ev.interface in self._candidates:
            self._signal(ev.interface, ev.source, "hello", now)
        else:
            self.dropped["PIM hello on an interface that is not an upstream"] += 1

    def _signal(self, upstream: str, source: bytes, kind: str, now: float) -> None:
        """A query or hello heard on an upstream: evidence of life if it counts (draft §7)."""
        evidence = self._config.candidate(upstream).liveness
        if not (evidence.queries if kind == "query" else evidence.hellos):
            return
        assert self._liveness is not None
        if self._liveness.signal(upstream, source, now):
            self._apply_liveness(now)
            return
        self.dropped[f"{kind} from a router not configured for the upstream"] += 1
        if (upstream, source) not in self._rejected_from:  # said once per sender
            self._rejected_from.add((upstream, source))
            self._log("warning", "liveness-rejected",
                      f"{kind} on {upstream} from {_text(source)}, not one of its routers: "
                      "it does not count", upstream=upstream, source=_text(source))

    def _apply_liveness(self, now: float) -> None:
        """Take in what liveness decided: log each change, then move what must move."""
        assert self._liveness is not None
        changes = self._liveness.pop_changes()
        for change in changes:
            state = "usable" if change.usable else "unusable"
            self.counts[f"upstream {state}"] += 1
            self._log("info" if change.usable else "warning", "liveness",
                      f"upstream {change.interface} is {state}: {change.cause}",
                      upstream=change.interface, usable=change.usable, cause=change.cause)
        before, self._unusable = self._unusable, self._liveness.unusable()
        if before == self._unusable:
            return
        if not self._config.upstream.takeover:
            for group in list(self._flows_by_group):
                self._refresh_flows(group)  # hot standby swaps still follow usability
            return
        lost = self._unusable - before
        back = before - self._unusable
        for group in list(self._avoid):  # back: its channels may be selected there again
            self._lift_avoid(back, group)
        if lost:
            self.counts["takeover"] += 1
            for group in list(self._bridges):
                self._end_bridges(group)
            # §5.1 takeover: what was selected onto them is selected again without them.
            self._reselect(now, lambda share: any(_uses(share, u) for u in lost))
        if before - self._unusable and self._config.upstream.hold_down is not None:
            # Back (after its hold-down): everything is selected afresh, so preferred
            # upstreams take back their subscriptions. With hold-down "never" they do not.
            self._reselect(now, lambda share: True, fresh=True, bridge=True)
        for group in list(self._flows_by_group):
            self._refresh_flows(group)

    # --- logging ------------------------------------------------------------------------

    _now: float = 0.0

    def _log(self, level: str, event: str, message: str, **fields: object) -> None:
        self._actions.append(Log(level, event, message, dict(fields)))


def _uses(share: _Share, upstream: str) -> bool:
    choice = share.choice
    if choice.any_source is not None and upstream in choice.any_source:
        return True
    return any(upstream in ups for ups in choice.by_source.values()) or upstream in share.shares


def _own_address(addresses: Iterable[bytes], family: int) -> bytes | None:
    """The address a router speaks from: the first IPv4 one, or the IPv6 link-local."""
    for a in addresses:
        if family == 4 and len(a) == 4:
            return a
        if family == 6 and len(a) == 16 and a[:2] == b"\xfe\x80":
            return a
    return None


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))
