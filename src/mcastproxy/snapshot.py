"""What the engine shows the outside: plain, immutable data, never its live objects.

``Engine.snapshot()`` copies out what status, metrics and a controller API show: each
downstream link's router state (querier, groups with their timers, tracked subscribers and
the upstreams feeding them), each upstream's merged membership and liveness, every flow with
its route and data health, drops by interface and reason, and the event counts. Expiry times
are absolute, on the engine's clock (the ``now`` of its events). The snapshot is detached:
handling more events does not change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mcastproxy.drops import Drop, DropCounts
from mcastproxy.family import Family
from mcastproxy.membership.state import FilterMode

if TYPE_CHECKING:
    from mcastproxy.config import Config
    from mcastproxy.forwarding import Forwarding
    from mcastproxy.ledger import Ledger
    from mcastproxy.liveness import Liveness
    from mcastproxy.membership.router import RouterLink
    from mcastproxy.upstream.host import UpstreamHost

Frozen = MappingProxyType


@dataclass(frozen=True, slots=True)
class SubscriberSnapshot:
    """What one tracked subscriber (explicit tracking) asked for a group."""

    address: bytes
    filter_mode: FilterMode
    sources: frozenset[bytes]
    expire: float  # forgotten then unless it reports again


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """One group on a downstream link (RFC 9776 §6.2.1; RFC 8652 ``group``).

    ``expire`` is the Group Timer (None: not running, INCLUDE mode); ``sources`` maps each
    source record to its Source Timer (None: at zero, excluded); ``forwarded`` is what the
    link forwards (RFC 9776 §6.3); ``upstreams`` are the upstreams the link asks for it.
    """

    group: bytes
    filter_mode: FilterMode
    expire: float | None
    sources: Frozen[bytes, float | None]
    compatibility_mode: int
    forwarded: tuple[FilterMode, frozenset[bytes]]
    subscribers: tuple[SubscriberSnapshot, ...]
    upstreams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """The router side of one downstream link and family."""

    interface: str
    family: Family
    version: int
    operating_version: int
    querier: bool
    querier_address: bytes | None
    own_address: bytes | None
    timers: Any  # the timers in force (RFC 9776 §8), the querier's QRV and QQI adopted
    groups: tuple[GroupSnapshot, ...]

    def group(self, group: bytes) -> GroupSnapshot | None:
        return next((g for g in self.groups if g.group == group), None)


@dataclass(frozen=True, slots=True)
class UpstreamGroupSnapshot:
    """What an upstream reports for a group: the merge of its shares (RFC 4605 §4.1)."""

    group: bytes
    filter_mode: FilterMode
    sources: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class UpstreamSnapshot:
    """A candidate upstream: priority, usability and its evidence, and what it reports."""

    interface: str
    priority: int
    usable: bool
    liveness: Frozen[str, Any]
    groups: tuple[UpstreamGroupSnapshot, ...]
    pending_reports: int  # state-change reports still to be retransmitted (RFC 9776 §5.1)

    def state(self, group: bytes) -> tuple[FilterMode, frozenset[bytes]]:
        """What the upstream reports for ``group``: (INCLUDE, {}) when nothing."""
        g = next((g for g in self.groups if g.group == group), None)
        return (FilterMode.INCLUDE, frozenset()) if g is None else (g.filter_mode, g.sources)


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """A flow the kernel saw on an upstream, and its route: the links it feeds (none: hot
    standby) and its data health where the upstream's data is watched."""

    upstream: str
    source: bytes
    group: bytes
    downstream: frozenset[str]
    health: str | None


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Everything at one moment. ``interfaces`` are the configured interfaces that are up,
    with their addresses; ``drops`` maps (interface or None, reason) to a count."""

    interfaces: Frozen[str, tuple[bytes, ...]]
    links: tuple[LinkSnapshot, ...]
    upstreams: tuple[UpstreamSnapshot, ...]
    flows: tuple[FlowSnapshot, ...]
    bridged: frozenset[bytes]
    drops: Frozen[tuple[str | None, Drop], int]
    counts: Frozen[str, int]
    resets: int
    last_error: str | None

    def link(self, interface: str, family: Family) -> LinkSnapshot | None:
        return next((ln for ln in self.links
                     if ln.interface == interface and ln.family == family), None)

    def upstream(self, interface: str) -> UpstreamSnapshot | None:
        return next((u for u in self.upstreams if u.interface == interface), None)

    def drops_by_reason(self) -> dict[Drop, int]:
        out: dict[Drop, int] = {}
        for (_, reason), n in self.drops.items():
            out[reason] = out.get(reason, 0) + n
        return out


def take(
    config: Config,
    interfaces: Mapping[str, tuple[bytes, ...]],
    links: Mapping[tuple[str, Family], RouterLink],
    hosts: Mapping[tuple[str, Family], UpstreamHost],
    ledger: Ledger,
    forwarding: Forwarding,
    liveness: Liveness | None,
    unusable: frozenset[str],
    bridges: Mapping[bytes, float],
    drops: DropCounts,
    counts: Mapping[str, int],
    resets: int,
    last_error: str | None,
) -> EngineSnapshot:
    """Copy the engine's parts out into an ``EngineSnapshot`` (the engine's own call)."""
    link_snaps = []
    for (name, family), link in links.items():
        groups = []
        for g in link.groups():
            state = link.group_state(g)
            if state is None:
                continue
            expiry = link.subscriber_expiry(g)
            groups.append(GroupSnapshot(
                group=g, filter_mode=state.filter_mode, expire=state.group_timer,
                sources=Frozen(dict(state.sources)),
                compatibility_mode=state.compatibility_mode, forwarded=link.forwarded(g),
                subscribers=tuple(SubscriberSnapshot(h, s.filter_mode, s.sources, expiry[h])
                                  for h, s in link.subscribers(g).items()),
                upstreams=tuple(sorted(ledger.feeders(name, g)))))
        link_snaps.append(LinkSnapshot(
            interface=name, family=family, version=link.version,
            operating_version=link.operating_version, querier=link.is_querier,
            querier_address=link.querier_address, own_address=link.own_address,
            timers=link.timers, groups=tuple(groups)))
    upstreams = []
    for cand in config.upstream.candidates:
        joined = []
        pending = 0
        for family in Family:
            host = hosts.get((cand.interface, family))
            if host is None:
                continue
            pending += host.pending_retransmissions()
            for g in host.groups():
                mode, sources = host.state(g)
                joined.append(UpstreamGroupSnapshot(g, mode, sources))
        described = liveness.describe(cand.interface) if liveness is not None else {}
        upstreams.append(UpstreamSnapshot(
            interface=cand.interface, priority=cand.priority,
            usable=cand.interface not in unusable, liveness=Frozen(dict(described)),
            groups=tuple(joined), pending_reports=pending))
    health = dict(forwarding.watch.flows())
    flows = tuple(
        FlowSnapshot(u, s, g, oifs, health[u, s, g].value if (u, s, g) in health else None)
        for (u, s, g), oifs in forwarding.routes.items())
    return EngineSnapshot(
        interfaces=Frozen(dict(interfaces)), links=tuple(link_snaps),
        upstreams=tuple(upstreams), flows=flows,
        bridged=frozenset(bridges), drops=Frozen(drops.by_key()), counts=Frozen(dict(counts)),
        resets=resets, last_error=last_error)
