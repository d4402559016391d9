"""The forwarding plan: which links each flow is copied to (draft §3.3, RFC 4605 §4.2).

A *flow* is a (source, group) that the kernel saw arrive on an upstream (its NOCACHE upcall,
``NewFlow``); it gets a *route* in that upstream's kernel table: the downstream links it is
copied to. A link gets a flow when its router state wants that source (RFC 9776 §6.3) and
the upstream is its *feeder*.

Words:
- *feeder*: the one upstream that feeds a (source, group) to a link. A link is never fed
  twice: when several upstreams carry the flow for it (robust reception, §3.3; resilient
  channels; a bridge), one is chosen and the others keep a route with no outgoing links, a
  *hot standby*, which still counts packets so that failover is a swap of outgoing sets.
- *unasked*: data the kernel saw on an upstream for a group that upstream was not asked
  for. No route is made; the kernel queues a few packets and raises no new upcall for a
  while, so should the upstream join the group meanwhile, the route is made then.
- *stale*: (group, link) pairs whose routes the event changed, recomputed once per event.

Every route is decided before any is written, and routes that only lose links are written
before routes that gain them: a link moving from one upstream to another is never fed by
both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mcastproxy.actions import DeleteRoute, Outbox, SetRoute
from mcastproxy.candidates import Candidates
from mcastproxy.drops import Drop
from mcastproxy.family import BY_LENGTH, Family
from mcastproxy.flowwatch import FlowWatch
from mcastproxy.ledger import Ledger, wants
from mcastproxy.membership.router import RouterLink

Route = tuple[str, bytes, bytes]  # (upstream, source, group)
# Linux keeps a (source, group) with no route "unresolved" for 10 s (ipmr/ip6mr), queueing a
# few packets and raising no new upcall meanwhile.
KERNEL_UNRESOLVED_HOLD = 10.0
MAX_UNASKED_SOURCES = 64
# Packets the kernel queued this long ago for a flow with no route are stale: resolve them
# into nothing rather than deliver them late (or twice, when another upstream delivered them).
STALE_QUEUE = 0.05


def _no_bridges(group: bytes) -> None:
    """Until ``Moves`` is wired in, nothing is bridged."""


class Forwarding:
    """Flows, their routes, and each link's feeder."""

    def __init__(self, links: Mapping[tuple[str, Family], RouterLink], ledger: Ledger,
                 candidates: Candidates, outbox: Outbox, watch: FlowWatch) -> None:
        self._links = links  # the router side of each (downstream link, family)
        self._ledger = ledger
        self._candidates = candidates
        self._outbox = outbox
        self.watch = watch  # data liveness of each flow
        self.routes: dict[Route, frozenset[str]] = {}
        self.flows_by_group: dict[bytes, set[tuple[str, bytes]]] = {}
        # Sources the kernel saw on an upstream for a group it had not joined, and when.
        self._unasked: dict[tuple[str, bytes], dict[bytes, float]] = {}
        self.stale: set[tuple[bytes, str]] = set()  # (group, link) to recompute
        self.bridged: Mapping[bytes, float] = {}  # groups with bridges (``Moves.bridges``)
        # ``Moves.end``: a bridged group's new upstream delivers, its old one may go.
        self.end_bridges: Callable[[bytes], None] = _no_bridges

    # --- flows ------------------------------------------------------------------------------

    def new_flow(self, upstream: str, source: bytes, group: bytes, now: float) -> Drop | None:
        """The kernel saw (source, group) arrive on ``upstream`` with no route."""
        if upstream not in self._candidates.names:
            return Drop.DATA_NOT_ON_UPSTREAM
        if (upstream, source, group) in self.routes:
            return None
        if not self._ledger.joined(upstream, group):
            # Not asked of this upstream: no route (see *unasked*).
            recent = self._unasked.setdefault((upstream, group), {})
            if len(recent) < MAX_UNASKED_SOURCES:
                recent[source] = now
            return Drop.DATA_NOT_JOINED
        self.add(upstream, source, group, now, now)
        return None

    def joined(self, upstream: str, group: bytes, now: float) -> None:
        """``upstream`` was just asked for ``group``: data the kernel saw just before is
        still queued there, so route it now."""
        recent = self._unasked.pop((upstream, group), {})
        for source, seen in recent.items():
            if now - seen <= KERNEL_UNRESOLVED_HOLD:
                self.add(upstream, source, group, seen, now)

    def add(self, upstream: str, source: bytes, group: bytes, seen: float, now: float) -> None:
        """A route for a flow the kernel saw arrive on ``upstream`` at ``seen``."""
        key = (upstream, source, group)
        self.flows_by_group.setdefault(group, set()).add((upstream, source))
        self.routes[key] = frozenset()
        self.watch.add(key, now)
        # The kernel forwards the packets it queued as soon as the route exists. Old ones, or
        # ones another upstream may already have delivered, go nowhere: the route is made
        # empty first. Fresh ones of a new channel go out at once (zapping).
        others = any(u != upstream for u, s in self.flows_by_group[group] if s == source)
        if others or now - seen > STALE_QUEUE:
            self._outbox.append(SetRoute(upstream, source, group, frozenset()))
            self.refresh(group)
            if group in self.bridged and self.routes[key]:
                self.end_bridges(group)  # the new upstream delivers: the old one may go
            return
        self.refresh(group)
        if not self.routes[key]:  # counts packets all the same: a hot standby
            self._outbox.append(SetRoute(upstream, source, group, frozenset()))

    def left(self, upstream: str, group: bytes) -> None:
        """``upstream`` left ``group``: its flows of the group go."""
        flows = self.flows_by_group.get(group)
        if not flows:
            return
        for up, source in [f for f in flows if f[0] == upstream]:
            flows.discard((up, source))
            del self.routes[up, source, group]
            self.watch.remove((up, source, group))
            self._outbox.append(DeleteRoute(up, source, group))
        if not flows:
            del self.flows_by_group[group]

    def delivering(self, group: bytes) -> set[str]:
        """The upstreams with a flow of ``group`` that delivers (a route, and data
        liveness, where watched, that has not found it dead)."""
        flows = self.flows_by_group.get(group, ())
        return {u for u, s in flows if self.watch.delivering((u, s, group))}

    # --- routes -----------------------------------------------------------------------------

    def refresh_all(self) -> None:
        for group in list(self.flows_by_group):
            self.refresh(group)

    def refresh_stale(self) -> None:
        while self.stale:
            group, link = self.stale.pop()
            self.refresh(group, link)

    def refresh(self, group: bytes, link: str | None = None) -> None:
        """Recompute the routes of ``group``'s flows: for ``link`` only, or for every link."""
        flows = self.flows_by_group.get(group)
        if not flows:
            return
        family = BY_LENGTH[len(group)]
        links = [link] if link is not None else [n for n, f in self._links if f == family]
        fed: dict[tuple[str, bytes], set[str]] = {flow: set() for flow in flows}
        sources = {s for _, s in flows}
        for name in links:
            rl = self._links.get((name, family))
            if rl is None:
                continue
            for source in sources:
                if rl.wants(group, source):
                    feeder = self.feeder(name, source, group)
                    if feeder is not None and (feeder, source) in fed:
                        fed[feeder, source].add(name)
        growing = []
        for (upstream, source), now_fed in fed.items():
            key = (upstream, source, group)
            current = self.routes[key]
            oifs = (current - set(links)) | now_fed
            if oifs == current:
                continue
            self.routes[key] = oifs
            action = SetRoute(upstream, source, group, frozenset(oifs))
            if oifs - current:
                growing.append(action)
            else:
                self._outbox.append(action)
        for action in growing:
            self._outbox.append(action)

    def feeder(self, link: str, source: bytes, group: bytes) -> str | None:
        """The one upstream that feeds (source, group) to ``link``."""
        lg = self._ledger.link_groups.get((link, group))
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
        cands = self._candidates
        unusable, selector, resilient = cands.unusable, cands.selector, cands.resilient
        best: tuple[object, ...] | None = None
        chosen: set[str] = set()
        standby: set[str] = set()
        # Without subscriber prefixes, every member's selection is the same: one is enough
        # (a group on a link may have thousands of members).
        one = cands.ignore_subscribers(group)
        for subscriber, share in lg.members.items():
            if not wants(share.state, source):
                continue
            sel = selector.select(subscriber, source, group, unusable)
            if best is None or sel.rank > best:
                best, chosen = sel.rank, set(sel.upstreams)
            elif sel.rank == best:
                chosen |= set(sel.upstreams)
            if resilient and resilient.match(subscriber, source, group):
                skip = unusable | frozenset(sel.upstreams)
                standby.update(selector.select(subscriber, source, group, skip).upstreams)
            if one:
                break
        standby -= unusable
        # Only what selection picks feeds (a resilient channel's standby too), unless nothing
        # it picks carries the flow (a subscription kept where it was across a reload).
        bridged = {u for share in lg.bridging.values() for u in share.shares}
        candidates = [u for u in candidates if u in chosen or u in standby or u in bridged
                      ] or candidates
        routes, watch = self.routes, self.watch
        priority, order = cands.priority, cands.order
        flowing = [u for u in candidates if (u, source, group) in routes]
        return min(flowing, default=None, key=lambda u: (
            u in unusable, not watch.delivering((u, source, group)), u not in chosen,
            link not in routes[u, source, group], -priority.get(u, 0), order.get(u, 0)))
