"""What one link hears: queries, reports and leaves (RFC 9776 §6.4, §6.6.1, §7.3; RFC 4604).

Theory of operation
===================

Messages come in already decoded (``mcastproxy.wire.messages``). Bad input is counted in
``dropped`` by reason (``Drop``), never raised. The sender is checked first: of the family,
not our own address, not multicast (IPv4), link-local or unspecified (IPv6, RFC 9777 §5.1.14,
§5.2.13).

Queries: who may be querier is the link's ``QuerierPolicy`` (``querier``): a query from a
sender it refuses is dropped before it can take part in the election or lower a timer, and
said once as a ``QueryRefused`` output for the log (RFC 9776 §9.1). A General Query goes to the
election (§6.6.2); a specific query with the S flag clear lowers the timers it names to LMQT
(§6.6.1).

Reports and leaves are read as group records. A record is checked (family, multicast,
link-local scope, type, and in the SSM address range its type and version, §6.4 from RFC
4604), read in the version in use on the link (§7.3.1) and in the group's compatibility mode
(§7.3.2), so that without source filtering it is a join or a leave of the whole group; an
older host's join of a group under SSM mapping (``ssmmap``) becomes INCLUDE of the mapped
sources. An IGMPv2 Leave / MLDv1 Done is TO_IN({}).

What a record may create or extend is the link's ``Admission`` (``mcastproxy.admission``): a
record that asks for more (an INCLUDE source, an any-source join) is admitted once it has been
read in the version in use, before it touches any state, so that a refused one makes none
(no subscription, no group, no Older Host Present timer) and sends nothing upstream; its
refused sources are taken out and the rest goes on, and its refusals to log become
``JoinRefused`` outputs. Records that ask for less are never asked about.

Then the record is applied to the subscriber's tracked state (``explicit``) and to the
group's state (``group.Group.apply_record``, the tables of §6.4.1 and §6.4.2), and the table's
query actions are carried out: by the querier as last-member queries (``queries``), by fast
leave as an immediate drop of what no tracked subscriber wants any more, by a non-querier not
at all (it lowers its timers when it hears the querier's queries instead, §6.6.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_network

from mcastproxy.admission import Admission
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.membership.addresses import (
    LINK_LOCAL_SCOPE,
    SSM_RANGES,
    Network,
    is_ipv6_link_local,
)
from mcastproxy.membership.explicit import STATIC_HOSTS
from mcastproxy.membership.group import (
    ALLOW,
    BLOCK,
    EMPTY,
    EXCLUDE,
    IS_EX,
    IS_IN,
    OFF,
    TO_EX,
    TO_IN,
    Group,
)
from mcastproxy.membership.outputs import JoinRefused, QueryRefused
from mcastproxy.membership.querier import QuerierMode
from mcastproxy.membership.queries import LastMemberQueries
from mcastproxy.wire.messages import Leave, Query, Report


class RecordIntake(LastMemberQueries):
    """Queries, reports and leaves heard on the link (see the module's comment)."""

    def _receive_report(self, report: Report, source: bytes, now: float) -> bool:
        if not self._check_sender(source):
            return False
        host = None if source == self._unspecified else source
        version = report.version
        # The record type as a plain int, unpacked rather than read as ``record.type``:
        # compiled (mypyc), that read checks for a RecordType, and a record built with a type
        # from a newer RFC would raise TypeError rather than be counted (_receive_record).
        rtype: int
        if version == self._full:
            for rtype, group, sources, _aux in report.records:
                self._receive_record(group, rtype, sources, host, now, 0)
            return True
        if not 1 <= version < self._full:
            self._dropped[Drop.VERSION_INVALID] += 1
            return False
        # An IGMPv1/v2 or MLDv1 report: one group, read as IS_EX({}) (RFC 9776 §7.3.2).
        records = report.records
        rtype, group, sources = 0, b"", ()
        if len(records) == 1:
            rtype, group, sources, _aux = records[0]
        if rtype != IS_EX or sources:
            self._dropped[Drop.RECORD_INVALID_FOR_VERSION] += 1
            return False
        self._receive_record(group, IS_EX, (), host, now, version)
        return True

    def _receive_leave(self, leave: Leave, source: bytes, now: float) -> bool:
        if not self._check_sender(source):
            return False
        host = None if source == self._unspecified else source
        # RFC 9776 §7.3.2 / RFC 9777 §8.3.2: an IGMPv2 Leave / MLDv1 Done is TO_IN({}).
        self._receive_record(leave.group, TO_IN, (), host, now, -1)
        return True

    def _receive_record(
        self,
        group: bytes,
        rtype: int,
        sources: tuple[bytes, ...],
        host: bytes | None,
        now: float,
        old: int,
    ) -> None:
        """One group record; ``old`` is the version of an old-style report, -1 for a Leave."""
        g = self._groups.get(group)
        is_new = g is None
        if is_new and not self._check_group(group):  # a group with state passed already
            return
        if old and self._ssm_map is not None:
            mapped = self._ssm_map.sources(group)
            if mapped is not None:
                # SSM mapping (``membership.ssmmap``): the older host's join of a mapped group
                # is IS_IN(the mapped sources), its Leave TO_IN({}), in the newest version.
                rtype, sources = (IS_IN, tuple(mapped)) if old > 0 else (TO_IN, ())
                old = 0
        if not 1 <= rtype <= 6:
            self._dropped[Drop.UNKNOWN_RECORD_TYPE] += 1
            return
        if (
            self._ssm_aware
            and (old or rtype in (IS_EX, TO_EX))
            and (g.in_ssm_range if g is not None else group in self._ssm)
        ):
            # RFC 9776 §6.4 (RFC 9777 §7.4 alike), from RFC 4604: "SSM-aware routers SHOULD
            # ignore records that contain multicast addresses in the SSM address range if the
            # record type is MODE_IS_EXCLUDE or CHANGE_TO_EXCLUDE_MODE. SSM-aware routers
            # SHOULD ignore IGMPv1/IGMPv2 Report and IGMPv2 DONE [Leave] messages that contain
            # multicast addresses in the SSM address range". Whatever its sources: TO_EX({})
            # is the any-source join, which SSM does not have. The whole record is ignored,
            # so it neither refreshes nor creates state, and it starts no Older Host Present
            # timer (an SSM group never leaves the newest compatibility mode).
            reason = Drop.SSM_OLDER_VERSION if old else Drop.SSM_EXCLUDE_MODE
            self._dropped[reason] += 1
            return
        if sources:
            alen = self._alen
            for s in sources:
                if len(s) != alen:
                    self._dropped[Drop.WRONG_FAMILY] += 1
                    return
            a = frozenset(sources)
        else:
            a = EMPTY

        # The version in use on the link (§7.3.1): without source filtering, a record is a
        # join or a leave of the whole group.
        operating = self._querier.operating_version
        if operating < self._full:
            if rtype == BLOCK:
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if not a and rtype in (IS_IN, ALLOW):
                return  # no change to anything
            if rtype == TO_IN and not a:
                if self._alen == 4 and operating == 1:
                    # RFC 9776 §7.3.1: "When in IGMPv1 mode, routers ... MUST ignore Leave
                    # Group messages."
                    self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                    return
            elif rtype == TO_EX:
                a = EMPTY
            elif self._ssm_aware and self._in_ssm(group, g):
                # The record would become an any-source join (IS_EX({})), which the SSM range
                # does not have (RFC 4604): SSM needs IGMPv3 / MLDv2 on the link.
                self._dropped[Drop.SSM_OLDER_VERSION] += 1
                return
            else:
                rtype, a = IS_EX, EMPTY

        # Older hosts on the link for this group (§7.3.2).
        if g is not None and (g.v1_host != OFF or g.v2_host != OFF):
            if rtype == BLOCK:
                # "IGMPv3 BLOCK messages are ignored"
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return
            if rtype == TO_EX:
                # "as are source-lists in TO_EX() messages (i.e., any TO_EX() message is
                # treated as TO_EX( {} ))"
                a = EMPTY
            elif rtype == TO_IN and self._alen == 4 and g.v1_host != OFF:
                # IGMPv1 Group Compatibility Mode: "IGMPv2 Leave messages and IGMPv3 TO_IN()
                # messages are also ignored."
                self._dropped[Drop.IGNORED_FOR_OLDER_VERSION] += 1
                return

        # No state is INCLUDE({}): these records leave it unchanged.
        if g is None and (rtype == BLOCK or (not a and rtype in (IS_IN, ALLOW, TO_IN))):
            return

        adm = self._admission
        count = False
        if adm is not None and host in STATIC_HOSTS:  # (the other family's: a wrong length)
            # A static group (``set_static``): the operator's, never refused; it counts as
            # any state does, so the counts still follow what the link holds.
            count = g is None and adm.group_counts(group, rtype in (IS_EX, TO_EX), a)
        elif adm is not None and rtype != BLOCK and (a or rtype in (IS_EX, TO_EX)):
            # A record that asks for more: admitted before it makes any state (admission).
            any_source = rtype in (IS_EX, TO_EX)
            if (any_source and g is not None and g.counted and adm.fast_groups >= 0
                    and (host is None or host in g.subscribers
                         or adm.held.get(host, 0) < adm.fast_groups)
                    and (adm.policy.open or adm.policy.permits_any_source(group))):
                pass  # the common case: nothing to ask, nothing to count (Admission.fast_groups)
            else:
                admitted, count = self._admit(adm, g, group, host, rtype, a, any_source)
                if admitted is None:
                    return  # refused whole
                if not admitted and not any_source and (rtype != TO_IN or g is None):
                    return  # no source left: nothing asked (TO_IN({}) leaves the old ones)
                a = admitted

        if g is None:
            g = Group(group, self._ssm_aware and group in self._ssm, now)
        if count and adm is not None:
            g.counted = True
            adm.take_group()
        if old > 0:
            # RFC 9776 §7.3.2: "The IGMPv1-Host-Present Timer is set to [Older Version Host
            # Present Interval] seconds whenever an IGMPv1 Membership Report is received"
            # (and likewise IGMPv2, and MLDv1 in RFC 9777 §8.3.2).
            deadline = now + self._timers.older_host_present_interval
            self._due = min(self._due, deadline)
            if old == 1:
                g.v1_host = deadline
            else:
                g.v2_host = deadline

        was_tracked = host is not None and self._track(g, host, rtype, a, now)

        if not a and not g.sources and g.mode is EXCLUDE and rtype in (IS_EX, TO_EX) and old <= 0:
            # The any-source join again: EXCLUDE ({},{}) IS_EX ({}) / TO_EX ({}) only sets
            # the Group Timer to GMI. That raises it, unless GMI itself shrank (a querier's
            # QRV and QQI adopted): only then is there something to reschedule.
            g.group_timer = now + self._gmi
            if g.group_timer < g.scheduled:
                self._reschedule(g)
            return
        changed, query_group, query_sources = g.apply_record(rtype, a, now, self._gmi)
        if is_new:
            self._groups[group] = g
            changed = True

        queried = False
        if query_group or query_sources:
            if self._fast_leave and was_tracked:
                changed |= g.fast_leave(query_group, query_sources, now, self._gmi)
            elif self._querier.is_querier:
                queried = True  # (timers lowered to LMQT)
                self._send_last_member_queries(g, query_group, query_sources, now)

        if g.is_empty:
            self._delete_group(g)
            changed = True
        elif is_new or queried or old > 0 or now + self._gmi < g.scheduled:
            # Otherwise the table (and fast leave) set each timer to now + GMI, to the value
            # of a running timer of the group, or off: none earlier than its scheduled
            # wake-up (an entry found early only moves, ``next_deadline``): nothing to do.
            self._reschedule(g)
        if changed:
            self._changed_groups[group] = None

    def _admit(self, adm: Admission, g: Group | None, group: bytes, host: bytes | None,
               rtype: int, a: frozenset[bytes], any_source: bool,
               ) -> tuple[frozenset[bytes] | None, bool]:
        """Ask the admission about a record that asks for more; its refusals to log become
        ``JoinRefused`` outputs."""
        sub = g.subscribers.get(host) if g is not None and host is not None else None
        admitted = adm.admit(host, group, any_source, rtype == ALLOW, a,
                             None if sub is None else sub.mode is EXCLUDE,
                             EMPTY if sub is None else sub.sources,
                             None if g is None else g.counted)
        if adm.notices:
            self._outputs.extend(JoinRefused(*n) for n in adm.notices)
            adm.notices.clear()
        return admitted

    def _receive_query(self, query: Query, source: bytes, now: float) -> bool:
        if len(source) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if source == self._unspecified:
            # A query from nobody (e.g. a snooping switch) takes no part in the election.
            self._dropped[Drop.QUERY_SOURCE_UNSPECIFIED] += 1
            return False
        if not self._check_sender(source):
            return False
        policy = self._querier.policy
        if policy.refuses(source):
            # RFC 9776 §9.1: a forged query would take over the election (and a forged older
            # one the version in use); only the senders the policy names take part.
            reason = (Drop.QUERY_ON_ALWAYS_QUERIER_LINK if policy.mode is QuerierMode.ALWAYS
                      else Drop.QUERY_NOT_FROM_LINK_ROUTER)
            self._dropped[reason] += 1
            self._outputs.append(QueryRefused(source, reason))
            return False
        version = query.version
        if not 1 <= version <= self._full:
            self._dropped[Drop.VERSION_INVALID] += 1
            return False
        group = query.group
        if len(group) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if group == self._unspecified:
            if self._querier.hear_general_query(query, source, now):
                self._stop_queries()
            self._sync_querier()
            return True
        if not self._is_multicast(group):
            self._dropped[Drop.NOT_MULTICAST] += 1
            return False
        # §6.6.1: "When a router sends or receives a query with a clear Suppress Router-Side
        # Processing flag, it must update its timers to reflect the correct timeout values
        # for the group or sources being queried": Q(G,A) lowers the Source Timers of A to
        # LMQT, Q(G) the Group Timer. "When a router sends or receives a query with the S
        # flag set, it will not update its timers." Older queries have no S flag. LMQT here
        # is [Last Member Query Count] times the querier's Max Response Time, as in RFC 2236
        # §3 ("[Last Member Query Count] times the Max Response Time specified in the
        # message").
        if query.s_flag and version == self._full:
            return True
        g = self._groups.get(group)
        if g is None:
            return True
        g.lower_timers(query.sources, now + self._lmqc * (query.max_resp or self._lmqi))
        self._reschedule(g)
        return True

    def _group_compatibility(self, g: Group) -> int:
        if g.v1_host != OFF:
            return 1
        if g.v2_host != OFF and self._alen == 4:
            return 2
        return self._full


    def _check_sender(self, source: bytes) -> bool:
        """Count and refuse a sender we must not listen to; True if it is acceptable."""
        if len(source) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if source == self._querier.own:
            self._dropped[Drop.FROM_OWN_ADDRESS] += 1
            return False
        if self._alen == 4:
            if source[0] >= 224:
                self._dropped[Drop.SOURCE_INVALID] += 1
                return False
        elif source != self._unspecified and not is_ipv6_link_local(source):
            # RFC 9777 §5.1.14, §5.2.13: MLD messages come from a link-local address (or ::
            # for a report sent before the host has one).
            self._dropped[Drop.SOURCE_NOT_LINK_LOCAL] += 1
            return False
        return True

    def _in_ssm(self, group: bytes, g: Group | None) -> bool:
        """Whether ``group`` is in the SSM address range (known to its state, if it has one)."""
        return g.in_ssm_range if g is not None else group in self._ssm

    def _check_group(self, group: bytes) -> bool:
        if len(group) != self._alen:
            self._dropped[Drop.WRONG_FAMILY] += 1
            return False
        if not self._is_multicast(group):
            self._dropped[Drop.NOT_MULTICAST] += 1
            return False
        if LINK_LOCAL_SCOPE[self._family](group):  # (new groups only: no attribute for it)
            # Link-scope groups are never routed; reports for them are ignored (RFC 9776
            # §5: no reports for 224.0.0.1; RFC 9777 §6 likewise for ff02::1 and scopes 0-1).
            self._dropped[Drop.LINK_LOCAL_SCOPE] += 1
            return False
        return True


def _ssm_networks(family: Family, ranges: Iterable[Network | str] | None) -> tuple[Network, ...]:
    """The SSM ranges given to ``RouterLink``, checked: networks of the family, multicast."""
    if ranges is None:
        return SSM_RANGES[family]
    if isinstance(ranges, str | bytes):
        raise TypeError(f"ssm_ranges must be a collection of networks, not {ranges!r}")
    networks: list[Network] = []
    for item in ranges:
        net = ip_network(item)  # ValueError for text that is no network, or with host bits
        if net.version != family:
            raise ValueError(f"SSM range {net} is not an IPv{family} network")
        if not net.is_multicast:
            raise ValueError(f"SSM range {net} is not multicast")
        networks.append(net)
    return tuple(networks)
