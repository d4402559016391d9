"""What the engine shows the outside: plain, immutable data, never its live objects.

``Engine.snapshot()`` copies out what status, metrics and a controller API show: each
downstream link's router state (querier, groups with their timers, tracked subscribers and
the upstreams feeding them), each upstream's merged membership and liveness, every flow with
its route and data health, drops by interface and reason, the event counts, and admission's
counts (each link's groups and subscribers against its limits, refusals by subscriber
prefix, the proxy's entries). Expiry times
are absolute, on the engine's clock (the ``now`` of its events). The snapshot is detached:
handling more events does not change it.

A snapshot of tens of thousands of groups takes seconds to copy, too long to keep a router from
its reports. ``take_slices`` copies it a slice at a time: a generator that pauses (``yield``)
every few groups so that its caller can handle events in between, and returns the snapshot at
the end. Each group of a link or upstream is then copied whole at one moment, with the
upstreams its link asks for it, and so is each route; the interfaces, drops, counts and the
health of watched flows are copied in one go. A group or route that comes or goes while the
snapshot is taken may be missing or still shown. ``whole(take_slices(...))`` (what
``Engine.snapshot()`` does) is the same in one go: the snapshot of one moment. Freeing a
large snapshot takes long too: ``release`` lets go of it in slices.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from mcastproxy.drops import Drop, DropCounts
from mcastproxy.family import Family
from mcastproxy.membership.state import FilterMode

if TYPE_CHECKING:
    from mcastproxy.admission import Room
    from mcastproxy.config import Config
    from mcastproxy.forwarding import Forwarding
    from mcastproxy.learning import Learning
    from mcastproxy.ledger import Ledger
    from mcastproxy.liveness import Liveness
    from mcastproxy.membership.router import RouterLink
    from mcastproxy.upstream.host import UpstreamHost

Frozen = MappingProxyType
T = TypeVar("T")
U = TypeVar("U")


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
    ``up_since`` is when the group state was made and ``source_up_since`` when each source
    record was (RFC 8652 ``up-time``); ``last_reporter`` the last host whose report joined or
    refreshed it (None: none known, e.g. a static group).
    """

    group: bytes
    filter_mode: FilterMode
    expire: float | None
    sources: Frozen[bytes, float | None]
    compatibility_mode: int
    forwarded: tuple[FilterMode, frozenset[bytes]]
    subscribers: tuple[SubscriberSnapshot, ...]
    upstreams: tuple[str, ...]
    up_since: float | None = None
    source_up_since: Frozen[bytes, float] = field(default_factory=lambda: Frozen({}))
    last_reporter: bytes | None = None


@dataclass(frozen=True, slots=True)
class AdmissionSnapshot:
    """A link's admission (``admission``), in RFC 8652's words: ``groups_count`` groups of
    this family that count against ``max_groups``, ``link_groups_count`` those of both
    families; ``subscribers`` holding a group that counts; ``refused`` by subscriber prefix
    ("-": a subscriber under none, or an anonymous report) and reason."""

    groups_count: int
    link_groups_count: int
    max_groups: int
    subscribers: int
    refused: Frozen[tuple[str, Drop], int]
    # Bandwidth admission (``bandwidth``), when a table rates channels: the rates of the
    # link's channels (both families) against its max-bandwidth, bits a second.
    bandwidth_used: int | None = None
    max_bandwidth: int | None = None


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """The router side of one downstream link and family. ``statistics``: messages
    ``received``, ``sent`` and in ``error`` by type (RFC 8652's names)."""

    interface: str
    family: Family
    version: int
    operating_version: int
    querier: bool
    querier_address: bytes | None
    own_address: bytes | None
    timers: Any  # the timers in force (RFC 9776 §8), the querier's QRV and QQI adopted
    groups: tuple[GroupSnapshot, ...]
    admission: AdmissionSnapshot | None = None
    statistics: Frozen[str, Frozen[str, int]] = field(default_factory=lambda: Frozen({}))

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
    # Upstream admission (``placement``), when ties are shared or budgets set: (bandwidth,
    # max-bandwidth, groups, max-groups, channels) it carries.
    load: tuple[int, int, int, int, int] | None = None

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
    entries: tuple[int, int] | None = None  # the proxy's (entries-count, max-entries)
    taken: float | None = None  # when, on the engine's clock, if the engine said
    # Learned rates ((source or None, group) -> bits a second) and the channels found empty,
    # where the configuration asks for them (``learning``); None: it does not.
    learned: Frozen[tuple[bytes | None, bytes], int] | None = None
    empty: frozenset[tuple[bytes | None, bytes]] = frozenset()

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


