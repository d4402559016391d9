"""Multicast routing in the kernel: ``MulticastRouter`` (ipmr/ip6mr, a table per upstream),
``FakeRouter`` (in memory, for tests of the code above), and their vocabulary (``api``).

See ``kernel.api`` for how the daemon drives a router and ``kernel.ipmr`` for how it works.
"""

from __future__ import annotations

from mcastproxy.kernel.api import (
    MAXVIFS,
    KernelError,
    MulticastRouting,
    Role,
    RouteCounters,
    Upcall,
    UpcallKind,
)
from mcastproxy.kernel.fake import FakeRouter
from mcastproxy.kernel.ipmr import (
    DEFAULT_RULE_PRIORITY,
    DEFAULT_TABLE_BASE,
    DEFAULT_TABLE_COUNT,
    MulticastRouter,
)

__all__ = [
    "DEFAULT_RULE_PRIORITY",
    "DEFAULT_TABLE_BASE",
    "DEFAULT_TABLE_COUNT",
    "MAXVIFS",
    "FakeRouter",
    "KernelError",
    "MulticastRouter",
    "MulticastRouting",
    "Role",
    "RouteCounters",
    "Upcall",
    "UpcallKind",
]
