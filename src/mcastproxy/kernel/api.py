"""The vocabulary of the kernel adapter: roles, upcalls, counters, the one error, and the
``MulticastRouting`` protocol that ``MulticastRouter`` (ipmr/ip6mr) and ``FakeRouter``
(in memory) both implement.

The daemon drives one router per family::

    router = MulticastRouter(4)                       # or FakeRouter(4) in tests
    router.start(upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    loop.add_reader(router.fileno(), on_upcalls)      # one descriptor for every table
    ...
    def on_upcalls():
        for up in router.read_upcalls():              # non-blocking, drains the queue
            if up.kind is UpcallKind.NOCACHE and up.interface is not None:
                engine.handle(NewFlow(up.interface, up.source, up.group), loop.time())
    ...
    router.set_route("u1", src, grp, "u1", frozenset({"d1"}))    # SetRoute action
    router.delete_route("u1", src, grp)                          # DeleteRoute action
    router.interface_changed("ppp0")                  # on RTM_NEWLINK / RTM_DELLINK
    router.counters()                                 # {(table, S, G): RouteCounters}
    router.route_counters("u1", src, grp)             # one route's, or None
    router.stop()                                     # also from a signal handler

Tables are named by their upstream interface, as in ``SetRoute.table``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from mcastproxy.family import Family
from mcastproxy.kernel.structs import MAXVIFS, UpcallKind

__all__ = [
    "MAXVIFS",
    "KernelError",
    "MulticastRouting",
    "Role",
    "RouteCounters",
    "Upcall",
    "UpcallKind",
]


class KernelError(Exception):
    """The kernel refused or cannot do multicast routing; the message is one line for people
    ("multicast routing needs root (CAP_NET_ADMIN)", "table 4600 is in use by another
    program", ...). ``errno`` is the kernel's error number when there was one."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Role(StrEnum):
    """What an interface is to the proxy."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@dataclass(frozen=True, slots=True)
class Upcall:
    """A message of the kernel's multicast routing to the daemon.

    ``table`` is the upstream whose table raised it; ``interface`` the one the packet arrived
    on (None if its VIF is no longer known); ``source`` and ``group`` packed addresses.
    """

    kind: UpcallKind
    table: str
    interface: str | None
    source: bytes
    group: bytes


@dataclass(frozen=True, slots=True)
class RouteCounters:
    """Counters of one (S,G) entry since it was created: packets and octets forwarded (that
    arrived on the right interface), and packets that arrived on another VIF of the table."""

    packets: int
    bytes: int
    wrong_if: int


@runtime_checkable
class MulticastRouting(Protocol):
    """The verbs of a multicast router of one family."""

    family: Family

    def start(self, upstreams: list[str], downstreams: list[str]) -> None:
        """Create a table (and its rule) per upstream, holding a VIF for that upstream and
        one for every downstream that exists; remove what a crashed run left first."""
        ...

    def stop(self) -> None:
        """Remove every route, VIF, rule and table socket. Idempotent."""
        ...

    def add_interface(self, name: str, role: Role) -> None:
        """Take a new interface into use at run time (its VIFs now, or when it appears)."""
        ...

    def remove_interface(self, name: str) -> None:
        """Stop using an interface: its VIFs, and its table if an upstream."""
        ...

    def interface_changed(self, name: str) -> None:
        """The interface appeared, disappeared or came back with a new index (netlink)."""
        ...

    def set_route(
        self, table: str, source: bytes, group: bytes, iif: str, oifs: frozenset[str]
    ) -> None:
        """Install or replace the entry of (source, group) in ``table``."""
        ...

    def delete_route(self, table: str, source: bytes, group: bytes) -> None:
        """Remove the entry; one already gone is not an error."""
        ...

    def fileno(self) -> int:
        """A descriptor that becomes readable when upcalls wait (for ``add_reader``)."""
        ...

    def read_upcalls(self) -> list[Upcall]:
        """The upcalls queued now, without blocking."""
        ...

    def counters(self, table: str | None = None) -> dict[tuple[str, bytes, bytes], RouteCounters]:
        """Counters of every route set (in ``table`` only, if given)."""
        ...

    def route_counters(self, table: str, source: bytes, group: bytes) -> RouteCounters | None:
        """Counters of one route set (one ioctl), or None if it is not set."""
        ...
