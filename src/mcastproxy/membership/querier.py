"""Querier election, General Queries and the version in use on one link.

RFC 9776 §6.6.2 (RFC 9777 §7.6.2): every router starts as querier. A General Query from a
lower address (IPv4 numerically, IPv6 the link-local compared as octets: for both, the
packed bytes compare that way) makes it a non-querier, which sends no queries until the
Other Querier Present timer runs out; then it takes over, sending a General Query at once.
The querier sends [Startup Query Count] General Queries [Startup Query Interval] apart when it
starts, then one every [Query Interval]. A non-querier adopts the querier's QRV and QQI
(§4.1.6, §4.1.7). Without an address of its own a router cannot be querier.

The version in use (RFC 9776 §7.3.1, RFC 9777 §8.3.1): the configured querier version, lowered
for [Older Version Querier Present Timeout] whenever an older General Query is heard. Queries
are built in that version: below IGMPv3 / MLDv2 they have no S flag, QRV, QQIC or sources, and
an IGMPv1 query has a Max Resp Code of 0.

Who takes part (``QuerierPolicy``). The election trusts every General Query: RFC 9776 §9.1
(RFC 9777 §10.1) warns that a forged one from a lower address hands the querier's duties to
the forger, and with QRV 7 and QQIC 31744 it silences the real querier for 7 x 31744 s, about
2.6 days, while the non-querier ignores leaves and channels flow to nobody. So a link says who
may be querier: ``ELECT`` runs the election among ``routers`` (empty: any sender, the RFC's
behaviour), ``ALWAYS`` makes this router the querier whatever it hears, for a link whose only
other systems are hosts. What a non-querier adopts is bounded by the policy's ceilings.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from enum import StrEnum

from mcastproxy.family import Family
from mcastproxy.membership.group import NEVER, OFF
from mcastproxy.membership.outputs import Output, QuerierChanged, SendQuery
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.wire.messages import Query


class QuerierMode(StrEnum):
    """Who may be querier on a link; the value is the configuration's word."""

    ELECT = "elect"  # RFC 9776 §6.6.2: the lowest address among the routers that take part
    ALWAYS = "always"  # this router, whatever it hears: the link has hosts only


@dataclass(frozen=True, slots=True)
class QuerierPolicy:
    """Who may be querier on a link, and how far another querier's values are adopted.

    ``mode`` ``ELECT``: the election of RFC 9776 §6.6.2 among the senders in ``routers``
    (packed addresses of either family; empty: any sender, the RFC's behaviour; once any is
    listed, a family with none listed has no router to elect but this one). ``ALWAYS``: every
    query from another address is refused, so this router is always the querier.

    ``max_robustness`` and ``max_query_interval`` are ceilings on the QRV and QQI a
    non-querier adopts (§4.1.6, §4.1.7), and so on every interval derived from them (Other
    Querier Present Interval, Group Membership Interval, Last Member Query Count, Older
    Version Querier Present Timeout). A ceiling never lowers a value below the link's own.
    The defaults are the RFC's behaviour: no restriction beyond what the wire can carry.
    """

    mode: QuerierMode = QuerierMode.ELECT
    routers: frozenset[bytes] = frozenset()
    max_robustness: int = 7
    max_query_interval: float = 31744.0

    def refuses(self, source: bytes) -> bool:
        """Whether a query from ``source`` (not our own address) is refused."""
        if self.mode is QuerierMode.ALWAYS:
            return True
        return bool(self.routers) and source not in self.routers