# How many groups (of a link, of an upstream) or routes one slice copies: well under a
# millisecond each.
LINK_GROUPS_PER_SLICE = 8
UPSTREAM_GROUPS_PER_SLICE = 64
ROUTES_PER_SLICE = 128

Slices = Generator[None, None, EngineSnapshot]
_NO_SOURCES: Frozen[bytes, float] = Frozen({})  # shared by every group without sources


def whole(slices: Generator[None, None, T]) -> T:
    """Run ``slices`` to its end without pausing; what it returns."""
    while True:
        try:
            next(slices)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def take_slices(
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
    entries: Room | None = None,
    now: float | None = None,
    learning: Learning | None = None,
) -> Slices:
    """Copy the engine's parts out into an ``EngineSnapshot``, a slice at a time: each
    ``next`` copies a few groups; the snapshot is the generator's return value. The engine
    may handle events between two slices (the parts passed here are read live, never
    changed). ``now`` is when the slices begin, on the engine's clock (``taken``): what
    status counts relative times from."""
    interfaces, drop_counts, counted = Frozen(dict(interfaces)), drops.by_key(), dict(counts)
    learned: Frozen[tuple[bytes | None, bytes], int] | None = None
    empty: frozenset[tuple[bytes | None, bytes]] = frozenset()
    if learning is not None and learning.watching:
        learned = Frozen({c: r for rates in learning.learned.values() for c, r in rates.items()})
        empty = frozenset(learning.empty)
    bridged = frozenset(bridges)
    link_snaps = []
    for (name, family), link in list(links.items()):
        groups: list[GroupSnapshot] = []
        for start, chunk in _chunks(link.groups(), LINK_GROUPS_PER_SLICE):
            if start:
                yield
            for g in chunk:
                state = link.group_state(g)
                if state is None:  # gone since the slices began
                    continue
                expiry = link.subscriber_expiry(g)
                groups.append(GroupSnapshot(
                    group=g, filter_mode=state.filter_mode, expire=state.group_timer,
                    sources=Frozen(dict(state.sources)),
                    compatibility_mode=state.compatibility_mode, forwarded=link.forwarded(g),
                    subscribers=tuple(SubscriberSnapshot(h, s.filter_mode, s.sources, expiry[h])
                                      for h, s in link.subscribers(g).items()),
                    upstreams=tuple(sorted(ledger.feeders(name, g))),
                    up_since=state.up_since,
                    source_up_since=Frozen(dict(state.source_up_since)) if state.sources
                    else _NO_SOURCES,
                    last_reporter=state.last_reporter))
        adm = link.admission
        link_snaps.append(LinkSnapshot(
            interface=name, family=family, version=link.version,
            operating_version=link.operating_version, querier=link.is_querier,
            querier_address=link.querier_address, own_address=link.own_address,
            timers=link.timers, groups=tuple(groups),
            statistics=Frozen({k: Frozen(v) for k, v in link.statistics.items()}),
            admission=None if adm is None else AdmissionSnapshot(
                adm.groups, adm.link.used, adm.link.maximum, len(adm.held),
                Frozen(dict(adm.refused_by_prefix)),
                adm.link.bandwidth.used if adm.cac is not None else None,
                adm.link.bandwidth.maximum if adm.cac is not None else None)))
        yield
    upstreams = []
    placement = entries.upstreams if entries is not None else None
    loads = placement.load() if placement is not None and placement.active else {}
    for cand in config.upstream.candidates:
        joined = []
        pending = 0
        for family in Family:
            host = hosts.get((cand.interface, family))
            if host is None:
                continue
            pending += host.pending_retransmissions()
            for start, reported in _chunks(list(host.groups()), UPSTREAM_GROUPS_PER_SLICE):
                if start:
                    yield
                for g in reported:
                    mode, sources = host.state(g)
                    if mode is FilterMode.INCLUDE and not sources:
                        continue  # left since the slices began: a host keeps joined groups
                    joined.append(UpstreamGroupSnapshot(g, mode, sources))
        described = liveness.describe(cand.interface) if liveness is not None else {}
        upstreams.append(UpstreamSnapshot(
            interface=cand.interface, priority=cand.priority,
            usable=cand.interface not in unusable, liveness=Frozen(dict(described)),
            groups=tuple(joined), pending_reports=pending,
            load=(*loads[cand.interface],) if cand.interface in loads else None))
        yield
    # The health of the watched flows in one go: a few thousand at the most.
    health = {flow: h.value for flow, h in forwarding.watch.flows()}
    routes = forwarding.routes
    flows: list[FlowSnapshot] = []
    for start, some in _chunks(list(routes), ROUTES_PER_SLICE):
        if start:
            yield
        for flow in some:
            oifs = routes.get(flow)
            if oifs is not None:  # else gone since the slices began
                flows.append(FlowSnapshot(*flow, oifs, health.get(flow)))
    yield
    return EngineSnapshot(
        interfaces=interfaces, links=tuple(link_snaps),
        upstreams=tuple(upstreams), flows=tuple(flows),
        bridged=bridged, drops=Frozen(drop_counts), counts=Frozen(counted),
        resets=resets, last_error=last_error,
        entries=None if entries is None else (entries.used, entries.maximum), taken=now,
        learned=learned, empty=empty)


