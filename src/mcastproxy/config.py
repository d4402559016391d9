"""The configuration file: YAML, validated into immutable objects.

Keys are kebab-case (``active-interval``). Durations take ``125s``, ``500ms``, ``2m`` or a
bare number of seconds. Prefixes are CIDR; a bare address is a host prefix.

Validation runs in two passes. The first (pydantic) checks every field on its own and
reports all failures at once. The second checks what spans fields (an interface listed
twice, a default upstream that is not a candidate, duplicate records) and runs only when
the first passed, because it needs the parsed values. Every problem becomes a
``ConfigIssue`` with the field's path (``upstream.candidates[1].records[0].group``) and the
reason; ``load_config`` raises one ``ConfigError`` carrying all of them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import stat
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from mcastproxy.amtconfig import AmtSettings
from mcastproxy.apiconfig import ApiSettings, api_issues
from mcastproxy.configtypes import GroupPrefix, Model, Network, UnicastPrefix
from mcastproxy.configyaml import (
    MAX_ALIAS_NODES,
    MAX_FILE_SIZE,
    MAX_NESTING,
    ConfigError,
    ConfigIssue,
    check_numbers,
    one_line,
    read_yaml,
    too_large,
)
from mcastproxy.family import Family
from mcastproxy.membership.addresses import SSM_RANGES
from mcastproxy.membership.querier import QuerierMode, QuerierPolicy
from mcastproxy.membership.ssmmap import SsmMap
from mcastproxy.membership.timers import FROM_FILE, ProtocolTimers, parse_duration
from mcastproxy.opsconfig import AccountingSettings, MetricsSettings, log_path_issues
from mcastproxy.policyconfig import BandwidthLimit, GlobalPolicy, Limit, LinkPolicy, policy_issues

# What other modules take from here, some of it defined in the modules the file's parts live in.
__all__ = ["MAX_ALIAS_NODES", "MAX_FILE_SIZE", "MAX_NESTING", "AccountingSettings",
           "AmtSettings", "Candidate", "Config", "ConfigError", "ConfigIssue", "Downstream",
           "MetricsSettings", "Record", "load_config", "parse_config", "static_entries"]

# Linux allows 32 VIFs per multicast routing table (MAXVIFS); each table holds one upstream
# and the downstream links, so at most 31 downstream links.
MAX_DOWNSTREAM = 31
IFNAMSIZ = 16
MIN_DATA_INTERVAL = 0.02  # 20 ms: counters read every 5 ms at the most



# --- field types ---------------------------------------------------------------------------


Duration = Annotated[float, BeforeValidator(parse_duration)]


# What Linux's dev_valid_name (net/core/dev.c) takes for white space: its isspace, octet by
# octet, in the kernel's Latin-1 ctype table (so 0xa0, inside UTF-8 "\u00a0" or "à", too).
_KERNEL_SPACE = frozenset(b"\t\n\v\f\r \xa0")


def _interface_name(value: Any) -> str:
    """A name Linux can give a network device, checked as the kernel checks it
    (``dev_valid_name``): 1 to 15 octets of UTF-8 (IFNAMSIZ, 16, counts the NUL that ends
    it), not ``.`` or ``..``, no ``/``, ``:`` or white space (the kernel's, octet by octet, or
    Unicode's). Also refused: ``%`` (the kernel takes a name with it for a pattern to number,
    ``dev_alloc_name``, so no device bears one) and control characters (NUL ends the name
    early; the others would be written raw in logs)."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected an interface name")
    bad = f"{value!r} is not a valid Linux interface name"
    try:
        octets = value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{bad}: not UTF-8 text") from None
    if len(octets) >= IFNAMSIZ:
        raise ValueError(f"{bad}: {len(octets)} octets, the kernel's limit is {IFNAMSIZ - 1}")
    if value in (".", ".."):
        raise ValueError(f"{bad}: {value} names a directory")
    if "\0" in value:
        raise ValueError(f"{bad}: it holds a NUL")
    for c in "/:%":
        if c in value:
            raise ValueError(f"{bad}: it holds {c!r}")
    if any(o in _KERNEL_SPACE for o in octets) or any(c.isspace() for c in value):
        raise ValueError(f"{bad}: it holds white space")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(f"{bad}: it holds a control character")
    return value


