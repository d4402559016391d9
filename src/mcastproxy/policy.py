"""Edge policy: what a subscriber on a downstream link may join (RFC 8313 §6.1; RFC 8652 names).

Theory of operation
===================

RFC 8313 §6.1 puts the defence against state attacks at the last replication point, this
proxy: "explicitly defining the set of permissible (S,G) ... via (S,G) access control lists
applied to IGMP/MLD membership state creation". A request here is (subscriber H, source S or
any, group G): S for each source of an INCLUDE record, "any" for an EXCLUDE record (an
any-source join, also every IGMPv1/v2 or MLDv1 report).

Rules. A ``group-policy`` is an ordered list of rules, each ``permit`` or ``deny`` with a
source prefix and a group prefix, either omitted to mean any (RFC 8652's ``group-policy``, and
its ``source-policy`` where a rule names a source). A rule matches a request when each prefix
it names contains the request's address; a rule that names a source never matches an
any-source request (it cannot know which sources will send), as in upstream selection.
Within one list the first rule that matches decides.

Levels. Rules are written at three levels: globally (``policy``), per downstream link
(``downstream[i].policy``) and per subscriber prefix on a link
(``downstream[i].policy.subscribers[j]``; a subscriber under several prefixes takes the
longest). The most specific level with a rule that matches decides: the subscriber's prefix,
then the link, then the global list. When no rule of any level matches, the ``default`` of the
most specific level that sets one applies (the subscriber's prefix, the link, the global
section); when none sets one, the request is permitted.

SSM only. ``ssm-only`` (per link, else global) refuses every any-source request before any
rule is read: no rule can permit one there.

Each answer (``Verdict``) says which rule of which level, or which default, decided, with its
place in the configuration file, for ``explain`` and the log. A refusal's reason is a
``Drop`` that names the level.

Rules are compiled per family by ``rules.RuleSet``: a lookup costs a few dict probes whatever
the number of rules.

Limits on how much state a request may create are ``admission``'s; their values, with the
exception channels that no limit counts, are compiled here with the rules (``EdgePolicy``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from mcastproxy.bandwidth import ChannelRates, RateEntry, format_rate
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.rules import UNLIMITED, Action, Network, Rule, RuleSet, mask, unreachable

# Rules are ``rules``'; they are this module's words too.
__all__ = ["UNLIMITED", "Action", "EdgePolicy", "Network", "Rule", "RuleSet", "unreachable"]

if TYPE_CHECKING:
    from mcastproxy.config import Config
    from mcastproxy.policyconfig import (
        ChannelBandwidth,
        ChannelPattern,
        GlobalPolicy,
        PolicyRule,
    )


# The built-in limits (README, "Policy and limits", says why each).
SUBSCRIBER_MAX_GROUPS = 512
SUBSCRIBER_MAX_GROUP_SOURCES = 64
LINK_MAX_GROUPS = 16_384
MAX_ENTRIES = 131_072


class LimitValue(NamedTuple):
    """A limit in force, and where it is set ("" when built in)."""

    name: str  # "max-groups" (per subscriber), "max-group-sources", ...
    scope: str  # "subscriber", "link", "proxy"
    value: int
    where: str

    def describe(self) -> str:
        if self.value >= UNLIMITED:
            value = "unlimited"
        elif self.name == "max-bandwidth":
            value = format_rate(self.value)
        else:
            value = f"{self.value:,}"
        return f"{self.scope} {self.name} {value} ({self.where or 'built-in default'})"


class Level(NamedTuple):
    """One level of rules: its name for people, its place in the file, its rules (of one
    family), its default (None: not set) and the reason its deny rules refuse with."""

    name: str  # "subscriber 10.1.1.0/24 on d1", "link d1", "global"
    where: str  # "downstream[0].policy.subscribers[1]", "downstream[0].policy", "policy"
    rules: RuleSet
    default: Action | None
    deny: Drop


class Subscriber(NamedTuple):
    """A subscriber prefix of a link: its rules and the limits of each subscriber in it."""

    prefix: Network
    level: Level
    max_groups: LimitValue
    max_group_sources: LimitValue
    max_bandwidth: LimitValue


class Verdict(NamedTuple):
    """What the policy says of one request, and what decided it."""

    permit: bool
    reason: Drop | None  # the refusal's reason
    decided_by: str  # "rule", "default", "ssm-only", "built-in default"
    level: str  # the deciding level's name ("" for the built-in default)
    where: str  # the deciding rule's or setting's place in the file ("" built in)
    rule: Rule | None

    def describe(self) -> str:
        verb = "permitted" if self.permit else "refused"
        if self.decided_by == "rule" and self.rule is not None:
            return f"{verb} by {self.where} ({self.rule.describe()}; {self.level})"
        if self.decided_by == "ssm-only":
            return f"{verb}: an any-source join where {self.where} is true"
        if self.decided_by == "default":
            return f"{verb}: no rule matches; {self.where} is {'permit' if self.permit else 'deny'}"
        return f"{verb}: no rule matches and no level sets a default"


REFUSALS_KEPT = 4096
"""Answers of ``EdgePolicy.refuses`` kept per link and family."""


class EdgePolicy:
    """The policy and limits in force on one downstream link for one family."""

    __slots__ = ("_each", "_levels", "_prefix_lengths", "_refusals", "_subscribers", "default",
                 "default_where", "exceptions", "family", "limits", "link", "open", "rates",
                 "ssm_only", "ssm_where")

    def __init__(self, link: str, family: Family, *, ssm_only: bool = False,
                 ssm_where: str = "", levels: Sequence[Level] = (),
                 subscribers: Sequence[Subscriber] = (),
                 default: Action | None = None, default_where: str = "",
                 exceptions: RuleSet | None = None,
                 limits: Sequence[LimitValue] = (),
                 rates: ChannelRates | None = None) -> None:
        self.link = link
        self.rates = rates if rates else None  # the channel bandwidth table (``bandwidth``)
        self.family = family
        self.ssm_only = ssm_only
        self.ssm_where = ssm_where
        self._levels = tuple(lv for lv in levels if lv.rules)  # the link's, then the global
        self.default = default  # the link's or the global default, None: permit
        self.default_where = default_where
        self.exceptions = exceptions if exceptions else None
        by_length: dict[int, dict[int, Subscriber]] = {}
        width = family.width
        for sub in subscribers:
            length = sub.prefix.prefixlen
            by_length.setdefault(length, {}).setdefault(
                int(sub.prefix.network_address) & mask(length, width), sub)
        # Longest prefix first: the first hit is the subscriber's.
        self._subscribers = tuple((mask(n, width), table)
                                  for n, table in sorted(by_length.items(), reverse=True))
        self._prefix_lengths = len(self._subscribers)
        named = {f"{lv.scope} {lv.name}": lv for lv in limits}
        self.limits = {key: named.get(key) or LimitValue(*_BUILT_IN[key], "")
                       for key in _BUILT_IN}
        self._each = (self.limits["subscriber max-groups"].value,
                      self.limits["subscriber max-group-sources"].value)
        # Nothing to ask: no rule at any level, no default deny, no SSM-only.
        self.open = (not ssm_only and not self._levels and default is not Action.DENY
                     and not any(s.level.rules or s.level.default is Action.DENY
                                 for s in subscribers))
        # The answers of ``refuses`` where they do not depend on the subscriber (no prefix):
        # most joins ask for a channel asked before. A new configuration is a new policy,
        # so nothing here outlives the rules it was taken from; bounded (``REFUSALS_KEPT``).
        self._refusals: dict[tuple[bytes | None, bytes], Drop | None] = {}

    @property
    def max_groups(self) -> int:
        """The link's max-groups."""
        return self.limits["link max-groups"].value

    @property
    def max_entries(self) -> int:
        return self.limits["proxy max-entries"].value

    @property
    def has_subscribers(self) -> bool:
        """Whether the link has subscriber prefixes of this family."""
        return bool(self._prefix_lengths)

    def subscriber(self, host: bytes | None) -> Subscriber | None:
        """The longest subscriber prefix of the link that holds ``host``."""
        if host is None or not self._prefix_lengths:
            return None
        h = int.from_bytes(host)
        for bits, table in self._subscribers:
            sub = table.get(h & bits)
            if sub is not None:
                return sub
        return None

    @property
    def max_bandwidth(self) -> int:
        """The link's max-bandwidth (bits a second)."""
        return self.limits["link max-bandwidth"].value

    def subscriber_bandwidth(self, host: bytes | None) -> int:
        """``host``'s max-bandwidth (bits a second)."""
        sub = self.subscriber(host) if self._prefix_lengths else None
        if sub is not None:
            return sub.max_bandwidth.value
        return self.limits["subscriber max-bandwidth"].value

    def subscriber_limits(self, host: bytes | None) -> tuple[int, int]:
        """(max-groups, max-group-sources) for ``host``."""
        if self._prefix_lengths:
            sub = self.subscriber(host)
            if sub is not None:
                return sub.max_groups.value, sub.max_group_sources.value
        return self._each

    def permits_any_source(self, group: bytes) -> bool:
        """Whether an any-source join of ``group`` passes the rules, on a link without
        subscriber prefixes (the report path's shortcut, ``Admission.fast_groups``)."""
        return self.open or self.refuses(None, None, group) is None

    def refuses(self, host: bytes | None, source: bytes | None, group: bytes) -> Drop | None:
        """Why the request (``host``, ``source`` or any if None, ``group``) is refused, or
        None if it is permitted. The report path's question: no ``Verdict`` is made."""
        if source is None and self.ssm_only:
            return Drop.POLICY_SSM_ONLY
        if not self._prefix_lengths:
            key = (source, group)
            refusals = self._refusals
            if key in refusals:
                return refusals[key]
            if len(refusals) >= REFUSALS_KEPT:
                refusals.clear()  # a scan of many channels: start again, never grow
            reason = refusals[key] = self._refuses(None, source, group)
            return reason
        return self._refuses(host, source, group)

    def _refuses(self, host: bytes | None, source: bytes | None, group: bytes) -> Drop | None:
        default = self.default
        sub = self.subscriber(host) if self._prefix_lengths else None
        if sub is not None:
            level = sub.level
            rule = level.rules.first(source, group)
            if rule is not None:
                return None if rule.action is Action.PERMIT else level.deny
            if level.default is not None:
                default = level.default
        for level in self._levels:
            rule = level.rules.first(source, group)
            if rule is not None:
                return None if rule.action is Action.PERMIT else level.deny
        return Drop.POLICY_DEFAULT_DENY if default is Action.DENY else None

    def verdict(self, host: bytes | None, source: bytes | None, group: bytes) -> Verdict:
        """What the policy says of the request, and what decided it (``explain``, logs)."""
        if source is None and self.ssm_only:
            return Verdict(False, Drop.POLICY_SSM_ONLY, "ssm-only", "", self.ssm_where, None)
        sub = self.subscriber(host)
        levels = ((sub.level,) if sub is not None else ()) + self._levels
        for level in levels:
            rule = level.rules.first(source, group)
            if rule is not None:
                permit = rule.action is Action.PERMIT
                return Verdict(permit, None if permit else level.deny, "rule", level.name,
                               rule.where, rule)
        if sub is not None and sub.level.default is not None:
            default, where, name = sub.level.default, f"{sub.level.where}.default", sub.level.name
        elif self.default is not None:
            default, where, name = self.default, self.default_where, ""
        else:
            return Verdict(True, None, "built-in default", "", "", None)
        permit = default is Action.PERMIT
        return Verdict(permit, None if permit else Drop.POLICY_DEFAULT_DENY, "default", name,
                       where, None)

    def exception(self, source: bytes | None, group: bytes) -> Rule | None:
        """The exception pattern the channel matches (no limit counts or refuses it)."""
        return self.exceptions.first(source, group) if self.exceptions is not None else None

    def limits_for(self, host: bytes | None) -> list[LimitValue]:
        """The limits a request of ``host`` is held to: the subscriber's (none for an
        unknown subscriber), the link's and the proxy's."""
        out = []
        bandwidth = self.rates is not None
        if host is not None:
            sub = self.subscriber(host)
            if sub is not None:
                out += [sub.max_groups, sub.max_group_sources]
                if bandwidth:
                    out.append(sub.max_bandwidth)
            else:
                out += [self.limits["subscriber max-groups"],
                        self.limits["subscriber max-group-sources"]]
                if bandwidth:
                    out.append(self.limits["subscriber max-bandwidth"])
        out += [self.limits["link max-groups"], self.limits["proxy max-entries"]]
        if bandwidth:
            out.append(self.limits["link max-bandwidth"])
        return out

    def limit_of(self, reason: Drop, host: bytes | None) -> LimitValue | None:
        """The limit a refusal for ``reason`` hit."""
        wanted = _LIMIT_OF.get(reason)
        if wanted is None:
            return None
        return next((lv for lv in self.limits_for(host)
                     if f"{lv.scope} {lv.name}" == wanted), None)

    @classmethod
    def from_config(cls, config: Config, link: str, family: Family) -> EdgePolicy:
        """The policy of downstream ``link`` for ``family``, compiled from ``config``."""
        return _compile(config, link, family)


