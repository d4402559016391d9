"""What a ``RouterLink`` hands back through ``pop_outputs()``: the engine's inputs.

Eight small frozen values:

- ``SendQuery``: transmit this Query on the link.
- ``GroupChanged``: the link's forwarding state or its tracked subscribers for a group
  changed; re-read them through ``RouterLink.forwarded()`` / ``subscribers()``.
- ``SubscriberChanged``: one subscriber's own state for a group changed (joined, changed
  its filter, left or timed out); ``RouterLink.subscriber()`` gives the new state.
- ``QuerierChanged``: this router became, or stopped being, the querier of the link.
- ``QueryRefused``: a query was dropped because its sender may not be querier (for a log).
- ``QueriesMerged``: a group's specific queries were left to the link's merged General Query,
  the link's specific-query rate being spent (for a count).
- ``JoinRefused``: the link's policy or a limit refused a join or some of its sources (for a
  log; only the first refusals of each subscriber, see ``admission``).
- ``SessionChanged``: a subscriber's reception of (S,G) or (*,G) began or ended (explicit
  tracking; for the session log, only when the link is asked to, ``RouterLink(sessions=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.messages import Query


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Send ``query`` on the link.

    The IP destination follows from the query (RFC 9776 §4.1.12, RFC 9777 §5.1.15): a
    General Query (group all zeros) goes to all-systems 224.0.0.1 / all-nodes ff02::1; a
    Group-Specific or Group-and-Source-Specific Query goes to the group itself.
    ``destination`` gives it.
    """

    query: Query

    @property
    def destination(self) -> bytes:
        """The IP destination address of the query."""
        group = self.query.group
        family = Family.of(group)
        if group == family.unspecified:
            return family.all_systems
        return group


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """The forwarding state (filter mode, source lists) or the tracked subscribers of
    ``group`` on this link changed, including the group appearing or disappearing."""

    group: bytes


@dataclass(frozen=True, slots=True)
class SubscriberChanged:
    """Subscriber ``subscriber`` (the source address of its reports) changed its own
    requested state for ``group``: joined, changed filter, left or timed out."""

    group: bytes
    subscriber: bytes


@dataclass(frozen=True, slots=True)
class QuerierChanged:
    """This router became the querier of the link (``is_querier``) or stopped being it;
    ``querier`` is the querier's address when known."""

    is_querier: bool
    querier: bytes | None


@dataclass(frozen=True, slots=True)
class QueryRefused:
    """A query from ``source`` was dropped for ``reason``: the link's querier policy does not
    let that sender take part (it is counted in ``RouterLink.dropped`` too)."""

    source: bytes
    reason: Drop


@dataclass(frozen=True, slots=True)
class QueriesMerged:
    """The specific queries ``group`` was due were not sent: the link's specific-query rate
    was spent, and its merged General Query asks instead (``RouterLink``)."""

    group: bytes


@dataclass(frozen=True, slots=True)
class JoinRefused:
    """Subscriber ``subscriber`` (None: an anonymous report) asked for ``source`` (None: any
    source) in ``group`` and was refused for ``reason`` by what ``decided_by`` says (a rule
    or a limit, with its place in the configuration). Counted in ``RouterLink.dropped``."""

    subscriber: bytes | None
    group: bytes
    source: bytes | None
    reason: Drop
    decided_by: str


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """Subscriber ``subscriber``'s tracked state began (``start``) or stopped asking for
    ``source`` in ``group``: INCLUDE mode asks for each of its sources, EXCLUDE mode for any
    source (``source`` None, the (*,G) join) whatever sources it excludes. Said only on a
    change, never on a refresh; never for the static groups' pseudo-subscriber."""

    group: bytes
    subscriber: bytes
    source: bytes | None
    start: bool


Output = (
    SendQuery | GroupChanged | SubscriberChanged | QuerierChanged | QueryRefused | QueriesMerged
    | JoinRefused | SessionChanged
)