InterfaceName = Annotated[str, BeforeValidator(_interface_name)]


_Model = Model


# --- protocol timers -----------------------------------------------------------------------
# ``ProtocolTimers`` (membership.timers) is the configuration's ``timers`` as it is the router
# side's: validated here in the file's words (``context=FROM_FILE``: kebab-case keys,
# durations, the wire's bounds).

_TIMERS = TypeAdapter(ProtocolTimers)
_DEFAULT_TIMERS = ProtocolTimers()


# --- protocols, links and candidates --------------------------------------------------------


def _of_family(family: Family) -> Callable[[tuple[Network, ...] | None],
                                           tuple[Network, ...] | None]:
    def check(nets: tuple[Network, ...] | None) -> tuple[Network, ...] | None:
        for net in nets or ():
            if net.version != family:
                raise ValueError(f"{net} is not an IPv{family} prefix")
        return nets

    return check


MAX_MAPPED_SOURCES = 64


class SsmMapEntry(_Model):
    """``ssm-map`` (``membership.ssmmap``): an older host's join of a group in ``group``
    becomes a join of (S, G) for each S of ``sources``."""

    group: GroupPrefix
    sources: tuple[UnicastPrefix, ...]

    @model_validator(mode="after")
    def _sources(self) -> SsmMapEntry:
        if not 1 <= len(self.sources) <= MAX_MAPPED_SOURCES:
            raise ValueError(f"needs 1 to {MAX_MAPPED_SOURCES} sources")
        for s in self.sources:
            if s.version != self.group.version:
                raise ValueError(f"source {s} is not of the group's family")
            if s.num_addresses != 1:
                raise ValueError(f"source {s} is a prefix: a source is one address")
        return self


def _ssm_map_within_ranges(settings: Any, family: Family) -> Any:
    ranges = settings.ssm_ranges if settings.ssm_ranges is not None else SSM_RANGES[family]
    for i, entry in enumerate(settings.ssm_map):
        if entry.group.version != family:
            raise ValueError(f"ssm-map[{i}]: {entry.group} is not an IPv{family} prefix")
        if not any(entry.group.subnet_of(r) for r in ranges if r.version == entry.group.version):
            raise ValueError(f"ssm-map[{i}]: {entry.group} is not within the SSM ranges "
                             f"({', '.join(map(str, ranges)) or 'none'}): only SSM groups are "
                             "mapped (elsewhere an older host's join is already any-source)")
    return settings


class IgmpSettings(_Model):
    version: Literal[1, 2, 3] = 3
    # RFC 4604: any-source joins (EXCLUDE mode, IGMPv1/v2) to these groups are ignored.
    # Default: 232.0.0.0/8 (RFC 4607); [] turns the rule off.
    ssm_ranges: Annotated[
        tuple[GroupPrefix, ...] | None, AfterValidator(_of_family(Family.V4))
    ] = None
    ssm_map: tuple[SsmMapEntry, ...] = ()

    @model_validator(mode="after")
    def _map(self) -> IgmpSettings:
        return _ssm_map_within_ranges(self, Family.V4)  # type: ignore[no-any-return]

    def mapping(self) -> SsmMap:
        return _mapping(self.ssm_map)


class MldSettings(_Model):
    version: Literal[1, 2] = 2
    # The same for MLD; default ff3x::/32 for every scope x (RFC 4607).
    ssm_ranges: Annotated[
        tuple[GroupPrefix, ...] | None, AfterValidator(_of_family(Family.V6))
    ] = None
    ssm_map: tuple[SsmMapEntry, ...] = ()

    @model_validator(mode="after")
    def _map(self) -> MldSettings:
        return _ssm_map_within_ranges(self, Family.V6)  # type: ignore[no-any-return]

    def mapping(self) -> SsmMap:
        return _mapping(self.ssm_map)


def _mapping(entries: tuple[SsmMapEntry, ...]) -> SsmMap:
    return SsmMap((e.group, [s.network_address.packed for s in e.sources]) for e in entries)


def _link_router(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A router on a downstream link: a unicast address; for MLD, link-local, where MLD
    queries come from (RFC 9777 §5.1.14)."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if address.is_multicast or address.is_unspecified:
        raise ValueError(f"{address} is not a unicast address")
    if address.version == 6 and not address.is_link_local:
        raise ValueError(f"{address} is not link-local: MLD queries come from link-local "
                         "addresses (RFC 9777 §5.1.14)")
    return address


LinkRouter = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address,
                       BeforeValidator(_link_router)]


