"""What an AMT gateway hands back through ``pop_actions()``, and the states it says it is in.

- ``SendDatagram``: send these octets to a relay (or a discovery address) by UDP.
- ``QueryReceived``: the relay's General Query, for the host side that reports to it.
- ``StateChanged``: the gateway moved to another ``GatewayState`` (for logs and status).

The multicast packets that come through the tunnel are not actions: they are the data plane,
handed out as plain ``bytes`` by ``Gateway.pop_packets()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mcastproxy.wire.messages import Query


class GatewayState(StrEnum):
    """Where a gateway is in RFC 7450 §5.2's sequence; the value is what an operator reads."""

    IDLE = "idle"  # not started
    DISCOVERING = "discovering"  # Relay Discovery sent, no Relay Advertisement yet
    RELAY_FOUND = "relay found"  # the relay is known, and nothing is joined: no tunnel
    REQUESTING = "requesting"  # Request sent, no Membership Query yet
    ESTABLISHED = "established"  # Membership Query answered: Updates and Data flow
    UNANSWERED = "unanswered"  # a gateway that gives up: its relay did not answer
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class SendDatagram:
    """Send ``data`` to ``destination`` (packed, the transport's family), UDP port ``port``."""

    destination: bytes
    port: int
    data: bytes


@dataclass(frozen=True, slots=True)
class QueryReceived:
    """The relay's IGMPv3 / MLDv2 General Query, for the host side of the pseudo-interface
    (its Querier's Query Interval and Robustness Variable, RFC 9776 §5.2)."""

    query: Query


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The gateway is now in ``state``; ``relay`` is the relay it knows (None: none yet) and
    ``why`` says what moved it, in words for a log."""

    state: GatewayState
    relay: bytes | None
    why: str


Action = SendDatagram | QueryReceived | StateChanged
