"""The configuration file's field types that more than one of its modules uses.

``config`` (the file as a whole) and ``policyconfig`` (its policy sections) both take address
prefixes and share one model base (kebab-case keys, unknown keys refused, immutable). They
live here so that neither has to import the other's module to get them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from mcastproxy.family import Family

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MULTICAST = {
    Family.V4: ipaddress.ip_network("224.0.0.0/4"),
    Family.V6: ipaddress.ip_network("ff00::/8"),
}


def parse_prefix(value: Any) -> Network:
    if not isinstance(value, str):
        raise ValueError("expected an address prefix such as 10.0.0.0/8 or ff3e::/16")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(value.strip(), strict=False)
            raise ValueError(f"{value} has host bits set; did you mean {loose}?") from None
        raise ValueError(f"{value!r} is not an address prefix") from None


def group_prefix(value: Any) -> Network:
    net = parse_prefix(value)
    if not net.is_multicast:
        raise ValueError(f"group prefix {net} is not multicast (224.0.0.0/4 or ff00::/8)")
    return net


def unicast_prefix(value: Any) -> Network:
    # Draft §4.1: subscriber and source prefixes MUST be valid unicast prefixes.
    net = parse_prefix(value)
    multicast = MULTICAST[Family(net.version)]
    if net.overlaps(multicast):
        if net.prefixlen <= multicast.prefixlen:
            raise ValueError(f"{net} covers multicast addresses; omit the field to mean any")
        raise ValueError(f"{net} is multicast, not unicast")
    if net.prefixlen == net.max_prefixlen and (
        net.network_address.is_unspecified or net.network_address.is_loopback
        or (net.version == 4 and net.network_address == ipaddress.IPv4Address("255.255.255.255"))
    ):
        raise ValueError(f"{net.network_address} is not a unicast host address")
    return net


GroupPrefix = Annotated[Network, BeforeValidator(group_prefix)]
UnicastPrefix = Annotated[Network, BeforeValidator(unicast_prefix)]


class Model(BaseModel):
    """A section of the file: kebab-case keys, none unknown, immutable once read."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=lambda name: name.replace("_", "-"),
        populate_by_name=True,
    )
