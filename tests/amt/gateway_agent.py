"""An AMT gateway (``Gateway`` on a ``runner.GatewayRunner``, what the proxy's AMT upstreams run)
with a TUN device of its own, inside a lab namespace and driven over JSON lines, for the
namespace tests::

    ip netns exec NS python tests/amt/gateway_agent.py --tun amt0 --family 4 \\
        --discovery 10.30.2.2 [--no-discover] [--initial-timeout 0.2] [--max-timeout 2]

It creates TUN device ``--tun``, starts the gateway (inner family ``--family``, transport the
family of ``--discovery``) and says ``{"event": "ready", "tun": ..., "port": ...}``. Commands
on stdin, one JSON object a line, each answered by ``{"event": "ok", "n": N, ...}`` or
``{"event": "error", "n": N, "error": ...}``::

    {"cmd": "join", "source": S, "group": G}     the channel joins the tunnel's membership
    {"cmd": "leave", "source": S, "group": G}    and leaves it
    {"cmd": "refresh"}                            ask the relay for a query now
    {"cmd": "status"}  -> "state", "relay", "delivered", "dropped", "counts", ...
    {"cmd": "stop"}    -> Teardown, close; then it exits

A join sends the relay ALLOW (S) for G at once if the tunnel is up, and every query is answered
with the whole membership (IS_IN records). As it happens: ``{"event": "state", "state": ...,
"relay": ..., "why": ...}`` and ``{"event": "query", "qqi": ..., "qrv": ...}``. End of stdin
stops it as ``stop`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mcastlab.procs import JsonProc
from mcastproxy.amt.actions import Action, QueryReceived, StateChanged
from mcastproxy.amt.events import MembershipChanged, Refresh
from mcastproxy.amt.gateway import Gateway, GatewayTimers
from mcastproxy.amt.runner import GatewayRunner, udp_socket
from mcastproxy.amt.tun import open_tun
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

AGENT = Path(__file__).resolve()


def _text(packed: bytes | None) -> str | None:
    return None if packed is None else str(ipaddress.ip_address(packed))


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class _Agent:
    def __init__(self, a: argparse.Namespace) -> None:
        self.family = Family(a.family)
        self.gateway = Gateway(
            self.family, ipaddress.ip_address(a.discovery).packed,
            nonce=lambda: secrets.randbits(32), discover=not a.no_discover,
            timers=GatewayTimers(a.initial_timeout, a.max_timeout), name=a.tun,
        )  # fmt: skip
        self.tun_name = a.tun
        self.tun: int | None = None
        self.runner: GatewayRunner | None = None
        self.counts: Counter[str] = Counter()
        self.channels: dict[bytes, set[bytes]] = {}  # group -> sources
        self.n = 0
        self.done = asyncio.Event()

    def start(self) -> None:
        """The TUN device and the socket; the gateway starts (Relay Discovery)."""
        loop = asyncio.get_running_loop()
        self.tun = open_tun(self.tun_name)
        try:
            sock = udp_socket(self.gateway.transport)
        except BaseException:
            os.close(self.tun)
            raise
        self.runner = GatewayRunner(self.gateway, sock, on_packets=self.write,
                                    on_action=self.on_action)
        loop.add_reader(self.tun, self.read_tun)
        self.runner.start(loop)

    def write(self, packets: list[bytes]) -> None:
        if self.tun is None:
            return
        for packet in packets:
            try:
                os.write(self.tun, packet)
                self.counts["tun packets written"] += 1
            except OSError:
                self.counts["tun write errors"] += 1

    def read_tun(self) -> None:
        """What the kernel sends out of the TUN (its own reports): read and counted."""
        if self.tun is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            for _ in range(64):
                os.read(self.tun, 65536)
                self.counts["tun packets read"] += 1

    def stop(self) -> None:
        """The Teardown goes out; the socket and the TUN close."""
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if self.tun is not None:
            asyncio.get_running_loop().remove_reader(self.tun)
            os.close(self.tun)
            self.tun = None

    def on_action(self, runner: GatewayRunner, action: Action) -> None:
        if isinstance(action, StateChanged):
            _emit({"event": "state", "state": str(action.state), "relay": _text(action.relay),
                   "why": action.why})
        elif isinstance(action, QueryReceived):
            _emit({"event": "query", "qqi": action.query.qqi, "qrv": action.query.qrv})

    def current(self) -> tuple[Report, ...]:
        records = tuple(
            GroupRecord(RecordType.MODE_IS_INCLUDE, group, tuple(sorted(sources)))
            for group, sources in self.channels.items()
        )
        return (Report(self.family.newest_version, records),) if records else ()

    def change(self, kind: RecordType, group: bytes, source: bytes) -> tuple[Report, ...]:
        record = GroupRecord(kind, group, (source,))
        return (Report(self.family.newest_version, (record,)),)

    async def command(self, line: str) -> dict[str, Any]:
        c = json.loads(line)
        cmd = c.get("cmd")
        if cmd in ("join", "leave"):
            source = ipaddress.ip_address(c["source"]).packed
            group = ipaddress.ip_address(c["group"]).packed
            if cmd == "join":
                self.channels.setdefault(group, set()).add(source)
                kind = RecordType.ALLOW_NEW_SOURCES
            else:
                self.channels.get(group, set()).discard(source)
                if not self.channels.get(group):
                    self.channels.pop(group, None)
                kind = RecordType.BLOCK_OLD_SOURCES
            assert self.runner is not None
            self.runner.handle(MembershipChanged(self.current(), self.change(kind, group, source)))
            return {"state": str(self.gateway.state)}
        if cmd == "refresh":
            assert self.runner is not None
            self.runner.handle(Refresh())
            return {}
        if cmd == "status":
            s = self.gateway.status()
            return {
                "state": str(s.state), "relay": _text(s.relay), "delivered": s.data_delivered,
                "requests": s.requests_sent, "updates": s.updates_sent,
                "discoveries": s.discoveries_sent, "teardowns": s.teardowns_sent,
                "queries": s.queries_accepted,
                "dropped": {r.key: k for r, k in s.dropped.items()},
                "counts": {**dict(self.runner.counts if self.runner else {}), **self.counts},
            }  # fmt: skip
        if cmd == "stop":
            self.stop()
            self.done.set()
            return {"stopped": True}
        raise ValueError(f"unknown command {cmd!r}")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.start()
        assert self.runner is not None
        _emit({"event": "ready", "tun": self.tun_name, "port": self.runner.port,
               "pid": os.getpid()})
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while not self.done.is_set():
            line = await reader.readline()
            if not line:
                self.stop()
                break
            self.n += 1
            try:
                answer = await self.command(line.decode())
            except (ValueError, KeyError, OSError) as e:
                _emit({"event": "error", "n": self.n, "error": f"{type(e).__name__}: {e}"})
                continue
            _emit({"event": "ok", "n": self.n, **answer})
        return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tun", required=True)
    ap.add_argument("--family", type=int, choices=(4, 6), required=True)
    ap.add_argument("--discovery", required=True)
    ap.add_argument("--no-discover", action="store_true")
    ap.add_argument("--initial-timeout", type=float, default=1.0)
    ap.add_argument("--max-timeout", type=float, default=120.0)
    a = ap.parse_args()
    try:
        agent = _Agent(a)
        return asyncio.run(agent.run())
    except OSError as e:
        _emit({"event": "error", "n": 0, "error": f"{type(e).__name__}: {e}"})
        return 1


class GatewayAgent(JsonProc):
    """The agent running in a lab namespace; ``call`` sends a command and waits for its answer."""

    def __init__(self, lab: Any, host: str, *args: str) -> None:
        argv = [sys.executable, str(AGENT), *args]
        log = lab.logdir / f"{host}-gateway-agent-{len(lab.procs)}.log"
        super().__init__(lab.ns(host), argv, log=log, env=lab.python_env())
        self._n = 0
        try:
            ready = self.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)
            if ready["event"] == "error":
                raise RuntimeError(f"gateway agent: {ready['error']}")
            self.info = ready
        except BaseException:
            self.stop()
            raise

    def call(self, cmd: str, timeout: float = 10.0, **kwargs: Any) -> dict[str, Any]:
        """Run one command; its answer. ``RuntimeError`` carrying the agent's error."""
        self.send(json.dumps({"cmd": cmd, **kwargs}))
        self._n += 1
        n = self._n
        answer = self.wait_event(lambda e: e.get("n") == n, timeout)
        if answer["event"] == "error":
            raise RuntimeError(answer["error"])
        return answer

    def states(self) -> list[str]:
        return [e["state"] for e in self.events("state")]


if __name__ == "__main__":
    sys.exit(main())
