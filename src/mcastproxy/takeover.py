"""Upstream takeover: applying what liveness says about each candidate (draft §5.1, §5.2, §7).

``Liveness`` weighs the evidence (the link, queries and hellos from the upstream's configured
routers within its active interval, hold-downs, operator overrides) and says when a
candidate becomes usable or unusable. This module acts on it:

- *lost* (usable -> unusable): with takeover on, every subscription selected onto it is
  selected again without it (make before break is moot: it no longer delivers), and every
  bridge ends; with takeover off, subscriptions stay and only hot-standby swaps follow.
- *back* (unusable -> usable, after its hold-down): its per-channel avoid marks go, and
  everything is selected afresh so preferred upstreams take their subscriptions back, make
  before break; with hold-down "never" nothing moves back.

Only queries and hellos from an upstream's configured routers count (draft §7): a host on
the link can neither keep a dead upstream alive nor kill a live one. Others are dropped,
counted, and logged once per sender.
"""

from __future__ import annotations

import ipaddress

from mcastproxy.actions import Outbox
from mcastproxy.candidates import Candidates
from mcastproxy.channel_takeover import ChannelTakeover
from mcastproxy.config import Config
from mcastproxy.drops import Drop
from mcastproxy.forwarding import Forwarding
from mcastproxy.liveness import Liveness
from mcastproxy.moves import Moves

MAX_REJECTED_SENDERS_LOGGED = 64


class Takeover:
    """Each candidate's liveness, and what moves when it changes."""

    def __init__(self, candidates: Candidates, forwarding: Forwarding, moves: Moves,
                 channels: ChannelTakeover, outbox: Outbox) -> None:
        self._candidates = candidates
        self._forwarding = forwarding
        self._moves = moves
        self._channels = channels
        self._outbox = outbox
        self._liveness: Liveness | None = None  # made at the first event, which has a time
        self._rejected_from: set[tuple[str, bytes]] = set()  # logged once each

    @property
    def started(self) -> bool:
        return self._liveness is not None

    @property
    def liveness(self) -> Liveness:
        assert self._liveness is not None, "no event handled yet"
        return self._liveness

    def start(self, config: Config, now: float) -> None:
        if self._liveness is None:
            self._liveness = Liveness(config, now)
            self._candidates.unusable = self._liveness.unusable()

    def reconfigure(self, config: Config, now: float, up: set[str]) -> None:
        """A new configuration: liveness keeps what it observed of the candidates it had;
        ``up`` are the interfaces that are up. Changes are taken quietly: the reload
        reselects everything anyway."""
        live = self._liveness = Liveness(config, now, previous=self._liveness)
        for name in self._candidates.names:
            live.link(name, name in up, now)
        live.pop_changes()
        self._candidates.unusable = live.unusable()

    # --- evidence ---------------------------------------------------------------------------

    def link(self, upstream: str, up: bool, now: float) -> None:
        self.liveness.link(upstream, up, now)
        self.apply(now)

    def force(self, upstream: str, usable: bool, now: float) -> None:
        """An override from outside (operator, controller, tests): usable or not."""
        self.liveness.force(upstream, usable, now)
        self.apply(now)

    def signal(self, upstream: str, source: bytes, kind: str, now: float) -> Drop | None:
        """A query or hello heard on an upstream. From a configured router (or from anyone
        where none is configured), evidence of life if the upstream counts it; from anyone
        else, a drop: it changes nothing at all (draft §7), not liveness, and for a query not
        the host side's compatibility mode or answers either (a host on the link must not
        turn an SSM channel into an any-source join with one IGMPv2 query)."""
        cand = self._candidates.config.candidate(upstream)
        trusted = not cand.routers or any(r.packed == source for r in cand.routers)
        evidence = cand.liveness
        if trusted and not (evidence.queries if kind == "query" else evidence.hellos):
            return None
        if self.liveness.signal(upstream, source, now):  # counts the rejected ones too
            self.apply(now)
            return None
        # Said once per sender, for the first few senders: spoofed sources must not flood
        # the log or grow this set (every one is counted all the same).
        if (upstream, source) not in self._rejected_from and len(
                self._rejected_from) < MAX_REJECTED_SENDERS_LOGGED:
            self._rejected_from.add((upstream, source))
            sender = str(ipaddress.ip_address(source))
            self._outbox.log("warning", "liveness-rejected",
                             f"{kind} on {upstream} from {sender}, not one of its routers: "
                             "it does not count", upstream=upstream, source=sender)
        return Drop.QUERY_NOT_FROM_ROUTER if kind == "query" else Drop.HELLO_NOT_FROM_ROUTER

    def handle_timers(self, now: float) -> None:
        self.liveness.handle_timers(now)
        self.apply(now)

    def next_deadline(self) -> float | None:
        return None if self._liveness is None else self._liveness.next_deadline()

    # --- what moves ---------------------------------------------------------------------------

    def apply(self, now: float) -> None:
        """Take in what liveness decided: log each change, then move what must move."""
        live, cands, outbox = self.liveness, self._candidates, self._outbox
        for change in live.pop_changes():
            state = "usable" if change.usable else "unusable"
            outbox.counts[f"upstream {state}"] += 1
            outbox.log("info" if change.usable else "warning", "liveness",
                       f"upstream {change.interface} is {state}: {change.cause}",
                       upstream=change.interface, usable=change.usable, cause=change.cause)
        before, cands.unusable = cands.unusable, live.unusable()
        if before == cands.unusable:
            return
        if not cands.takeover:
            self._forwarding.refresh_all()  # hot standby swaps still follow usability
            return
        lost = cands.unusable - before
        back = before - cands.unusable
        self._channels.lift_everywhere(back)
        if lost:
            outbox.counts["takeover"] += 1
            self._moves.end_all()
            # §5.1 takeover: what was selected onto them is selected again without them.
            self._moves.reselect(now, lambda share: any(share.uses(u) for u in lost))
        if back and cands.config.upstream.hold_down is not None:
            # Back (after its hold-down): everything is selected afresh, so preferred
            # upstreams take back their subscriptions. With hold-down "never" they do not.
            self._moves.reselect(now, lambda share: True, fresh=True, bridge=True)
        self._forwarding.refresh_all()
