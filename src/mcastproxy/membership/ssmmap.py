"""SSM mapping: older hosts' joins to SSM groups become source-specific joins.

An IGMPv1/v2 or MLDv1 host cannot name a source, and RFC 4604 (RFC 9776 §6.4, RFC 9777 §7.4)
has an SSM-aware router ignore its reports for groups in the SSM range, so a set-top box that
speaks only IGMPv2 cannot watch an SSM channel. With a mapping (Cisco's and Juniper's
``ssm-map``), the router side reads such a report for a mapped group G as IGMPv3 / MLDv2 would
have said it: IS_IN(S1..Sn) from that host, with the configured sources, and its Leave / Done
as TO_IN({}). The group stays in the newest compatibility mode (no Older Host Present timer:
an SSM group never leaves it), so what goes upstream is an (S,G) join like any other, and the
host's explicit tracking, the policy and the limits apply to the mapped sources.

The first entry whose group prefix holds G gives the sources (a list of a few prefixes).
"""

from __future__ import annotations

from collections.abc import Iterable

from mcastproxy.membership.addresses import Network


class SsmMap:
    """Group prefix -> sources, for one family; ``sources(group)`` is None for a group that
    is not mapped."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[tuple[Network, Iterable[bytes]]] = ()) -> None:
        self._entries = tuple(
            (int(net.network_address), int(net.netmask), frozenset(sources))
            for net, sources in entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def sources(self, group: bytes) -> frozenset[bytes] | None:
        """The sources of the first entry that holds ``group``, or None."""
        g = int.from_bytes(group, "big")
        for network, mask, sources in self._entries:
            if g & mask == network:
                return sources
        return None
