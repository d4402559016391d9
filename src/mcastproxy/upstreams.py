"""The host side of every candidate upstream: reporting the ledger's merges (RFC 4605 §4.1).

Per upstream and family an ``UpstreamHost`` (RFC 9776 §5 / RFC 9777 §6) reports what the
ledger's merge for each group says, with state-change reports, retransmissions and answers
to the upstream querier. Merges that changed are *dirty*; they are reported once per event,
after every share moved, so a subscription moving between upstreams is joined on the new
one and settled on the old one in one pass: nothing is left and joined again.

What the hosts have to send is sent once per event too, at the end of ``report_dirty`` (the
engine's settling of every event): the state changes of the event, a retransmission tick and
the answers due at that moment go out together, so each upstream packs them into as few
reports as its MTU allows (RFC 9776 §4.2.16, RFC 9777 §5.2.15) rather than one per group.

When an upstream joins a group, data the kernel queued for it just before gets its route;
when it leaves one, the group's flows on it go, and per-channel avoid marks of a group that
nobody asks for any more are forgotten.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from mcastproxy.actions import Outbox
from mcastproxy.candidates import Candidates
from mcastproxy.channel_takeover import ChannelTakeover
from mcastproxy.config import Config
from mcastproxy.family import BY_LENGTH, Family
from mcastproxy.forwarding import Forwarding
from mcastproxy.ledger import Ledger
from mcastproxy.membership.state import FilterMode
from mcastproxy.upstream.host import UpstreamHost
from mcastproxy.upstream.merge import EMPTY, NOTHING, InterfaceState
from mcastproxy.wire.messages import Query

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
        self.unsent: set[tuple[str, Family]] = set()  # hosts that may have output

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
        self.unsent.add((upstream, family))
        return True

    def report_dirty(self, now: float) -> None:
        """Report every merge that changed, then send what the hosts have to send (see the
        module's comment)."""
        dirty = self._ledger.dirty
        while dirty:
            # Sorted: the records of one event go out in the same order on every run.
            batch = sorted(dirty)
            dirty.clear()
            changes = []
            for upstream, group in batch:
                change = self._report(upstream, group, now)
                if change is not None:
                    changes.append(change)
            self.flush()
            for upstream, group, before, state in changes:
                self._reported(upstream, group, before, state, now)  # may dirty more
        self.flush()

    def flush(self) -> None:
        """Send what every host has to send."""
        if self.unsent:
            for key in sorted(self.unsent):
                host = self.hosts.get(key)
                if host is not None:
                    for out in host.pop_outputs():
                        self._send(key[0], key[1], out.destination, out.message)
            self.unsent.clear()

    def _report(self, upstream: str, group: bytes,
                now: float) -> tuple[str, bytes, InterfaceState, InterfaceState] | None:
        """Hand the merge of ``group`` to ``upstream``'s host side; what changed, if it did."""
        family = BY_LENGTH[len(group)]
        host = self.hosts.get((upstream, family))
        if host is None:
            return None
        state = self._ledger.upstream_state(upstream, group)
        before = host.state(group)
        if before == state:
            return None
        host.set_state(group, state[0], state[1], now)
        self.unsent.add((upstream, family))
        return upstream, group, before, state

    def _reported(self, upstream: str, group: bytes, before: InterfaceState,
                  state: InterfaceState, now: float) -> None:
        """After the reports: log a join or a leave, and follow it in the forwarding plan."""
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
            self.unsent.add((name, fam))

    def due(self, now: float) -> None:
        """Run the hosts' timers that are due; what they send goes with the event's reports."""
        for key, host in self.hosts.items():
            deadline = host.next_deadline()
            if deadline is not None and deadline <= now:
                host.handle_timers(now)
                self.unsent.add(key)
