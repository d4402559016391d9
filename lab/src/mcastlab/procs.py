"""Processes started inside a lab namespace, and stopped when the lab goes down.

``Proc`` wraps ``subprocess.Popen`` for a command run as ``ip netns exec NS ...``: stdout and
stderr go to a log file unless asked for, the process gets a session of its own (a Ctrl-C at
the terminal reaches the test runner, which then stops it in order), and ``stop()`` sends
SIGTERM, then SIGKILL after a grace period.

``JsonProc`` is a process that talks in JSON lines on stdout (the lab's receiver, sender and
capture): a reader thread collects each object as it arrives, and the test waits for the
one it needs with ``wait_event``. Commands go to its stdin with ``send``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from mcastlab.netns import LabError, exec_argv

Event = dict[str, Any]


class Proc:
    """A process running in a lab namespace."""

    def __init__(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        log: Path,
        stdin: bool = False,
        stdout_pipe: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.ns = ns
        self.argv = list(argv)
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            exec_argv(ns, self.argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log_file,
            stderr=self._log_file,
            start_new_session=True,
            env=env,
        )

    @property
    def pid(self) -> int:
        """The process id (``ip netns exec`` execs the command, so this is the command)."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.popen.poll()

    @property
    def running(self) -> bool:
        """Whether it still runs."""
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit; its exit status. ``subprocess.TimeoutExpired`` on timeout."""
        return self.popen.wait(timeout)

    def output(self) -> str:
        """What it wrote to its log so far (stderr, and stdout unless piped)."""
        if not self._log_file.closed:
            self._log_file.flush()
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(log removed)"

    def stop(self, grace: float = 2.0) -> int | None:
        """SIGTERM it, SIGKILL after ``grace`` seconds; its exit status. Idempotent."""
        self._terminate(grace)
        self._close()
        return self.popen.returncode

    def _terminate(self, grace: float) -> None:
        p = self.popen
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(grace)

    def _close(self) -> None:
        for f in (self.popen.stdin, self.popen.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._log_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid} in {self.ns}: {' '.join(self.argv)}>"


class JsonProc(Proc):
    """A process that writes one JSON object per line on stdout and reads commands on stdin."""

    def __init__(
        self, ns: str, argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(ns, argv, log=log, stdin=True, stdout_pipe=True, env=env)
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, name=f"lab-{self.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        try:
            for raw in self.popen.stdout:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    ev = {"event": "garbage", "line": raw.decode(errors="replace")}
                with self._cond:
                    self._events.append(ev)
                    self._cond.notify_all()
        except (OSError, ValueError):  # stdout closed under us by stop()
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def events(self, kind: str | None = None) -> list[Event]:
        """The events so far (a copy), optionally only those with ``"event": kind``."""
        with self._cond:
            return [e for e in self._events if kind is None or e.get("event") == kind]

    def wait_event(
        self, match: Callable[[Event], bool], timeout: float = 5.0, *, start: int = 0
    ) -> Event:
        """The first event from index ``start`` on that ``match`` accepts, waiting for it.

        Raises ``LabError`` if the process ends first, ``TimeoutError`` after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self._events):
                    if match(self._events[i]):
                        return self._events[i]
                    i += 1
                if self._eof:
                    raise LabError(self._ended())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self!r}: no matching event within {timeout} s")
                self._cond.wait(left)

    def _ended(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1.0)
        said = "; ".join(
            str(e.get("error") or e) for e in self._events[-3:] if e.get("event") != "packet"
        )
        log = self.output()[-2000:].strip()
        return f"{self!r} ended (exit {self.popen.poll()}): {said or log or '(no output)'}"

    def command(self, line: str, timeout: float = 5.0) -> Event:
        """Send one command line and wait for its answer, the event numbered as the command
        (1 for the first); ``LabError`` if it is an error."""
        self.send(line)
        self._commands = n = getattr(self, "_commands", 0) + 1
        ev = self.wait_event(lambda e: e.get("n") == n, timeout)
        if ev.get("event") == "error":
            raise LabError(f"{self!r}: {line!r}: {ev.get('error')}")
        return ev

    def send(self, line: str) -> None:
        """Write one command line to its stdin."""
        stdin = self.popen.stdin
        if stdin is None or stdin.closed:
            raise LabError(f"{self!r}: stdin is closed")
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except BrokenPipeError as e:
            raise LabError(f"{self!r} is gone: {self.output()[-2000:]}") from e

    def stop(self, grace: float = 2.0) -> int | None:
        """Close its stdin (asking it to finish), then stop it as ``Proc.stop`` does."""
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(min(grace, 1.0))
        self._terminate(grace)
        # stdout is at its end once the process is gone; the wait is short, as a signal
        # handler tearing the lab down may hold the lock the reader needs to finish.
        self._reader.join(min(grace, 0.5))
        self._close()
        return self.popen.returncode
