"""What the running system says: interface addresses, read through netlink."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pyroute2 import IPRoute

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def interface_addresses(names: Iterable[str]) -> dict[str, list[IPAddress]]:
    """The addresses of the named interfaces that exist on this system."""
    out: dict[str, list[IPAddress]] = {}
    with IPRoute() as ipr:
        for name in names:
            idx = ipr.link_lookup(ifname=name)
            if not idx:
                continue
            out[name] = [
                ipaddress.ip_address(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(index=idx[0])
            ]
    return out