def _static_address(kind: str) -> Callable[[Any], ipaddress.IPv4Address | ipaddress.IPv6Address]:
    def check(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if kind == "group":
            if not address.is_multicast:
                raise ValueError(f"{address} is not a multicast group")
            if ((address.version == 4 and address in ipaddress.ip_network("224.0.0.0/24"))
                    or (address.version == 6 and address.packed[1] & 0x0F <= 2)):
                raise ValueError(f"{address} is of link-local scope: never proxied")
        elif address.is_multicast or address.is_unspecified:
            raise ValueError(f"{address} is not a unicast source")
        return address

    return check


class StaticGroup(_Model):
    """A static group (RFC 8652 ``static-group``): the link always receives ``group``, from
    ``source`` (absent: any source), whoever reports it."""

    group: Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address,
                     BeforeValidator(_static_address("group"))]
    source: Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address | None,
                      BeforeValidator(_static_address("source"))] = None

    @model_validator(mode="after")
    def _one_family(self) -> StaticGroup:
        if self.source is not None and self.source.version != self.group.version:
            raise ValueError(f"source {self.source} is not of the group's family")
        return self


def static_entries(entries: Iterable[StaticGroup], family: Family,
                   ) -> dict[bytes, frozenset[bytes] | None]:
    """A link's static groups of ``family``: group -> its sources (None: any source, which
    an entry without a source asks for whatever others ask)."""
    out: dict[bytes, frozenset[bytes] | None] = {}
    for e in entries:
        if e.group.version != family:
            continue
        group = e.group.packed
        if e.source is None or (group in out and out[group] is None):
            out[group] = None
        else:
            out[group] = (out.get(group) or frozenset()) | {e.source.packed}
    return out


class Downstream(_Model):
    """A downstream link. What it trusts (README, "Security"):

    ``querier``: ``always`` (the default, a link with hosts only): the proxy is its querier
    and drops every query from another address, so that no host can take the querier's role
    (RFC 9776 §9.1); ``elect``: the election of RFC 9776 §6.6.2 among ``routers`` (none
    listed: any sender, the RFC's behaviour). ``max-robustness`` and ``max-query-interval``
    bound the QRV and QQI adopted from another querier (§4.1.6, §4.1.7; never below the link's
    own). ``specific-query-rate``: Group-Specific and Group-and-Source-Specific Queries per
    second, beyond which the last-member queries are merged into one General Query.
    ``require-router-alert`` and ``verify-source-subnet`` (RFC 8652) relax or tighten the
    validity rules (``membership.validity``).
    """

    interface: InterfaceName
    fast_leave: bool = False
    # The link's own timers, each validated alone; those it sets (``timers_set``) overlay the
    # global ones (``Config.downstream_timers``).
    timers: ProtocolTimers | None = None
    querier: Literal["always", "elect"] = QuerierMode.ALWAYS.value
    routers: tuple[LinkRouter, ...] = ()
    max_robustness: int = Field(4, ge=1, le=7)
    max_query_interval: Duration = Field(300.0, ge=1, le=31744)
    specific_query_rate: int = Field(100, ge=0, le=1_000_000)
    require_router_alert: bool | None = None
    verify_source_subnet: bool = False
    static_group: tuple[StaticGroup, ...] = ()
    # What may be joined on the link and how much it may hold (``policyconfig``).
    policy: LinkPolicy = LinkPolicy()
    _timers_set: frozenset[str] = PrivateAttr(frozenset())

    @field_validator("routers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _routers_take_part_in_an_election(self) -> Downstream:
        if self.routers and self.querier == "always":
            raise ValueError("routers are the senders that take part in the querier "
                             "election: they need querier: elect")
        return self

    def querier_policy(self) -> QuerierPolicy:
        """Who may be querier on the link, as the router side takes it."""
        return QuerierPolicy(QuerierMode(self.querier), frozenset(r.packed for r in self.routers),
                             self.max_robustness, self.max_query_interval)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_timers_set(
        cls, data: Any, handler: ModelWrapValidatorHandler[Downstream]
    ) -> Downstream:
        link = handler(data)
        given = data.get("timers") if isinstance(data, dict) else None
        if isinstance(given, dict):  # the keys written
            link._timers_set = frozenset(str(key).replace("-", "_") for key in given)
        elif isinstance(given, ProtocolTimers):  # made in Python: what differs from the RFC's
            link._timers_set = frozenset(
                f.name for f in dataclasses.fields(given)
                if getattr(given, f.name) != getattr(_DEFAULT_TIMERS, f.name)
            )
        return link

    @property
    def timers_set(self) -> frozenset[str]:
        """The fields of ``timers`` the link sets itself (the rest are the global ones)."""
        return self._timers_set


class Record(_Model):
    """An address prefix record (draft §4.1): (subscriber, (source, group)); null is any."""

    subscriber: UnicastPrefix | None = None
    source: UnicastPrefix | None = None
    group: GroupPrefix | None = None

    @model_validator(mode="after")
    def _one_family(self) -> Record:
        prefixes = [p for p in (self.subscriber, self.source, self.group) if p is not None]
        if not prefixes:
            raise ValueError(
                "a record needs at least one of subscriber, source, group; a candidate "
                "with no records already serves everything by its priority (draft §4.3)"
            )
        if len({p.version for p in prefixes}) > 1:
            raise ValueError("a record mixes IPv4 and IPv6 prefixes")
        return self

    @property
    def family(self) -> Family:
        return Family(next(p.version for p in (self.subscriber, self.source, self.group) if p))

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (("subscriber", self.subscriber), ("source", self.source),
                                ("group", self.group))
            if value is not None
        ]
        return "{" + ", ".join(parts) + "}"

    def as_dict(self) -> dict[str, str]:
        return {
            name: str(value)
            for name, value in (("subscriber", self.subscriber), ("source", self.source),
                                ("group", self.group))
            if value is not None
        }


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _data_interval(value: float | None) -> float | None:
    if value is not None and value < MIN_DATA_INTERVAL:
        raise ValueError(f"must be at least {MIN_DATA_INTERVAL * 1000:.0f}ms (the counters "
                         f"are read every quarter of it)")
    return value


