"""Per-channel takeover and hold-down (draft §5: an upstream is active per channel).

The kernel's packet counters of the routes on data-watched upstreams come in
(``CountersSampled``); ``FlowWatch`` says which flows went dead or came back. A flow that
stops delivering on one upstream moves its links to a hot standby that delivers (the
forwarding plan does that by itself when it recomputes the routes). With no such standby
and takeover on, the channel alone is selected again without that upstream; every other
channel on it stays where it is.

Words:
- *avoid*: per group, per source (``None``: the group's any-source joins), the upstreams on
  which that channel alone is dead. Selection skips them for that channel only.
- *hold-down*: how long an avoid mark stays. When it ends, the channel is tried on the
  upstream again, make before break (``moves``); with hold-down "never" it stays avoided
  until the upstream delivers it again or nobody asks for the channel any more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from mcastproxy.actions import Outbox
from mcastproxy.candidates import Candidates
from mcastproxy.flowwatch import Health
from mcastproxy.forwarding import Forwarding, Route
from mcastproxy.ledger import Avoid
from mcastproxy.moves import Moves


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


class ChannelTakeover:
    """Avoid marks of dead channels, and their hold-downs."""

    def __init__(self, candidates: Candidates, forwarding: Forwarding, moves: Moves,
                 outbox: Outbox) -> None:
        self._candidates = candidates
        self._forwarding = forwarding
        self._moves = moves
        self._outbox = outbox
        self.avoid: Avoid = {}
        # When each mark is lifted and the channel tried there again (no entry: hold-down
        # "never"): (group, source or None, upstream) -> time.
        self._until: dict[tuple[bytes, bytes | None, str], float] = {}

    def sampled(self, packets: Mapping[Route, int], now: float) -> None:
        """Route counters read: a flow that stops moves its links to a standby that
        delivers; with none, and takeover on, the channel alone is selected again without
        that upstream."""
        touched: set[bytes] = set()
        outbox = self._outbox
        for (upstream, source, group), health, cause in self._forwarding.watch.sample(
                packets, now):
            touched.add(group)
            outbox.counts[f"channel {health.value}"] += 1
            outbox.log("warning" if health is Health.DEAD else "info", "channel-liveness",
                       f"({_text(source)}, {_text(group)}) on {upstream} is {health.value}: "
                       f"{cause}", upstream=upstream, source=_text(source), group=_text(group),
                       health=health.value, cause=cause)
            if health is Health.DEAD:
                self._dead(upstream, source, group, now)
            elif health is Health.DELIVERING:
                self.lift(frozenset((upstream,)), group, source)
        for group in touched:
            self._forwarding.refresh(group)

    def _dead(self, upstream: str, source: bytes, group: bytes, now: float) -> None:
        fwd, cands = self._forwarding, self._candidates
        flows = fwd.flows_by_group.get(group, set())
        standby = [u for u, s in flows if s == source and u != upstream
                   and u not in cands.unusable and fwd.watch.delivering((u, source, group))]
        if standby or not cands.takeover:
            return  # a hot standby takes the links over (``refresh``), or nothing moves
        avoid = self.avoid.setdefault(group, {})
        keys: list[bytes | None] = [source]
        if all(not fwd.watch.delivering((u, s, group)) for u, s in flows if u == upstream):
            keys.append(None)  # the any-source joins too
        hold = fwd.watch.hold_down(upstream)
        for key in keys:
            avoid[key] = avoid.get(key, frozenset()) | {upstream}
            if hold is not None:
                self._until[group, key, upstream] = now + hold
        self._outbox.counts["channel takeover"] += 1
        self._outbox.log("warning", "channel-takeover",
                         f"({_text(source)}, {_text(group)}) selected again without {upstream}",
                         upstream=upstream, source=_text(source), group=_text(group))
        self._moves.reselect(now, lambda share: share.uses(upstream), group_only=group)

    def lift(self, upstreams: frozenset[str], group: bytes, source: bytes | None = None) -> None:
        """``upstreams`` may carry ``group`` again (the channel of ``source`` only, if given,
        and the group's any-source joins)."""
        avoid = self.avoid.get(group)
        if avoid is None:
            return
        for key in list(avoid) if source is None else (source, None):
            if key in avoid:
                for upstream in avoid[key] & upstreams:
                    self._until.pop((group, key, upstream), None)
                avoid[key] -= upstreams
                if not avoid[key]:
                    del avoid[key]
        if not avoid:
            del self.avoid[group]

    def lift_everywhere(self, upstreams: frozenset[str]) -> None:
        """``upstreams`` are usable again: their channels may be selected there again."""
        for group in list(self.avoid):
            self.lift(upstreams, group)

    def forget(self) -> None:
        """Selected again under new rules (a reload): every mark goes."""
        self.avoid.clear()
        self._until.clear()

    def due(self, now: float) -> None:
        """Marks whose hold-down ended are lifted, and their channels selected afresh: joined
        again where they died while they stay where they are, until the first upstream
        delivers."""
        retry = {}
        for (group, key, upstream), end in list(self._until.items()):
            if end <= now:
                self.lift(frozenset((upstream,)), group, key)
                retry[group] = upstream
        for group, upstream in retry.items():
            self._outbox.log("info", "channel-retry",
                             f"{_text(group)} tried again on {upstream} after its hold-down",
                             upstream=upstream, group=_text(group))
            self._moves.reselect(now, lambda share: True, fresh=True, group_only=group,
                                 bridge=True)

    def next_deadline(self) -> float | None:
        return min(self._until.values()) if self._until else None
