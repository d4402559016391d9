"""What an IGMP or MLD message must carry in its IP header to be taken: TTL or hop limit 1,
the Router Alert option, a source on the link.

The rules. RFC 9776 §4 (RFC 3376 §4; RFC 2236 §2 for IGMPv2): "Every IGMP message described
in this document is sent with an IP Time-to-Live of 1 ... and carries an IP Router Alert option
[RFC2113] in its IP header". RFC 9777 §5 (RFC 2710 §3 for MLDv1): MLD messages are sent with a
link-local source address, "an IPv6 Hop Limit of 1, and an IPv6 Router Alert option in a
Hop-by-Hop Options header"; a router receiving a Report (§7.4) and a listener receiving a
Query (§6.2) check all three and drop the message if one fails. A message that breaks them was
not sent by a neighbour on the link as the protocol sends it: a report unicast to the proxy
from afar arrives with a TTL above 1, one sent by a program on a host without the option.
The link-local source of MLD is checked by the router side with the rest of the sender
(``RouterLink``, RFC 9777 §5.1.14, §5.2.13).

RFC 9776 §9.2-§9.3 (RFC 3376 §9) name the two defences against forged reports, each a per-link
setting under RFC 8652's name:

- ``require-router-alert``: unset, the rules above, with IGMPv1 exempt (RFC 1112 predates the
  option: IGMPv1 hosts and queriers never send it); ``true``, IGMPv1 too ("this solution
  breaks backwards compatibility", §9.2); ``false``, not checked.
- ``verify-source-subnet``: an IGMP report or leave must come from an address in one of the
  link's subnets, or from 0.0.0.0 (§4.2.13: "Routers MUST accept a report with a source
  address of 0.0.0.0"). Off by default, as in RFC 8652: it ignores hosts without an address on
  the link's subnets (mobile hosts, unnumbered access links). MLD has no such setting: its
  messages come from link-local addresses.

A value the socket did not give (``None``: unknown) passes; the rules judge what is known.

On an upstream the host side takes queries. An IGMP query must have TTL 1 (§4); a Router Alert
is not asked of it, as no host rule does and IGMPv1 queriers never send one. An MLD query is
held to RFC 9777 §6.2's three checks, the link-local source included (§5.1.14: "If a node
(router or host) receives a Query message with the IPv6 Source Address set to the unspecified
address (::), or any other address that is not a valid IPv6 link-local address, it MUST
silently discard the message").
"""

from __future__ import annotations

from collections.abc import Iterable

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership.addresses import is_ipv6_link_local
from mcastproxy.wire.messages import Leave, Message, Query

Subnets = tuple[tuple[int, int], ...]
"""IPv4 subnets as (network, mask) integers."""

_TTL_DROP = {Family.V4: Drop.TTL_NOT_ONE, Family.V6: Drop.HOP_LIMIT_NOT_ONE}
_UNSPECIFIED_V4 = Family.V4.unspecified


def subnets_of(addresses: Iterable[bytes], prefix_lengths: Iterable[int]) -> Subnets:
    """The IPv4 subnets of a link, from its addresses and their prefix lengths."""
    out: list[tuple[int, int]] = []
    for address, length in zip(addresses, prefix_lengths, strict=True):
        if len(address) != 4:
            continue
        if not 0 <= length <= 32:
            raise ValueError(f"an IPv4 prefix length is 0 to 32, not {length}")
        mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        subnet = (int.from_bytes(address, "big") & mask, mask)
        if subnet not in out:
            out.append(subnet)
    return tuple(out)


class LinkValidity:
    """The rules for messages arriving on one downstream link, for one family.

    ``require_router_alert``: ``None`` (the RFCs' rule, IGMPv1 exempt), ``True`` (every
    message) or ``False`` (not checked). ``subnets``: with ``verify-source-subnet``, the
    link's IPv4 subnets; ``None`` when the rule is off, not known, or for MLD. A packet with
    TTL 1 and Router Alert on a link with no subnets to check passes whatever it holds: a
    caller on the hot path may skip ``check`` for it.
    """

    __slots__ = ("_router_alert", "_ttl_drop", "_v4", "subnets")

    def __init__(
        self, family: Family, require_router_alert: bool | None = None,
        subnets: Subnets | None = None,
    ) -> None:
        self._v4 = family is Family.V4
        self._ttl_drop = _TTL_DROP[family]
        self._router_alert = require_router_alert
        self.subnets = subnets if self._v4 else None

    def check(self, message: Message, source: bytes, ttl: int | None,
              router_alert: bool | None) -> Drop | None:
        """Why ``message`` from ``source`` must be dropped, or ``None`` if it may be taken.
        A few comparisons on the usual path (TTL 1, Router Alert present)."""
        if ttl is not None and ttl != 1:
            return self._ttl_drop  # RFC 9776 §4, RFC 9777 §5
        if router_alert is False and self._router_alert is not False and (
            self._router_alert or not self._v4 or not _igmpv1(message)
        ):
            return Drop.NO_ROUTER_ALERT  # RFC 9776 §4, §9.2; RFC 9777 §6.2, §7.4
        subnets = self.subnets
        if subnets is not None and not isinstance(message, Query) and source != _UNSPECIFIED_V4:
            # verify-source-subnet: RFC 9776 §9.2, §4.2.13.
            address = int.from_bytes(source, "big")
            for network, mask in subnets:
                if address & mask == network:
                    return None
            return Drop.SOURCE_NOT_IN_SUBNET
        return None


def _igmpv1(message: Message) -> bool:
    """An IGMPv1 report or query (RFC 1112): never with Router Alert."""
    return not isinstance(message, Leave) and message.version == 1


def check_upstream_query(family: Family, source: bytes, ttl: int | None,
                         router_alert: bool | None) -> Drop | None:
    """Why a query heard on an upstream must be dropped, or ``None`` (module comment)."""
    if ttl is not None and ttl != 1:
        return _TTL_DROP[family]  # RFC 9776 §4, RFC 9777 §6.2
    if family is Family.V6:
        if router_alert is False:
            return Drop.NO_ROUTER_ALERT  # RFC 9777 §6.2
        if len(source) != 16 or not is_ipv6_link_local(source):
            return Drop.SOURCE_NOT_LINK_LOCAL  # RFC 9777 §5.1.14, §6.2
    return None
