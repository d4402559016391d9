"""What the daemon runs on: the kernel adapter, the sockets, the interface map and netlink.

``Platform`` is a set of factories, the system's by default; tests give in-memory ones
(tests/daemon/fakes.py), so the daemon's loop runs there as it does in production, without
root. The protocols say what the daemon uses of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.kernel import MulticastRouter, MulticastRouting
from mcastproxy.links import LinkEvent, LinkWatcher
from mcastproxy.netio import IgmpSocket, InterfaceMap, MldSocket, Received
from mcastproxy.netio.pim import PimListener


class PacketSocket(Protocol):
    """IGMP (``netio.IgmpSocket``) or MLD (``netio.MldSocket``) in and out, for every
    interface of one family."""

    @property
    def family(self) -> Family: ...

    @property
    def dropped(self) -> Mapping[Drop, int]:
        """Packets received and not returned, by reason."""
        ...

    def fileno(self) -> int: ...

    def receive(self) -> list[Received]:
        """What is queued now, without blocking; never raises on bad input."""
        ...

    def send(self, interface: str, destination: bytes, payload: bytes) -> bool: ...

    def listen(self, interface: str) -> None:
        """Receive reports and leaves on this downstream (again if it came back)."""
        ...

    def close(self) -> None: ...


class HelloSocket(Protocol):
    """PIM Hellos of one family (``netio.pim.PimListener``): (interface, source) of each."""

    @property
    def dropped(self) -> Mapping[Drop, int]: ...

    def fileno(self) -> int: ...

    def receive(self) -> list[tuple[str, bytes]]: ...

    def listen(self, interface: str) -> None: ...

    def close(self) -> None: ...


class LinkWatching(Protocol):
    """Reports the configured interfaces' state as ``InterfaceUp``/``InterfaceDown``
    (``links.LinkWatcher``): all of them at ``start()``, then every change."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def watch(self, names: Iterable[str]) -> None:
        """Follow these interfaces instead (reported at once if new)."""
        ...


def _packet_socket(family: Family, interfaces: InterfaceMap) -> PacketSocket:
    return IgmpSocket(interfaces) if family is Family.V4 else MldSocket(interfaces)


@dataclass(frozen=True, slots=True)
class Platform:
    """Where the daemon's inputs and outputs come from; the defaults are the system's.

    ``router(family)``: the kernel adapter of a family. ``packets(family, interfaces)``: its
    IGMP or MLD socket; ``hellos(family, interfaces)``: its PIM listener (made only when a
    candidate watches hellos). ``interfaces()``: the name/index/address map the sockets share,
    which the daemon ``refresh``-es as netlink reports changes. ``links(names, emit)``: the
    netlink watcher, calling ``emit`` with each ``InterfaceUp``/``InterfaceDown``.
    """

    router: Callable[[Family], MulticastRouting] = MulticastRouter
    packets: Callable[[Family, InterfaceMap], PacketSocket] = _packet_socket
    hellos: Callable[[Family, InterfaceMap], HelloSocket] = PimListener
    interfaces: Callable[[], InterfaceMap] = InterfaceMap
    links: Callable[[Iterable[str], Callable[[LinkEvent], None]], LinkWatching] = LinkWatcher


# --- the daemon --------------------------------------------------------------------------------
