"""The ``amt`` settings of an upstream candidate (RFC 7450, RFC 8777): the relay, how it is
found, and DRIAD's resolver and cache.

A part of the configuration file (``config`` re-exports ``AmtSettings``), in a module of its
own so that the file's structure stays in ``config``.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from mcastproxy.configtypes import Model
from mcastproxy.membership.timers import parse_duration

AMT_PORT = 2268  # RFC 7450 §7: the relay's UDP port
DNS_PORT = 53
MAX_RELAYS = 64

Duration = Annotated[float, BeforeValidator(parse_duration)]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: Any) -> Address:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _relay_address(value: Any) -> Address:
    address = _address(value)
    if address.is_multicast or address.is_unspecified or (
            address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{address} is not a unicast address (a relay, or the anycast "
                         "discovery address of RFC 7450 §4.1.1)")
    return address


def _resolver(value: Any) -> tuple[Address, int]:
    """``ADDRESS`` or ``ADDRESS:PORT`` (``[ADDRESS]:PORT`` for IPv6): a DNS server's address,
    never a name (there is nothing to look it up with yet)."""
    if not isinstance(value, str):
        raise ValueError("expected ADDRESS or ADDRESS:PORT")
    text = value.strip()
    host, port = text, str(DNS_PORT)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r}: expected [ADDRESS]:PORT")
        port = rest[1:] if rest else port
    elif text.count(":") == 1:  # IPv4 with a port; an IPv6 address alone has several
        host, _, port = text.partition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: the port must be 1-65535")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (names are not looked up)") from None
    if address.is_multicast or address.is_unspecified:
        raise ValueError(f"{address} is not a unicast address")
    return address, int(port)


class AmtSettings(Model):
    """An AMT upstream (RFC 7450): a relay tunnels its channels to a TUN the proxy makes.

    The candidate's interface is that TUN device (``amt.upstream``). ``relay``: the relay's
    unicast address; ``discovery``: an address to find one at by Relay Discovery (RFC 7450
    §5.2.3.4; the anycast address of §4.1.1). One of the two; its family is the tunnel's
    (IPv4 or IPv6 over UDP ``port``). ``querier``: the source the relay's
    General Queries carry inside the TUN, one address per inner family (IPv4 default 0.0.0.0,
    IPv6 default fe80::1; an MLD querier's is link-local, RFC 9777 §5.1.14).

    ``driad`` (RFC 8777): a source's channels go to the relay that the AMTRELAY record of the
    source's reverse name gives (``amt.driad``), asked of ``resolver`` (default: the system's),
    cached for the record's TTL within ``min-ttl`` and ``max-ttl``, through at most
    ``max-relays`` relays besides ``relay``; any-source joins, and sources with no record or
    whose lookup failed, go to ``relay`` (or ``discovery``).
    """

    relay: Annotated[Any, BeforeValidator(_relay_address)] | None = None
    discovery: Annotated[Any, BeforeValidator(_relay_address)] | None = None
    port: int = Field(AMT_PORT, ge=1, le=65535)
    querier: tuple[Annotated[Any, BeforeValidator(_address)], ...] = ()
    driad: bool = False
    resolver: Annotated[tuple[Any, int], BeforeValidator(_resolver)] | None = None
    min_ttl: Duration = Field(5.0, ge=0)
    max_ttl: Duration = Field(86400.0, gt=0)
    max_relays: int = Field(8, ge=1, le=MAX_RELAYS)

    @field_validator("querier", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_relay(self) -> AmtSettings:
        if (self.relay is None) == (self.discovery is None):
            raise ValueError("give relay (the relay's address) or discovery (an address to "
                             "discover one at), one of the two")
        versions = [q.version for q in self.querier]
        for q in self.querier:
            if versions.count(q.version) > 1:
                raise ValueError(f"querier: one address per family, {versions.count(q.version)} "
                                 f"IPv{q.version} given")
            if q.version == 6 and not q.is_link_local:
                raise ValueError(f"querier: {q} is not link-local, as an MLD query's source "
                                 "must be (RFC 9777 §5.1.14)")
            if q.version == 4 and (q.is_multicast or q.is_loopback or
                                   q == ipaddress.IPv4Address("255.255.255.255")):
                raise ValueError(f"querier: {q} is not a unicast address")
        if not self.driad and self.resolver is not None:
            raise ValueError("resolver is DRIAD's (RFC 8777): it needs driad: true")
        if self.min_ttl > self.max_ttl:
            raise ValueError(f"min-ttl ({self.min_ttl:g}s) is above max-ttl "
                             f"({self.max_ttl:g}s)")
        return self

    @property
    def target(self) -> Address:
        """The relay's address, or the discovery address."""
        target = self.relay if self.relay is not None else self.discovery
        assert target is not None  # _one_relay
        return target  # type: ignore[no-any-return]
