"""The pseudo-interface of an AMT upstream (RFC 7450 §5.2.2): what crosses its TUN device.

Theory of operation
===================

An AMT upstream is, to the rest of the proxy, an upstream interface like any other: a TUN
device (the pseudo-interface) that is that upstream's VIF, where the proxy's upstream host
side (RFC 4605 §4.1) sends its IGMPv3 / MLDv2 reports and hears its querier, and where the
channels it joined arrive. Behind the device, the gateways (``gateway``, one per inner
family) carry it over unicast to the relay. This module is what translates between the two,
with no I/O:

- Out of the device come the packets the kernel sends there: the host side's reports, and
  whatever else the kernel says on a link (MLD reports for its solicited-node groups, router
  solicitations). ``HostMembership.read`` takes each: an IGMPv3 or MLDv2 report is applied to
  the membership of the one host that speaks on the pseudo-interface (the proxy), and the
  link-scope groups in it are left out (224.0.0.0/24, ff0X::/16 with scope 1 or 2: never
  asked of a relay, RFC 9776 §5, RFC 9777 §6). Anything else is dropped with its reason.
- The membership is that host's own state (RFC 9776 §3.2, RFC 9777 §4.2), rebuilt record by
  record: IS_IN / TO_IN (S) is INCLUDE (S), an empty one leaves the group; IS_EX / TO_EX (S) is
  EXCLUDE (S); ALLOW adds sources to an INCLUDE and takes them from an EXCLUDE; BLOCK the
  other way. ``current()`` says it whole as Current-State Reports (MODE_IS_INCLUDE /
  MODE_IS_EXCLUDE records), which is what the gateway answers each relay query with; a
  report read is handed on as the state change to send at once when it holds State-Change
  records (ALLOW, BLOCK, TO_IN, TO_EX: the host side retransmits those itself, RFC 9776
  §5.1) or when it changed the state. A Current-State Report that changes nothing (the host
  side answering the relay's query, which the gateway already answered) is not sent again.
- Into the device go the relay's General Queries, as the host side's querier
  (``query_packet``): the query each Membership Query carries, its source replaced by the
  configured querier address of the pseudo-interface, so the host side hears one querier
  there whatever the relay put inside (an MLD query must come from a link-local address,
  RFC 9777 §5.1.14), and the multicast data the gateways decapsulate, unchanged.

The membership is bounded: at most ``MAX_GROUPS`` groups and ``MAX_SOURCES`` sources in a
group are kept (the host side on this host is the only sender there, but the kernel's own
reports are read too); beyond that a report is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from mcastproxy.amt.inner import query_packet, read_report
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

MAX_GROUPS: Final = 10_000
MAX_SOURCES: Final = 1_000
REPORT_BUDGET: Final = 1200
"""Octets of records in one Current-State Report: the Update that carries it stays within a
1280-octet path MTU (RFC 8200 §5), with the AMT, UDP, outer and inner IP headers."""

STATE_CHANGE: Final = frozenset({
    RecordType.CHANGE_TO_INCLUDE_MODE, RecordType.CHANGE_TO_EXCLUDE_MODE,
    RecordType.ALLOW_NEW_SOURCES, RecordType.BLOCK_OLD_SOURCES,
})  # fmt: skip
_INCLUDE_TYPES = frozenset({RecordType.MODE_IS_INCLUDE, RecordType.CHANGE_TO_INCLUDE_MODE})
_EXCLUDE_TYPES = frozenset({RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE})

GroupState = tuple[bool, frozenset[bytes]]
"""A group's filter mode (True: EXCLUDE) and its source list."""


def link_scope(group: bytes) -> bool:
    """Whether ``group`` is never reported to a relay: 224.0.0.0/24 (RFC 5771), or an IPv6
    multicast address of scope 1 or 2 (interface- and link-local, RFC 4291 §2.7)."""
    if len(group) == 4:
        return group[:3] == b"\xe0\x00\x00"
    return group[0] == 0xFF and (group[1] & 0x0F) <= 2


