"""A multicast receiver that joins with the kernel's own host stack, for the lab.

It runs inside a namespace (``Lab.receiver`` starts it)::

    ip netns exec NS python -m mcastlab.receiver --iface eth0 --port 5001 \\
        [--join "igmpv3-ssm 232.1.1.1 10.0.1.2"]...

and is driven by lines on stdin, each answered by one JSON line carrying the command's
number ``n`` (1 for the first line)::

    join MODE GROUP [SOURCE...]   -> {"event": "joined", "n": 1, "mode": ..., "group": ..., ...}
    leave GROUP [SOURCE...]       -> {"event": "left", "n": 2, ...}  (no sources: all of GROUP)
    quit                          -> {"event": "bye", "n": 3}, then it exits
    (anything wrong)              -> {"event": "error", "n": 4, "error": "..."}

End of stdin is ``quit`` too, so a receiver never outlives its controller. Each datagram
arriving on the port on ``--iface`` gives::

    {"event": "packet", "group": "232.1.1.1", "source": "10.0.1.2", "sport": 40000,
     "sender": "prov1", "seq": 7, "sent_ns": ..., "time_ns": ..., "len": 27}

where ``sender``/``seq``/``sent_ns`` come from a ``mcastlab.payload`` (null, with
``"junk"`` saying why, for anything else) and ``time_ns`` is ``time.monotonic_ns()`` at
receipt. Every packet reaching the socket is reported, including groups that another
process in the namespace joined on the same interface and port.

Join modes (``JoinMode``) and what the kernel's host side then sends:

==============  ==============================================  =============================
mode            socket call                                     report
==============  ==============================================  =============================
igmpv2          IP_ADD_MEMBERSHIP (ip_mreqn)                    IGMPv2 Report; Leave on leave
igmpv3-asm      IP_ADD_MEMBERSHIP (ip_mreqn)                    v3 TO_EX(G, {}); TO_IN on leave
igmpv3-ssm      IP_ADD_SOURCE_MEMBERSHIP (ip_mreq_source)       v3 ALLOW(G, {S}); BLOCK on leave
mldv1           IPV6_JOIN_GROUP (ipv6_mreq)                     MLDv1 Report; Done on leave
mldv2-asm       IPV6_JOIN_GROUP (ipv6_mreq)                     MLDv2 TO_EX(G, {}); TO_IN
mldv2-ssm       MCAST_JOIN_SOURCE_GROUP (group_source_req)      MLDv2 ALLOW(G, {S}); BLOCK
==============  ==============================================  =============================

The IGMP/MLD version is an interface setting, so a join sets it: ``igmpv2`` writes 2 to
``net.ipv4.conf.IF.force_igmp_version`` and ``mldv1`` writes 1 to
``net.ipv6.conf.IF.force_mld_version``; the version 3 / 2 modes clear a forced older version
back to 0 (automatic: the newest version, unless an older querier is heard) and leave 0 or a
forced newest version alone. ``--keep-version`` turns this off. Each membership is a socket
of its own, so any mix of modes, groups and sources can be held at once.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import os
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mcastlab import sockopts
from mcastlab.payload import PayloadError, parse_payload
from mcastlab.procs import JsonProc

DEFAULT_PORT = 5001


class JoinMode(enum.StrEnum):
    """How a receiver joins, and so which report the kernel sends."""

    IGMPV2 = "igmpv2"
    IGMPV3_ASM = "igmpv3-asm"
    IGMPV3_SSM = "igmpv3-ssm"
    MLDV1 = "mldv1"
    MLDV2_ASM = "mldv2-asm"
    MLDV2_SSM = "mldv2-ssm"

    @property
    def family(self) -> int:
        """4 or 6."""
        return 4 if self.value.startswith("igmp") else 6

    @property
    def source_specific(self) -> bool:
        """Whether the join names sources (SSM) rather than any source (ASM)."""
        return self.value.endswith("-ssm")


class Packet(NamedTuple):
    """A datagram a receiver got, with the lab payload it carried (None fields if none)."""

    group: str
    source: str
    sender: str | None
    seq: int | None
    sent_ns: int | None
    time_ns: int
    size: int

    @property
    def delay(self) -> float | None:
        """One-way delay in seconds, from the payload's send time."""
        return None if self.sent_ns is None else (self.time_ns - self.sent_ns) / 1e9


