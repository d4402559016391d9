"""A redundant headend for the lab: one numbered stream sent into several namespaces at once.

An IPTV headend feeds the same channel into two providers, so that a proxy joined on both
can lose either. Here one process sends each packet (one ``mcastlab.payload``: the
same sender id, sequence number and send time) out of every output, each output a UDP
socket made inside its own namespace. At a subscriber, the same sequence number received
twice is then a duplicate, and one never received is lost, whichever way it came.

It runs in one lab namespace (``Lab.headend`` starts it) and enters the others itself::

    python -m mcastlab.headend --rate 1000 --count 60000 --port 5001 --id headend \\
        --output prov1,mcp-abc123-prov1,eth0,239.1.1.1,10.0.9.1 \\
        --output prov2,mcp-abc123-prov2,eth0,239.1.1.1,10.0.9.1

An output is ``NAME,NAMESPACE,IFACE,GROUP[,SOURCE]``: the namespace as in ``/run/netns``
(``-`` for the one it runs in), the interface it sends out of (``IP_MULTICAST_IF`` /
``IPV6_MULTICAST_IF``), the group (IPv4 or IPv6, per output) and the source address it is
binds to. Python 3.11 has no ``os.setns``, so the socket is made after ``setns(2)`` through
libc; the socket stays in that namespace once the process has returned to its own.

Packet i leaves at start + i/rate, a late wake-up catching up rather than drifting (the wait
is a ``select`` with a microsecond timeout). The send is bounded: ``--count`` at most
``MAX_COUNT``, ``--rate`` at most ``MAX_RATE``, and ``--max-seconds`` at most
``MAX_SECONDS``, whichever ends it first.

Lines on stdin, each answered by one JSON line carrying its number ``n`` (1 for the first)::

    pause NAME    -> {"event": "paused", "n": 1, "output": NAME, "seq": 512, "time_ns": ...}
    resume NAME   -> {"event": "resumed", "n": 2, "output": NAME, "seq": 913, "time_ns": ...}
    counts        -> {"event": "counts", "n": 3, "seq": ..., "sent": {NAME: ...}, ...}
    quit          -> {"event": "done", "n": 4, "why": "quit", ...}, then it exits
    (anything wrong) -> {"event": "error", "n": 5, "error": "..."}

``seq`` is where the command took effect: the first packet not sent to the output after a
pause, the first sent to it again after a resume; ``time_ns`` is ``time.monotonic_ns()``
then. End of stdin ends it too, so a headend never outlives its controller. With
``--report-every S`` a ``counts`` line (with no ``n``) comes every S seconds; at the end::

    {"event": "done", "why": "count" | "max-seconds" | "quit" | "stdin closed", "seq": 60000,
     "sent": {NAME: ...}, "errors": {NAME: ...}, "first_error": {NAME: ...},
     "start": ..., "end": ...}

(``seq``: packets numbered, sent or not; ``start``/``end``: ``time.monotonic()``). A send
that fails (the link is down) is counted per output, and the stream goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import math
import os
import selectors
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mcastlab.netns import LabError
from mcastlab.payload import Payload, build_payload, check_limits
from mcastlab.procs import Event, JsonProc
from mcastlab.receiver import DEFAULT_PORT
from mcastlab.sender import DEFAULT_TTL, open_socket

MAX_SECONDS = 3600.0
"""A headend refuses to run longer than this."""
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
HERE = "-"
"""The namespace name of an output sent from the namespace the headend runs in."""


class HeadendOutput(NamedTuple):
    """One output of the headend: ``group`` sent out of ``iface`` in ``host``.

    ``host`` is a lab host for ``Lab.headend``, and the namespace name (``-``: its own) for
    the program; ``name`` (default: the host) is what ``pause`` and the counts call it.
    """

    host: str
    iface: str
    group: str
    source: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.host

    def spec(self) -> str:
        """The ``--output`` argument: ``NAME,NAMESPACE,IFACE,GROUP[,SOURCE]``."""
        parts = [self.label, self.host, self.iface, self.group]
        if self.source is not None:
            parts.append(self.source)
        if any("," in p or not p for p in parts):
            raise ValueError(f"output {parts}: no empty parts, no commas")
        return ",".join(parts)

    @classmethod
    def parse(cls, spec: str) -> HeadendOutput:
        parts = spec.split(",")
        if len(parts) not in (4, 5) or not all(parts):
            raise ValueError(f"output {spec!r}: NAME,NAMESPACE,IFACE,GROUP[,SOURCE]")
        name, ns, iface, group = parts[:4]
        return cls(ns, iface, group, parts[4] if len(parts) == 5 else None, name)


def check_bounds(count: int, rate: float, max_seconds: float) -> None:
    """Refuse a stream that is unbounded or too heavy for a shared machine."""
    check_limits(count, rate)
    if not 0 < max_seconds <= MAX_SECONDS:
        raise ValueError(f"max seconds {max_seconds}: must be > 0 and <= {MAX_SECONDS}")


def headend_args(
    outputs: Sequence[HeadendOutput],
    *,
    rate: float,
    count: int,
    port: int = DEFAULT_PORT,
    ttl: int = DEFAULT_TTL,
    sender_id: str = "headend",
    size: int = 0,
    max_seconds: float | None = None,
    report_every: float = 0.0,
) -> list[str]:
    """The arguments of ``python -m mcastlab.headend``; checks the bounds."""
    if max_seconds is None:
        max_seconds = min(MAX_SECONDS, count / rate + 30.0)
    check_bounds(count, rate, max_seconds)
    if not outputs:
        raise ValueError("a headend needs at least one output")
    names = [o.label for o in outputs]
    if len(set(names)) != len(names):
        raise ValueError(f"output names must differ: {names}")
    args = ["--rate", str(rate), "--count", str(count), "--port", str(port), "--ttl", str(ttl)]
    args += ["--id", sender_id, "--size", str(size), "--max-seconds", str(max_seconds)]
    args += ["--report-every", str(report_every)]
    for o in outputs:
        args += ["--output", o.spec()]
    return args


# -- the parent side --------------------------------------------------------------------------


class Headend(JsonProc):
    """A running headend (made by ``Lab.headend``): pause and resume its outputs."""

    def __init__(
        self,
        ns: str,
        args: Sequence[str],
        *,
        log: Path,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(ns, [python, "-m", "mcastlab.headend", *args], log=log, env=env)
        try:
            self.info = self.wait_event(lambda e: e.get("event") in ("ready", "error"), timeout)
            if self.info["event"] == "error":
                raise LabError(f"headend in {ns}: {self.info['error']}")
        except BaseException:
            self.stop()
            raise

    @property
    def outputs(self) -> list[str]:
        """The names of the outputs."""
        return [o["name"] for o in self.info["outputs"]]

    def pause(self, name: str) -> Event:
        """Stop sending to output ``name``; the answer says from which ``seq`` on, and when."""
        return self.command(f"pause {name}")

    def resume(self, name: str) -> Event:
        """Send to output ``name`` again; the answer says from which ``seq`` on, and when."""
        return self.command(f"resume {name}")

    def counts(self) -> Event:
        """Packets numbered so far (``seq``), and sent and failed per output."""
        return self.command("counts")

    def finish(self, timeout: float = 5.0) -> Event:
        """Stop sending now; the final counts."""
        return self.command("quit", timeout)

    def wait_done(self, timeout: float) -> Event:
        """Wait for the stream to end by itself (count or time); the final counts."""
        return self.wait_event(lambda e: e.get("event") == "done", timeout)


# -- the program --------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_namespace(ns: str) -> Iterator[None]:
    """Run the block in network namespace ``ns`` (``/run/netns/NS``; ``-``: stay here)."""
    if ns == HERE:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / ns, os.O_RDONLY)
    except OSError:
        os.close(home)
        raise
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)  # never carry on in the wrong namespace: an error here ends it all
    finally:
        os.close(target)
        os.close(home)


def open_output(o: HeadendOutput, ttl: int) -> socket.socket:
    """A non-blocking UDP socket made in the output's namespace, sending out of its
    interface from its source. Not connected: a link that is down now may come back."""
    with in_namespace(o.host):
        s = open_socket(o.group, o.iface, o.source, ttl)
    s.setblocking(False)
    return s


class _Stream:
    """The outputs' sockets, what each is sent, and what failed."""

    def __init__(self, outputs: Sequence[HeadendOutput], port: int, ttl: int) -> None:
        self.names = [o.label for o in outputs]
        self.socks: dict[str, socket.socket] = {}
        self.dests = {o.label: (o.group, port) for o in outputs}
        try:
            for o in outputs:
                self.socks[o.label] = open_output(o, ttl)
        except BaseException:
            self.close()
            raise
        self.paused: set[str] = set()
        self.sent = dict.fromkeys(self.names, 0)
        self.errors = dict.fromkeys(self.names, 0)
        self.first_error: dict[str, str | None] = dict.fromkeys(self.names)

    def send(self, data: bytes) -> None:
        for name, s in self.socks.items():
            if name in self.paused:
                continue
            try:
                s.sendto(data, self.dests[name])
                self.sent[name] += 1
            except OSError as e:
                self.errors[name] += 1
                if self.first_error[name] is None:
                    self.first_error[name] = f"{errno.errorcode.get(e.errno or 0, '?')}: {e}"

    def close(self) -> None:
        for s in self.socks.values():
            s.close()

    def counts(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "time_ns": time.monotonic_ns(), "sent": dict(self.sent),
                "errors": dict(self.errors), "paused": sorted(self.paused)}


