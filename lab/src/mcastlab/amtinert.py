"""AMT upstreams that touch nothing outside the process, for daemon tests on fake networks.

``inert_options()`` is what ``mcastproxy.amt.upstream.AmtUpstreams(config, **options)`` takes
so that an AMT upstream in a test's configuration (a fuzzed reload may add one, with any relay
address) makes no TUN device and sends no datagram and no DNS query: its "TUN" is an
eventfd that never becomes readable, its UDP sockets keep what they are asked to send
(``InertUdp.sent``), and its DRIAD lookups fail at once.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

from mcastproxy.amt.driad import Answer, Lookup
from mcastproxy.config import AmtSettings
from mcastproxy.family import Family


class InertUdp:
    """A UDP socket's surface, on a descriptor that never becomes readable: what is sent is
    kept (the last 64), never put on a wire."""

    def __init__(self, family: Family) -> None:
        self.family = socket.AF_INET if family is Family.V4 else socket.AF_INET6
        self._fd = _never_readable()
        self.sent: list[tuple[bytes, Any]] = []
        self._closed = False

    def fileno(self) -> int:
        return -1 if self._closed else self._fd

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        raise BlockingIOError

    def sendto(self, data: bytes, address: Any) -> int:
        self.sent = [*self.sent[-63:], (data, address)]
        return len(data)

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", 40000) if self.family == socket.AF_INET else ("::", 40000)

    def getsockopt(self, *args: Any) -> bytes:
        raise OSError("inert")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)


class InertResolver:
    """DRIAD lookups that fail at once, asking nobody."""

    async def lookup(self, source: bytes) -> Answer:
        ipaddress.ip_address(source)  # what a real one would refuse
        return Answer((), 0.0, Lookup.FAILED, "no-resolver")


def _never_readable() -> int:
    """A descriptor the loop can watch that never becomes readable (an eventfd no one
    writes: a packet written to it is refused, and counted as a write error)."""
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def _tun(name: str) -> int:
    return _never_readable()


def inert_options() -> dict[str, Any]:
    """``AmtUpstreams`` options for a daemon on a fake network (module comment)."""

    def resolver(settings: AmtSettings) -> Any:
        return InertResolver()

    return {"tun_opener": _tun, "socket_maker": InertUdp, "resolver_maker": resolver}
