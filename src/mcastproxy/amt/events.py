"""What an AMT gateway is told: events, each handled with the time it happened (``now``).

The transport turns socket reads and its timer into these; the caller (the proxy's upstream
host side, or a test) says what to join with ``MembershipChanged``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastproxy.wire.messages import Report


@dataclass(frozen=True, slots=True)
class Start:
    """Begin: find the relay (Relay Discovery), and set up the tunnel once there is
    something to join."""


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    """A UDP datagram arrived on the gateway's socket from ``source`` (packed, the family of
    the transport) and UDP ``port``; ``data`` is the UDP payload, an AMT message or not."""

    source: bytes
    port: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """``next_deadline()`` has come."""


@dataclass(frozen=True, slots=True)
class MembershipChanged:
    """The membership to report through the tunnel changed.

    ``current`` is the whole of it as Current-State Reports (IGMPv3, or MLDv2 for an IPv6
    gateway; MODE_IS_INCLUDE / MODE_IS_EXCLUDE records): what answers every Membership Query,
    and so what the relay learns again after a restart. Empty means nothing is joined: the
    tunnel is torn down. ``changes`` are the State-Change Reports that say the change (ALLOW,
    BLOCK, TO_IN, TO_EX records), sent at once if the tunnel is up; a host side retransmitting
    them (RFC 9776 §5.1) sends this event again with the same ``current``.
    """

    current: tuple[Report, ...]
    changes: tuple[Report, ...] = ()


@dataclass(frozen=True, slots=True)
class Refresh:
    """Ask the relay for a new Membership Query now rather than at the query interval (when
    the data stopped, say): if the relay lost the tunnel's state, the answer to that query
    gives it back."""


@dataclass(frozen=True, slots=True)
class Stop:
    """End: tear the tunnel down and do nothing more."""


Event = Start | DatagramReceived | TimerExpired | MembershipChanged | Refresh | Stop
