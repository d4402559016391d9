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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from mcastproxy.config import Config
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.forwarding import Forwarding
from mcastproxy.ledger import Ledger
from mcastproxy.membership.outputs import GroupChanged, SendQuery, SubscriberChanged
from mcastproxy.membership.router import RouterLink
from mcastproxy.upstream.merge import InterfaceState
from mcastproxy.wire.messages import Message

Send = Callable[[str, Family, bytes, object], None]  # (interface, family, destination, message)


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
                 forwarding: Forwarding, send: Send) -> None:
        self.links = links  # shared with the forwarding plan, which asks what links want
        self._ledger = ledger
        self._forwarding = forwarding
        self._send = send
        self.names: frozenset[str] = frozenset()

    def configure(self, config: Config, families: list[Family]) -> None:
        self._config = config
        self._families = families
        self.names = frozenset(d.interface for d in config.downstream)

    def up(self, name: str, addresses: Iterable[bytes], now: float) -> None:
        """Link ``name`` is up with ``addresses`` (first time: its router side starts)."""
        config = self._config
        for fam in self._families:
            own = own_address(addresses, fam)
            link = self.links.get((name, fam))
            if link is None:
                proto = config.igmp if fam is Family.V4 else config.mld
                assert proto is not None
                fast = next(d.fast_leave for d in config.downstream if d.interface == name)
                link = self.links[name, fam] = RouterLink(
                    config.downstream_timers(name), fam, proto.version, own, fast,
                    ssm_ranges=proto.ssm_ranges)
                link.start(now)
            else:
                link.set_address(own, now)
            self._flush(name, fam, link)

    def down(self, name: str, now: float) -> None:
        for fam in self._families:
            link = self.links.get((name, fam))
            if link is not None:
                link.set_address(None, now)
                self._flush(name, fam, link)

    def receive(self, name: str, family: Family, message: Message, source: bytes,
                now: float) -> Drop | None:
        link = self.links.get((name, family))
        if link is None:
            return Drop.NOT_PROXIED
        link.receive(message, source, now)
        self._flush(name, family, link)
        return None

    def due(self, now: float) -> None:
        for (name, fam), link in self.links.items():
            deadline = link.next_deadline()
            if deadline is not None and deadline <= now:
                link.handle_timers(now)
                self._flush(name, fam, link)

    def deadlines(self) -> Iterator[float | None]:
        return (link.next_deadline() for link in self.links.values())

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
        for out in link.pop_outputs():
            if isinstance(out, SendQuery):
                self._send(name, family, out.destination, out.query)
            elif isinstance(out, SubscriberChanged):
                group = out.group
                wanted = touched.get(group)
                if wanted is None:
                    wanted = touched[group] = link.forwarded(group)
                ledger.subscriber_changed(name, link, group, out.subscriber, wanted)
            elif isinstance(out, GroupChanged) and out.group not in touched:
                touched[out.group] = link.forwarded(out.group)
        flows = self._forwarding.flows_by_group
        for group, wanted in touched.items():
            if ledger.settle(name, group, wanted, group in flows):
                self._forwarding.stale.add((group, name))
