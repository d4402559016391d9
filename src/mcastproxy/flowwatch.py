"""Per-channel data liveness (draft §5: an upstream is active per session, per channel).

The kernel counts the packets of every route, the hot-standby routes with no outgoing links
included. Sampled every few tens of milliseconds, the counts tell, for each flow (upstream,
source, group) on an upstream whose ``liveness.data`` is set, whether it is delivering:

- a route is made because a packet arrived (the kernel's upcall), so a new flow delivers;
- a flow whose count has not moved for the upstream's data interval is *dead* there;
- a dead flow whose count moves again is *returning*; it delivers again after the
  upstream's hold-down (so a flapping source does not flap the feed), or never if the
  hold-down is "never".

Only *delivering* flows are preferred to feed a link; the engine decides what follows.
Pure state: the counts and ``now`` come in, the flows that changed go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import NamedTuple

Flow = tuple[str, bytes, bytes]  # (upstream, source, group)


class Health(Enum):
    DELIVERING = "delivering"
    DEAD = "dead"
    RETURNING = "returning"  # moving again, within its hold-down


class Transition(NamedTuple):
    flow: Flow
    health: Health
    cause: str


class _Entry:
    __slots__ = ("count", "health", "moved", "since")

    def __init__(self, now: float) -> None:
        self.count: int | None = None  # not read yet
        self.moved = now  # the last time the count moved (or the route was made)
        self.health = Health.DELIVERING
        self.since = now  # when the health last changed


class FlowWatch:
    """The data liveness of the flows on the watched upstreams."""

    def __init__(
        self, intervals: Mapping[str, float], hold_downs: Mapping[str, float | None]
    ) -> None:
        self._flows: dict[Flow, _Entry] = {}
        self.configure(intervals, hold_downs)

    def configure(
        self, intervals: Mapping[str, float], hold_downs: Mapping[str, float | None]
    ) -> None:
        """Upstream -> data interval (unwatched upstreams absent), and hold-down (None:
        never). Flows of upstreams no longer watched are forgotten."""
        self._intervals = dict(intervals)
        self._hold = dict(hold_downs)
        for flow in [f for f in self._flows if f[0] not in self._intervals]:
            del self._flows[flow]

    def hold_down(self, upstream: str) -> float | None:
        """How long a channel that failed on ``upstream`` waits to be tried there again."""
        return self._hold.get(upstream)

    def watched(self, upstream: str) -> bool:
        return upstream in self._intervals

    def add(self, flow: Flow, now: float) -> None:
        if flow[0] in self._intervals and flow not in self._flows:
            self._flows[flow] = _Entry(now)

    def remove(self, flow: Flow) -> None:
        self._flows.pop(flow, None)

    def health(self, flow: Flow) -> Health:
        entry = self._flows.get(flow)
        return Health.DELIVERING if entry is None else entry.health

    def delivering(self, flow: Flow) -> bool:
        entry = self._flows.get(flow)
        return entry is None or entry.health is Health.DELIVERING

    def flows(self) -> Iterable[tuple[Flow, Health]]:
        return ((f, e.health) for f, e in self._flows.items())

    def sample(self, packets: Mapping[Flow, int], now: float) -> list[Transition]:
        """Take in the counts read at ``now``; the flows whose health changed."""
        out: list[Transition] = []
        for flow, entry in self._flows.items():
            count = packets.get(flow)
            if count is None:
                continue  # not read (its route is being made, or gone)
            moved = count != entry.count
            if moved and (entry.count is not None or count > 0):
                entry.moved = now
            entry.count = count
            interval = self._intervals[flow[0]]
            health = entry.health
            if health is Health.DELIVERING:
                if now - entry.moved >= interval:
                    self._change(entry, Health.DEAD, now)
                    out.append(Transition(flow, Health.DEAD,
                                          f"no packet for {1000 * (now - entry.moved):.0f} ms"))
            elif health is Health.DEAD:
                if moved:
                    self._change(entry, Health.RETURNING, now)
                    hold = self._hold.get(flow[0])
                    out.append(Transition(flow, Health.RETURNING, "packets again" + (
                        "; stays a standby (hold-down never)" if hold is None
                        else f"; delivering after a hold-down of {hold:g} s")))
            elif now - entry.moved >= interval:
                self._change(entry, Health.DEAD, now)
                out.append(Transition(flow, Health.DEAD, "stopped again within its hold-down"))
            else:
                hold = self._hold.get(flow[0])
                if hold is not None and now - entry.since >= hold:
                    self._change(entry, Health.DELIVERING, now)
                    out.append(Transition(flow, Health.DELIVERING, "hold-down over"))
        return out

    @staticmethod
    def _change(entry: _Entry, health: Health, now: float) -> None:
        entry.health, entry.since = health, now