class Evidence(_Model):
    """What tells that an upstream is active (draft §5.1): its link, and/or IGMP/MLD queries
    or PIM hellos from its routers within the active interval; and, per channel, its data.

    ``data``: a channel that was delivering on this upstream and then has no packet for this
    long (the kernel's per-route counters, sampled four times in that span) is dead on this
    upstream alone: a hot standby feeds in its place, or, with takeover, the channel alone
    is selected again without it. Set it above the longest gap a channel may have.
    """

    link: bool = True
    queries: bool = False
    hellos: bool = False
    data: Annotated[Duration | None, AfterValidator(_data_interval)] = None


def _hold_down(value: Any) -> Any:
    return None if value == "never" else parse_duration(value)


class Candidate(_Model):
    """A candidate upstream interface (draft §4)."""

    interface: InterfaceName
    priority: int = Field(0, ge=-(2**31), le=2**31 - 1)
    # The interface's address for the §4.4 fallback, when it cannot be read from the system.
    address: tuple[Annotated[Any, BeforeValidator(_address)], ...] = ()
    active_interval: Duration | None = Field(None, gt=0)
    liveness: Evidence = Evidence()
    # The upstream routers whose queries and hellos count (draft §7); none: any sender.
    routers: tuple[Annotated[Any, BeforeValidator(_address)], ...] = ()
    hold_down: Duration | None = Field(None, ge=0)
    records: tuple[Record, ...] = ()
    # Upstream admission (``placement``): what this upstream may carry; unset: unlimited.
    max_bandwidth: BandwidthLimit | None = None
    max_groups: Limit | None = None
    # An AMT upstream (RFC 7450): the interface is a TUN device the proxy makes for it.
    amt: AmtSettings | None = None

    @field_validator("address", "routers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _at_least_one(what: str) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    # An after-validator rather than Field(min_length=1): the latter also fires, misleadingly,
    # when every item failed validation.
    def check(items: tuple[Any, ...]) -> tuple[Any, ...]:
        if not items:
            raise ValueError(f"needs at least one {what}")
        return items

    return check


def _fits_vif_table(links: tuple[Downstream, ...]) -> tuple[Downstream, ...]:
    if len(links) > MAX_DOWNSTREAM:
        raise ValueError(
            f"{len(links)} downstream interfaces, but a Linux multicast routing table holds "
            f"32 interfaces (MAXVIFS): one upstream and at most {MAX_DOWNSTREAM} downstream"
        )
    return links


class Upstream(_Model):
    default: InterfaceName | None = None
    takeover: bool = True
    active_interval: Duration | None = Field(None, gt=0)
    # Before an upstream that is back takes its subscriptions back; "never": it does not
    # (new subscriptions may use it at once).
    hold_down: Annotated[float | None, BeforeValidator(_hold_down)] = Field(10.0, ge=0)
    # Channels also joined on the next-ranked usable upstream as hot standby, even with no
    # tie (multicast-only fast reroute in the manner of RFC 7431): a failure costs a swap.
    resilient: tuple[Record, ...] = ()
    # On a graceful stop, leave upstream what was joined (the upstream stops sending at once
    # instead of when its membership times out).
    leave_on_stop: bool = True
    # Tied candidates (draft §3.3): all asked (robust), or each channel placed on the one
    # with the most room (share; ``placement``).
    ties: Literal["robust", "share"] = "robust"
    candidates: Annotated[tuple[Candidate, ...], AfterValidator(_at_least_one("candidate"))]


class Config(_Model):
    igmp: IgmpSettings | None = None
    mld: MldSettings | None = None
    timers: ProtocolTimers = _DEFAULT_TIMERS
    downstream: Annotated[
        tuple[Downstream, ...],
        AfterValidator(_at_least_one("downstream interface")),
        AfterValidator(_fits_vif_table),
    ]
    upstream: Upstream
    # What may be joined, and the limits on state, for every downstream link (``policyconfig``).
    policy: GlobalPolicy = GlobalPolicy()
    metrics: MetricsSettings | None = None
    accounting: AccountingSettings | None = None
    # The controller API (``apiconfig``, ``api``): off when absent.
    api: ApiSettings | None = None

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.upstream.candidates if c.interface == name)

    def downstream_timers(self, name: str) -> ProtocolTimers:
        """The timers in force on downstream link ``name``: global, overlaid by its own, held
        to the file's rules."""
        link = next(d for d in self.downstream if d.interface == name)
        if link.timers is None:
            return self.timers
        own = {field: getattr(link.timers, field) for field in link.timers_set}
        return _TIMERS.validate_python({**dataclasses.asdict(self.timers), **own},
                                       context=FROM_FILE)

    def active_interval(self, name: str) -> float:
        """Draft §5.2: per candidate, else global, else about twice the query interval."""
        own = self.candidate(name).active_interval
        return own or self.upstream.active_interval or 2 * self.timers.query_interval

    def data_intervals(self) -> dict[str, float]:
        """The candidates whose channels are watched for data, and the silence that kills."""
        return {c.interface: c.liveness.data for c in self.upstream.candidates
                if c.liveness.data is not None}

    def sample_period(self) -> float | None:
        """How often the kernel's route counters are read: a quarter of the shortest data
        interval, so a silence is seen within 1¼ of it; None when no data is watched."""
        intervals = self.data_intervals().values()
        return min(intervals) / 4 if intervals else None