# -- the parent side --------------------------------------------------------------------------


class Receiver(JsonProc):
    """A running receiver in a lab namespace (made by ``Lab.receiver``)."""

    def __init__(
        self,
        ns: str,
        iface: str,
        *,
        log: Path,
        port: int = DEFAULT_PORT,
        keep_version: bool = False,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        argv = [python, "-m", "mcastlab.receiver", "--iface", iface, "--port", str(port)]
        if keep_version:
            argv.append("--keep-version")
        super().__init__(ns, argv, log=log, env=env)
        self.iface = iface
        self.port = port
        try:
            self.info = self.wait_event(lambda e: e.get("event") == "ready", timeout)
        except BaseException:
            self.stop()
            raise

    def join(self, mode: JoinMode | str, group: str, *sources: str, timeout: float = 5.0) -> None:
        """Join ``group`` (from ``sources`` in the SSM modes); returns once the socket call is done.

        The kernel sends its report right after; poll a capture to see it.
        """
        self.command(" ".join(["join", JoinMode(mode).value, group, *sources]), timeout)

    def leave(self, group: str, *sources: str, timeout: float = 5.0) -> None:
        """Leave ``sources`` of ``group``, or every membership of ``group`` if none are named."""
        self.command(" ".join(["leave", group, *sources]), timeout)

    def packets(self, group: str | None = None) -> list[Packet]:
        """The datagrams received so far, optionally only those sent to ``group``."""
        out = []
        for e in self.events("packet"):
            if group is None or e["group"] == group:
                out.append(
                    Packet(
                        e["group"],
                        e["source"],
                        e["sender"],
                        e["seq"],
                        e["sent_ns"],
                        e["time_ns"],
                        e["len"],
                    )
                )
        return out

    def wait_packets(
        self, count: int, timeout: float = 5.0, *, group: str | None = None
    ) -> list[Packet]:
        """Wait until at least ``count`` datagrams (to ``group``) have arrived; all of them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.packets(group)
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"receiver in {self.ns}: {len(got)} of {count} packets")
            with contextlib.suppress(TimeoutError):
                self.wait_event(
                    lambda e: e.get("event") == "packet", min(left, 0.1), start=len(self.events())
                )


# -- the program, inside the namespace --------------------------------------------------------


def _write_proc(path: str, value: str) -> None:
    Path(path).write_text(value)


def _read_proc(path: str) -> str:
    return Path(path).read_text().strip()


class _Program:
    """The receiver's state: its receive sockets and one socket per membership."""

    def __init__(self, iface: str, port: int, keep_version: bool) -> None:
        self.iface = iface
        self.port = port
        self.keep_version = keep_version
        self.ifindex = socket.if_nametoindex(iface)
        # (group, source or None) -> (mode, the socket holding that membership)
        self.memberships: dict[tuple[str, str | None], tuple[JoinMode, socket.socket]] = {}
        self.rx: list[socket.socket] = [self._rx_socket(socket.AF_INET)]
        with contextlib.suppress(OSError):  # IPv6 may be off in this namespace
            self.rx.append(self._rx_socket(socket.AF_INET6))

    def _rx_socket(self, fam: socket.AddressFamily) -> socket.socket:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.iface.encode())
        if fam == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, sockopts.IP_PKTINFO, 1)
            s.bind(("0.0.0.0", self.port))
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.bind(("::", self.port))
        s.setblocking(False)
        return s

    # -- commands

    def _set_version(self, mode: JoinMode) -> None:
        if self.keep_version:
            return
        if mode.family == 4:
            path = f"/proc/sys/net/ipv4/conf/{self.iface}/force_igmp_version"
            forced_older = {"1", "2"}
        else:
            path = f"/proc/sys/net/ipv6/conf/{self.iface}/force_mld_version"
            forced_older = {"1"}
        if mode == JoinMode.IGMPV2:
            _write_proc(path, "2")
        elif mode == JoinMode.MLDV1:
            _write_proc(path, "1")
        elif _read_proc(path) in forced_older:
            _write_proc(path, "0")

    def join(self, mode: JoinMode, group: str, sources: list[str]) -> dict[str, Any]:
        fam = sockopts.family_of(group)
        if (fam == socket.AF_INET) != (mode.family == 4):
            raise ValueError(f"{group} is not an IPv{mode.family} group")
        if mode.source_specific != bool(sources):
            raise ValueError(
                f"{mode} takes {'one or more' if mode.source_specific else 'no'} sources"
            )
        for s in sources:
            if sockopts.family_of(s) != fam:
                raise ValueError(f"source {s} is not of the group's family")
        keys = [(group, s) for s in sources] or [(group, None)]
        for k in keys:
            if k in self.memberships:
                raise ValueError(f"already joined {k[0]}" + (f" from {k[1]}" if k[1] else ""))
        self._set_version(mode)
        for _, source in keys:
            sock = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                self._membership(sock, mode, group, source, add=True)
            except BaseException:
                sock.close()
                raise
            self.memberships[group, source] = (mode, sock)
        return {"mode": mode.value, "group": group, "sources": sources}

    def _membership(
        self, sock: socket.socket, mode: JoinMode, group: str, source: str | None, *, add: bool
    ) -> None:
        if mode in (JoinMode.IGMPV2, JoinMode.IGMPV3_ASM):
            opt = socket.IP_ADD_MEMBERSHIP if add else socket.IP_DROP_MEMBERSHIP
            sock.setsockopt(socket.IPPROTO_IP, opt, sockopts.ip_mreqn(group, self.ifindex))
        elif mode == JoinMode.IGMPV3_SSM:
            assert source is not None
            addr = sockopts.interface_ipv4(self.iface)
            if addr is None:
                raise ValueError(f"{self.iface} has no IPv4 address for ip_mreq_source")
            opt = sockopts.IP_ADD_SOURCE_MEMBERSHIP if add else sockopts.IP_DROP_SOURCE_MEMBERSHIP
            sock.setsockopt(socket.IPPROTO_IP, opt, sockopts.ip_mreq_source(group, addr, source))
        elif mode in (JoinMode.MLDV1, JoinMode.MLDV2_ASM):
            opt = sockopts.IPV6_JOIN_GROUP if add else sockopts.IPV6_LEAVE_GROUP
            sock.setsockopt(socket.IPPROTO_IPV6, opt, sockopts.ipv6_mreq(group, self.ifindex))
        else:
            assert source is not None
            opt = sockopts.MCAST_JOIN_SOURCE_GROUP if add else sockopts.MCAST_LEAVE_SOURCE_GROUP
            req = sockopts.group_source_req(group, source, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, opt, req)

    def leave(self, group: str, sources: list[str]) -> dict[str, Any]:
        if sources:
            keys = [(group, s) for s in sources]
            missing = [k for k in keys if k not in self.memberships]
            if missing:
                raise ValueError(
                    f"not joined to {group} from {', '.join(str(s) for _, s in missing)}"
                )
        else:
            keys = [k for k in self.memberships if k[0] == group]
            if not keys:
                raise ValueError(f"not joined to {group}")
        for k in keys:
            mode, sock = self.memberships.pop(k)
            try:
                self._membership(sock, mode, k[0], k[1], add=False)
            finally:
                sock.close()
        return {"group": group, "sources": [s for _, s in keys if s is not None]}

    def leave_all(self) -> None:
        for group in sorted({g for g, _ in self.memberships}):
            with contextlib.suppress(OSError, ValueError):
                self.leave(group, [])

    def handle(self, line: str) -> tuple[str, dict[str, Any]]:
        words = line.split()
        if not words:
            raise ValueError("empty command")
        verb, args = words[0], words[1:]
        if verb == "join":
            if len(args) < 2:
                raise ValueError("usage: join MODE GROUP [SOURCE...]")
            return "joined", self.join(JoinMode(args[0]), args[1], args[2:])
        if verb == "leave":
            if not args:
                raise ValueError("usage: leave GROUP [SOURCE...]")
            return "left", self.leave(args[0], args[1:])
        if verb == "quit":
            return "bye", {}
        raise ValueError(f"unknown command {verb!r} (join, leave, quit)")

    # -- packets

    def receive(self, sock: socket.socket) -> dict[str, Any] | None:
        try:
            data, anc, _flags, addr = sock.recvmsg(65535, 256)
        except BlockingIOError:
            return None
        now = time.monotonic_ns()
        group = None
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == sockopts.IP_PKTINFO:
                group = socket.inet_ntop(socket.AF_INET, sockopts.IN_PKTINFO.unpack(cdata)[2])
            elif level == socket.IPPROTO_IPV6 and kind == sockopts.IPV6_PKTINFO:
                group = socket.inet_ntop(socket.AF_INET6, sockopts.IN6_PKTINFO.unpack(cdata)[0])
        ev: dict[str, Any] = {
            "event": "packet",
            "group": group,
            "source": addr[0],
            "sport": addr[1],
        }
        try:
            p = parse_payload(data)
            ev |= {"sender": p.sender, "seq": p.seq, "sent_ns": p.sent_ns}
        except PayloadError as e:
            ev |= {"sender": None, "seq": None, "sent_ns": None, "junk": str(e)}
        return ev | {"time_ns": now, "len": len(data)}


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the receiver until ``quit``, end of stdin, or ``--max-seconds``."""
    ap = argparse.ArgumentParser(prog="mcastlab.receiver", description=__doc__.split("\n")[0])
    ap.add_argument("--iface", required=True, help="join on and receive from this interface")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port to receive on")
    ap.add_argument(
        "--join",
        action="append",
        default=[],
        metavar="'MODE GROUP [SOURCE...]'",
        help="join at start (repeatable)",
    )
    ap.add_argument(
        "--keep-version",
        action="store_true",
        help="do not set force_igmp_version / force_mld_version",
    )
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    a = ap.parse_args(argv)
    try:
        prog = _Program(a.iface, a.port, a.keep_version)
    except OSError as e:
        _emit({"event": "error", "n": 0, "error": f"{type(e).__name__}: {e}"})
        return 1
    _emit(
        {
            "event": "ready",
            "iface": a.iface,
            "ifindex": prog.ifindex,
            "port": a.port,
            "pid": os.getpid(),
        }
    )
    for spec in a.join:
        try:
            kind, info = prog.handle("join " + spec)
            _emit({"event": kind, "n": 0} | info)
        except (OSError, ValueError) as e:
            _emit({"event": "error", "n": 0, "error": f"join {spec}: {e}"})
            return 1

    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    for s in prog.rx:
        sel.register(s, selectors.EVENT_READ, "rx")
    deadline = time.monotonic() + a.max_seconds
    buf = b""
    n = 0
    running = True
    try:
        while running and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                if key.data == "rx":
                    ev = prog.receive(key.fileobj)  # type: ignore[arg-type]
                    if ev is not None:
                        _emit(ev)
                    continue
                chunk = os.read(0, 4096)
                if not chunk:  # end of stdin: the controller is gone
                    running = False
                    break
                buf += chunk
                while running and b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    n += 1
                    try:
                        kind, info = prog.handle(raw.decode())
                    except (OSError, ValueError) as e:
                        _emit({"event": "error", "n": n, "error": f"{type(e).__name__}: {e}"})
                        continue
                    _emit({"event": kind, "n": n} | info)
                    running = kind != "bye"
    except KeyboardInterrupt:
        pass
    finally:
        prog.leave_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
