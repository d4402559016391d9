"""The daemon's log lines: the engine's event fields kept, and a rate limit per event.

``FieldsFormatter`` ends a line with the engine's event name and fields as ``key=value``
pairs, so a log shipper can take them without parsing the prose. ``LogLimiter`` bounds the
lines written per event name (a flood of spoofed senders must not flood the log) and says
how many it held back.
"""

from __future__ import annotations

import json
import logging


class FieldsFormatter(logging.Formatter):
    """Log lines with the engine's event name and fields after the message, as
    ``key=value`` pairs (``event=upstream-join upstream=u1 group=239.1.1.1``), so that a log
    shipper can take them without parsing the prose."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        event = getattr(record, "event", None)
        if event is None:
            return line
        pairs = {"event": event, **getattr(record, "fields", {})}
        return line + " " + " ".join(f"{k}={_value(v)}" for k, v in pairs.items())


def _value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=\n') else text


class LogLimiter:
    """At most ``burst`` log lines per ``period`` seconds for each event name, so that hosts
    that flood or spoof cannot flood the log: a token bucket per name, holding ``burst``
    tokens and refilled at ``burst / period`` a second. A line with no token is not written
    but counted; ``period`` seconds after the first of them, ``due`` gives the count, for one
    line that says it. Times are the caller's clock."""

    def __init__(self, burst: int = 10, period: float = 10.0) -> None:
        if burst < 1 or period <= 0:
            raise ValueError("a log limit needs a burst of at least 1 and a period")
        self.burst = burst
        self.period = period
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when counted)
        self._suppressed: dict[str, tuple[int, float]] = {}  # name -> (lines, since)

    def allow(self, name: str, now: float) -> bool:
        """Whether a line of event ``name`` may be written at ``now`` (it is counted if not)."""
        tokens, then = self._buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.burst / self.period)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return True
        self._buckets[name] = (tokens, now)
        lines, since = self._suppressed.get(name, (0, now))
        self._suppressed[name] = (lines + 1, since)
        return False

    def next_deadline(self) -> float | None:
        """When ``due`` next has something to say; None when no line waits to be told of."""
        return min((since + self.period for _, since in self._suppressed.values()),
                   default=None)

    def due(self, now: float) -> list[tuple[str, int, float]]:
        """(name, lines not written, since when) for each name whose first unwritten line is
        ``period`` old at ``now`` (all of them with ``now`` infinite); then forgotten."""
        out = [(name, lines, since) for name, (lines, since) in self._suppressed.items()
               if since + self.period <= now]
        for name, _, _ in out:
            del self._suppressed[name]
        return out
