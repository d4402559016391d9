"""``mcastproxy accounting``: the session log summed for billing and settlement (RFC 8313 §4.6).

The log at PATH and its rotated siblings are read, oldest first: PATH.N ... PATH.2, PATH.1,
PATH (as ``jsonlines.LineWriter`` and logrotate number them; a sibling compressed by
logrotate, PATH.N.gz, is read too). The ``end`` lines are the sessions; each is counted in the
period its end falls in (``--since`` inclusive, ``--until`` exclusive), with its whole
duration, packets and bytes. ``start`` lines are not counted (their session's ``end`` line
is). Sums are by upstream, link, subscriber or channel, or over everything.

A log is input like any other: a line cut short by a crash, garbage, a line too long, a
field of the wrong type, a compressed file cut short are skipped and counted (``skipped``),
never a failure; memory is bounded by the number of keys, not by the files.
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BY = ("upstream", "link", "subscriber", "channel")
MAX_LINE = 1 << 16  # octets: a session line is a few hundred
MAX_SIBLINGS = 10_000


def parse_time(text: str) -> datetime.datetime:
    """ISO 8601 (``2026-12-03``, ``2026-12-03T13:00``, ``...Z``, ``...+01:00``); UTC when it
    names no zone. ValueError if not a time."""
    when = datetime.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when


def log_files(path: Path) -> list[Path]:
    """PATH's rotated siblings, oldest first, then PATH: those that exist."""
    siblings: list[Path] = []
    for n in range(1, MAX_SIBLINGS + 1):
        plain, packed = Path(f"{path}.{n}"), Path(f"{path}.{n}.gz")
        if plain.exists():
            siblings.append(plain)
        elif packed.exists():
            siblings.append(packed)
        else:
            break
    files = list(reversed(siblings))
    if path.exists():
        files.append(path)
    return files


@dataclass(slots=True)
class Totals:
    sessions: int = 0
    seconds: float = 0.0
    packets: int = 0
    bytes: int = 0

    def add(self, seconds: float, packets: int, octets: int) -> None:
        self.sessions += 1
        self.seconds += seconds
        self.packets += packets
        self.bytes += octets

    def as_dict(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "duration": round(self.seconds, 3),
                "packets": self.packets, "bytes": self.bytes}


@dataclass(slots=True)
class Summary:
    files: list[str] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0
    """Lines that are not a session line whole: cut short, garbage, wrong fields."""
    outside: int = 0
    """Sessions that ended outside --since/--until."""
    total: Totals = field(default_factory=Totals)
    rows: dict[str, Totals] = field(default_factory=dict)

    def as_dict(self, by: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"files": self.files, "lines": self.lines,
                               "skipped": self.skipped, "outside": self.outside,
                               "total": self.total.as_dict()}
        if by is not None:
            out["by"] = by
            out["rows"] = {k: t.as_dict() for k, t in sorted(self.rows.items())}
        return out


def _lines(stream: IO[bytes] | gzip.GzipFile) -> Iterator[bytes | None]:
    """The lines of ``stream``; None for one longer than ``MAX_LINE`` (its rest skipped)."""
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            return
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while True:  # the rest of the long line
                rest = stream.readline(MAX_LINE)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


def _session(raw: bytes) -> dict[str, Any] | None:
    """A whole ``end`` line's fields; {} for a ``start`` line; None for anything else."""
    if not raw.endswith(b"\n"):
        return None  # cut short (the last line of a crash)
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(line, dict):
        return None
    if line.get("event") == "start":
        return {}
    if line.get("event") != "end":
        return None
    for name in ("link", "subscriber", "source", "group", "end"):
        if not isinstance(line.get(name), str):
            return None
    upstream = line.get("upstream")
    if not isinstance(upstream, list) or not all(isinstance(u, str) for u in upstream):
        return None
    for name in ("packets", "bytes"):
        value = line.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
    duration = line.get("duration")
    if (not isinstance(duration, (int, float)) or isinstance(duration, bool)
            or not math.isfinite(duration) or duration < 0):
        return None
    try:
        line["end"] = parse_time(line["end"])
    except ValueError:
        return None
    return line


def key(line: dict[str, Any], by: str) -> str:
    """The row a session is summed in."""
    if by == "upstream":
        return "+".join(sorted(line["upstream"])) or "-"
    if by == "link":
        return str(line["link"])
    if by == "subscriber":
        who = str(line["subscriber"])
        # An IPv6 link-local address names a host on one link only (RFC 4007 zones).
        return f"{who}%{line['link']}" if who.lower().startswith("fe80:") else who
    return f"({line['source']}, {line['group']})"


def summarize(paths: Iterable[Path], *, since: datetime.datetime | None = None,
              until: datetime.datetime | None = None, by: str | None = None) -> Summary:
    """The sessions of ``paths`` summed; files that cannot be read are skipped."""
    summary = Summary()
    for path in paths:
        summary.files.append(str(path))
        try:
            opened: IO[bytes] | gzip.GzipFile = (gzip.open(path, "rb") if path.suffix == ".gz"  # noqa: SIM115
                                 else path.open("rb"))
        except OSError:
            continue
        with opened as stream:
            try:
                for raw in _lines(stream):
                    summary.lines += 1
                    line = None if raw is None else _session(raw)
                    if line is None:
                        summary.skipped += 1
                        continue
                    if not line:
                        continue  # a start line
                    end = line["end"]
                    if (since is not None and end < since) or (until is not None
                                                               and end >= until):
                        summary.outside += 1
                        continue
                    figures = (float(line["duration"]), line["packets"], line["bytes"])
                    summary.total.add(*figures)
                    if by is not None:
                        summary.rows.setdefault(key(line, by), Totals()).add(*figures)
            except (OSError, EOFError, gzip.BadGzipFile):
                summary.skipped += 1  # a compressed file cut short or corrupt: the rest of it
    return summary


def table(summary: Summary, by: str | None) -> str:
    """The summary as text: a row per key, then the total."""
    rows = sorted(summary.rows.items()) if by is not None else []
    width = max([len(by or "")] + [len(k) for k, _ in rows] + [5])
    head = f"{(by or ''):<{width}}  {'sessions':>9}  {'duration':>12}  {'packets':>14}  " \
           f"{'bytes':>16}"
    out = [head]
    for name, t in [*rows, ("total", summary.total)]:
        out.append(f"{name:<{width}}  {t.sessions:>9}  {_hms(t.seconds):>12}  {t.packets:>14}  "
                   f"{t.bytes:>16}")
    files = len(summary.files)
    note = f"{summary.lines} lines in {files} file{'' if files == 1 else 's'}"
    if summary.skipped:
        note += f"; {summary.skipped} skipped (cut short or not a session line)"
    if summary.outside:
        note += f"; {summary.outside} sessions ended outside the period"
    out.append(note)
    return "\n".join(out)


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