# --- loading -------------------------------------------------------------------------------


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("function-") and part not in ("ProtocolTimers",
                                                                "constrained-str"):
            # A key from the file is shown quoted when it could break the one-line refusal
            # (a newline, a control character) or would be invisible (empty, blank).
            plain = part.strip() and all(c.isprintable() and c not in " \t" for c in part)
            name = part if plain else json.dumps(part)
            out += f".{name}" if out else name
    return out


def _reason(error: ErrorDetails) -> str:
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown key"
    if error["type"] == "missing":
        return "is required"
    return msg


def _static_issues(config: Config) -> list[ConfigIssue]:
    """Static groups that could never be held: of a protocol that is off, or any-source in
    the SSM range (RFC 4604: an SSM group is joined with its sources)."""
    issues = []
    for i, d in enumerate(config.downstream):
        for j, s in enumerate(d.static_group):
            path = f"downstream[{i}].static-group[{j}]"
            proto = config.igmp if s.group.version == 4 else config.mld
            if proto is None:
                name = "igmp" if s.group.version == 4 else "mld"
                issues.append(ConfigIssue(path, f"{s.group} needs {name}, which is off"))
                continue
            ranges = proto.ssm_ranges
            if ranges is None:
                ranges = SSM_RANGES[Family(s.group.version)]
            if s.source is None and any(s.group in r for r in ranges):
                issues.append(ConfigIssue(path, f"{s.group} is an SSM group: it needs a "
                                                "source (RFC 4604)"))
    return issues


