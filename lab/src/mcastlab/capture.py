"""A capture of IGMP and MLD packets on one interface of a lab namespace, without tcpdump.

The capture program runs inside the namespace (``Lab.capture`` starts it)::

    ip netns exec NS python -m mcastlab.capture --iface eth0

It opens a tap on the interface (``mcastlab.packets``: an ``AF_PACKET`` socket,
``SOCK_DGRAM`` so frames arrive without their link header, whose BPF filter lets only IGMP
and what may be MLD through), keeps IPv4 packets of protocol 2 (IGMP) and IPv6 packets whose
header chain (Hop-by-Hop, Routing and Destination Options headers walked, as MLD messages
carry a Hop-by-Hop header with Router Alert) ends in ICMPv6 of an MLD type (130 query,
131 v1 report, 132 done, 143 v2 report), and writes one JSON line each::

    {"event": "packet", "time_ns": ..., "kernel_ns": ..., "family": 4, "src": "10.0.0.2",
     "dst": "224.0.0.22", "outgoing": false, "payload": "2200f9..."}

``payload`` is the IGMP message or the ICMPv6 message (from its type octet on), in hex;
``time_ns`` is ``time.monotonic_ns()`` at receipt, comparable with the sender's and the
receiver's; ``kernel_ns`` the kernel's receive timestamp (``CLOCK_REALTIME``), comparable
between captures. ``outgoing`` is true for packets the namespace itself sent on the
interface. It prints ``{"event": "ready"}`` once the socket is bound, and stops at end of
stdin or SIGTERM.

On the test side, ``Capture`` collects the packets as ``Captured`` records and decodes them
with ``mcastproxy.wire`` (``parse_igmp`` / ``parse_mld``); a packet that does not decode is
kept with its ``WireError``.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mcastlab.packets import (
    ETH_P_IP,
    ETH_P_IPV6,
    PACKET_OUTGOING,
    extract,
    kernel_time,
    packet_socket,
)
from mcastlab.procs import Event, JsonProc

if TYPE_CHECKING:
    from mcastproxy.wire import Message, WireError

# -- the parent side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Captured:
    """One IGMP or MLD packet seen on the interface."""

    time_ns: int
    kernel_ns: int | None
    family: int
    src: str
    dst: str
    outgoing: bool
    payload: bytes

    def decode(self) -> Message:
        """The message, by ``mcastproxy.wire``; raises ``WireError`` if it does not decode."""
        from mcastproxy.wire import parse_igmp, parse_mld  # noqa: PLC0415 - parent side only

        if self.family == 4:
            return parse_igmp(self.payload)
        src = ipaddress.ip_address(self.src).packed
        dst = ipaddress.ip_address(self.dst).packed
        return parse_mld(self.payload, src, dst)


class Decoded(NamedTuple):
    """A captured packet with its message, or with the error that kept it from decoding."""

    packet: Captured
    message: Message | None
    error: WireError | None


def _captured(e: Event) -> Captured:
    return Captured(
        e["time_ns"],
        e.get("kernel_ns"),
        e["family"],
        e["src"],
        e["dst"],
        e["outgoing"],
        bytes.fromhex(e["payload"]),
    )


def _decoded(p: Captured) -> Decoded:
    from mcastproxy.wire import WireError  # noqa: PLC0415 - parent side only

    try:
        return Decoded(p, p.decode(), None)
    except WireError as err:
        return Decoded(p, None, err)


class Capture(JsonProc):
    """A running capture in a lab namespace (made by ``Lab.capture``); a context manager."""

    def __init__(
        self,
        ns: str,
        iface: str,
        *,
        log: Path,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        argv = [python, "-m", "mcastlab.capture", "--iface", iface]
        super().__init__(ns, argv, log=log, env=env)
        self.iface = iface
        try:
            self.wait_event(lambda e: e.get("event") == "ready", timeout)
        except BaseException:
            self.stop()
            raise

    def mark(self) -> int:
        """A position in the stream: pass it as ``start`` to look only at later packets."""
        return len(self.events())

    def packets(self, start: int = 0) -> list[Captured]:
        """The packets captured so far (from position ``start``)."""
        return [_captured(e) for e in self.events()[start:] if e.get("event") == "packet"]

    def decoded(self, start: int = 0) -> list[Decoded]:
        """Every packet so far with its decoded message or its ``WireError``."""
        return [_decoded(p) for p in self.packets(start)]

    def messages(self, start: int = 0) -> list[tuple[Captured, Message]]:
        """The packets that decode, with their messages."""
        return [(d.packet, d.message) for d in self.decoded(start) if d.message is not None]

    def wait_for(
        self,
        match: Callable[[Captured, Message], bool],
        timeout: float = 5.0,
        *,
        start: int = 0,
    ) -> tuple[Captured, Message]:
        """The first decodable packet (from ``start``) that ``match`` accepts, waiting for it.

        ``TimeoutError`` (listing what was seen) if none arrives within ``timeout``.
        """
        found: list[tuple[Captured, Message]] = []

        def accept(e: Event) -> bool:
            if e.get("event") != "packet":
                return False
            d = _decoded(_captured(e))
            if d.message is not None and match(d.packet, d.message):
                found.append((d.packet, d.message))
                return True
            return False

        try:
            self.wait_event(accept, timeout, start=start)
        except TimeoutError:
            seen = "\n  ".join(repr(d) for d in self.decoded(start)) or "(nothing)"
            raise TimeoutError(
                f"capture on {self.ns}:{self.iface}: no matching packet within {timeout} s; "
                f"saw:\n  {seen}"
            ) from None
        return found[0]


# -- the program, inside the namespace --------------------------------------------------------


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _record(data: bytes, anc: list[tuple[int, int, bytes]], addr: tuple) -> dict | None:  # type: ignore[type-arg]
    now = time.monotonic_ns()
    if addr[1] not in (ETH_P_IP, ETH_P_IPV6):
        return None
    got = extract(data)
    if got is None:
        return None
    family, src, dst, payload = got
    kernel_ns = kernel_time(anc)
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    return {
        "event": "packet",
        "time_ns": now,
        "kernel_ns": kernel_ns,
        "family": family,
        "src": socket.inet_ntop(fam, src),
        "dst": socket.inet_ntop(fam, dst),
        "outgoing": addr[2] == PACKET_OUTGOING,
        "payload": payload.hex(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Capture until end of stdin, SIGTERM or ``--max-seconds``."""
    ap = argparse.ArgumentParser(prog="mcastlab.capture", description=__doc__.split("\n")[0])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        s = packet_socket(a.iface, "ctl", rcvbuf=4 << 20)
    except OSError as e:
        _emit({"event": "error", "error": f"{type(e).__name__}: {e}"})
        return 1
    _emit({"event": "ready", "iface": a.iface})
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(s, selectors.EVENT_READ, "packet")
    deadline = time.monotonic() + a.max_seconds
    with contextlib.suppress(KeyboardInterrupt):
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                if key.data == "stdin":
                    if not os.read(0, 4096):
                        return 0
                    continue
                while True:
                    try:
                        data, anc, _flags, addr = s.recvmsg(65535, 64)
                    except BlockingIOError:
                        break
                    rec = _record(data, anc, addr)
                    if rec is not None:
                        _emit(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