class HostMembership:
    """The membership the proxy reports on one inner ``family`` of the pseudo-interface."""

    def __init__(self, family: Family) -> None:
        self.family = Family(family)
        self._groups: dict[bytes, GroupState] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def groups(self) -> dict[bytes, GroupState]:
        """Group -> (EXCLUDE?, sources): a copy."""
        return dict(self._groups)

    def read(self, packet: bytes) -> Report | Drop | None:
        """Take ``packet``, which the kernel sent out of the pseudo-interface: the report to
        send the relay now (its link-scope records left out), None if there is none (nothing
        changed, or nothing for a relay), or why it is dropped."""
        try:
            family, _, report = read_report(packet)
        except WireError as e:
            return e.reason
        if family is not self.family:
            return Drop.WRONG_FAMILY
        records = tuple(r for r in report.records if not link_scope(r.group))
        if not records:
            return None
        before = self._groups
        after = dict(before)
        for record in records:
            _apply(after, record)
        if len(after) > MAX_GROUPS or any(len(s) > MAX_SOURCES for _, s in after.values()):
            return Drop.LINK_MAX_GROUPS  # the bound of the module comment
        changed = after != before
        self._groups = after
        if changed or any(r.type in STATE_CHANGE for r in records):
            return Report(report.version, records)
        return None

    def current(self) -> tuple[Report, ...]:
        """The whole membership as Current-State Reports, each within ``REPORT_BUDGET``."""
        return current_reports(self.family, self._groups)

    def clear(self) -> None:
        self._groups.clear()


def current_reports(family: Family, groups: dict[bytes, GroupState]) -> tuple[Report, ...]:
    """``groups`` as Current-State Reports (MODE_IS_INCLUDE / MODE_IS_EXCLUDE records)."""
    records = []
    for group in sorted(groups):
        exclude, sources = groups[group]
        kind = RecordType.MODE_IS_EXCLUDE if exclude else RecordType.MODE_IS_INCLUDE
        records.append(GroupRecord(kind, group, tuple(sorted(sources))))
    return pack(family, records)


def pack(family: Family, records: Iterable[GroupRecord]) -> tuple[Report, ...]:
    """``records`` in reports of ``family``'s newest version, each within ``REPORT_BUDGET``:
    a record with more sources than fit one report goes in several records of its type,
    except an EXCLUDE-mode one (its list cannot be split into records of its own)."""
    width = family.length
    header = 8 if family is Family.V4 else 20
    per = max(1, (REPORT_BUDGET - header) // width)
    reports: list[Report] = []
    batch: list[GroupRecord] = []
    size = 0
    for record in records:
        sources = record.sources
        if record.type in _EXCLUDE_TYPES or len(sources) <= per:
            chunks = [sources]
        else:
            chunks = [sources[i:i + per] for i in range(0, len(sources), per)]
        for chunk in chunks:
            cost = header + width * len(chunk)
            if batch and size + cost > REPORT_BUDGET:
                reports.append(Report(family.newest_version, tuple(batch)))
                batch, size = [], 0
            batch.append(GroupRecord(record.type, record.group, tuple(chunk)))
            size += cost
    if batch:
        reports.append(Report(family.newest_version, tuple(batch)))
    return tuple(reports)


def _apply(groups: dict[bytes, GroupState], record: GroupRecord) -> None:
    """One record of the host's own report applied to its state (module comment)."""
    group, sources, kind = record.group, frozenset(record.sources), record.type
    if kind in _INCLUDE_TYPES:
        if sources:
            groups[group] = (False, sources)
        else:
            groups.pop(group, None)
        return
    if kind in _EXCLUDE_TYPES:
        groups[group] = (True, sources)
        return
    exclude, have = groups.get(group, (False, frozenset()))
    if kind == RecordType.ALLOW_NEW_SOURCES:
        groups[group] = (exclude, have - sources if exclude else have | sources)
    elif exclude:  # BLOCK_OLD_SOURCES
        groups[group] = (True, have | sources)
    elif have - sources:
        groups[group] = (False, have - sources)
    else:
        groups.pop(group, None)


def relay_query_packet(family: Family, querier: bytes, query: Query) -> bytes:
    """The relay's General Query as the host side hears it on the pseudo-interface: from
    ``querier`` to all-systems, with the relay's Robustness Variable, Query Interval and
    Maximum Response Time."""
    return query_packet(family, querier, query)
