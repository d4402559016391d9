"""The router side of IGMPv3 / MLDv2 on downstream links (RFC 9776 §6-7, RFC 9777 §7-8).

``RouterLink`` is the per-link, per-family state machine (querier election, queries, the
INCLUDE/EXCLUDE state tables, compatibility modes, explicit tracking of subscribers);
``ProtocolTimers`` its timers, as the configuration gives them; ``QuerierPolicy`` who may be
querier on the link; ``outputs`` what it asks the engine to do; ``SSM_RANGES`` the IANA SSM
address ranges (RFC 4607) by family, for ``RouterLink(ssm_ranges=...)``; ``validity`` what an
IGMP/MLD message must carry in its IP header to be taken.
"""

from __future__ import annotations

from mcastproxy.membership.addresses import SSM_RANGES
from mcastproxy.membership.outputs import (
    GroupChanged,
    JoinRefused,
    Output,
    QuerierChanged,
    QueriesMerged,
    QueryRefused,
    SendQuery,
    SessionChanged,
    SubscriberChanged,
)
from mcastproxy.membership.querier import QuerierMode, QuerierPolicy
from mcastproxy.membership.router import RouterLink
from mcastproxy.membership.state import FilterMode, GroupState, SubscriberState
from mcastproxy.membership.timers import ProtocolTimers

__all__ = [
    "SSM_RANGES",
    "FilterMode",
    "GroupChanged",
    "GroupState",
    "JoinRefused",
    "Output",
    "ProtocolTimers",
    "QuerierChanged",
    "QuerierMode",
    "QuerierPolicy",
    "QueriesMerged",
    "QueryRefused",
    "RouterLink",
    "SendQuery",
    "SessionChanged",
    "SubscriberChanged",
    "SubscriberState",
]
