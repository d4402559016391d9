"""What the engine is told: events, each handled with the time it happened (``now``).

The daemon turns socket reads, netlink messages, kernel upcalls and signals into these.
Interfaces are named as in the configuration; addresses are packed ``bytes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcastproxy.config import Config


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """An IGMP (``family`` 4) or MLD (``family`` 6) message arrived on ``interface``.

    ``payload`` is the IGMP message after the IPv4 header, or the ICMPv6 message; ``source``
    and ``destination`` are the IP addresses of the packet. ``ttl`` is its IPv4 TTL or IPv6
    hop limit, ``router_alert`` whether it carried a Router Alert option asking routers to
    examine it (IPv4, RFC 2113; IPv6 Hop-by-Hop with the MLD value, RFC 2711): ``None`` is
    "not known", which the validity rules let pass (``membership.validity``).
    """

    interface: str
    family: int
    source: bytes
    destination: bytes
    payload: bytes
    ttl: int | None = None
    router_alert: bool | None = None


@dataclass(frozen=True, slots=True)
class InterfaceUp:
    """``interface`` exists and is up, with these addresses (IPv4 and IPv6, any order).

    ``prefix_lengths`` gives the prefix length of each address, in the same order (so the
    link's subnets, for ``verify-source-subnet``); empty when not known. Sent again whenever
    its addresses change.
    """

    interface: str
    addresses: tuple[bytes, ...]
    prefix_lengths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.prefix_lengths and len(self.prefix_lengths) != len(self.addresses):
            raise ValueError("prefix_lengths has one length per address, or none")


@dataclass(frozen=True, slots=True)
class InterfaceDown:
    """``interface`` went down or disappeared."""

    interface: str


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """The deadline the engine asked for has come."""


@dataclass(frozen=True, slots=True)
class NewFlow:
    """The kernel saw multicast data (source, group) arrive on ``interface``, with no route
    for it yet (an ipmr/ip6mr NOCACHE upcall)."""

    interface: str
    source: bytes
    group: bytes


@dataclass(frozen=True, slots=True)
class CountersSampled:
    """The kernel's packet counters of the routes on data-watched upstreams, read just now:
    (upstream, source, group) -> packets forwarded or counted since the route was made."""

    packets: Mapping[tuple[str, bytes, bytes], int]


@dataclass(frozen=True, slots=True)
class RatesMeasured:
    """Each channel's rate over the last measuring window, from the kernel's byte counters:
    (source, group) -> bits a second (``learning``)."""

    rates: Mapping[tuple[bytes, bytes], float]


@dataclass(frozen=True, slots=True)
class ClearGroups:
    """RFC 8652's ``clear-groups``: forget the membership state of ``group`` (None: every
    group) on downstream ``interface`` (None: every link), or only the groups that hold
    ``source``, of ``family`` (4: IGMP, 6: MLD; None: both); the subscribers are learned
    again from the next queries' answers."""

    interface: str | None = None
    group: bytes | None = None
    source: bytes | None = None
    family: int | None = None


@dataclass(frozen=True, slots=True)
class UpstreamUsability:
    """Liveness says candidate ``interface`` became usable or unusable (draft §5.1)."""

    interface: str
    usable: bool
    cause: str


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """A PIM Hello (RFC 7761 §4.3.1) from ``source`` arrived on ``interface``: evidence that an
    upstream router is alive (draft §5.1)."""

    interface: str
    source: bytes


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """A new, already validated configuration takes effect (SIGHUP, controller).
    ``reselect``: running subscriptions are selected again under it, make before break (a
    controller moving channels); else they stay where they are while their upstream is
    still a candidate (a SIGHUP's smooth migration)."""

    config: Config
    reselect: bool = False


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The proxy is stopping gracefully: with ``upstream.leave-on-stop``, every upstream
    leaves what it joined, so that upstream routers stop sending at once rather than when
    their membership times out (minutes)."""


Event = (
    PacketReceived | InterfaceUp | InterfaceDown | TimerExpired | NewFlow | UpstreamUsability
    | HelloReceived | ConfigChanged | CountersSampled | RatesMeasured | ClearGroups | Shutdown
)
