"""The configuration's policy sections: what may be joined, and how much state it may cost.

Three levels, each a mapping (``policy`` explains how they combine; README, "Policy and
limits", shows them with the refusals an operator sees):

    policy:                                   # global: every downstream link
      default: permit                         # when no rule of any level matches
      ssm-only: false                         # any-source joins refused everywhere
      group-policy:                           # ordered rules, first match wins
        - {action: deny, group: 239.255.0.0/16}
      max-entries: 131072                     # (link, group) pairs with state, proxy-wide
      max-groups-per-interface: 16384         # each link's max-groups unless it sets one
      subscriber: {max-groups: 512, max-group-sources: 64}   # each subscriber's
      exceptions: [{source: 192.0.2.1, group: 232.0.0.1}]    # channels no limit counts
      report-rate: {subscriber: 100, link: 10000}            # reports a second
      bandwidth:                              # the channel bandwidth table (``bandwidth``)
        channels: [{group: 232.1.0.0/16, rate: 8M}, {group: 232.0.0.1, rate: 2M, class: mandatory}]
        default-rate: 0                       # channels no entry matches
      max-bandwidth-per-interface: 1G         # each link's max-bandwidth unless it sets one
    downstream:
      - interface: d1
        policy:                               # this link: the same keys, and
          max-groups: 4096                    # groups with state on the link
          max-bandwidth: 400M                 # the rates of the channels on the link
          subscribers:                        # per subscriber prefix on the link
            - {prefix: 10.1.1.0/24, default: deny, group-policy: [...], max-groups: 16}

Names are RFC 8652's where it has them (``group-policy``, ``max-groups``,
``max-group-sources``, ``max-entries``, ``max-groups-per-interface``); ``group-policy`` holds
the rules themselves rather than the name of an access list. A limit is a whole number or
``unlimited``: no limit is ever absent by omission (``policy`` has the built-in values).

Besides each field's own checks, ``policy_issues`` finds what spans fields: a rule that an
earlier rule of its list makes unreachable, a subscriber prefix or an exception listed twice.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from mcastproxy.bandwidth import parse_rate
from mcastproxy.configtypes import GroupPrefix, Model, Network, UnicastPrefix
from mcastproxy.membership.timers import parse_duration
from mcastproxy.policy import compile_channels, compile_rules, unreachable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mcastproxy.policy import Rule

MAX_LIMIT = 2**32 - 1  # RFC 8652's limits are uint32
_LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


def _limit(value: Any) -> int | str:
    if value == "unlimited":
        return "unlimited"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number from 0 to {MAX_LIMIT}, or unlimited")
    if not 0 <= value <= MAX_LIMIT:
        raise ValueError(f"{value} is not from 0 to {MAX_LIMIT} (or unlimited)")
    return value


# A count, or "unlimited"; a field left out (None) takes the next level's, then the built-in.
Limit = Annotated[int | Literal["unlimited"], BeforeValidator(_limit)]

MAX_RATE = 10_000_000.0


def _rate(value: Any) -> float | str:
    if value == "unlimited":
        return "unlimited"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected messages a second (a number above 0), or unlimited")
    if not 0 < value <= MAX_RATE:
        raise ValueError(f"{value} is not above 0 and at most {MAX_RATE:.0f} (or unlimited)")
    return float(value)


# Reports (and leaves) a second, or "unlimited"; left out: the next level's, then built-in.
RateLimit = Annotated[float | Literal["unlimited"], BeforeValidator(_rate)]


# Bits a second: a number, or with a k, M or G suffix (``bandwidth.parse_rate``).
Rate = Annotated[int, BeforeValidator(parse_rate)]


def _bandwidth_limit(value: Any) -> int | str:
    return "unlimited" if value == "unlimited" else parse_rate(value)


# A bandwidth budget, or "unlimited"; left out: the next level's, then unlimited.
BandwidthLimit = Annotated[int | Literal["unlimited"], BeforeValidator(_bandwidth_limit)]


class ReportRate(Model):
    """Report rate limits (``ratelimit``): messages a second from each subscriber and from
    all of a link's, with a burst of two seconds' worth; the excess is dropped before the
    router side sees it."""

    subscriber: RateLimit | None = None
    link: RateLimit | None = None
Action = Literal["permit", "deny"]


def _one_family(source: Network | None, group: Network | None) -> None:
    if source is not None and group is not None and source.version != group.version:
        raise ValueError("mixes IPv4 and IPv6 prefixes")


class PolicyRule(Model):
    """A rule of a ``group-policy``: ``action`` for requests whose source is in ``source``
    and group in ``group`` (each omitted: any). A rule with a source never matches an
    any-source join."""

    action: Action
    source: UnicastPrefix | None = None
    group: GroupPrefix | None = None

    @model_validator(mode="after")
    def _family(self) -> PolicyRule:
        _one_family(self.source, self.group)
        return self


class ChannelPattern(Model):
    """An exception: the channels (S,G) with S in ``source`` (omitted: any source, and the
    any-source join) and G in ``group`` (omitted: any group)."""

    source: UnicastPrefix | None = None
    group: GroupPrefix | None = None
    NEEDS: ClassVar[str] = ("an exception needs a source or a group; to lift a limit, set it "
                            "to unlimited")

    @model_validator(mode="after")
    def _something(self) -> ChannelPattern:
        if self.source is None and self.group is None:
            raise ValueError(self.NEEDS)
        _one_family(self.source, self.group)
        return self


class SubscriberLimits(Model):
    """What one subscriber may hold on a link: groups, sources in each group, and the
    rates of its channels."""

    max_groups: Limit | None = None
    max_group_sources: Limit | None = None
    max_bandwidth: BandwidthLimit | None = None


class ChannelBandwidth(ChannelPattern):
    """An entry of the channel bandwidth table: the channels (S,G) with S in ``source``
    (omitted: any source, and the any-source join) and G in ``group``, their ``rate`` and
    ``class`` (``mandatory``: always admitted, and counted)."""

    rate: Rate
    channel_class: Literal["mandatory", "optional"] = Field("optional", alias="class")
    NEEDS: ClassVar[str] = ("a bandwidth entry needs a source or a group; for every other "
                            "channel, set default-rate")


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class BandwidthTable(Model):
    """The channel bandwidth table (``bandwidth``): first match wins; channels no entry
    matches cost ``default-rate``, or what they are measured to carry (``learn``). Channels
    joined with no traffic for ``empty-after`` are empty (``learning``); a join of one is
    refused for ``refuse-empty-for``."""

    channels: tuple[ChannelBandwidth, ...] = ()
    default_rate: Rate = 0
    preempt: bool = False
    learn: bool = False
    learn_margin: float = Field(0.2, ge=0, le=10)
    empty_after: Seconds | None = Field(None, gt=0)
    refuse_empty_for: Seconds | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _empty(self) -> BandwidthTable:
        if self.refuse_empty_for is not None and self.empty_after is None:
            raise ValueError("refuse-empty-for needs empty-after: a channel is empty when "
                             "joined with no traffic for empty-after")
        return self


def _rules_of_family(rules: tuple[PolicyRule, ...], prefix: Network) -> None:
    for rule in rules:
        for p in (rule.source, rule.group):
            if p is not None and p.version != prefix.version:
                raise ValueError(f"group-policy holds {p}, an IPv{p.version} prefix; "
                                 f"subscribers of {prefix} never ask for it")


class SubscriberPolicy(Model):
    """The subscribers of one prefix on a link: their rules (tried before the link's) and
    the limits of each of them."""

    prefix: UnicastPrefix
    default: Action | None = None
    group_policy: tuple[PolicyRule, ...] = ()
    max_groups: Limit | None = None
    max_group_sources: Limit | None = None
    max_bandwidth: BandwidthLimit | None = None

    @field_validator("prefix")
    @classmethod
    def _link_local(cls, prefix: Network) -> Network:
        if isinstance(prefix, ipaddress.IPv6Network) and not prefix.subnet_of(_LINK_LOCAL):
            raise ValueError(f"{prefix} is not link-local: MLD reports come from link-local "
                             "addresses (RFC 9777 §5.2.13), so a subscriber prefix is in "
                             "fe80::/10")
        return prefix

    @model_validator(mode="after")
    def _family(self) -> SubscriberPolicy:
        _rules_of_family(self.group_policy, self.prefix)
        return self


class LinkPolicy(Model):
    """A downstream link's policy: its rules (tried after its subscribers' and before the
    global ones), its default, ``ssm-only``, its ``max-groups`` (RFC 8652), each of its
    subscribers' limits, its exceptions (with the global ones) and its subscriber prefixes."""

    default: Action | None = None
    ssm_only: bool | None = None
    group_policy: tuple[PolicyRule, ...] = ()
    max_groups: Limit | None = None
    max_bandwidth: BandwidthLimit | None = None
    subscriber: SubscriberLimits = SubscriberLimits()
    exceptions: tuple[ChannelPattern, ...] = ()
    subscribers: tuple[SubscriberPolicy, ...] = ()
    report_rate: ReportRate = ReportRate()