_BUILT_IN = {
    "subscriber max-groups": ("max-groups", "subscriber", SUBSCRIBER_MAX_GROUPS),
    "subscriber max-group-sources": ("max-group-sources", "subscriber",
                                     SUBSCRIBER_MAX_GROUP_SOURCES),
    "link max-groups": ("max-groups", "link", LINK_MAX_GROUPS),
    "proxy max-entries": ("max-entries", "proxy", MAX_ENTRIES),
    # Bandwidth budgets are asked for: a channel's rate is the operator's to give.
    "subscriber max-bandwidth": ("max-bandwidth", "subscriber", UNLIMITED),
    "link max-bandwidth": ("max-bandwidth", "link", UNLIMITED),
}
_LIMIT_OF = {
    Drop.SUBSCRIBER_MAX_GROUPS: "subscriber max-groups",
    Drop.SUBSCRIBER_MAX_GROUP_SOURCES: "subscriber max-group-sources",
    Drop.LINK_MAX_GROUPS: "link max-groups",
    Drop.PROXY_MAX_ENTRIES: "proxy max-entries",
    Drop.SUBSCRIBER_MAX_BANDWIDTH: "subscriber max-bandwidth",
    Drop.LINK_MAX_BANDWIDTH: "link max-bandwidth",
}


