"""``IgmpSocket`` and ``MldSocket`` run inside a lab namespace and driven over JSON lines, with
no kernel adapter (so on any kernel, multicast routing or not)::

    ip netns exec NS python tests/netio/socket_agent.py --interfaces d1,d2,u1 [--rcvbuf N]

The interface map holds the interfaces named, and only those; ``--rcvbuf`` gives each socket
a receive buffer of N octets instead of the default. Commands on stdin, one JSON
object a line, each answered by ``{"event": "ok", "n": N, ...}`` or ``{"event": "error", "n":
N, "error": "..."}`` (``n`` counts commands from 1)::

    {"cmd": "listen", "interface": "d1"}                (both families)
    {"cmd": "send", "family": 4, "interface": "u1", "destination": "239.1.1.1",
     "payload": "<hex>"}                               -> "sent": bool
    {"cmd": "stats"}      -> "dropped": {"4": {reason: n}, "6": ...}, "unmanaged": {"4": n, ...}
    {"cmd": "pause"}      stop reading the sockets (what arrives stays queued)
    {"cmd": "resume"}     read them again
    {"cmd": "drain"}      read both until neither is readable, then answer

``drain`` is how a test knows no duplicate is still to come without waiting a fixed time:
the kernel queues every copy of a packet in the one pass that delivers it, so once a test
has seen a message, its copies, if any, are queued; a drain reads them.

and, as they are read, ``{"event": "received", "family": 4, "interface": "d1", "index": 7,
"source": ..., "destination": ..., "payload": "<hex>", "ttl": 1, "router_alert": true}``,
in the order ``receive()`` returned them, each call's closed by ``{"event": "batch",
"family": 4, "size": N}``. Should ``receive()`` raise, ``{"event": "crash", "error": ...}``
and exit 1. End of stdin closes the sockets and exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import selectors
import sys
import traceback
from pathlib import Path
from typing import Any

from mcastlab.procs import JsonProc
from mcastproxy.netio import IgmpSocket, InterfaceMap, MldSocket

AGENT = Path(__file__).resolve()


def _text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


class _Agent:
    def __init__(self, interfaces: list[str], rcvbuf: int | None) -> None:
        self.map = InterfaceMap()
        for name in interfaces:
            if self.map.refresh(name) is None:
                raise ValueError(f"no interface {name}")
        size = {} if rcvbuf is None else {"rcvbuf": rcvbuf}
        self.sockets: dict[int, IgmpSocket | MldSocket] = {
            4: IgmpSocket(self.map, **size), 6: MldSocket(self.map, **size)
        }
        self.sel = selectors.DefaultSelector()
        self.sel.register(0, selectors.EVENT_READ, "stdin")
        self.reading = False
        self.resume()
        self.buffer = b""
        self.n = 0

    def resume(self) -> None:
        if not self.reading:
            for family, sock in self.sockets.items():
                self.sel.register(sock.fileno(), selectors.EVENT_READ, family)
            self.reading = True

    def pause(self) -> None:
        if self.reading:
            for sock in self.sockets.values():
                self.sel.unregister(sock.fileno())
            self.reading = False

    def emit(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")

    def command(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        if cmd == "listen":
            for sock in self.sockets.values():
                sock.listen(c["interface"])
            return {}
        if cmd == "send":
            sock = self.sockets[c["family"]]
            ok = sock.send(c["interface"], ipaddress.ip_address(c["destination"]).packed,
                           bytes.fromhex(c["payload"]))
            return {"sent": ok, "errors": dict(sock.send_errors)}
        if cmd == "stats":
            return {
                "dropped": {f: {str(k): v for k, v in s.dropped.items()}
                            for f, s in self.sockets.items()},
                "unmanaged": {f: s.unmanaged for f, s in self.sockets.items()},
            }
        if cmd == "pause":
            self.pause()
            return {}
        if cmd == "resume":
            self.resume()
            return {}
        if cmd == "drain":
            calls = 0
            for family, sock in self.sockets.items():
                while True:
                    self.on_packets(family)
                    calls += 1
                    if not select.select([sock.fileno()], [], [], 0)[0]:
                        break
            return {"calls": calls}
        raise ValueError(f"unknown command {cmd!r}")

    def on_stdin(self) -> bool:
        chunk = os.read(0, 65536)
        if not chunk:
            return False
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if not line.strip():
                continue
            self.n += 1
            try:
                answer = {"event": "ok", "n": self.n, **self.command(json.loads(line))}
            except (ValueError, OSError, KeyError) as e:
                answer = {"event": "error", "n": self.n, "error": f"{type(e).__name__}: {e}"}
            self.emit(answer)
        return True

    def on_packets(self, family: int) -> None:
        messages = self.sockets[family].receive()
        for m in messages:
            self.emit({
                "event": "received",
                "family": family,
                "interface": m.interface,
                "index": m.ifindex,
                "source": _text(m.source),
                "destination": _text(m.destination),
                "payload": m.payload.hex(),
                "ttl": m.ttl,
                "router_alert": m.router_alert,
            })
        self.emit({"event": "batch", "family": family, "size": len(messages)})

    def run(self) -> int:
        self.emit({"event": "ready"})
        sys.stdout.flush()
        try:
            while True:
                for key, _ in self.sel.select():
                    if key.data == "stdin":
                        if not self.on_stdin():
                            return 0
                    else:
                        try:
                            self.on_packets(key.data)
                        except Exception:
                            self.emit({"event": "crash", "error": traceback.format_exc()})
                            return 1
                sys.stdout.flush()
        finally:
            sys.stdout.flush()
            for sock in self.sockets.values():
                sock.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interfaces", default="")
    ap.add_argument("--rcvbuf", type=int)
    a = ap.parse_args()
    try:
        agent = _Agent([n for n in a.interfaces.split(",") if n], a.rcvbuf)
    except (OSError, ValueError) as e:
        print(json.dumps({"event": "error", "n": 0, "error": str(e)}), flush=True)
        return 1
    return agent.run()


# -- the test side ------------------------------------------------------------------------------


class SocketAgent(JsonProc):
    """The agent running in a lab namespace; ``call`` sends a command and waits for its answer."""

    def __init__(
        self, lab: Any, host: str, interfaces: list[str], *, rcvbuf: int | None = None
    ) -> None:
        argv = [sys.executable, str(AGENT), "--interfaces", ",".join(interfaces)]
        if rcvbuf is not None:
            argv += ["--rcvbuf", str(rcvbuf)]
        self.rcvbuf = rcvbuf
        log = lab.logdir / f"{host}-socket-agent-{len(lab.procs)}.log"
        super().__init__(lab.ns(host), argv, log=log, env=lab.python_env())
        self._n = 0
        try:
            self.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)
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

    def received(self, family: int | None = None) -> list[dict[str, Any]]:
        """The messages received so far (of ``family``), in the order they were handed on."""
        return [e for e in self.events("received") if family is None or e["family"] == family]

    def batches(self, family: int) -> list[list[dict[str, Any]]]:
        """The messages of ``family`` received so far, one list per ``receive()`` call."""
        out: list[list[dict[str, Any]]] = [[]]
        for e in self.events():
            if e.get("family") != family:
                continue
            if e["event"] == "received":
                out[-1].append(e)
            elif e["event"] == "batch":
                out.append([])
        return [b for b in out if b]

    def crashes(self) -> list[dict[str, Any]]:
        return self.events("crash")


if __name__ == "__main__":
    sys.exit(main())
