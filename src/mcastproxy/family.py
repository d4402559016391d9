"""The address family: IPv4 with IGMP, or IPv6 with MLD.

One enum instead of bare ``4``/``6`` and ``len(addr) == 4`` tests. It is an ``IntEnum`` whose
values are the IP versions, so it compares equal to the numbers the kernel and the
``ipaddress`` module use (``Family.V4 == 4``), and it carries what differs between the two
protocols: the address length and width, the well-known link-scope groups, the protocol's
name and its newest version.

Addresses are packed ``bytes`` throughout the core: 4 octets for IPv4, 16 for IPv6.
"""

from __future__ import annotations

from enum import IntEnum


class Family(IntEnum):
    """IPv4 (IGMP, RFC 9776) or IPv6 (MLD, RFC 9777)."""

    V4 = 4
    V6 = 6

    @classmethod
    def _missing_(cls, value: object) -> Family:
        raise ValueError(f"family must be 4 (IPv4) or 6 (IPv6), not {value!r}")

    @classmethod
    def of(cls, address: bytes) -> Family:
        """The family of a packed address, by its length (4 or 16 octets)."""
        if len(address) == 4:
            return cls.V4
        if len(address) == 16:
            return cls.V6
        raise ValueError(f"a packed address has 4 or 16 octets, not {len(address)}")

    @property
    def length(self) -> int:
        """Octets in an address: 4 or 16."""
        return 4 if self is Family.V4 else 16

    @property
    def width(self) -> int:
        """Bits in an address: 32 or 128."""
        return 32 if self is Family.V4 else 128

    @property
    def protocol(self) -> str:
        """The group membership protocol's name, as operators write it: "igmp" or "mld"."""
        return "igmp" if self is Family.V4 else "mld"

    @property
    def newest_version(self) -> int:
        """The protocol's version with source filtering: 3 (IGMPv3, RFC 9776) or 2 (MLDv2,
        RFC 9777)."""
        return 3 if self is Family.V4 else 2

    @property
    def unspecified(self) -> bytes:
        """0.0.0.0 or ::."""
        return bytes(self.length)

    @property
    def all_systems(self) -> bytes:
        """Where General Queries go: 224.0.0.1 (RFC 9776 §4.1.12) or ff02::1 (RFC 9777
        §5.1.15, link-scope all-nodes)."""
        return _ALL_SYSTEMS[self]

    @property
    def all_routers(self) -> bytes:
        """Where IGMPv2 Leaves and MLDv1 Dones go: 224.0.0.2 (RFC 2236 §3) or ff02::2
        (RFC 2710 §3.7)."""
        return _ALL_ROUTERS[self]

    @property
    def all_v3_routers(self) -> bytes:
        """Where IGMPv3 and MLDv2 Reports go: 224.0.0.22 (RFC 9776 §4.2.14) or ff02::16
        (RFC 9777 §5.2.14)."""
        return _ALL_V3_ROUTERS[self]


BY_LENGTH = {4: Family.V4, 16: Family.V6}
"""Address length -> family: ``BY_LENGTH[len(address)]`` is the fast ``Family.of``."""
BY_VERSION = {4: Family.V4, 6: Family.V6}
"""IP version -> family, without the cost of ``Family(version)`` on a hot path."""


def _ff02(last: int) -> bytes:
    return b"\xff\x02" + bytes(13) + bytes((last,))


_ALL_SYSTEMS = {Family.V4: bytes((224, 0, 0, 1)), Family.V6: _ff02(0x01)}
_ALL_ROUTERS = {Family.V4: bytes((224, 0, 0, 2)), Family.V6: _ff02(0x02)}
_ALL_V3_ROUTERS = {Family.V4: bytes((224, 0, 0, 22)), Family.V6: _ff02(0x16)}
