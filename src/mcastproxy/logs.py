"""The daemon's log lines: the engine's event fields kept, a rate limit per event, and
where they go.

``FieldsFormatter`` ends a line with the engine's event name and fields as ``key=value``
pairs, so a log shipper can take them without parsing the prose. ``LogLimiter`` bounds the
lines written per event name (a flood of spoofed senders must not flood the log) and says
how many it held back. ``configure`` sends the lines to the journal with those fields as
fields of its own when the daemon runs under systemd (``JournalHandler``), and writes them
with a timestamp to stderr otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct


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


# --- where the lines go -------------------------------------------------------------------

# syslog(3) priorities of Python's levels (RFC 5424 §6.2.1 severities).
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
            logging.CRITICAL: 2}
JOURNAL_SOCKET = "/run/systemd/journal/socket"


def priority(levelno: int) -> int:
    """The syslog priority of a Python log level (the nearest at or above it)."""
    return next((p for level, p in sorted(PRIORITY.items()) if levelno <= level), 2)


class PriorityFormatter(FieldsFormatter):
    """A line as systemd takes it from a service's stderr: the ``<N>`` syslog priority prefix
    (sd-daemon(3)), no timestamp of its own (the journal has one), the fields after it."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{priority(record.levelno)}>{super().format(record)}"


class JournalHandler(logging.Handler):
    """Lines sent to the journal in its native protocol (systemd.journal-fields(7)): each a
    datagram of ``FIELD=value`` lines, with the message, its priority, the engine's event
    name and fields as fields of their own (``EVENT=upstream-join``, ``UPSTREAM=u1``...), so
    ``journalctl EVENT=upstream-join UPSTREAM=u1`` finds them. A line the journal does not
    take is written to stderr instead, with its priority prefix."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._fallback = logging.StreamHandler()
        self._fallback.setFormatter(PriorityFormatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"MESSAGE": record.getMessage(), "PRIORITY": str(priority(record.levelno)),
                      "SYSLOG_IDENTIFIER": "mcastproxy", "LOGGER": record.name}
            if record.exc_info:
                fields["MESSAGE"] += "\n" + logging.Formatter().formatException(record.exc_info)
            event = getattr(record, "event", None)
            if event is not None:
                fields["EVENT"] = str(event)
                for key, value in getattr(record, "fields", {}).items():
                    fields[_field_name(key)] = str(value)
            self._sock.sendto(_datagram(fields), self.path)
        except OSError:
            self._fallback.emit(record)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


def _field_name(key: str) -> str:
    """A journal field name: upper case letters, digits and underscores, not starting with
    an underscore (those are the journal's own)."""
    name = "".join(c if c.isalnum() else "_" for c in key.upper()).lstrip("_")
    return name or "FIELD"


def _datagram(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:  # the protocol's binary-safe form: name, newline, length, data
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def under_journal(environ: dict[str, str] | None = None) -> bool:
    """Whether stderr goes to the journal: systemd sets ``JOURNAL_STREAM`` to its device and
    inode (systemd.exec(5)), which a redirected stderr no longer matches."""
    value = (environ if environ is not None else dict(os.environ)).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(2)
        return (int(device), int(inode)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError):
        return False


def configure(level: str, *, journal: bool | None = None) -> logging.Handler:
    """The daemon's logging: to the journal (native fields) when stderr is the journal's,
    else human lines with a timestamp on stderr. The handler made."""
    if journal if journal is not None else under_journal():
        handler: logging.Handler = JournalHandler()
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug is netlink dumps
    return handler
