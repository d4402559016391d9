"""The candidate upstream interfaces as the engine sees them now (draft §4, §5).

Words:
- *candidate*: an upstream interface of the configuration (draft §4), in configuration
  *order*, with its interface *priority* (§4.3).
- *unusable*: a candidate that liveness says is down or inactive (§5.1); takeover skips it.
- *resilient*: channels also joined on the next-ranked usable upstream as hot standby.
- *placement*: which of tied upstreams carries a channel, by their budgets (``placement``).

The ledger, the forwarding plan and takeover all read one ``Candidates``; the engine updates
it when the configuration, an upstream's addresses (the §4.4 fallback compares them) or
liveness change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from mcastproxy.config import Config
from mcastproxy.placement import Placement
from mcastproxy.selection import Channels, Selector

Addresses = Mapping[str, Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]]


class Candidates:
    """Selection, order, priorities and usability of the candidate upstreams."""

    def __init__(self, config: Config, addresses: Addresses | None = None) -> None:
        self.unusable: frozenset[str] = frozenset()
        self.placement = Placement(self, config)
        self.configure(config, addresses)

    def configure(self, config: Config, addresses: Addresses | None) -> None:
        cands = config.upstream.candidates
        self.config = config
        self.selector = Selector(config, addresses)
        self.names = frozenset(c.interface for c in cands)
        self.order = {c.interface: i for i, c in enumerate(cands)}
        self.priority = {c.interface: c.priority for c in cands}
        self.takeover = config.upstream.takeover
        self.resilient = Channels(config.upstream.resilient)
        self.placement.configure(config)

    def readdress(self, addresses: Addresses) -> None:
        """The candidates' interface addresses changed: compile selection anew."""
        self.selector = Selector(self.config, addresses)

    def still_good(self, upstreams: tuple[str, ...]) -> bool:
        """Whether a remembered selection may stand: every upstream still a candidate and,
        with takeover, usable (a reload keeps running subscriptions where they are)."""
        if not all(u in self.names for u in upstreams):
            return False
        return not (self.takeover and any(u in self.unusable for u in upstreams))

    def ignore_subscribers(self, group: bytes) -> bool:
        """Whether no record (selection's or resilient's) names subscribers for groups of
        this family: every subscriber's selection is then the same."""
        return not self.selector.by_subscriber(len(group)) and not self.resilient.by_subscriber
