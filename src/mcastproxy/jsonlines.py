"""``LineWriter``: a log of JSON lines (one object per line) that costs the loop little, loses
at most the last second on a crash, and follows logrotate.

Lines are kept in memory and written with one ``write(2)`` when ``flush`` is called (the
daemon calls it every second, at a reload and at stop) or when ``FLUSH_SIZE`` octets wait.
A crash of the process loses what waits: at most a second of lines. (What was written is in
the kernel's page cache: a crash of the process loses none of it; a crash of the host may
lose what the kernel has not written back, as with any log that is not fsync'd per line.)

The file is opened with ``O_APPEND`` (each write lands at the end, whoever else appends) and
0640. ``reopen`` closes and opens the path again: logrotate's rotation by rename (no
``copytruncate``) moves the file away and sends SIGHUP, after which lines go to a new file
at the path. With ``max_size``, the writer rotates by itself: before a write would take the
file beyond ``max_size``, it renames PATH.N-1 to PATH.N ... PATH to PATH.1 (PATH.KEEP, the
oldest, is replaced) and opens a new PATH; a line is never split between two files, and no
line is lost in a rotation (the ones waiting go to the new file).

If a write fails (disk full, the directory gone), the lines wait and are tried again at the
next flush; past ``MAX_PENDING`` octets waiting, the oldest are dropped and counted
(``dropped``): memory stays bounded whatever the disk does.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

FLUSH_SIZE = 1 << 16  # octets waiting that are written at once, without waiting for the second
MAX_PENDING = 16 << 20  # octets kept while the file cannot be written
MODE = 0o640  # the session log names subscribers


class LineWriter:
    """JSON lines appended to ``path``; ``max_size`` octets per file (None: no limit)
    and ``keep`` rotated files (PATH.1 .. PATH.KEEP)."""

    def __init__(self, path: Path, *, max_size: int | None = None, keep: int = 10) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.keep = keep
        self.lines = 0
        """Lines handed to the file so far."""
        self.dropped = 0
        """Lines dropped because the file could not be written for too long."""
        self.errors = 0
        self.last_error: str | None = None
        self.rotations = 0
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._fd: int | None = None
        self._size = 0
        self.open()

    def open(self) -> None:
        """Open the path (made if missing); OSError if it cannot be."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, MODE)
        old, self._fd = self._fd, fd
        self._size = os.fstat(fd).st_size
        if old is not None:
            with contextlib.suppress(OSError):
                os.close(old)

    def write(self, obj: dict[str, Any]) -> None:
        """Queue ``obj`` as one line; written at the next flush (or now if much waits)."""
        self.write_line(json.dumps(obj, separators=(",", ":"), ensure_ascii=True))

    def write_line(self, text: str) -> None:
        """Queue ``text``, one JSON object made by the caller (ASCII, no newline)."""
        line = (text + "\n").encode()
        self._pending.append(line)
        self._pending_size += len(line)
        while self._pending_size > MAX_PENDING:
            self._pending_size -= len(self._pending.popleft())
            self.dropped += 1
        if self._pending_size >= FLUSH_SIZE:
            self.flush()

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write what waits (rotating first when it would take the file past ``max_size``)."""
        while self._pending:
            if self._fd is None:
                try:
                    self.open()
                except OSError as exc:
                    self._failed(exc)
                    return
            count = self._fitting()
            if count == 0:  # not one more line fits: a new file, then it does
                try:
                    self.rotate()
                except OSError as exc:
                    self._failed(exc)  # the file grows past max-size rather than lose lines
                    count = len(self._pending)
                else:
                    continue
            lines = [self._pending[i] for i in range(count)]
            chunk = b"".join(lines)
            assert self._fd is not None
            try:
                written = os.write(self._fd, chunk)
            except OSError as exc:
                self._failed(exc)
                return
            self._size += written
            if written < len(chunk):  # only a full disk writes a file short: the rest waits
                self._requeue_after(lines, written)
                self._failed(OSError(28, "short write"))
                return
            for _ in range(count):
                self._pending_size -= len(self._pending.popleft())
            self.lines += count

    def _fitting(self) -> int:
        """How many waiting lines the file takes before ``max_size`` (all without it). An
        empty file takes at least one, however long."""
        if self.max_size is None:
            return len(self._pending)
        room = self.max_size - self._size
        size = count = 0
        for line in self._pending:
            if size + len(line) > room:
                break
            size += len(line)
            count += 1
        return count if count or self._size else 1

    def _requeue_after(self, lines: list[bytes], written: int) -> None:
        """A short write: the lines wholly written leave the queue; the cut one is rewritten
        whole after a newline, so that a reader sees a garbage line, not two lines run
        together."""
        done = 0
        for line in lines:
            if written >= len(line):
                written -= len(line)
                self._pending_size -= len(self._pending.popleft())
                done += 1
            else:
                if written:
                    self._pending[0] = b"\n" + line
                    self._pending_size += 1
                break
        self.lines += done

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        self.last_error = exc.strerror or str(exc)

    def rotate(self) -> None:
        """PATH -> PATH.1 -> ... -> PATH.KEEP (the oldest replaced), and a new PATH."""
        base = str(self.path)
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{base}.{n}", f"{base}.{n + 1}")
        if self.keep > 0:
            os.replace(base, f"{base}.1")
        else:
            os.unlink(base)
        self.rotations += 1
        self.open()

    def reopen(self) -> None:
        """SIGHUP: write what waits to the file as it is, then open the path anew (logrotate
        moved it away); OSError if the path cannot be opened (the old file stays in use)."""
        self.flush()
        self.open()

    def close(self) -> None:
        """Write what waits and close. Idempotent."""
        self.flush()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def state(self) -> dict[str, Any]:
        """For status: the path and what happened to its lines."""
        return {"path": str(self.path), "lines": self.lines, "waiting": self.waiting,
                "dropped": self.dropped, "rotations": self.rotations, "errors": self.errors,
                "last-error": self.last_error}