def _cross_checks(config: Config) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = _static_issues(config)
    seen: dict[str, str] = {}
    places = [(f"downstream[{i}].interface", d.interface) for i, d in enumerate(config.downstream)]
    places += [
        (f"upstream.candidates[{i}].interface", c.interface)
        for i, c in enumerate(config.upstream.candidates)
    ]
    for path, name in places:
        if name in seen:
            first = seen[name]
            both = "downstream" in first and "upstream" in path
            why = "is both downstream and upstream" if both else "is listed twice"
            issues.append(ConfigIssue(path, f"interface {name} {why} (first at {first})"))
        else:
            seen[name] = path
    names = [c.interface for c in config.upstream.candidates]
    if config.upstream.default is not None and config.upstream.default not in names:
        issues.append(
            ConfigIssue(
                "upstream.default",
                f"{config.upstream.default} is not a candidate upstream (candidates: "
                f"{', '.join(names)})",
            )
        )
    for ci, cand in enumerate(config.upstream.candidates):
        first_at: dict[Record, int] = {}
        for ri, record in enumerate(cand.records):
            if record in first_at:
                issues.append(
                    ConfigIssue(
                        f"upstream.candidates[{ci}].records[{ri}]",
                        f"duplicates records[{first_at[record]}] {record.describe()}",
                    )
                )
            else:
                first_at[record] = ri
    for di, link in enumerate(config.downstream):
        # A link's own timers are overlaid on the global ones: the result must hold too
        # (its query-response-interval below the query-interval it inherits, say).
        if link.timers is None:
            continue
        try:
            config.downstream_timers(link.interface)
        except ValidationError as exc:
            issues += [ConfigIssue(f"downstream[{di}].timers",
                                   f"with the global timers, {_reason(e)}")
                       for e in exc.errors(include_url=False)]
    issues += [ConfigIssue(path, reason) for path, reason in
               policy_issues(config.policy, [d.policy for d in config.downstream])]
    if config.igmp is None and config.mld is None:
        issues.append(ConfigIssue("", "neither igmp nor mld is enabled: nothing to proxy"))
    return issues


# What a file may cost to read. A configuration of thousands of records is a few hundred KiB.
def parse_config(text: str | bytes, source: str = "<config>") -> Config:
    """Validate YAML ``text`` (UTF-8 if ``bytes``); raise ConfigError listing every
    problem. Raises nothing else, whatever the input."""
    data = read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the file must hold a mapping of settings")])
    issues = check_numbers(data)
    if issues:
        raise ConfigError(issues)
    try:
        config = Config.model_validate(data, context=FROM_FILE)
        issues = _cross_checks(config)
    except ValidationError as exc:
        raise ConfigError(
            ConfigIssue(_path(e["loc"]), _reason(e)) for e in exc.errors(include_url=False)
        ) from None
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError) as exc:
        # A validator that did not expect what it got: still a refusal, not a traceback.
        raise ConfigError([ConfigIssue("", f"cannot be validated: {one_line(exc)}")]) from None
    if issues:
        raise ConfigError(issues)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate the file at ``path``; raise ConfigError on any problem."""
    try:
        # Not a FIFO (reading one would block), and not more than a configuration may hold.
        info = Path(path).stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([ConfigIssue("", f"cannot read {path}: not a regular file")])
        if info.st_size > MAX_FILE_SIZE:
            raise ConfigError([too_large()])
        with Path(path).open("rb") as file:
            data = file.read(info.st_size + 1)
            if len(data) > info.st_size:  # it grew, or does not tell its size (/proc)
                data += file.read(MAX_FILE_SIZE + 1 - len(data))
    except OSError as exc:
        why = exc.strerror or one_line(exc)
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {why}")]) from None
    config = parse_config(data, str(path))
    issues = log_path_issues(config.accounting)  # what this host says of the file's paths
    issues += [ConfigIssue(path, reason) for path, reason in api_issues(config.api)]
    if issues:
        raise ConfigError(issues)
    return config
