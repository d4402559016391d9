"""``InterfaceMap``: interface names, indexes and the addresses IGMP/MLD is sent from.

The sockets name interfaces as the configuration does; the kernel speaks in indexes. The
daemon keeps this map current from netlink (``set`` on RTM_NEWLINK / RTM_NEWADDR,
``remove`` on RTM_DELLINK), or asks it to read the system itself (``refresh``), which is
what tests and a first start-up do.

For each interface it holds the IPv4 address IGMP goes out from (RFC 9776 §4: the
interface's address; a report may go out from 0.0.0.0 when there is none) and the IPv6
link-local address MLD goes out from (RFC 9777 §5: always link-local).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

SIOCGIFADDR = 0x8915
IF_INET6 = Path("/proc/net/if_inet6")


@dataclass(frozen=True, slots=True)
class Interface:
    """One interface as the sockets need it (addresses packed, None if it has none)."""

    name: str
    index: int
    ipv4: bytes | None = None
    link_local: bytes | None = None


class InterfaceMap:
    """Name <-> index, and source addresses, of the interfaces the proxy uses."""

    def __init__(self) -> None:
        self._by_name: dict[str, Interface] = {}
        self._by_index: dict[int, Interface] = {}

    def set(
        self, name: str, index: int, *, ipv4: bytes | None = None, link_local: bytes | None = None
    ) -> None:
        """Record (or replace) ``name`` at ``index`` with its source addresses."""
        if ipv4 is not None and len(ipv4) != 4:
            raise ValueError("ipv4 is 4 octets")
        if link_local is not None and len(link_local) != 16:
            raise ValueError("link_local is 16 octets")
        self.remove(name)
        stale = self._by_index.get(index)
        if stale is not None:  # the index now belongs to another name (a rename)
            del self._by_name[stale.name]
        iface = Interface(name, index, ipv4, link_local)
        self._by_name[name] = iface
        self._by_index[index] = iface

    def remove(self, name: str) -> None:
        """Forget ``name`` (gone). Not there already is fine."""
        iface = self._by_name.pop(name, None)
        if iface is not None and self._by_index.get(iface.index) is iface:
            del self._by_index[iface.index]

    def refresh(self, name: str) -> Interface | None:
        """Read ``name``'s index and addresses from the system (this network namespace);
        forget it if it does not exist. Returns what is recorded now."""
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            self.remove(name)
            return None
        self.set(name, index, ipv4=_ipv4_of(name), link_local=_link_local_of(name))
        return self._by_name[name]

    def get(self, name: str) -> Interface | None:
        """The interface called ``name``, or None."""
        return self._by_name.get(name)

    def by_index(self, index: int) -> Interface | None:
        """The interface with ``index``, or None."""
        return self._by_index.get(index)

    def name_of(self, index: int) -> str | None:
        """The name of the interface with ``index``, or None."""
        iface = self._by_index.get(index)
        return iface.name if iface is not None else None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(list(self._by_name))

    def __repr__(self) -> str:
        return f"<InterfaceMap {', '.join(f'{i.name}:{i.index}' for i in self._by_name.values())}>"


def _ipv4_of(name: str) -> bytes | None:
    """The primary IPv4 address of ``name`` (SIOCGIFADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()))
        except OSError:
            return None
    return res[20:24]  # struct ifreq: name[16], then a sockaddr_in (family, port, address)


def _link_local_of(name: str) -> bytes | None:
    """A non-tentative fe80::/10 address of ``name`` from /proc/net/if_inet6, or None."""
    try:
        lines = IF_INET6.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # address, index, prefix length, scope, flags, name (all hex but the name)
        fields = line.split()
        if len(fields) < 6 or fields[5] != name:
            continue
        addr = bytes.fromhex(fields[0])
        flags = int(fields[4], 16)
        if addr[0] == 0xFE and addr[1] & 0xC0 == 0x80 and not flags & 0x40:  # IFA_F_TENTATIVE
            return addr
    return None
