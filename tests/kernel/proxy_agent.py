"""The adapters under test, run inside a lab namespace and driven over JSON lines.

Python 3.11 has no ``os.setns``, so the kernel adapter (``MulticastRouter``) and the sockets
(``IgmpSocket``, ``MldSocket``) run in a process of their own in the proxy namespace::

    ip netns exec NS python tests/kernel/proxy_agent.py --interfaces u1,u2,d1,d2

Commands on stdin, one JSON object a line, each answered by ``{"event": "ok", "n": N, ...}``
or ``{"event": "error", "n": N, "error": "..."}`` (``n`` counts commands from 1)::

    {"cmd": "start", "family": 4, "upstreams": ["u1"], "downstreams": ["d1"]}
    {"cmd": "set_route", "family": 4, "table": "u1", "source": "10.0.1.2",
     "group": "232.1.0.1", "iif": "u1", "oifs": ["d1"]}
    {"cmd": "delete_route", ...}   {"cmd": "counters", "family": 4}   {"cmd": "stop", ...}
    {"cmd": "add_interface", "family": 4, "name": "d3", "role": "downstream"}
    {"cmd": "listen", "interface": "d1"}              (both families)
    {"cmd": "send", "family": 4, "interface": "u1", "destination": "224.0.0.22",
     "payload": "<hex>"}
    {"cmd": "stats"}                                  (drop counters, upcall counts)

and, as they happen, ``{"event": "upcall", ...}`` and ``{"event": "received", ...}``.
The sockets are opened only with ``--sockets``. End of stdin stops the routers and exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import selectors
import sys
from pathlib import Path
from typing import Any

from mcastlab.procs import JsonProc
from mcastproxy.kernel import KernelError, MulticastRouter, Role
from mcastproxy.netio import IgmpSocket, InterfaceMap, MldSocket

AGENT = Path(__file__).resolve()


def _packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


class _Agent:
    def __init__(self, interfaces: list[str], sockets: bool) -> None:
        self.routers = {4: MulticastRouter(4), 6: MulticastRouter(6)}
        self.map = InterfaceMap()
        for name in interfaces:
            self.map.refresh(name)
        self.netio: dict[int, Any] = {}
        if sockets:
            self.netio = {4: IgmpSocket(self.map), 6: MldSocket(self.map)}
        self.sel = selectors.DefaultSelector()
        self.sel.register(0, selectors.EVENT_READ, "stdin")
        for family, sock in self.netio.items():
            self.sel.register(sock.fileno(), selectors.EVENT_READ, ("netio", family))
        self.buffer = b""
        self.n = 0

    def emit(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def command(self, c: dict[str, Any]) -> dict[str, Any]:
        cmd = c["cmd"]
        family = c.get("family", 4)
        r = self.routers[family]
        if cmd == "start":
            r.start(c["upstreams"], c["downstreams"])
            self.sel.register(r.fileno(), selectors.EVENT_READ, ("router", family))
            return {"tables": r.table_ids}
        if cmd == "stop":
            if r.running:
                self.sel.unregister(r.fileno())
            r.stop()
            return {}
        if cmd == "set_route":
            r.set_route(
                c["table"],
                _packed(c["source"]),
                _packed(c["group"]),
                c["iif"],
                frozenset(c["oifs"]),
            )
            return {}
        if cmd == "delete_route":
            r.delete_route(c["table"], _packed(c["source"]), _packed(c["group"]))
            return {}
        if cmd == "counters":
            return {
                "counters": [
                    [t, _text(s), _text(g), v.packets, v.bytes, v.wrong_if]
                    for (t, s, g), v in r.counters().items()
                ]
            }
        if cmd == "add_interface":
            r.add_interface(c["name"], Role(c["role"]))
            return {"tables": r.table_ids}
        if cmd == "remove_interface":
            r.remove_interface(c["name"])
            return {"tables": r.table_ids}
        if cmd == "interface_changed":
            self.map.refresh(c["name"])
            r.interface_changed(c["name"])
            return {}
        if cmd == "listen":
            for sock in self.netio.values():
                sock.listen(c["interface"])
            return {}
        if cmd == "send":
            ok = self.netio[family].send(
                c["interface"], _packed(c["destination"]), bytes.fromhex(c["payload"])
            )
            return {"sent": ok, "errors": dict(self.netio[family].send_errors)}
        if cmd == "stats":
            return {
                "dropped": {f: dict(s.dropped) for f, s in self.netio.items()},
                "upcalls": {
                    f: {k.name: v for k, v in r.upcall_counts.items()}
                    for f, r in self.routers.items()
                },
                "ignored": {f: r.ignored for f, r in self.routers.items()},
            }
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
            except (KernelError, ValueError, RuntimeError, OSError, KeyError) as e:
                answer = {"event": "error", "n": self.n, "error": f"{type(e).__name__}: {e}"}
            self.emit(answer)
        return True

    def run(self) -> None:
        self.emit({"event": "ready"})
        try:
            while True:
                for key, _ in self.sel.select():
                    if key.data == "stdin":
                        if not self.on_stdin():
                            return
                    elif key.data[0] == "router":
                        family = key.data[1]
                        for up in self.routers[family].read_upcalls():
                            self.emit(
                                {
                                    "event": "upcall",
                                    "family": family,
                                    "kind": up.kind.name,
                                    "table": up.table,
                                    "interface": up.interface,
                                    "source": _text(up.source),
                                    "group": _text(up.group),
                                }
                            )
                    else:
                        family = key.data[1]
                        for m in self.netio[family].receive():
                            self.emit(
                                {
                                    "event": "received",
                                    "family": family,
                                    "interface": m.interface,
                                    "source": _text(m.source),
                                    "destination": _text(m.destination),
                                    "payload": m.payload.hex(),
                                    "ttl": m.ttl,
                                }
                            )
        finally:
            for r in self.routers.values():
                r.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interfaces", default="")
    ap.add_argument("--sockets", action="store_true")
    a = ap.parse_args()
    names = [n for n in a.interfaces.split(",") if n]
    try:
        agent = _Agent(names, a.sockets)
    except (KernelError, OSError) as e:
        print(json.dumps({"event": "error", "n": 0, "error": str(e)}), flush=True)
        return 1
    agent.run()
    return 0


# -- the test side ------------------------------------------------------------------------------


class Agent(JsonProc):
    """The agent running in a lab namespace; ``call`` sends a command and waits for its answer."""

    def __init__(self, lab: Any, host: str, interfaces: list[str], *, sockets: bool = False):
        argv = [sys.executable, str(AGENT), "--interfaces", ",".join(interfaces)]
        if sockets:
            argv.append("--sockets")
        log = lab.logdir / f"{host}-agent-{len(lab.procs)}.log"
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

    def upcalls(self, start: int = 0) -> list[dict[str, Any]]:
        """The upcall events from position ``start`` on."""
        return [e for e in self.events()[start:] if e.get("event") == "upcall"]

    def received(self, start: int = 0) -> list[dict[str, Any]]:
        """The received-packet events from position ``start`` on."""
        return [e for e in self.events()[start:] if e.get("event") == "received"]


if __name__ == "__main__":
    sys.exit(main())