def limit_value(value: int | str | None) -> int | None:
    """A limit from the file: a count, ``unlimited`` (``UNLIMITED``), or None if not set."""
    if value is None:
        return None
    return UNLIMITED if value == "unlimited" else int(value)


def compile_rules(rules: Iterable[PolicyRule], where: str) -> list[Rule]:
    """A ``group-policy`` of the file as ``Rule``s, each knowing its place."""
    return [Rule(Action(r.action), r.source, r.group, f"{where}[{i}]")
            for i, r in enumerate(rules)]


def compile_channels(channels: Iterable[ChannelPattern | ChannelBandwidth],
                     where: str) -> list[Rule]:
    """Exception channels (or bandwidth entries) as permit ``Rule``s (matched as rules
    are)."""
    return [Rule(Action.PERMIT, c.source, c.group, f"{where}[{i}]")
            for i, c in enumerate(channels)]


def _compile(config: Config, name: str, family: Family) -> EdgePolicy:
    glob = config.policy
    index, link = next((i, d) for i, d in enumerate(config.downstream) if d.interface == name)
    at = f"downstream[{index}].policy"
    own = link.policy
    levels = [Level(f"link {name}", at, RuleSet(compile_rules(own.group_policy,
                                                                f"{at}.group-policy"), family),
                    _action(own.default), Drop.POLICY_LINK_DENY),
              Level("global", "policy", RuleSet(compile_rules(glob.group_policy,
                                                               "policy.group-policy"), family),
                    _action(glob.default), Drop.POLICY_GLOBAL_DENY)]
    if own.default is not None:
        default, default_where = _action(own.default), f"{at}.default"
    else:
        default, default_where = _action(glob.default), "policy.default" if glob.default else ""
    if own.ssm_only is not None:
        ssm_only, ssm_where = own.ssm_only, f"{at}.ssm-only"
    else:
        ssm_only, ssm_where = glob.ssm_only, "policy.ssm-only"

    limits = []

    def pick(key: str, *places: tuple[int | str | None, str]) -> None:
        for value, where in places:
            number = limit_value(value)
            if number is not None:
                scope, _, leaf = key.partition(" ")
                limits.append(LimitValue(leaf, scope, number, where))
                return

    pick("subscriber max-groups", (own.subscriber.max_groups, f"{at}.subscriber.max-groups"),
         (glob.subscriber.max_groups, "policy.subscriber.max-groups"))
    pick("subscriber max-group-sources",
         (own.subscriber.max_group_sources, f"{at}.subscriber.max-group-sources"),
         (glob.subscriber.max_group_sources, "policy.subscriber.max-group-sources"))
    pick("link max-groups", (own.max_groups, f"{at}.max-groups"),
         (glob.max_groups_per_interface, "policy.max-groups-per-interface"))
    pick("proxy max-entries", (glob.max_entries, "policy.max-entries"))
    pick("subscriber max-bandwidth",
         (own.subscriber.max_bandwidth, f"{at}.subscriber.max-bandwidth"),
         (glob.subscriber.max_bandwidth, "policy.subscriber.max-bandwidth"))
    pick("link max-bandwidth", (own.max_bandwidth, f"{at}.max-bandwidth"),
         (glob.max_bandwidth_per_interface, "policy.max-bandwidth-per-interface"))
    given = {f"{lv.scope} {lv.name}": lv for lv in limits}
    each_groups = given.get("subscriber max-groups") or LimitValue(
        *_BUILT_IN["subscriber max-groups"], "")
    each_sources = given.get("subscriber max-group-sources") or LimitValue(
        *_BUILT_IN["subscriber max-group-sources"], "")
    each_bandwidth = given.get("subscriber max-bandwidth") or LimitValue(
        *_BUILT_IN["subscriber max-bandwidth"], "")

    subscribers = []
    for j, entry in enumerate(own.subscribers):
        if entry.prefix.version != family:
            continue
        where = f"{at}.subscribers[{j}]"
        level = Level(f"subscriber {entry.prefix} on {name}", where,
                      RuleSet(compile_rules(entry.group_policy, f"{where}.group-policy"), family),
                      _action(entry.default), Drop.POLICY_SUBSCRIBER_DENY)
        groups = limit_value(entry.max_groups)
        sources = limit_value(entry.max_group_sources)
        bandwidth = limit_value(entry.max_bandwidth)
        subscribers.append(Subscriber(
            entry.prefix, level,
            each_groups if groups is None else LimitValue(
                "max-groups", "subscriber", groups, f"{where}.max-groups"),
            each_sources if sources is None else LimitValue(
                "max-group-sources", "subscriber", sources, f"{where}.max-group-sources"),
            each_bandwidth if bandwidth is None else LimitValue(
                "max-bandwidth", "subscriber", bandwidth, f"{where}.max-bandwidth")))
    exceptions = RuleSet(compile_channels(glob.exceptions, "policy.exceptions")
                         + compile_channels(own.exceptions, f"{at}.exceptions"), family)
    return EdgePolicy(name, family, ssm_only=ssm_only, ssm_where=ssm_where, levels=levels,
                      subscribers=subscribers, default=default, default_where=default_where,
                      exceptions=exceptions, limits=limits, rates=rates_of(glob, family))


def rates_of(glob: GlobalPolicy, family: Family) -> ChannelRates | None:
    """The channel bandwidth table of ``family``, or None when it rates nothing."""
    table = glob.bandwidth
    entries = [RateEntry(c.source, c.group, c.rate, c.channel_class == "mandatory",
                         f"policy.bandwidth.channels[{i}]")
               for i, c in enumerate(table.channels)]
    rates = ChannelRates(entries, family, table.default_rate,
                         table.learn_margin if table.learn else None, preempt=table.preempt)
    return rates if rates else None


def _action(value: str | None) -> Action | None:
    return None if value is None else Action(value)
