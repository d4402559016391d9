"""The security log: what an operator hands a peer domain or a SOC (RFC 8313 §4.3.3: "security
logs, aggregated or summarized according to agreement"; "types and counts of attacks
detected, related source information, related target information").

Two kinds of lines, JSON, one object a line (``jsonlines.LineWriter``):

- The engine's security events, as it logs them: refused joins (``join-refused``: policy and
  limits, with the subscriber, channel, reason and rule), refused queries (``query-refused``:
  forged or unwanted queries on a subscriber link), queries and hellos from a host that is not
  one of an upstream's routers (``liveness-rejected``), and ``verify-source-subnet``. The
  engine already logs each of these once per sender for the first few senders; here each
  kind is held to ``per_second`` lines a second besides, and what is held back is one
  ``suppressed`` line a second per kind with its count.
- Drops, as counts: every second, one ``drops`` line per (interface, reason) whose count grew,
  with the growth and the total. Malformed packets, forged queries, any-source joins to SSM
  groups, limits and report rates hit (``subscriber-max-groups``, ``subscriber-rate``,
  ``link-rate``, ...) are all drops (``status``' ``drops``): a flood of a million packets a
  second is one line a second per interface and reason, never a line per packet.

So the lines a second are bounded by the configuration whatever hosts send: ``per_second``
per event kind plus one per kind held back, plus one per (interface, drop reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from mcastproxy.actions import Log
from mcastproxy.jsonlines import LineWriter
from mcastproxy.sessionlog import iso

SECURITY_EVENTS = frozenset({"join-refused", "query-refused", "liveness-rejected",
                             "verify-source-subnet"})
PER_SECOND = 20  # lines of one event kind a second; the rest counted


class SecurityLog:
    """Security events and drop counts, to ``writer``, at most ``per_second`` lines of each
    event kind a second (``tick`` every second with the drop totals)."""

    def __init__(self, writer: LineWriter, *, per_second: int = PER_SECOND) -> None:
        self.writer = writer
        self.per_second = per_second
        self._window: float | None = None
        self._lines: Counter[str] = Counter()
        self._held: Counter[str] = Counter()
        self._drops: dict[tuple[str, str], int] = {}
        self.suppressed = 0

    def event(self, action: Log, now: float, wall: float) -> None:
        """A ``Log`` of the engine: written if a security event and its kind's rate allows."""
        if action.event not in SECURITY_EVENTS:
            return
        if self._window is None or now - self._window >= 1.0:
            self._close_window(wall)
            self._window = now
        if self._lines[action.event] >= self.per_second:
            self._held[action.event] += 1
            self.suppressed += 1
            return
        self._lines[action.event] += 1
        line: dict[str, Any] = {"time": iso(wall), "event": action.event,
                                "level": action.level, "message": action.message}
        for name, value in action.fields.items():
            line.setdefault(name, value if isinstance(value, (str, int, float, bool))
                            or value is None else str(value))
        self.writer.write(line)

    def _close_window(self, wall: float) -> None:
        for kind, n in sorted(self._held.items()):
            self.writer.write({"time": iso(wall), "event": "suppressed", "kind": kind,
                               "count": n, "per-second": self.per_second})
        self._held.clear()
        self._lines.clear()

    def baseline(self, drops: Mapping[tuple[str, str], int]) -> None:
        """The drop totals when the log begins: what was dropped before is not news."""
        self._drops = dict(drops)

    def tick(self, now: float, wall: float, drops: Mapping[tuple[str, str], int]) -> None:
        """Every second: the kinds held back, and the drops that grew since the last tick
        (``drops``: (interface or "-", reason key) -> total; growth from ``baseline``, or
        from zero)."""
        if self._window is not None and now - self._window >= 1.0:
            self._close_window(wall)
            self._window = None
        last = self._drops
        self._drops = dict(drops)
        for (interface, reason), total in sorted(drops.items()):
            grew = total - last.get((interface, reason), 0)
            if grew > 0:
                self.writer.write({"time": iso(wall), "event": "drops", "interface": interface,
                                   "reason": reason, "count": grew, "total": total})
