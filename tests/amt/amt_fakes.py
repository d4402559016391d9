"""Fakes for the tests of ``amt.upstream`` on one host: the TUN device is one end of a
datagram socket pair (the test holds the kernel's end), and the relay is the lab's
``RelayCore`` on a UDP socket on the loopback (``port``: its own). ``run`` runs a scenario in
an asyncio loop; ``until`` waits on a condition with a timeout, no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from mcastlab.amtrelay import RelayCore
from mcastproxy.amt.inner import report_packet
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, Report

LOOPBACK = "127.0.0.1"
SOURCE, GROUP = ipaddress.ip_address("10.0.9.1").packed, ipaddress.ip_address("232.1.1.1").packed
TIMEOUT = 5.0


async def until(predicate: Callable[[], object], what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(what or repr(predicate))
        await asyncio.sleep(0.005)


class Relay:
    """``RelayCore`` on a loopback UDP socket, answering as datagrams arrive."""

    def __init__(self, query_interval: int = 125, address: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.address = address
        self.core = RelayCore(socket.inet_aton(address), secret=os.urandom(16),
                              query_interval=query_interval)
        self.gateways: set[tuple[str, int]] = set()
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data, (host, port) = self.sock.recvfrom(65535)
                self.gateways.add((host, port))
                for dst, dport, out in self.core.receive(socket.inet_aton(host), port, data,
                                                         loop.time()):
                    self.sock.sendto(out, (socket.inet_ntoa(dst), dport))
        except BlockingIOError:
            pass

    def channels(self) -> set[tuple[bytes | None, bytes]]:
        return {c for t in self.core.tunnels.values() for c in t.channels()}

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.core.events if e["event"] == kind]

    def stream(self, packet: bytes) -> None:
        for dst, dport, out in self.core.forward(packet):
            self.sock.sendto(out, (socket.inet_ntoa(dst), dport))

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


class FakeTun:
    """The TUN device: the runner gets one end, the test is the kernel at the other."""

    def __init__(self) -> None:
        self.kernel, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.kernel.setblocking(False)
        self.opened: list[str] = []
        self.fds: list[int] = []

    def open(self, name: str) -> int:
        self.opened.append(name)
        fd = os.dup(self._theirs.fileno())
        os.set_blocking(fd, False)
        self.fds.append(fd)
        return fd

    def runners_end_closed(self) -> bool:
        """Whether the descriptor the runner was given is closed (checked at once, before
        anything could take its number again)."""
        try:
            fcntl.fcntl(self.fds[-1], fcntl.F_GETFD)
        except OSError as e:
            return e.errno == errno.EBADF
        return False

    def send_report(self, *records: GroupRecord) -> None:
        self.kernel.send(report_packet(Family.V4, bytes(4), Report(3, records)))

    def written(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.kernel.recv(65535))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.kernel.close()
        self._theirs.close()


def run(scenario: Callable[[Relay, FakeTun], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        relay = Relay(settings.pop("query_interval", 125))
        tun = FakeTun()
        try:
            await scenario(relay, tun)
        finally:
            relay.close()
            tun.close()

    asyncio.run(main())
