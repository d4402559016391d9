"""The router side of every downstream link, feeding the ledger (RFC 9776 §6, RFC 9777 §7).

Per downstream link and family a ``RouterLink`` runs the querier election, queries, timers,
compatibility modes and per-subscriber (explicitly tracked) state. Its outputs after each
input are taken in order: queries go out; each subscriber whose state changed is handed to
the ledger with what the link now forwards of the group; then each touched group is settled
once (lingering and anonymous shares) and, where the group has flows, its routes on that
link are marked stale for the forwarding plan.

A link comes into being when its interface is first up with an address to speak from, and
keeps its state across address changes and carrier loss (RFC 9776 §6: a router that loses
its address stops querying; its memberships time out as usual).

Before the router side sees a message, it is held to the link's validity rules
(``membership.validity``: TTL / hop limit 1, Router Alert, and with ``verify-source-subnet``
a source in the link's subnets, which come with the interface's addresses). Who may be
querier is the router side's (``QuerierPolicy``); the queries it refuses are logged here, for
the first few senders (spoofed sources must not flood the log), and counted as drops.
A new configuration's querier policy, specific-query rate, timers, fast leave, SSM mapping and
static groups reach a running link when the engine applies it (``retune``, with its time: a
link that may no longer leave the querier's role to another router takes it at once).

What a subscriber may join and how much it may hold is each link's ``Admission``
(``admission``), with the link's ``EdgePolicy`` (``policy``) compiled from the configuration.
The counts that span links are kept here and shared: each link's groups (``Room``, one for
both families of a link) and the proxy's entries (one for all). A new configuration's policy
reaches every running link at once (it needs no time); the counts stay. Refused joins are
logged like refused queries: the router side hands over the first refusals of each
subscriber, for the first few subscribers only.

For a session log (RFC 8313 §4.3.3), the links can say when each subscriber's reception of a
channel, (S,G) or (*,G), begins and ends (``sessions``, off by default): each
``SessionChanged`` of a link becomes an ``actions.Session`` in the outbox, in order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from mcastproxy.actions import Outbox, Session
from mcastproxy.admission import Admission, Room
from mcastproxy.config import Config, Downstream, static_entries
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.forwarding import Forwarding
from mcastproxy.ledger import Ledger
from mcastproxy.membership.outputs import (
    JoinRefused,
    QueriesMerged,
    QueryRefused,
    SendQuery,
    SessionChanged,
)
from mcastproxy.membership.router import RouterLink
from mcastproxy.membership.validity import LinkValidity, subnets_of
from mcastproxy.policy import MAX_ENTRIES, EdgePolicy
from mcastproxy.ratelimit import LINK_RATE, SUBSCRIBER_RATE, ReportLimiter, from_setting
from mcastproxy.upstream.merge import InterfaceState
from mcastproxy.wire.messages import Message

if TYPE_CHECKING:
    from mcastproxy.placement import Placement

Send = Callable[[str, Family, bytes, object], None]  # (interface, family, destination, message)

MAX_REFUSED_QUERIERS_LOGGED = 64
MAX_REFUSED_JOINS_LOGGED = 64  # (link, subscriber) pairs whose refused joins are logged


def own_address(addresses: Iterable[bytes], family: Family) -> bytes | None:
    """The address a router speaks from: the first IPv4 one, or the IPv6 link-local
    (RFC 9777 §5.1.14: MLD messages come from a link-local address)."""
    for a in addresses:
        if family is Family.V4 and len(a) == 4:
            return a
        if family is Family.V6 and len(a) == 16 and a[:2] == b"\xfe\x80":
            return a
    return None


class DownstreamLinks:
    """A ``RouterLink`` per (downstream link, family)."""

    def __init__(self, links: dict[tuple[str, Family], RouterLink], ledger: Ledger,
                 forwarding: Forwarding, send: Send, outbox: Outbox,
                 placement: Placement | None = None, sessions: bool = False) -> None:
        self.links = links  # shared with the forwarding plan, which asks what links want
        self._ledger = ledger
        self._forwarding = forwarding
        self._send = send
        self._outbox = outbox
        self.names: frozenset[str] = frozenset()
        self._settings: dict[str, Downstream] = {}
        # Each running link with its validity rules: one lookup per message.
        self._receivers: dict[tuple[str, Family], tuple[RouterLink, LinkValidity]] = {}
        # What each link is up with: addresses and their prefix lengths (empty: not known).
        self._addresses: dict[str, tuple[bytes, ...]] = {}
        self._prefix_lengths: dict[str, tuple[int, ...]] = {}
        self._retune: set[tuple[str, Family]] = set()  # links due the new configuration
        self._refused_logged: set[tuple[str, bytes]] = set()
        self._joins_logged: set[tuple[str, bytes | None]] = set()
        # Admission's counts that span links: each link's groups, the proxy's entries (and
        # with them the upstreams' budgets, ``placement``).
        self.entries = Room(MAX_ENTRIES, placement)
        self._rooms: dict[str, Room] = {}
        self._unverified: set[str] = set()  # links told their subnets cannot be checked
        # Report rate limits per link (``ratelimit``): the engine asks them before decoding.
        self.limiters: dict[str, ReportLimiter] = {}
        self._sessions = sessions

    @property
    def sessions(self) -> bool:
        """Whether each subscriber's sessions on every link are put in the outbox as
        ``actions.Session`` (for a session log; off by default: it costs a little on every
        join and leave). Set it before the links hear reports: sessions already running are
        not said."""
        return self._sessions

    @sessions.setter
    def sessions(self, on: bool) -> None:
        self._sessions = on
        for link in self.links.values():
            link.sessions = on

    def configure(self, config: Config, families: list[Family]) -> None:
        self._config = config
        self._families = families
        self.names = frozenset(d.interface for d in config.downstream)
        self._settings = {d.interface: d for d in config.downstream}
        for name in list(self._addresses):
            if name in self._settings:
                self._judge(name)
        self._retune = {key for key in self.links if key[0] in self._settings}
        for (name, fam), link in self.links.items():
            if name in self._settings:
                link.set_policy(EdgePolicy.from_config(config, name, fam))
        self._configure_rates(config)

    def _configure_rates(self, config: Config) -> None:
        """Each link's report rate limits (``ratelimit``): its own, else the global ones,
        else the built-in; a link whose settings did not change keeps its buckets."""
        glob = config.policy.report_rate
        limiters: dict[str, ReportLimiter] = {}
        for name, settings in self._settings.items():
            own = settings.policy.report_rate
            sub = from_setting(own.subscriber if own.subscriber is not None
                               else glob.subscriber, SUBSCRIBER_RATE)
            link = from_setting(own.link if own.link is not None else glob.link, LINK_RATE)
            old = self.limiters.get(name)
            if old is not None and (old.subscriber, old.link) == (sub, link):
                limiters[name] = old
            elif sub is not None or link is not None:
                limiters[name] = ReportLimiter(sub, link)
        self.limiters = limiters


    def _admission(self, name: str, family: Family) -> Admission:
        policy = EdgePolicy.from_config(self._config, name, family)
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(policy.max_groups)
        self.entries.maximum = policy.max_entries
        return Admission(policy, room, self.entries)

    def up(self, name: str, addresses: Iterable[bytes], now: float,
           prefix_lengths: tuple[int, ...] = ()) -> None:
        """Link ``name`` is up with ``addresses`` (first time: its router side starts), each
        with its prefix length if known."""
        config = self._config
        settings = self._settings[name]
        addresses = tuple(addresses)
        self._addresses[name] = addresses
        self._prefix_lengths[name] = prefix_lengths
        for fam in self._families:
            own = own_address(addresses, fam)
            link = self.links.get((name, fam))
            if link is None:
                proto = config.igmp if fam is Family.V4 else config.mld
                assert proto is not None
                link = self.links[name, fam] = RouterLink(
                    config.downstream_timers(name), fam, proto.version, own, settings.fast_leave,
                    ssm_ranges=proto.ssm_ranges, querier=settings.querier_policy(),
                    specific_query_rate=settings.specific_query_rate,
                    admission=self._admission(name, fam), ssm_map=proto.mapping(),
                    sessions=self._sessions)
                link.start(now)
                link.set_static(static_entries(settings.static_group, fam), now)
            else:
                self._retune_link(name, fam, link, now)
                link.set_address(own, now)
            self._flush(name, fam, link)
        self._judge(name)
        if (settings.verify_source_subnet and not prefix_lengths
                and Family.V4 in self._families and name not in self._unverified):
            self._unverified.add(name)  # said once per link
            self._outbox.log("warning", "verify-source-subnet",
                             f"verify-source-subnet on {name}: the prefix lengths of its "
                             "addresses are not known, so its subnets are not checked",
                             interface=name)

    def _judge(self, name: str) -> None:
        """The validity rules of link ``name`` (``membership.validity``), for each family."""
        settings = self._settings[name]
        lengths = self._prefix_lengths.get(name, ())
        subnets = None
        if settings.verify_source_subnet and lengths:
            subnets = subnets_of(self._addresses.get(name, ()), lengths)
        for fam in self._families:
            link = self.links.get((name, fam))
            if link is not None:
                self._receivers[name, fam] = (
                    link, LinkValidity(fam, settings.require_router_alert, subnets))

    def _retune_link(self, name: str, family: Family, link: RouterLink, now: float) -> bool:
        """Give a running link the querier policy and rate of a new configuration (if it is
        due them); True if it was."""
        if (name, family) not in self._retune:
            return False
        self._retune.discard((name, family))
        settings = self._settings[name]
        proto = self._config.igmp if family is Family.V4 else self._config.mld
        link.reconfigure(settings.querier_policy(), settings.specific_query_rate, now,
                         self._config.downstream_timers(name), settings.fast_leave,
                         proto.mapping() if proto is not None else None)
        link.set_static(static_entries(settings.static_group, family), now)
        return True

    def retune(self, now: float) -> None:
        """Give every running link what the new configuration changed for it, now."""
        for (name, fam), link in list(self.links.items()):
            if self._retune_link(name, fam, link, now):
                self._flush(name, fam, link)

    def prefix_lengths(self, name: str, addresses: tuple[bytes, ...]) -> tuple[int, ...]:
        """The prefix lengths link ``name`` was last up with, if with these ``addresses``."""
        if self._addresses.get(name) != addresses:
            return ()
        return self._prefix_lengths.get(name, ())

    def down(self, name: str, now: float) -> None:
        for fam in self._families:
            link = self.links.get((name, fam))
            if link is not None:
                link.set_address(None, now)
                self._flush(name, fam, link)

    def receive(self, name: str, family: Family, message: Message, source: bytes,
                now: float, ttl: int | None = None,
                router_alert: bool | None = None) -> Drop | None:
        """A message heard on link ``name``; the reason it was dropped, if it was before the
        router side (which counts its own drops)."""
        receiver = self._receivers.get((name, family))
        if receiver is None:
            return Drop.NOT_PROXIED
        link, validity = receiver
        if (ttl is not None and ttl != 1) or router_alert is False or validity.subnets is not None:
            drop = validity.check(message, source, ttl, router_alert)  # else nothing to object
            if drop is not None:
                return drop
        if self._retune:
            self._retune_link(name, family, link, now)
        link.receive(message, source, now)
        self._flush(name, family, link)
        return None

    def clear(self, interface: str | None, group: bytes | None, source: bytes | None,
              family: int | None = None) -> int:
        """RFC 8652 clear-groups: forget the groups on the links named (``ClearGroups``),
        of ``family`` (None: both); how many (link, group) states were forgotten. Static
        groups stay."""
        cleared = 0
        for (name, fam), link in self.links.items():
            if (interface is not None and name != interface) or (
                    family is not None and fam != family):
                continue
            if group is not None and len(group) != fam.length:
                continue
            for g in ([group] if group is not None else list(link.groups())):
                state = link.group_state(g)
                if state is None or (source is not None and source not in state.sources):
                    continue
                cleared += link.clear(g)
            self._flush(name, fam, link)
        return cleared

    def due(self, now: float) -> None:
        for (name, fam), link in self.links.items():
            retuned = bool(self._retune) and self._retune_link(name, fam, link, now)
            deadline = link.next_deadline()
            if deadline is not None and deadline <= now:
                link.handle_timers(now)
            elif not retuned:
                continue
            self._flush(name, fam, link)

    def group_counts(self) -> dict[str, int]:
        """Groups with state per link, both families summed (for metrics: O(links))."""
        out: dict[str, int] = {}
        for (name, _), link in self.links.items():
            out[name] = out.get(name, 0) + link.group_count
        return out

    def messages(self) -> dict[tuple[str, str, str, str], int]:
        """(link, protocol, received/sent/error, message type) -> messages (for metrics:
        O(links))."""
        out: dict[tuple[str, str, str, str], int] = {}
        for (name, family), link in self.links.items():
            for direction, counts in link.statistics.items():
                for kind, n in counts.items():
                    if kind != "total" and n:
                        out[name, family.protocol, direction, kind] = n
        return out

    def bandwidth(self) -> dict[str, int]:
        """Link -> bits a second of the channels on it, where a table rates channels."""
        out: dict[str, int] = {}
        for (name, _), link in self.links.items():
            adm = link.admission
            if adm is not None and adm.cac is not None:
                out[name] = adm.link.bandwidth.used
        return out

    def drops(self) -> Iterator[tuple[str, Drop, int]]:
        """What the router sides dropped: (link, reason, count)."""
        for (name, _), link in self.links.items():
            for reason, n in link.dropped.items():
                yield name, reason, n

    def _flush(self, name: str, family: Family, link: RouterLink) -> None:
        # Groups to settle once each, in order, with what the link now forwards of each (the
        # outputs come after the whole input, so that holds for all of them).
        touched: dict[bytes, InterfaceState] = {}
        ledger = self._ledger
        outputs, subscribers, groups = link.pop_changes()
        for out in outputs:
            if isinstance(out, SendQuery):
                self._send(name, family, out.destination, out.query)
            elif isinstance(out, SessionChanged):
                self._outbox.append(Session(name, family, out.subscriber, out.source,
                                            out.group, out.start))
            elif isinstance(out, QueriesMerged):
                self._outbox.counts["specific queries merged"] += 1
            elif isinstance(out, QueryRefused):
                self._refused(name, family, out)
            elif isinstance(out, JoinRefused):
                self._join_refused(name, family, out)
        # The ledger's effects show only when the engine settles the event, so the changes
        # may come after the other outputs.
        for group, subscriber in subscribers:
            wanted = touched.get(group)
            if wanted is None:
                wanted = touched[group] = link.forwarded(group)
            ledger.subscriber_changed(name, link, group, subscriber, wanted)
        for group in groups:
            if group not in touched:
                touched[group] = link.forwarded(group)
        flows = self._forwarding.flows_by_group
        for group, wanted in touched.items():
            if ledger.settle(name, group, wanted, group in flows):
                self._forwarding.stale.add((group, name))

    def _refused(self, name: str, family: Family, out: QueryRefused) -> None:
        """Log a refused query, once per sender, for the first few senders."""
        key = (name, out.source)
        if key in self._refused_logged or len(self._refused_logged) >= MAX_REFUSED_QUERIERS_LOGGED:
            return
        self._refused_logged.add(key)
        sender = str(ipaddress.ip_address(out.source))
        why = ("the proxy is always querier there (querier: always)"
               if out.reason is Drop.QUERY_ON_ALWAYS_QUERIER_LINK
               else "not one of the link's routers")
        self._outbox.log("warning", "query-refused",
                         f"{family.protocol.upper()} query on {name} from {sender} dropped: "
                         f"{why}", interface=name, source=sender, reason=out.reason.key)

    def _join_refused(self, name: str, family: Family, out: JoinRefused) -> None:
        """Log a refused join: the router side hands over the first refusal of each
        (subscriber, reason); these are logged for the first few subscribers only."""
        key = (name, out.subscriber)
        if key not in self._joins_logged:
            if len(self._joins_logged) >= MAX_REFUSED_JOINS_LOGGED:
                return
            self._joins_logged.add(key)
        who = "an anonymous report" if out.subscriber is None else _text(out.subscriber)
        source = "*" if out.source is None else _text(out.source)
        self._outbox.log("warning", "join-refused",
                         f"{family.protocol.upper()} join of ({source}, {_text(out.group)}) on "
                         f"{name} from {who} refused: {out.reason}; {out.decided_by}",
                         interface=name, subscriber=_text(out.subscriber), source=source,
                         group=_text(out.group), reason=out.reason.key)


def _text(address: bytes | None) -> str:
    return "-" if address is None else str(ipaddress.ip_address(address))
