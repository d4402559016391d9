"""What the engine asks for: actions, collected by ``Engine.pop_actions()``.

Routes are (source, group) entries of the kernel's multicast forwarding cache, one table per
upstream interface (``table`` is its name, and the interface the route's packets arrive on):
they are copied to ``oifs``.
An entry with no ``oifs`` forwards nothing but still counts packets (a hot standby).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SendPacket:
    """Send an IGMP message (``family`` 4: the payload after the IPv4 header, which the
    sender adds with TTL 1 and Router Alert) or an MLD message (``family`` 6: the ICMPv6
    message, hop limit 1, with the Hop-by-Hop Router Alert) on ``interface``."""

    interface: str
    family: int
    destination: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class SetRoute:
    """Install or change the route of (source, group) in ``table``, the table of the
    upstream its packets arrive on: they are copied to ``oifs``."""

    table: str
    source: bytes
    group: bytes
    oifs: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeleteRoute:
    """Remove the route of (source, group) from ``table`` (gone already is not an error)."""

    table: str
    source: bytes
    group: bytes


@dataclass(frozen=True, slots=True)
class Log:
    """Something an operator wants to know: ``event`` is a short stable name."""

    level: str
    event: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Session:
    """A subscriber's reception of a channel on a downstream link began (``start``) or ended:
    what the session log records (RFC 8313 §4.3.3, §4.6). ``source`` None is any source, (*,G);
    ``family`` 4 or 6 as in ``SendPacket``."""

    interface: str
    family: int
    subscriber: bytes
    source: bytes | None
    group: bytes
    start: bool


Action = SendPacket | SetRoute | DeleteRoute | Log | Session


class Outbox:
    """Where the engine's parts put what they ask for, in order, and what they count.

    ``counts`` are the events an operator counts (liveness changes, takeovers, swaps),
    by a short stable name.
    """

    __slots__ = ("actions", "counts")

    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.counts: Counter[str] = Counter()

    def append(self, action: Action) -> None:
        self.actions.append(action)

    def log(self, level: str, event: str, message: str, **fields: Any) -> None:
        self.actions.append(Log(level, event, message, fields))

    def pop(self) -> list[Action]:
        actions, self.actions = self.actions, []
        return actions