def packets_due(start: float, now: float, interval: float, count: int) -> int:
    """How many packets of the stream are due by ``now``: packet ``i`` is due at
    ``start + i * interval``, so a late wake-up sends the backlog at once and the schedule
    never drifts by the sum of the wake-ups' lateness."""
    if now < start:
        return 0
    return min(count, math.floor((now - start) / interval + 1e-9) + 1)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _command(stream: _Stream, line: str, seq: int) -> tuple[str, dict[str, Any]]:
    words = line.split()
    if not words:
        raise ValueError("empty command")
    verb, args = words[0], words[1:]
    if verb in ("pause", "resume"):
        if len(args) != 1 or args[0] not in stream.socks:
            raise ValueError(f"usage: {verb} NAME, one of {', '.join(stream.names)}")
        (stream.paused.add if verb == "pause" else stream.paused.discard)(args[0])
        return verb + "d", {"output": args[0], "seq": seq, "time_ns": time.monotonic_ns()}
    if verb == "counts":
        return "counts", stream.counts(seq)
    if verb == "quit":
        return "done", {}
    raise ValueError(f"unknown command {verb!r} (pause, resume, counts, quit)")


def run(a: argparse.Namespace, outputs: Sequence[HeadendOutput]) -> int:
    """Send the stream until its count, its time or ``quit``; the exit status."""
    try:
        stream = _Stream(outputs, a.port, a.ttl)
    except (OSError, ValueError) as e:
        _emit({"event": "error", "n": 0, "error": f"{type(e).__name__}: {e}"})
        return 1
    _emit({"event": "ready", "pid": os.getpid(), "rate": a.rate, "count": a.count,
           "outputs": [{"name": o.label, "ns": o.host, "iface": o.iface, "group": o.group,
                        "source": o.source} for o in outputs]})
    # select() takes a timeout in microseconds (epoll and poll round up to milliseconds).
    sel = selectors.SelectSelector()
    sel.register(0, selectors.EVENT_READ)
    buf = b""
    n = 0
    seq = 0
    why = "count"
    answer_n: int | None = None
    interval = 1.0 / a.rate
    start = time.monotonic()
    stop_at = start + a.max_seconds
    next_report = start + a.report_every if a.report_every > 0 else None
    try:
        while seq < a.count:
            now = time.monotonic()
            if now >= stop_at:
                why = "max-seconds"
                break
            due_now = packets_due(start, now, interval, a.count)
            if seq < due_now:
                while seq < due_now:
                    stream.send(build_payload(Payload(a.id, seq, time.monotonic_ns()), a.size))
                    seq += 1
                if next_report is not None and now >= next_report:
                    _emit({"event": "counts"} | stream.counts(seq))
                    next_report += a.report_every
                continue
            due = start + seq * interval
            if not sel.select(timeout=max(0.0, min(due, stop_at) - now)):
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                why = "stdin closed"
                break
            buf += chunk
            while b"\n" in buf and why != "quit":
                raw, buf = buf.split(b"\n", 1)
                n += 1
                try:
                    kind, info = _command(stream, raw.decode(), seq)
                except ValueError as e:
                    _emit({"event": "error", "n": n, "error": str(e)})
                    continue
                if kind == "done":
                    why, answer_n = "quit", n
                else:
                    _emit({"event": kind, "n": n} | info)
            if why == "quit":
                break
    except KeyboardInterrupt:
        why = "interrupted"
    end = time.monotonic()
    stream.close()
    done: dict[str, Any] = {"event": "done"}
    if answer_n is not None:
        done["n"] = answer_n
    done |= {"why": why, "seq": seq, "sent": stream.sent, "errors": stream.errors,
             "first_error": stream.first_error, "start": start, "end": end}
    _emit(done)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check the bounds, send; the exit status (2 on bad arguments)."""
    ap = argparse.ArgumentParser(prog="mcastlab.headend", description=__doc__.split("\n")[0])
    ap.add_argument("--output", action="append", required=True,
                    metavar="NAME,NAMESPACE,IFACE,GROUP[,SOURCE]", help="repeatable")
    ap.add_argument("--rate", type=float, required=True, help="packets per second")
    ap.add_argument("--count", type=int, required=True, help="packets in the stream")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="TTL / hop limit")
    ap.add_argument("--id", default="headend", help="sender id written in each packet")
    ap.add_argument("--size", type=int, default=0, help="pad payloads to this many octets")
    ap.add_argument("--report-every", type=float, default=0.0,
                    help="emit the counts every this many seconds (0: only at the end)")
    a = ap.parse_args(argv)
    try:
        check_bounds(a.count, a.rate, a.max_seconds)
        outputs = [HeadendOutput.parse(s) for s in a.output]
    except ValueError as e:
        ap.error(str(e))
    if len({o.label for o in outputs}) != len(outputs):
        ap.error("output names must differ")
    return run(a, outputs)


if __name__ == "__main__":
    sys.exit(main())