class Querier:
    """The querier role of one link; outputs go to the ``outputs`` list given."""

    __slots__ = (
        "address",
        "configured",
        "family",
        "full",
        "general_queries_sent",
        "is_querier",
        "next_general_query",
        "older_querier_until",
        "operating_version",
        "other_querier_until",
        "outputs",
        "own",
        "policy",
        "started",
        "startup_left",
        "timers",
        "unspecified",
        "version",
    )

    def __init__(
        self,
        timers: ProtocolTimers,
        family: Family,
        version: int,
        own: bytes | None,
        outputs: list[Output],
        policy: QuerierPolicy | None = None,
    ) -> None:
        self.policy = policy if policy is not None else QuerierPolicy()
        self.configured = timers
        self.timers = timers  # in force: the configured ones, or with the querier's QRV/QQI
        self.family = family
        self.full = family.newest_version
        self.version = version
        self.operating_version = version
        self.own = own
        self.outputs = outputs
        self.unspecified = family.unspecified
        self.started = False
        self.general_queries_sent = 0  # for the link's statistics
        self.is_querier = False
        self.address: bytes | None = None  # the querier's address, when known
        self.other_querier_until = OFF
        self.next_general_query = OFF
        self.startup_left = 0
        # §7.3.1: older querier version -> when its Older Version Querier Present timer ends.
        self.older_querier_until: dict[int, float] = {}

    def start(self, now: float) -> None:
        self.started = True
        if self.own is not None and self.other_querier_until == OFF:
            self._become_querier(now, startup=True)

    def set_address(self, address: bytes | None, now: float) -> bool:
        """Our address changed. True if we stopped being the querier."""
        previous = self.own
        self.own = address
        if address is None:
            if self.is_querier:
                self._stop(None)
                self.outputs.append(QuerierChanged(False, None))
                return True
            return False
        if not self.started:
            return False
        if self.is_querier:
            if address != previous:
                self.address = address
                self.outputs.append(QuerierChanged(True, address))
        elif self.other_querier_until == OFF or (
            self.address is not None and address < self.address
        ):
            # §6.6.2: every router starts as querier; the lower address wins.
            self._become_querier(now, startup=True)
        return False

    def hear_general_query(self, query: Query, source: bytes, now: float) -> bool:
        """A General Query from another router. True if we stopped being the querier."""
        version = query.version
        if version < self.full:
            # §6.6.2: "If a router receives an older version General Query, it MUST use the
            # oldest version of IGMP on the network" (§7.3.1), while such queries keep coming.
            self.older_querier_until[version] = (
                now + self.timers.older_version_querier_present_timeout
            )
            self.operating_version = min(self.operating_version, version)
        if self.own is not None and source > self.own:
            return False  # we win; the other router will hear our queries and stand down
        # §6.6.2: "When a router receives a General Query with a lower IP address, it sets the
        # Other-Querier-Present Timer to [Other Querier Present Interval] and ceases to send
        # General Queries on the network if it was the previously elected querier."
        if version == self.full:
            self._adopt_querier_values(query)
        self.other_querier_until = now + self.timers.other_querier_present_interval
        was_querier = self.is_querier
        if was_querier or self.address != source:
            self.outputs.append(QuerierChanged(False, source))
        self._stop(source)
        return was_querier

    def take_over(self, now: float) -> None:
        """Become the querier at once (the policy no longer lets the current one be)."""
        if not self.is_querier and self.own is not None and self.started:
            self._become_querier(now, startup=False)

    def handle_timers(self, now: float) -> None:
        if OFF < self.other_querier_until <= now:
            self.other_querier_until = OFF
            self.address = None
            if self.own is not None and self.started:
                # §6.6.2: "After its Other-Querier-Present Timer expires, it should begin
                # sending General Queries."
                self._become_querier(now, startup=False)
        if self.older_querier_until:
            for version, until in list(self.older_querier_until.items()):
                if until <= now:
                    del self.older_querier_until[version]
            self.operating_version = min(self.older_querier_until, default=self.version)
            self.operating_version = min(self.operating_version, self.version)
        if self.is_querier and OFF < self.next_general_query <= now:
            self._send_general_query(now)

    def next_deadline(self) -> float:
        """The earliest running timer, or ``NEVER``."""
        best = self.other_querier_until if self.other_querier_until != OFF else NEVER
        if self.is_querier and OFF < self.next_general_query < best:
            best = self.next_general_query
        for until in self.older_querier_until.values():
            best = min(best, until)
        return best

    def make_query(
        self, group: bytes, max_resp: float, sources: tuple[bytes, ...], s_flag: bool
    ) -> Query:
        """A query in the version in use (§7.3.1)."""
        version = self.operating_version
        if version < self.full:
            # IGMPv1 queries carry Max Resp Code 0; IGMPv2 / MLDv1 queries have no S flag,
            # QRV, QQIC or sources.
            if self.family is Family.V4 and version == 1:
                max_resp = 0.0
            return Query(version, group, max_resp)
        timers = self.timers
        # §4.1.6: "If the querier's [Robustness Variable] exceeds 7 ... the QRV is set to 0."
        qrv = timers.robustness if timers.robustness <= 7 else 0
        return Query(version, group, max_resp, sources, s_flag, qrv, round(timers.query_interval))

    def reconfigure_timers(self, timers: ProtocolTimers, now: float) -> None:
        """New configured timers. A querier runs with them at once (its next General Query
        no later than one new Query Interval away); a non-querier keeps what it adopted from
        the querier until the querier's next query, unless it ran with its own."""
        old = self.configured
        self.configured = timers
        if self.is_querier or self.timers is old:
            self.timers = timers
        if self.is_querier and self.next_general_query != OFF:
            self.next_general_query = min(self.next_general_query, now + timers.query_interval)

    def _adopt_querier_values(self, query: Query) -> None:
        """§4.1.6, §4.1.7: a non-querier uses the querier's QRV and QQI (0: our own value),
        each at most the policy's ceiling (or our own value, if that is higher)."""
        configured = self.configured
        policy = self.policy
        robustness = configured.robustness
        if query.qrv:
            robustness = min(query.qrv, max(policy.max_robustness, robustness))
        interval = configured.query_interval
        if query.qqi:
            interval = min(float(query.qqi), max(policy.max_query_interval, interval))
        current = self.timers
        if robustness == current.robustness and interval == current.query_interval:
            return
        # Values we cannot run with (e.g. a QQI below our Query Response Interval) are not
        # adopted.
        with suppress(ValueError):
            self.timers = replace(configured, robustness=robustness, query_interval=interval)

    def _stop(self, querier: bytes | None) -> None:
        self.is_querier = False
        self.address = querier
        self.next_general_query = OFF
        self.startup_left = 0

    def _become_querier(self, now: float, startup: bool) -> None:
        self.is_querier = True
        self.address = self.own
        self.other_querier_until = OFF
        self.timers = self.configured
        self.startup_left = self.timers.effective_startup_query_count if startup else 1
        self.outputs.append(QuerierChanged(True, self.own))
        self._send_general_query(now)

    def _send_general_query(self, now: float) -> None:
        """Send a General Query and schedule the next one (§6.6, §8.6, §8.7)."""
        timers = self.timers
        query = self.make_query(self.unspecified, timers.query_response_interval, (), False)
        self.outputs.append(SendQuery(query))
        self.general_queries_sent += 1
        if self.startup_left > 0:
            self.startup_left -= 1
        if self.startup_left > 0:
            # "[Startup Query Count] ... Queries sent out on startup, separated by the
            # [Startup Query Interval]"
            self.next_general_query = now + timers.effective_startup_query_interval
        else:
            self.next_general_query = now + timers.query_interval
