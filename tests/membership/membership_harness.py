"""A virtual-clock harness for ``RouterLink`` and the address/message vocabulary of the tests.

``Harness`` owns a link and a clock. ``advance(t)`` runs the link to time ``t`` by jumping
from one ``next_deadline()`` to the next, checking on the way that no deadline ever lies in
the past, and records every output with the time it came out. Tests read the record
(``take()``, ``queries()``) and the link's public queries; they never sleep and never look
at private state.

``Flavor`` is one protocol and version (IGMPv2, IGMPv3, MLDv1, MLDv2) with the addresses
and messages the tests use, so one test body serves all four.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mcastproxy.admission import Admission
from mcastproxy.family import Family
from mcastproxy.membership import (
    GroupChanged,
    Output,
    ProtocolTimers,
    QuerierChanged,
    QuerierPolicy,
    RouterLink,
    SendQuery,
    SubscriberChanged,
)
from mcastproxy.wire.messages import GroupRecord, Leave, Query, RecordType, Report

IS_IN = RecordType.MODE_IS_INCLUDE
IS_EX = RecordType.MODE_IS_EXCLUDE
TO_IN = RecordType.CHANGE_TO_INCLUDE_MODE
TO_EX = RecordType.CHANGE_TO_EXCLUDE_MODE
ALLOW = RecordType.ALLOW_NEW_SOURCES
BLOCK = RecordType.BLOCK_OLD_SOURCES


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@dataclass(frozen=True)
class Flavor:
    """A protocol (IGMP: ``Family.V4``, MLD: ``Family.V6``) at one querier version."""

    name: str
    family: Family
    version: int

    def __str__(self) -> str:
        return self.name

    @property
    def full(self) -> int:
        """The version with source filtering: IGMPv3, MLDv2."""
        return self.family.newest_version

    @property
    def source_filtering(self) -> bool:
        return self.version == self.full

    @property
    def unspecified(self) -> bytes:
        return self.family.unspecified

    def group(self, n: int = 1) -> bytes:
        return ip(f"239.1.1.{n}") if self.family == 4 else ip(f"ff0e::1:{n}")

    def ssm_group(self, n: int = 1) -> bytes:
        """A group in the IANA SSM range (RFC 4607): 232.0.0.0/8, FF3x::/32."""
        return ip(f"232.1.1.{n}") if self.family == 4 else ip(f"ff3e::1:{n}")

    def source(self, n: int) -> bytes:
        return ip(f"192.0.2.{n}") if self.family == 4 else ip(f"2001:db8::{n}")

    def sources(self, *ns: int) -> frozenset[bytes]:
        return frozenset(self.source(n) for n in ns)

    def host(self, n: int) -> bytes:
        return ip(f"10.1.1.{n}") if self.family == 4 else ip(f"fe80::1:{n}")

    def router(self, n: int) -> bytes:
        """A router address; a smaller ``n`` is a lower address."""
        return ip(f"10.1.1.{200 + n}") if self.family == 4 else ip(f"fe80::{n}")

    # --- messages ----------------------------------------------------------------------------

    def report(self, *records: GroupRecord) -> Report:
        """A version 3 (IGMP) / version 2 (MLD) report with these records."""
        return Report(self.full, records)

    def record(self, rtype: RecordType, group: bytes, sources: frozenset[bytes] = frozenset()):
        return GroupRecord(rtype, group, tuple(sorted(sources)))

    def join(self, group: bytes, version: int | None = None) -> Report:
        """An any-source join at ``version`` (default: the flavor's)."""
        version = self.version if version is None else version
        if version < self.full:
            return Report(version, (GroupRecord(IS_EX, group),))
        return Report(version, (GroupRecord(IS_EX, group),))

    def leave(self, group: bytes) -> Leave | Report:
        """The flavor's way of leaving: a Leave/Done, or TO_IN({})."""
        if self.version < self.full:
            return Leave(group)
        return self.report(GroupRecord(TO_IN, group))

    def general_query(self, version: int | None = None, **fields) -> Query:
        version = self.version if version is None else version
        max_resp = 0.0 if (self.family == 4 and version == 1) else 10.0
        return Query(version, self.unspecified, fields.pop("max_resp", max_resp), **fields)

    def specific_query(self, group: bytes, sources=(), s_flag=False, max_resp=1.0) -> Query:
        if self.version < self.full:
            return Query(self.version, group, max_resp)
        return Query(self.full, group, max_resp, tuple(sorted(sources)), s_flag, 2, 125)


IGMPV2 = Flavor("IGMPv2", Family.V4, 2)
IGMPV3 = Flavor("IGMPv3", Family.V4, 3)
MLDV1 = Flavor("MLDv1", Family.V6, 1)
MLDV2 = Flavor("MLDv2", Family.V6, 2)
FLAVORS = [IGMPV2, IGMPV3, MLDV1, MLDV2]
SOURCE_FILTERING = [IGMPV3, MLDV2]
WHOLE_GROUP = [IGMPV2, MLDV1]

# Default timers, derived: GMI = 2*125 + 2*10 = 270, LMQT = 2, OQPI = 255,
# Older Host Present Interval = 260, Startup Query Interval = 31.25.
GMI = 270.0
LMQT = 2.0
OQPI = 255.0
OHPI = 260.0


class Harness:
    """A ``RouterLink`` on a virtual clock, with a record of what it output and when."""

    def __init__(
        self,
        flavor: Flavor,
        timers: ProtocolTimers | None = None,
        own: bytes | str | None = "default",
        fast_leave: bool = False,
        start: bool = True,
        now: float = 0.0,
        ssm_ranges=None,
        querier: QuerierPolicy | None = None,
        specific_query_rate: float | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.flavor = flavor
        if isinstance(own, str):  # "default": the flavor's router 10
            own = flavor.router(10)
        self.own = own
        self.link = RouterLink(
            timers or ProtocolTimers(),
            flavor.family,
            flavor.version,
            self.own,
            fast_leave,
            ssm_ranges,
            querier=querier,
            specific_query_rate=specific_query_rate,
            admission=admission,
        )
        self.now = now
        self.log: list[tuple[float, Output]] = []
        self._taken = 0
        if start:
            self.link.start(now)
            self._collect()

    def _collect(self) -> list[tuple[float, Output]]:
        new = [(self.now, o) for o in self.link.pop_outputs()]
        self.log.extend(new)
        return new

    # --- driving ----------------------------------------------------------------------------

    def advance(self, t: float) -> None:
        """Run the link up to time ``t``, waking at each deadline on the way."""
        assert t >= self.now, "the clock does not run backwards"
        while True:
            deadline = self.link.next_deadline()
            if deadline is None or deadline > t:
                break
            assert deadline >= self.now, f"deadline {deadline} in the past at {self.now}"
            self.now = deadline
            self.link.handle_timers(deadline)
            self._collect()
            after = self.link.next_deadline()
            assert after is None or after > deadline, f"{after} not after {deadline}"
        self.now = t

    def receive(self, message, source: bytes, at: float | None = None):
        """Deliver ``message`` from ``source`` (at time ``at``); return the new outputs."""
        if at is not None:
            self.advance(at)
        self.link.receive(message, source, self.now)
        return [o for _, o in self._collect()]

    def set_address(self, address: bytes | None, at: float | None = None):
        if at is not None:
            self.advance(at)
        self.link.set_address(address, self.now)
        return [o for _, o in self._collect()]

    def reconfigure(self, querier: QuerierPolicy, specific_query_rate: float | None,
                    at: float | None = None):
        if at is not None:
            self.advance(at)
        self.link.reconfigure(querier, specific_query_rate, self.now)
        return [o for _, o in self._collect()]

    # --- reading the record -------------------------------------------------------------------

    def take(self) -> list[tuple[float, Output]]:
        """The outputs recorded since the last ``take()``."""
        new = self.log[self._taken :]
        self._taken = len(self.log)
        return new

    def queries(self, since: float = float("-inf")) -> list[tuple[float, Query]]:
        return [(t, o.query) for t, o in self.log if isinstance(o, SendQuery) and t >= since]

    def general_query_times(self) -> list[float]:
        return [t for t, q in self.queries() if q.group == self.flavor.unspecified]

    def specific_queries(self, since: float = float("-inf")) -> list[tuple[float, Query]]:
        return [(t, q) for t, q in self.queries(since) if q.group != self.flavor.unspecified]

    def changed_groups(self, since: float = float("-inf")) -> list[tuple[float, bytes]]:
        return [(t, o.group) for t, o in self.log if isinstance(o, GroupChanged) and t >= since]

    def changed_subscribers(self, since: float = float("-inf")) -> list[tuple[float, bytes]]:
        return [
            (t, o.subscriber)
            for t, o in self.log
            if isinstance(o, SubscriberChanged) and t >= since
        ]

    def querier_changes(self) -> list[tuple[float, QuerierChanged]]:
        return [(t, o) for t, o in self.log if isinstance(o, QuerierChanged)]
