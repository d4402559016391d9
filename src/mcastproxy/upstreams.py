"""The host side of every candidate upstream: reporting the ledger's merges (RFC 4605 §4.1).

Per upstream and family an ``UpstreamHost`` (RFC 9776 §5 / RFC 9777 §6) reports what the
ledger's merge for each group says, with state-change reports, retransmissions and answers
to the upstream querier. Merges that changed are *dirty*; they are reported once per event,
after every share moved, so a subscription moving between upstreams is joined on the new
one and settled on the old one in one pass: nothing is left and joined again.

When an upstream joins a group, data the kernel queued for it just before gets its route;
when it leaves one, the group's flows on it go, and per-channel avoid marks of a group that
nobody asks for any more are forgotten.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from mcastproxy.actions import Outbox
from mcastproxy.candidates import Candidates
from mcastproxy.channel_takeover import ChannelTakeover
from mcastproxy.config import Config
from mcastproxy.family import BY_LENGTH, Family
from mcastproxy.forwarding import Forwarding
from mcastproxy.ledger import Ledger
from mcastproxy.membership.state import FilterMode
from mcastproxy.upstream.host import UpstreamHost
from mcastproxy.upstream.merge import EMPTY, InterfaceState
from mcastproxy.wire.messages import Query

NOTHING: InterfaceState = (FilterMode.INCLUDE, EMPTY)
Send = Callable[[str, Family, bytes, object], None]  # (interface, family, destination, message)


class Upstreams:
    """An ``UpstreamHost`` per (candidate, family), fed from the ledger."""

    def __init__(self, ledger: Ledger, forwarding: Forwarding, channels: ChannelTakeover,
                 candidates: Candidates, outbox: Outbox, send: Send,
                 rng: Callable[[], float]) -> None:
        self._ledger = ledger
        self._forwarding = forwarding
        self._channels = channels
        self._candidates = candidates
        self._outbox = outbox
        self._send = send
        self._rng = rng
        self.hosts: dict[tuple[str, Family], UpstreamHost] = {}

    def configure(self, config: Config, families: list[Family]) -> None:
        """A host side for every candidate and family that has none yet (a reload keeps
        those that stay, with their state)."""
        t = config.timers
        for name in self._candidates.names:
            for fam in families:
                if (name, fam) not in self.hosts:
                    self.hosts[name, fam] = UpstreamHost(
                        fam, robustness=t.robustness,
                        unsolicited_report_interval=t.unsolicited_report_interval,
                        query_interval=t.query_interval,
                        query_response_interval=t.query_response_interval, rng=self._rng)

    def query(self, upstream: str, family: Family, query: Query, now: float) -> bool:
        """A query heard on ``upstream``: answered as a host answers; False if the upstream
        does not proxy this family."""
        host = self.hosts.get((upstream, family))
        if host is None:
            return False
        host.receive_query(query, now)
        self._flush(upstream, family, host)
        return True

    def report_dirty(self, now: float) -> None:
        """Report every merge that changed (see the module's comment)."""
        dirty = self._ledger.dirty
        while dirty:
            upstream, group = dirty.pop()
            self._report(upstream, group, now)

    def _report(self, upstream: str, group: bytes, now: float) -> None:
        family = BY_LENGTH[len(group)]
        host = self.hosts.get((upstream, family))
        state = self._ledger.upstream_state(upstream, group)
        if host is None:
            return
        before = host.state(group)
        if before == state:
            return
        host.set_state(group, state[0], state[1], now)
        self._flush(upstream, family, host)
        if NOTHING in (state, before):
            joined = state != NOTHING
            text = str(ipaddress.ip_address(group))
            self._outbox.log("info", "upstream-join" if joined else "upstream-leave",
                             f"{'joined' if joined else 'left'} {text} on {upstream}",
                             upstream=upstream, group=text)
        if state == NOTHING:
            self._forwarding.left(upstream, group)
            names = self._candidates.names
            if group in self._channels.avoid and not self._ledger.asked(group, names):
                self._channels.lift(names, group)  # nobody asks: forget
        elif before == NOTHING:
            self._forwarding.joined(upstream, group, now)

    def leave_all(self, now: float) -> None:
        """Every upstream leaves every group it joined (a graceful stop)."""
        for (name, fam), host in self.hosts.items():
            for group in list(host.groups()):
                host.set_state(group, FilterMode.INCLUDE, EMPTY, now)
            self._flush(name, fam, host)

    def due(self, now: float) -> None:
        for (name, fam), host in self.hosts.items():
            deadline = host.next_deadline()
            if deadline is not None and deadline <= now:
                host.handle_timers(now)
                self._flush(name, fam, host)

    def deadlines(self) -> Iterator[float | None]:
        return (host.next_deadline() for host in self.hosts.values())

    def _flush(self, name: str, family: Family, host: UpstreamHost) -> None:
        for out in host.pop_outputs():
            self._send(name, family, out.destination, out.message)
