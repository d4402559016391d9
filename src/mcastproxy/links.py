"""Following interfaces through netlink: which of the configured ones are up, with which
addresses, as engine events.

An interface is up when it is administratively up and has carrier (IFF_UP and IFF_LOWER_UP):
a veth whose peer went down, or a cable pulled, is down. Its addresses are those the kernel
lists for it, less IPv6 addresses still tentative (duplicate address detection running: they
cannot be sent from yet). Interfaces that appear later (PPPoE, VLANs, hot-plug), disappear,
go down, come up or change address are followed without a restart: every change of (up,
addresses) of a configured interface becomes one ``InterfaceUp`` or ``InterfaceDown``.

``python -m mcastproxy.links IFACE ...`` prints the events as JSON lines, for debugging.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

from mcastproxy.events import InterfaceDown, InterfaceUp

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08

LinkEvent = InterfaceUp | InterfaceDown


@dataclass
class _Link:
    index: int
    up: bool = False
    addresses: dict[bytes, int] = field(default_factory=dict)  # address -> prefix length


class LinkWatcher:
    """Reports the state of the interfaces ``names`` to ``emit``, now and on every change."""

    def __init__(self, names: Iterable[str], emit: Callable[[LinkEvent], None]) -> None:
        self.names = set(names)
        self.emit = emit
        self._links: dict[str, _Link] = {}
        self._by_index: dict[int, str] = {}
        self._reported: dict[str, tuple[bool, tuple[bytes, ...]]] = {}
        self._monitor: AsyncIPRoute | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to changes, then read the current state (so that nothing is missed)."""
        self._monitor = AsyncIPRoute()
        await self._monitor.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        async with AsyncIPRoute() as ipr:
            for msg in [m async for m in await ipr.link("dump")]:
                self._on_link(msg)
            for msg in [m async for m in await ipr.addr("dump")]:
                self._on_addr(msg)
        for name in sorted(self.names):
            self._report(name, initial=True)
        self._task = asyncio.create_task(self._follow(), name="mcastproxy-links")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._monitor is not None:
            closing = self._monitor.close()  # a coroutine in some pyroute2 versions
            if asyncio.iscoroutine(closing):
                await closing

    def watch(self, names: Iterable[str]) -> None:
        """Follow these interfaces instead (after a configuration reload)."""
        self.names = set(names)
        for name in sorted(self.names):
            self._report(name, initial=name not in self._reported)

    async def _follow(self) -> None:
        assert self._monitor is not None
        while True:
            async for msg in self._monitor.get():
                touched = self._apply(msg)
                if touched is not None:
                    self._report(touched)

    def _apply(self, msg: Any) -> str | None:
        event = msg.get("event")
        if event in ("RTM_NEWLINK", "RTM_DELLINK"):
            return self._on_link(msg, deleted=event == "RTM_DELLINK")
        if event in ("RTM_NEWADDR", "RTM_DELADDR"):
            return self._on_addr(msg, deleted=event == "RTM_DELADDR")
        return None

    def _on_link(self, msg: Any, deleted: bool = False) -> str | None:
        index = msg["index"]
        name = msg.get("ifname") or self._by_index.get(index)
        if name is None:
            return None
        old_name = self._by_index.get(index)
        if old_name is not None and old_name != name:  # renamed
            self._links.pop(old_name, None)
            self._report(old_name)
        if deleted:
            self._links.pop(name, None)
            self._by_index.pop(index, None)
            return name
        link = self._links.get(name)
        if link is None or link.index != index:
            link = self._links[name] = _Link(index)
        self._by_index[index] = name
        flags = msg["flags"]
        link.up = bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)
        return name

    def _on_addr(self, msg: Any, deleted: bool = False) -> str | None:
        name = self._by_index.get(msg["index"])
        link = self._links.get(name) if name else None
        address = msg.get("IFA_ADDRESS")
        if link is None or name is None or address is None:
            return None
        packed = ipaddress.ip_address(address.split("%")[0]).packed
        flags = msg.get("IFA_FLAGS") or msg.get("flags", 0)
        if deleted or flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            link.addresses.pop(packed, None)
        else:
            link.addresses[packed] = int(msg.get("prefixlen", 8 * len(packed)))
        return name

    def _report(self, name: str, initial: bool = False) -> None:
        if name not in self.names:
            return
        link = self._links.get(name)
        state = ((True, tuple(link.addresses.items())) if link is not None and link.up
                 else (False, ()))
        if not initial and self._reported.get(name) == state:
            return
        if initial and not state[0] and name not in self._reported:
            self._reported[name] = state
            self.emit(InterfaceDown(name))
            return
        self._reported[name] = state
        if state[0]:
            self.emit(InterfaceUp(name, tuple(a for a, _ in state[1]),
                                  tuple(n for _, n in state[1])))
        else:
            self.emit(InterfaceDown(name))


def _print(event: LinkEvent) -> None:
    if isinstance(event, InterfaceUp):
        addrs = [str(ipaddress.ip_address(a)) for a in event.addresses]
        prefixes = [f"{a}/{n}" for a, n in zip(addrs, event.prefix_lengths, strict=True)]
        print(json.dumps({"event": "up", "interface": event.interface, "addresses": addrs,
                          "prefixes": prefixes}))
    else:
        print(json.dumps({"event": "down", "interface": event.interface}))
    sys.stdout.flush()


async def _watch(names: list[str]) -> None:
    watcher = LinkWatcher(names, _print)
    await watcher.start()
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await watcher.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(sys.argv[1:]))
