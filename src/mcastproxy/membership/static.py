"""Static groups on one link (RFC 8652 ``static-group``).

Theory of operation
===================

The operator's static groups are held as the memberships of a pseudo-subscriber,
``static_host``: the family's all-routers address, which no report can come from (a multicast
source is invalid, RFC 9776 §4.2). Each is fed through the same record path as a report
(``intake``), IS_EX({}) for an any-source group and IS_IN(S) for sources, with a Group
Membership Interval that never ends, so its timers never run out. It counts against the
link's limits like any state, but no policy or limit refuses it. When a static group's timers
are lowered (a last member's queries, a merged General Query, RFC 9776 §6.6.3) the static
member answers as a host would (``_hold_static``). A group no longer listed is left as a host
would leave it (TO_IN({})). The static member is not a reporter (``last-reporter``) and has no
sessions.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcastproxy.membership.group import IS_EX, IS_IN, NEVER, TO_IN
from mcastproxy.membership.intake import RecordIntake


class StaticGroups(RecordIntake):
    """The link's static groups (see the module's comment)."""

    @property
    def static_host(self) -> bytes:
        """The subscriber static groups are held for: the family's all-routers address,
        which no report can come from (a multicast source is invalid)."""
        return self._family.all_routers

    def set_static(self, entries: Mapping[bytes, frozenset[bytes] | None], now: float) -> None:
        """The link's static groups (RFC 8652 ``static-group``): group -> the sources to
        receive it from (None: any source). Each is a membership of ``static_host`` whose
        timers never run out, which no policy or limit refuses (it counts all the same);
        one no longer listed is left as a host would leave it."""
        old, self._static = self._static, dict(entries)
        for group, sources in old.items():
            if self._static.get(group, 0) != sources:
                self._static_record(group, TO_IN, (), now)  # left (or changed: asked again)
        for group, sources in self._static.items():
            if old.get(group, 0) != sources:
                self._hold_static(group, now)

    def _hold_static(self, group: bytes, now: float) -> None:
        sources = self._static[group]
        if sources is None:
            self._static_record(group, IS_EX, (), now)
        else:
            self._static_record(group, IS_IN, tuple(sources), now)

    def _static_record(self, group: bytes, rtype: int, sources: tuple[bytes, ...],
                       now: float) -> None:
        # A Group Membership Interval that never ends: the timers the record sets never run.
        gmi = self._gmi
        self._gmi = NEVER
        g = self._groups.get(group)
        reporter = None if g is None else g.last_reporter
        try:
            self._receive_record(group, rtype, sources, self._family.all_routers, now, 0)
        finally:
            self._gmi = gmi
        g = self._groups.get(group)
        if g is not None:
            g.last_reporter = reporter  # the static member is no reporter
