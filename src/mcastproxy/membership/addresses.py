"""Address predicates the router side needs (packed ``bytes``, 4 or 16 octets).

Plain functions over octets rather than ``ipaddress`` objects: they run once per group
record on the report path. Each family has its own, which a link picks once by its
``Family`` (``MULTICAST[family]``), so that no call tests an address's length.
``AddressRanges`` (the SSM address ranges) is built once from ``ipaddress`` networks and then
tests octets too. The well-known addresses (0.0.0.0, 224.0.0.1, ff02::1, ...) are the
``Family``'s properties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Network, IPv6Network
from typing import Final

from mcastproxy.family import Family

Network = IPv4Network | IPv6Network
AddressTest = Callable[[bytes], bool]

# Largest number of sources one Query carries: RFC 9776 §4.1.8 limits it by the MTU
# (Ethernet: (1500 - 24 - 12) / 4 = 366); RFC 9777 §5.1.10 likewise, and IPv6 guarantees
# only 1280 octets: (1280 - 40 - 8 - 28) / 16 = 75.
MAX_QUERY_SOURCES: Final[dict[Family, int]] = {Family.V4: 366, Family.V6: 75}

# The SSM address ranges (RFC 4607, Abstract): "IPv4 addresses in the 232/8 (232.0.0.0 to
# 232.255.255.255) range are designated as source-specific multicast (SSM) destination
# addresses"; "For IPv6, the address prefix FF3x::/32 is reserved", x being any scope (flags
# P=1 and T=1, prefix length 0: RFC 3306). RFC 4604 lets the ranges be configured: "If this
# configuration option exists, it MUST default to the IANA-allocated SSM range."
SSM_RANGES: Final[dict[Family, tuple[Network, ...]]] = {
    Family.V4: (IPv4Network("232.0.0.0/8"),),
    Family.V6: tuple(IPv6Network(f"ff3{scope:x}::/32") for scope in range(16)),
}


def _ipv4_multicast(group: bytes) -> bool:
    return 224 <= group[0] <= 239  # 224.0.0.0/4


def _ipv6_multicast(group: bytes) -> bool:
    return group[0] == 0xFF  # ff00::/8


MULTICAST: Final[dict[Family, AddressTest]] = {
    Family.V4: _ipv4_multicast,
    Family.V6: _ipv6_multicast,
}
"""Whether an address of the family is multicast."""


def _ipv4_link_local_scope(group: bytes) -> bool:
    # 224.0.0.0/24, the Local Network Control Block (224.0.0.1 all-systems, 224.0.0.22
    # IGMPv3 routers, ...).
    return group[0] == 224 and group[1] == 0 and group[2] == 0


def _ipv6_link_local_scope(group: bytes) -> bool:
    # Scope 0 (reserved), 1 (interface-local) or 2 (link-local), whatever the flags
    # (ff02::/16, but also ff12::, ff32::, ...).
    return (group[1] & 0x0F) <= 2


LINK_LOCAL_SCOPE: Final[dict[Family, AddressTest]] = {
    Family.V4: _ipv4_link_local_scope,
    Family.V6: _ipv6_link_local_scope,
}
"""Whether a multicast group of the family is never routed, so never reported to a router:
RFC 9776 §5 sends no reports for 224.0.0.1; RFC 9777 §6 forbids them for scopes 0 and 1 and
for ff02::1."""


def is_ipv6_link_local(address: bytes) -> bool:
    """fe80::/10, where every MLD message must come from (RFC 9777 §5.1.14, §5.2.13)."""
    return address[0] == 0xFE and (address[1] & 0xC0) == 0x80


class AddressRanges:
    """A set of address prefixes that packed addresses of one length are tested against.

    Each prefix is kept as the octets that cover it (a /9 as the 128 two-octet prefixes it
    spans), grouped by octet count, so ``address in ranges`` is one slice and one set lookup
    per distinct octet count, however many prefixes there are: the sixteen FF3x::/32 are one.
    """

    __slots__ = ("_by_length", "networks")

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        by_length: dict[int, set[bytes]] = {}
        for net in self.networks:
            length = -(-net.prefixlen // 8)  # octets that hold the prefix
            spare = 8 * length - net.prefixlen  # bits of the last octet below the prefix
            base = int.from_bytes(net.network_address.packed[:length], "big")
            by_length.setdefault(length, set()).update(
                (base + i).to_bytes(length, "big") for i in range(1 << spare)
            )
        self._by_length = tuple((n, frozenset(p)) for n, p in sorted(by_length.items()))

    def __bool__(self) -> bool:
        return bool(self._by_length)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, bytes):
            return False
        # A loop: any() over a generator costs three times as much on the report path.
        for length, prefixes in self._by_length:  # noqa: SIM110
            if address[:length] in prefixes:
                return True
        return False