class GlobalPolicy(Model):
    """The global policy: rules tried last, the default of the last resort, ``ssm-only`` for
    every link, the proxy's ``max-entries`` and the defaults of every link's limits."""

    default: Action | None = None
    ssm_only: bool = False
    group_policy: tuple[PolicyRule, ...] = ()
    max_entries: Limit | None = None
    max_groups_per_interface: Limit | None = None
    max_bandwidth_per_interface: BandwidthLimit | None = None
    subscriber: SubscriberLimits = SubscriberLimits()
    exceptions: tuple[ChannelPattern, ...] = ()
    report_rate: ReportRate = ReportRate()
    bandwidth: BandwidthTable = BandwidthTable()


def policy_issues(glob: GlobalPolicy, links: Sequence[LinkPolicy]) -> list[tuple[str, str]]:
    """(path, reason) for what spans the policy's fields: unreachable rules, subscriber
    prefixes and exceptions listed twice."""
    issues = _list_issues(compile_rules(glob.group_policy, "policy.group-policy"),
                          "group-policy")
    issues += _list_issues(compile_channels(glob.exceptions, "policy.exceptions"), "exception")
    issues += _list_issues(compile_channels(glob.bandwidth.channels,
                                            "policy.bandwidth.channels"), "bandwidth entry")
    for i, link in enumerate(links):
        at = f"downstream[{i}].policy"
        issues += _list_issues(compile_rules(link.group_policy, f"{at}.group-policy"),
                               "group-policy")
        issues += _list_issues(compile_channels(link.exceptions, f"{at}.exceptions"),
                               "exception")
        first: dict[Network, int] = {}
        for j, sub in enumerate(link.subscribers):
            where = f"{at}.subscribers[{j}]"
            if sub.prefix in first:
                issues.append((f"{where}.prefix", f"{sub.prefix} duplicates "
                               f"subscribers[{first[sub.prefix]}]"))
            first.setdefault(sub.prefix, j)
            issues += _list_issues(compile_rules(sub.group_policy, f"{where}.group-policy"),
                                   "group-policy")
    return issues


def _list_issues(rules: list[Rule], kind: str) -> list[tuple[str, str]]:
    out = []
    for i, j in unreachable(rules):
        rule, earlier = rules[i], rules[j]
        short = earlier.where.rpartition(".")[2]
        if kind in ("exception", "bandwidth entry"):
            out.append((rule.where, f"is within {short}: listed already"))
        elif (rule.source, rule.group) == (earlier.source, earlier.group):
            out.append((rule.where, f"duplicates {short}: it is never reached"))
        else:
            out.append((rule.where, f"is never reached: {short} ({earlier.describe()}) "
                                    "comes first and matches all it would"))
    return out