# Objects one slice of ``release`` lets go of.
RELEASED_PER_SLICE = 256
_LARGE = 16  # a container this long or longer is taken apart, not let go of whole


def release(done: object) -> Generator[None, None, None]:
    """Let go of ``done`` (a snapshot, or a document made of one) a slice at a time: let go
    of in one go, the snapshot of 50,000 groups takes 70 ms to free. Its upper three levels
    and every large container are taken apart, their members held, then let go of a few
    hundred at a time, each small one whole. Lists and dicts are emptied as it goes (tuples
    and the like are copied, at C's speed). The caller must hold no other reference
    (``parts = release(x)``, ``del x``, then run ``parts``)."""
    held: deque[tuple[list[Any] | dict[Any, Any], int]] = deque([([done], 0)])
    done = None  # (not ``del``: mypyc keeps a generator's locals, and cannot delete them)
    freed = 0
    while held:
        members, level = held[0]
        if not members:
            held.popleft()
            continue
        item = members.popitem()[1] if isinstance(members, dict) else members.pop()
        inner = _members(item, level < 3)
        if inner is not None:
            held.append((inner, level + 1))
        del item, inner  # and, with the item, whatever of it is not held
        freed += 1
        if freed % RELEASED_PER_SLICE == 0:
            yield


def _members(item: object, upper: bool) -> list[Any] | dict[Any, Any] | None:
    """What ``release`` takes ``item``'s members from (None: let go of whole)."""
    if isinstance(item, list | dict):
        return item if upper or len(item) >= _LARGE else None
    if isinstance(item, MappingProxyType):
        return [*item.keys(), *item.values()] if upper or len(item) >= _LARGE else None
    if isinstance(item, tuple | set | frozenset):
        return list(item) if upper or len(item) >= _LARGE else None
    if upper and is_dataclass(item) and not isinstance(item, type):
        return [getattr(item, f.name) for f in fields(item)]
    return None


def _chunks(items: Sequence[U], size: int) -> Iterator[tuple[int, Sequence[U]]]:
    """(start, items[start:start + size]) for each slice of ``items``."""
    for start in range(0, len(items), size):
        yield start, items[start:start + size]
