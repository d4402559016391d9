"""Whether each candidate upstream is usable (draft §5.1, §5.2), from the evidence configured.

An upstream is *active* while every kind of evidence its configuration names holds:

- ``link``: the interface is up with carrier (netlink).
- ``queries`` / ``hellos``: an IGMP/MLD query or a PIM hello was heard from one of the
  candidate's configured upstream routers within its active interval (draft §5.2; about
  twice the query interval by default). Messages from other addresses do not count and are
  reported as rejected (draft §7: a host on a shared link must neither keep a dead upstream
  alive nor, by silence, kill a live one). With no routers configured any sender counts.

An active upstream that stops being active is unusable at once. One that becomes active again
is usable after its hold-down (so a flapping link does not flap the service); with no other
usable candidate, or the first time it comes up, it is usable at once. At start, signal
evidence is presumed for one active interval: a querier may take that long to speak.

Pure state: time comes in as ``now``; ``next_deadline()`` says when to call
``handle_timers``; ``pop_changes()`` hands out (candidate, usable, cause) as they happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mcastproxy.config import Config

FORCED = "set by the operator"


class Change(NamedTuple):
    interface: str
    usable: bool
    cause: str


@dataclass
class _Candidate:
    name: str
    link: bool  # evidence kinds in force
    signals: bool
    routers: frozenset[bytes]
    active_interval: float
    hold_down: float
    link_up: bool = False
    heard: float = 0.0  # last accepted query or hello (or the start)
    active: bool = False
    usable: bool = False
    usable_at: float | None = None  # when a returning upstream becomes usable
    forced: bool | None = None  # an operator's or controller's override
    was_usable: bool = False  # ever: only a return is held down, not a first start
    rejected: int = 0
    why_inactive: str = "not started"

    def deadline(self) -> float | None:
        best = self.usable_at
        if self.signals and self.active:
            silent = self.heard + self.active_interval
            if best is None or silent < best:
                best = silent
        return best


class Liveness:
    """The usability of every candidate upstream."""

    def __init__(self, config: Config, now: float, previous: Liveness | None = None) -> None:
        self._changes: list[Change] = []
        self._candidates: dict[str, _Candidate] = {}
        for c in config.upstream.candidates:
            ev = c.liveness
            cand = _Candidate(
                c.interface,
                link=ev.link,
                signals=ev.queries or ev.hellos,
                routers=frozenset(a.packed for a in c.routers),
                active_interval=config.active_interval(c.interface),
                hold_down=c.hold_down if c.hold_down is not None else (
                    config.upstream.hold_down or 0.0),
                heard=now,
            )
            old = previous._candidates.get(c.interface) if previous else None
            if old is not None:  # a reload keeps what was observed
                cand.link_up, cand.heard, cand.forced = old.link_up, old.heard, old.forced
                cand.active, cand.usable, cand.usable_at = old.active, old.usable, old.usable_at
                cand.was_usable = old.was_usable
            self._candidates[c.interface] = cand
        for cand in self._candidates.values():
            self._evaluate(cand, now, quiet=previous is None)
        if previous is None:
            self._changes.clear()  # the initial state is not a change

    # --- inputs ---------------------------------------------------------------------------

    def link(self, name: str, up: bool, now: float) -> None:
        cand = self._candidates.get(name)
        if cand is not None and cand.link_up != up:
            cand.link_up = up
            self._evaluate(cand, now)

    def signal(self, name: str, source: bytes, now: float) -> bool:
        """A query or hello from ``source`` on ``name``: whether it counts."""
        cand = self._candidates.get(name)
        if cand is None:
            return False
        if cand.routers and source not in cand.routers:
            cand.rejected += 1
            return False
        cand.heard = now
        if not cand.active:
            self._evaluate(cand, now)
        return True

    def force(self, name: str, usable: bool | None, now: float) -> None:
        """An override (``None`` lifts it): the operator or a controller knows better."""
        cand = self._candidates.get(name)
        if cand is not None:
            cand.forced = usable
            self._evaluate(cand, now)

    def handle_timers(self, now: float) -> None:
        for cand in self._candidates.values():
            deadline = cand.deadline()
            if deadline is not None and deadline <= now:
                self._evaluate(cand, now)

    # --- outputs --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        best = None  # (a plain loop: asked after every event the daemon handles)
        for c in self._candidates.values():
            d = c.deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def pop_changes(self) -> list[Change]:
        changes, self._changes = self._changes, []
        return changes

    def usable(self, name: str) -> bool:
        cand = self._candidates.get(name)
        return cand is not None and cand.usable

    def unusable(self) -> frozenset[str]:
        return frozenset(n for n, c in self._candidates.items() if not c.usable)

    def describe(self, name: str) -> dict[str, object]:
        """For status and explain: the evidence and what it says."""
        c = self._candidates[name]
        return {"usable": c.usable, "active": c.active, "link_up": c.link_up,
                "inactive_because": None if c.active else c.why_inactive,
                "rejected_signals": c.rejected, "forced": c.forced}

    # --- the rule ---------------------------------------------------------------------------

    def _evaluate(self, cand: _Candidate, now: float, quiet: bool = False) -> None:
        was_active, was_usable = cand.active, cand.usable
        cause = ""
        if cand.forced is not None:
            cand.active = cand.forced
            cause = FORCED
        elif cand.link and not cand.link_up:
            cand.active, cause = False, "link down"
        elif cand.signals and now - cand.heard >= cand.active_interval:
            cand.active = False
            cause = f"no query or hello from its routers for {cand.active_interval:g} s"
        else:
            cand.active = True
            cause = "link up" if not cand.signals else "queries or hellos heard"
        if not cand.active:
            cand.why_inactive = cause
            cand.usable, cand.usable_at = False, None
        elif not was_active:
            others = any(c.usable for c in self._candidates.values() if c is not cand)
            # Held down only on a return from failing evidence: not the first time up, not
            # when an operator's override is lifted.
            first = not cand.was_usable or cand.why_inactive == FORCED
            if quiet or first or cand.hold_down <= 0 or not others or cand.forced:
                cand.usable, cand.usable_at = True, None
            else:
                cand.usable_at = now + cand.hold_down
                cause = f"{cause}; usable after a hold-down of {cand.hold_down:g} s"
        elif cand.usable_at is not None and now >= cand.usable_at:
            cand.usable, cand.usable_at = True, None
            cause = "hold-down over"
        cand.was_usable = cand.was_usable or cand.usable
        if cand.usable != was_usable or (cand.active != was_active and not cand.usable):
            self._changes.append(Change(cand.name, cand.usable, cause))
