"""Admission: whether a record may create or extend membership state on a downstream link,
and the counts that limit how much it may hold (RFC 8313 §6.1; RFC 8652 ``max-groups``,
``max-group-sources``, ``max-entries``).

Theory of operation
===================

The router side of a link (``membership.router.RouterLink``) asks ``Admission.admit`` before
a record from subscriber H (None: an anonymous report, source 0.0.0.0 or ::) creates or
extends state for group G. What asks for more is admitted; what asks for less never is:

- An INCLUDE source asked for (ALLOW, IS_IN, TO_IN with sources): each source S is a request
  (H, S, G). Refused sources are taken out of the record and the rest goes on; an ALLOW or
  IS_IN left with none does nothing, a TO_IN left with none is TO_IN({}) (the subscriber
  wants none of its old sources: a reduction).
- An EXCLUDE record (IS_EX, TO_EX; IGMPv1/v2 and MLDv1 reports read as IS_EX({})): the
  any-source request (H, *, G), admitted or refused whole. Its source list (sources
  excluded) asks for less and is not checked.
- BLOCK, TO_IN({}), leaves: never asked about.

First the link's policy (``policy.EdgePolicy``: ``ssm-only``, the rules of the subscriber's
prefix, the link and the global ``group-policy``, the defaults), then the limits:

- Per subscriber, on the link and family: ``max-groups``, the groups it holds state for;
  ``max-group-sources``, the sources of its INCLUDE state for one group. Sources beyond it
  are taken out of the record (the lowest addresses are kept: one answer for one record).
  A subscriber's limits are its prefix's (``subscribers``), else the link's, else the global.
- Per link: ``max-groups``, the groups with state on the link (both families together).
- Proxy-wide: ``max-entries``, the (link, group) pairs with state, every link and family.

A request that needs no new room always passes the limits: a refresh, or a source or group
already held. Over a limit, the new state is refused and what is held stays. An anonymous
report counts against the link and the proxy only (it has no subscriber to count against).
Channels that match an exception pattern (``exceptions``, the link's with the global ones)
never count and are never refused by a limit (a mandatory service channel): a subscription
counts when it asks for an any-source join of a group no exception covers, or for at least one
source no exception covers; a group counts from the first such request until its state ends
(so a group whose counted state left, while exception state stays, counts until then too).

Counts follow state, not requests: ``admit`` only decides; the router says when state is
made or ends (``hold``, ``change``, ``release``, ``take_group``, ``release_group``), so a
count can never drift from what the link holds. Each is O(1) (O(sources of the record) with
exceptions configured): no call scans the link's groups or subscribers. The per-link and
proxy-wide counts (``Room``) are shared by the ``Admission`` of every link and family they
cover. A new configuration replaces the policy and limits and keeps the counts; only a
change of exceptions, which changes what counts, has the router count its state again.
The most common record, an any-source join of a group that already counts, is not even asked
about when only the policy's rules could refuse it (``fast_groups``: no exception, no
subscriber prefix; a subscriber that holds the group or is under its max-groups): the router
checks that much itself and asks the policy (whose answer for a group is kept), and a join
costs a few per cent more than with no admission.

Bandwidth (``bandwidth``): where the channel bandwidth table rates something, each link and
family also has a ``Cac`` that admits channels against the subscriber's and the link's
``max-bandwidth`` (after the policy, before the count limits) and counts the rates held; the
shortcuts above are off then, since every subscription's channels must be counted.

Every refusal is counted by reason (a ``Drop`` naming the rule's level or the limit) and by
subscriber prefix; the first refusal of each (subscriber, reason), for the first
``MAX_NOTICES`` of them on the link, is also handed to the router as a ``Notice`` for the log,
with the rule or limit that decided: a flood of refusals costs counts, not log lines.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import TYPE_CHECKING, NamedTuple

from mcastproxy.bandwidth import Budget, Cac, Channel
from mcastproxy.drops import Drop
from mcastproxy.policy import EdgePolicy, RuleSet

if TYPE_CHECKING:
    from mcastproxy.placement import Placement

EMPTY: frozenset[bytes] = frozenset()
MAX_NOTICES = 64  # (subscriber, reason) pairs of a link whose first refusal is logged
_REFUSED: tuple[None, bool] = (None, False)


class Room:
    """A count shared by everything it bounds (a link's groups, the proxy's entries), and
    its maximum (``policy.UNLIMITED`` for none); a link's also holds its bandwidth budget,
    the proxy's the upstreams' (``placement``)."""

    __slots__ = ("bandwidth", "maximum", "upstreams", "used")

    def __init__(self, maximum: int, upstreams: Placement | None = None) -> None:
        self.maximum = maximum
        self.used = 0
        self.bandwidth = Budget()
        self.upstreams = upstreams


class Notice(NamedTuple):
    """A refusal to log: who asked what, why, and what decided."""

    subscriber: bytes | None
    group: bytes
    source: bytes | None  # None: the any-source join
    reason: Drop
    decided_by: str  # the rule or limit, and its place in the configuration


class Admission:
    """Admission on one downstream link and family (see the module's comment)."""

    __slots__ = ("_exceptions", "_noticed", "cac", "counts_all", "entries", "evictions",
                 "fast_groups", "groups", "held", "link", "notices", "policy", "refused",
                 "refused_by_prefix")

    def __init__(self, policy: EdgePolicy, link: Room | None = None,
                 entries: Room | None = None) -> None:
        self.policy = policy
        self._exceptions: RuleSet | None = policy.exceptions
        self.link = link if link is not None else Room(policy.max_groups)
        self.entries = entries if entries is not None else Room(policy.max_entries)
        self.held: dict[bytes, int] = {}  # subscriber -> groups it holds that count
        self.groups = 0  # groups of this link and family that count (part of ``link``)
        self.refused: Counter[Drop] = Counter()
        self.refused_by_prefix: Counter[tuple[str, Drop]] = Counter()
        self.notices: list[Notice] = []  # taken by the router
        self.evictions: list[bytes] = []  # groups preempted, cleared by the router
        self._noticed: set[tuple[bytes | None, Drop]] = set()
        self.link.bandwidth.maximum = policy.max_bandwidth
        self.cac = Cac(policy.rates, self.link.bandwidth) if policy.rates is not None else None
        self._fast()

    def _fast(self) -> None:
        # What lets the router skip ``admit`` (a method call per join is a few per cent of
        # the report path): with every subscription counting (no exceptions) and no rule or
        # subscriber prefix to look up, an any-source join of a group that counts already
        # needs nothing but a subscriber that holds it, or one under ``fast_groups``.
        # Rules (a closed policy) leave it on: the router asks ``policy.permits_any_source``,
        # an answer kept per group, in place of the whole of ``admit``.
        policy = self.policy
        self.counts_all = self._exceptions is None and self.cac is None
        simple = self.counts_all and not policy.has_subscribers
        self.fast_groups = policy.subscriber_limits(None)[0] if simple else -1

    def configure(self, policy: EdgePolicy) -> bool:
        """A new policy and limits; the counts stay. True if what counts changed (the
        exceptions), so that the router must count its state again (``recount``)."""
        old = self._exceptions
        old_rates = self.cac.rates.patterns() if self.cac is not None else None
        new_rates = policy.rates.patterns() if policy.rates is not None else None
        self.policy = policy
        self._exceptions = policy.exceptions
        self.link.maximum = policy.max_groups
        self.entries.maximum = policy.max_entries
        self.link.bandwidth.maximum = policy.max_bandwidth
        rates_changed = old_rates != new_rates
        if rates_changed:
            if self.cac is not None:
                self.cac.clear()  # counted again with the new rates (``recount``)
            self.cac = (Cac(policy.rates, self.link.bandwidth) if policy.rates is not None
                        else None)
        elif self.cac is not None and policy.rates is not None:
            learned = self.cac.rates.learned
            self.cac.rates = policy.rates
            policy.rates.learned = learned
        self._fast()
        return rates_changed or _patterns(old) != _patterns(policy.exceptions)

    # ==== the decision =========================================================================

    def admit(self, host: bytes | None, group: bytes, any_source: bool, additive: bool,
              a: frozenset[bytes], held_exclude: bool | None, held: frozenset[bytes],
              counted: bool | None) -> tuple[frozenset[bytes] | None, bool]:
        """Admit a record that asks for more (module comment).

        ``any_source``: an EXCLUDE record (``a`` its excluded sources); else INCLUDE sources
        ``a``, added to what the subscriber holds if ``additive`` (ALLOW), in place of it
        otherwise (IS_IN, TO_IN). ``held_exclude``: the subscriber's mode for the group
        (True: EXCLUDE; None: it holds nothing), ``held`` its sources. ``counted``: whether
        the group counts against the link (None: it has no state).

        Returns (the sources admitted, or None if the record is refused whole; whether the
        group starts counting against the link and the proxy when its state is made).
        """
        policy = self.policy
        if not policy.open:
            if any_source:
                reason = policy.refuses(host, None, group)
                if reason is not None:
                    self._refuse(reason, host, group, None)
                    return _REFUSED
            else:
                refusals = [(s, r) for s in a
                            if (r := policy.refuses(host, s, group)) is not None]
                if refusals:
                    a = a.difference(s for s, _ in refusals)
                    for s, reason in refusals:
                        self._refuse(reason, host, group, s)
                    if not a:
                        return EMPTY, False
        cac = self.cac
        if cac is not None:
            fits = self._admit_bandwidth(cac, host, group, any_source, additive, a,
                                         held_exclude, held)
            if fits is None:
                return _REFUSED
            if not fits and not any_source:
                return EMPTY, False
            a = fits
        ups = self.entries.upstreams
        if ups is not None and ups.checks:
            fits = self._admit_upstreams(ups, host, group, any_source, a, held_exclude, held,
                                         additive)
            if fits is None:
                return _REFUSED
            if not fits and not any_source:
                return EMPTY, False
            a = fits
        exceptions = self._exceptions
        if any_source:
            if exceptions is not None and exceptions.first_index(None, group) >= 0:
                return a, False  # an exception: never counted, never refused by a limit
            if host is not None and not (held_exclude is not None
                                         and self._counts(group, held_exclude, held)):
                max_groups = policy.subscriber_limits(host)[0]
                if self.held.get(host, 0) >= max_groups:
                    self._refuse(Drop.SUBSCRIBER_MAX_GROUPS, host, group, None)
                    return _REFUSED
            if not counted:
                reason = self._no_room()
                if reason is not None:
                    self._refuse(reason, host, group, None)
                    return _REFUSED
                return a, True
            return a, False
        if host is not None and not (held_exclude and additive):
            # The subscriber's INCLUDE sources after the record (an EXCLUDE subscriber's
            # ALLOW only takes sources off its exclusions: nothing to count).
            old = held if held_exclude is False else EMPTY
            new = (old | a) if additive else a
            added = new - old if old else new
            if added:
                a = self._subscriber_room(host, group, a, new, added, held_exclude, held)
                if not a:
                    return EMPTY, False
        if not counted and self._counted_sources(group, a):
            reason = self._no_room()
            if reason is None:
                return a, True
            if exceptions is None:
                over = a
            else:
                over = frozenset(s for s in a if exceptions.first_index(s, group) < 0)
            for s in over:
                self._refuse(reason, host, group, s)
            return a - over, False
        return a, False

    def _admit_bandwidth(self, cac: Cac, host: bytes | None, group: bytes, any_source: bool,
                         additive: bool, a: frozenset[bytes], held_exclude: bool | None,
                         held: frozenset[bytes]) -> frozenset[bytes] | None:
        """``a`` less the sources whose rates do not fit a budget; None: the any-source
        join does not fit (``bandwidth``)."""
        budget = self.policy.subscriber_bandwidth(host)
        if any_source:
            if held_exclude:
                return a  # it holds (*,G) already
            why = cac.admit_any_source(host, group, budget, [(s, group) for s in held])
            if cac.victims:
                self._preempted(cac, host, group, None)
            if why is None:
                return a
            self._refuse(why[0], host, group, None, why[1])
            return None
        if held_exclude and additive:
            return a  # ALLOW in EXCLUDE mode only takes sources off its exclusions
        old = held if held_exclude is False else EMPTY
        added = a - old if old else a
        if not added:
            return a
        gives_up: list[Channel] = []  # the channels the record takes the subscriber off
        if held_exclude:
            gives_up.append((None, group))  # IS_IN / TO_IN from EXCLUDE: (*,G) given up
        elif not additive:
            gives_up += [(s, group) for s in old - a]
        refused = cac.admit_sources(host, group, added, budget, gives_up)
        if cac.victims:
            self._preempted(cac, host, group, None)
        if not refused:
            return a
        for s, reason, decided in refused:
            self._refuse(reason, host, group, s, decided)
        return a.difference(s for s, _, _ in refused)

    def _preempted(self, cac: Cac, host: bytes | None, group: bytes,
                   source: bytes | None) -> None:
        """Optional channels preempted for a mandatory one: their groups are cleared by the
        router after the record (``evictions``), each counted and logged."""
        for victim_source, victim_group in cac.victims:
            if victim_group in self.evictions:
                continue  # taken already (the victims stay until the router clears them)
            self.evictions.append(victim_group)
            self._refuse(Drop.PREEMPTED, None, victim_group, victim_source,
                         f"preempted for the mandatory channel of group "
                         f"{ipaddress.ip_address(group)}")

    def evicted(self) -> None:
        """The router cleared the preempted groups."""
        self.evictions.clear()
        if self.cac is not None:
            self.cac.victims.clear()

    def _admit_upstreams(self, ups: Placement, host: bytes | None, group: bytes,
                         any_source: bool, a: frozenset[bytes], held_exclude: bool | None,
                         held: frozenset[bytes], additive: bool) -> frozenset[bytes] | None:
        """``a`` less the sources no upstream has room for; None: the any-source join has
        none (``placement``)."""
        if any_source:
            if held_exclude:
                return a
            why = ups.refuses(host, None, group)
            if why is None:
                return a
            self._refuse(why[0], host, group, None, why[1])
            return None
        if held_exclude and additive:
            return a
        old = held if held_exclude is False else EMPTY
        out = a
        for s in sorted(a - old if old else a):
            why = ups.refuses(host, s, group)
            if why is not None:
                self._refuse(why[0], host, group, s, why[1])
                out = out - {s}
        return out

    def _subscriber_room(self, host: bytes, group: bytes, a: frozenset[bytes],
                         new: frozenset[bytes], added: frozenset[bytes],
                         held_exclude: bool | None, held: frozenset[bytes]) -> frozenset[bytes]:
        """``a`` less the sources over the subscriber's limits."""
        max_groups, max_sources = self.policy.subscriber_limits(host)
        exceptions = self._exceptions
        if exceptions is None:
            counting = added
            kept = len(new) - len(added)
        else:
            counting = frozenset(s for s in added if exceptions.first_index(s, group) < 0)
            kept = sum(1 for s in new if s not in added
                       and exceptions.first_index(s, group) < 0)
        if not counting:
            return a
        if (not (held_exclude is not None and self._counts(group, held_exclude, held))
                and self.held.get(host, 0) >= max_groups):
            # A group the subscriber does not hold yet, at its max-groups.
            for s in counting:
                self._refuse(Drop.SUBSCRIBER_MAX_GROUPS, host, group, s)
            return a.difference(counting)
        room = max_sources - kept
        if len(counting) > room:
            # Over max-group-sources: the lowest addresses are kept, the rest refused.
            over = sorted(counting)[max(room, 0):]
            for s in over:
                self._refuse(Drop.SUBSCRIBER_MAX_GROUP_SOURCES, host, group, s)
            a = a.difference(over)
        return a

    def _no_room(self) -> Drop | None:
        if self.link.used >= self.link.maximum:
            return Drop.LINK_MAX_GROUPS
        if self.entries.used >= self.entries.maximum:
            return Drop.PROXY_MAX_ENTRIES
        return None

    def _counted_sources(self, group: bytes, sources: frozenset[bytes]) -> bool:
        exceptions = self._exceptions
        if exceptions is None:
            return bool(sources)
        return any(exceptions.first_index(s, group) < 0 for s in sources)

    def _counts(self, group: bytes, exclude: bool, sources: frozenset[bytes]) -> bool:
        """Whether state (``exclude``: EXCLUDE mode; else INCLUDE ``sources``) counts."""
        exceptions = self._exceptions
        if exceptions is None:
            return True
        if exclude:
            return exceptions.first_index(None, group) < 0
        return any(exceptions.first_index(s, group) < 0 for s in sources)

    # ==== refusals ==============================================================================

    def _refuse(self, reason: Drop, host: bytes | None, group: bytes,
                source: bytes | None, decided: str | None = None) -> None:
        self.refused[reason] += 1
        sub = self.policy.subscriber(host)
        self.refused_by_prefix[str(sub.prefix) if sub is not None else "-", reason] += 1
        key = (host, reason)
        if len(self._noticed) < MAX_NOTICES and key not in self._noticed:
            self._noticed.add(key)
            self.notices.append(Notice(host, group, source, reason, decided or
                                       self._decided_by(reason, host, source, group)))

    def _decided_by(self, reason: Drop, host: bytes | None, source: bytes | None,
                    group: bytes) -> str:
        limit = self.policy.limit_of(reason, host)
        if limit is not None:
            return limit.describe()
        return self.policy.verdict(host, source, group).describe()

    # ==== the counts: the router says when state is made and ends ================================

    def hold(self, host: bytes, group: bytes, exclude: bool, sources: frozenset[bytes]) -> None:
        """``host`` has a new subscription to ``group``."""
        if self.cac is not None:
            self.cac.hold(host, group, exclude, sources)
        if self._exceptions is None or self._counts(group, exclude, sources):
            held = self.held
            held[host] = held.get(host, 0) + 1

    def change(self, host: bytes, group: bytes, old_exclude: bool, old: frozenset[bytes],
               exclude: bool, new: frozenset[bytes]) -> None:
        """``host``'s subscription to ``group`` changed mode or sources."""
        if self.cac is not None:
            self.cac.change(host, group, old_exclude, old, exclude, new)
        if self._exceptions is None:
            return  # every subscription counts: no change
        was = self._counts(group, old_exclude, old)
        if was != self._counts(group, exclude, new):
            if was:
                self._unhold(host)
            else:
                self.held[host] = self.held.get(host, 0) + 1

    def release(self, host: bytes, group: bytes, exclude: bool,
                sources: frozenset[bytes]) -> None:
        """``host``'s subscription to ``group`` ended."""
        if self.cac is not None:
            self.cac.release(host, group, exclude, sources)
        if self._exceptions is None or self._counts(group, exclude, sources):
            held = self.held
            n = held.get(host, 0) - 1
            if n > 0:
                held[host] = n
            else:
                held.pop(host, None)

    def _unhold(self, host: bytes) -> None:
        held = self.held
        n = held.get(host, 0) - 1
        if n > 0:
            held[host] = n
        else:
            held.pop(host, None)

    def take_group(self) -> None:
        """A group of the link starts counting (it was admitted with ``count``)."""
        self.groups += 1
        self.link.used += 1
        self.entries.used += 1

    def release_group(self) -> None:
        """A group that counted has no state left."""
        self.groups -= 1
        self.link.used -= 1
        self.entries.used -= 1

    def group_counts(self, group: bytes, exclude: bool, sources: frozenset[bytes]) -> bool:
        """Whether a group's state (its filter mode and source records) counts: for
        ``recount``."""
        return self._counts(group, exclude, sources)

    def recount(self) -> None:
        """Forget this link's counts, before the router counts its state again (``hold``,
        ``take_group``) under new exceptions."""
        self.link.used -= self.groups
        self.entries.used -= self.groups
        self.groups = 0
        self.held.clear()
        if self.cac is not None:
            self.cac.clear()


def _patterns(rules: RuleSet | None) -> tuple[object, ...]:
    return () if rules is None else tuple((r.source, r.group) for r in rules.rules)
