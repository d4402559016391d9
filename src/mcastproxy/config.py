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
import math
import stat
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
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

from mcastproxy.apiconfig import ApiSettings, api_issues
from mcastproxy.configtypes import GroupPrefix, Model, Network, UnicastPrefix
from mcastproxy.family import Family
from mcastproxy.membership.addresses import SSM_RANGES
from mcastproxy.membership.querier import QuerierMode, QuerierPolicy
from mcastproxy.membership.ssmmap import SsmMap
from mcastproxy.membership.timers import FROM_FILE, ProtocolTimers, parse_duration
from mcastproxy.policyconfig import BandwidthLimit, GlobalPolicy, Limit, LinkPolicy, policy_issues

# Linux allows 32 VIFs per multicast routing table (MAXVIFS); each table holds one upstream
# and the downstream links, so at most 31 downstream links.
MAX_DOWNSTREAM = 31
IFNAMSIZ = 16
MIN_DATA_INTERVAL = 0.02  # 20 ms: counters read every 5 ms at the most

# libyaml's safe loader when PyYAML was built with it: ten times faster on large record lists.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ConfigError(Exception):
    """A configuration that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


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


AMT_PORT = 2268  # RFC 7450 §7: the relay's UDP port


def _relay_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = _address(value)
    if address.is_multicast or address.is_unspecified or (
            address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{address} is not a unicast address (a relay, or the anycast "
                         "discovery address of RFC 7450 §4.1.1)")
    return address


class AmtSettings(_Model):
    """An AMT upstream (RFC 7450): a relay tunnels its channels to a TUN the proxy makes.

    The candidate's interface is that TUN device (``amt.upstream``). ``relay``: the relay's
    unicast address; ``discovery``: an address to find one at by Relay Discovery (RFC 7450
    §5.2.3.4; the anycast address of §4.1.1). One of the two; its family is the tunnel's
    (IPv4 or IPv6 over UDP ``port``). ``querier``: the source the relay's
    General Queries carry inside the TUN, one address per inner family (IPv4 default 0.0.0.0,
    IPv6 default fe80::1; an MLD querier's is link-local, RFC 9777 §5.1.14).
    """

    relay: Annotated[Any, BeforeValidator(_relay_address)] | None = None
    discovery: Annotated[Any, BeforeValidator(_relay_address)] | None = None
    port: int = Field(AMT_PORT, ge=1, le=65535)
    querier: tuple[Annotated[Any, BeforeValidator(_address)], ...] = ()

    @field_validator("querier", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_relay(self) -> AmtSettings:
        if (self.relay is None) == (self.discovery is None):
            raise ValueError("give relay (the relay's address) or discovery (an address to "
                             "discover one at), one of the two")
        versions = [q.version for q in self.querier]
        for q in self.querier:
            if versions.count(q.version) > 1:
                raise ValueError(f"querier: one address per family, {versions.count(q.version)} "
                                 f"IPv{q.version} given")
            if q.version == 6 and not q.is_link_local:
                raise ValueError(f"querier: {q} is not link-local, as an MLD query's source "
                                 "must be (RFC 9777 §5.1.14)")
            if q.version == 4 and (q.is_multicast or q.is_loopback or
                                   q == ipaddress.IPv4Address("255.255.255.255")):
                raise ValueError(f"querier: {q} is not a unicast address")
        return self

    @property
    def target(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The relay's address, or the discovery address."""
        target = self.relay if self.relay is not None else self.discovery
        assert target is not None  # _one_relay
        return target  # type: ignore[no-any-return]


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


def _listen_address(value: Any) -> tuple[str, int]:
    """``ADDRESS:PORT`` (``[ADDRESS]:PORT`` for IPv6): an IP address, never a name to look
    up, and a port 1-65535."""
    if not isinstance(value, str):
        raise ValueError("expected ADDRESS:PORT")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: expected ADDRESS:PORT with a port 1-65535")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (names are not looked up)") from None
    return str(address), int(port)


class MetricsSettings(_Model):
    """Prometheus metrics (``metrics``): served at http://LISTEN/metrics. Metrics name no
    subscriber, but they tell what the proxy carries: listen on loopback or a management
    address."""

    listen: Annotated[tuple[str, int], BeforeValidator(_listen_address)]


# --- accounting ----------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MIN_LOG_SIZE = 1 << 12  # a rotated file holds at least a few lines


def _size(value: Any) -> int:
    """Octets: a bare number, or with k, M or G (powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 100M")
    if isinstance(value, int):
        number, unit = value, ""
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().removesuffix("b").removesuffix("i")
        unit = text[-1] if text[-1] in "kmg" else ""
        digits = text[:-1] if unit else text
        if not digits.isdigit() or len(digits) > 15:
            raise ValueError(f"{value!r} is not a size (a number of octets, or with k, M, G)")
        number = int(digits)
    else:
        raise ValueError("expected a size such as 100M")
    size = number * _SIZE_UNITS[unit]
    if not MIN_LOG_SIZE <= size <= 1 << 50:
        raise ValueError(f"{value!r}: between {MIN_LOG_SIZE} octets and 1P")
    return size


def _log_path(value: Any) -> Path:
    """An absolute path to a file: never a directory, no NUL, no control character."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected the absolute path of a file")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(f"{value!r} holds a control character")
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    if value.endswith("/") or Path(value).name in ("", ".", ".."):
        raise ValueError(f"{value!r} names a directory, not a file")
    if len(value.encode()) >= 4096:
        raise ValueError("longer than PATH_MAX")
    return Path(value)


LogPath = Annotated[Path, BeforeValidator(_log_path)]


class AccountingSettings(_Model):
    """Accounting (RFC 8313 §4.3.3, §4.6): the kernel's per-route counters read every
    ``sample-interval`` into bytes and packets per channel, upstream and downstream link
    (``status``' ``accounting``, the metrics); a session log and a security log of JSON lines
    where paths are given. Off when the section is absent."""

    session_log: LogPath | None = None
    security_log: LogPath | None = None
    max_size: Annotated[int | None, BeforeValidator(lambda v: None if v is None else _size(v))
                        ] = None
    keep: int = Field(10, ge=1, le=1000)
    sample_interval: Duration = Field(10.0, ge=0.1, le=3600)


def log_path_issues(settings: AccountingSettings | None) -> list[ConfigIssue]:
    """What this host says of the log paths: their directory must exist, and each must be a
    regular file or not exist yet (``load_config``: at ``check``, at the start and at each
    reload, so that a reload with a bad path is refused whole). A file or directory the proxy
    may not write is refused when it opens the log (``meter``), the reload as whole."""
    if settings is None:
        return []
    issues = []
    paths = [(f"accounting.{key}", p) for key, p in (("session-log", settings.session_log),
                                                       ("security-log", settings.security_log))
             if p is not None]
    if len(paths) == 2 and paths[0][1] == paths[1][1]:
        issues.append(ConfigIssue(paths[1][0], f"{paths[1][1]} is also the session-log"))
    for where, path in paths:
        try:
            why = _unwritable(path)
        except OSError as exc:
            why = exc.strerror or str(exc)
        if why:
            issues.append(ConfigIssue(where, f"{path}: {why}"))
    return issues


def _unwritable(path: Path) -> str | None:
    directory = path.parent
    if not directory.exists():
        return f"no directory {directory}"
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if path.exists() or path.is_symlink():
        info = path.stat() if path.exists() else None
        if info is None:
            return "a dangling symbolic link"
        if stat.S_ISDIR(info.st_mode):
            return "is a directory"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
    return None


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
MAX_FILE_SIZE = 16 * 2**20  # octets
# Collections within collections: the file's deepest are the fields of a record, six down.
# libyaml builds its nodes recursively in C, so that a deep enough file would crash it.
MAX_NESTING = 16
# Anchors and aliases are allowed (a list of records or routers written once, used by several
# candidates) but bounded. An alias stands for its anchor's whole node without it being written
# again, so a few hundred octets of aliases of aliases can stand for billions of nodes (the
# "billion laughs"), which validation would walk one by one. Bounding the number of aliases
# would not do (nine aliases of nine aliases, nine deep, are 81 aliases for 9^9 nodes):
# what is bounded is the nodes they add, counted as if every alias were written out.
MAX_ALIAS_NODES = 10_000
_MERGE = "tag:yaml.org,2002:merge"  # ``<<: *defaults``


def parse_config(text: str | bytes, source: str = "<config>") -> Config:
    """Validate YAML ``text`` (UTF-8 if ``bytes``); raise ConfigError listing every
    problem. Raises nothing else, whatever the input."""
    data = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the file must hold a mapping of settings")])
    issues = _check_numbers(data)
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
        raise ConfigError([ConfigIssue("", f"cannot be validated: {_one_line(exc)}")]) from None
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
            raise ConfigError([_too_large()])
        with Path(path).open("rb") as file:
            data = file.read(info.st_size + 1)
            if len(data) > info.st_size:  # it grew, or does not tell its size (/proc)
                data += file.read(MAX_FILE_SIZE + 1 - len(data))
    except OSError as exc:
        why = exc.strerror or _one_line(exc)
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {why}")]) from None
    config = parse_config(data, str(path))
    issues = log_path_issues(config.accounting)  # what this host says of the file's paths
    issues += [ConfigIssue(path, reason) for path, reason in api_issues(config.api)]
    if issues:
        raise ConfigError(issues)
    return config


def _too_large() -> ConfigIssue:
    return ConfigIssue("", f"larger than {MAX_FILE_SIZE // 2**20} MiB: too large for a "
                           "configuration")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_yaml(text: str | bytes, source: str) -> Any:
    """The data of YAML ``text``, refused (ConfigError) if it is too large, not UTF-8, not
    YAML, nested too deep, or expands its aliases beyond ``MAX_ALIAS_NODES``."""
    if len(text) > MAX_FILE_SIZE:
        raise ConfigError([_too_large()])
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            octet = exc.object[exc.start]
            raise ConfigError([ConfigIssue("", f"not UTF-8 text: octet 0x{octet:02x} at offset "
                                               f"{exc.start}")]) from None
    try:
        _check_nesting(text)  # before libyaml builds nodes, recursively
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).split("\n  in ")[0]
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not take
            where = f"character {exc.position + 1}"
        problem = " ".join(problem.split())
        raise ConfigError([ConfigIssue("", f"YAML syntax error at {where}: {problem}")]) from None
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        # An integer of 5,000 digits (ValueError), text that is not Unicode (UnicodeError)...
        raise ConfigError([ConfigIssue("", f"cannot be read as YAML: {_one_line(exc)}")]
                          ) from None


def _check_nesting(text: str) -> None:
    """Refuse collections nested deeper than ``MAX_NESTING``, reading parser events only
    (libyaml's parser keeps its own stack) and stopping at the first too deep."""
    loader = _Loader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    raise ConfigError([ConfigIssue("", f"nested more than {MAX_NESTING} deep at "
                                                       f"line {mark.line + 1}")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node) -> None:
    """Refuse what the YAML's nodes would become once every alias is expanded: more than
    ``MAX_ALIAS_NODES`` nodes added by aliases, collections nested more than ``MAX_NESTING``
    deep, an alias inside the node it names; and mapping keys that are not names (strings).
    Each node is visited once (an alias is the node it names), depth first, with no
    recursion."""
    size: dict[int, int] = {}  # node -> nodes it stands for, aliases expanded
    depth: dict[int, int] = {}  # node -> collections nested in it, itself included
    open_: set[int] = set()  # nodes whose children are being visited
    written = 0
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = (1 + max((depth[id(c)] for c in children), default=0)
                          if isinstance(node, yaml.CollectionNode) else 0)
            if depth[key] > MAX_NESTING:
                raise ConfigError([ConfigIssue("", f"nested more than {MAX_NESTING} deep, "
                                                   f"aliases expanded, {_at(node)}")])
            if size[key] - written > MAX_ALIAS_NODES:
                raise ConfigError([ConfigIssue("", f"aliases expand to more than "
                                                   f"{MAX_ALIAS_NODES:,} nodes, {_at(node)}")])
            continue
        if key in size:
            continue
        written += 1
        open_.add(key)
        todo.append((node, True))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, _ in node.value:
                if not (isinstance(k, yaml.ScalarNode) and k.tag in (
                        "tag:yaml.org,2002:str", _MERGE)):
                    name = k.value if isinstance(k, yaml.ScalarNode) else "a collection"
                    raise ConfigError([ConfigIssue("", f"a key is a name: {name!r} is not, "
                                                       f"{_at(k)}")])
                if k.tag != _MERGE:
                    # YAML would keep the last and drop the first without a word.
                    if k.value in seen:
                        raise ConfigError([ConfigIssue("", f"key {k.value!r} is given twice "
                                                           f"in one mapping, {_at(k)}")])
                    seen.add(k.value)
        for child in children:
            if id(child) in open_:
                raise ConfigError([ConfigIssue("", f"an alias names a node it is in, "
                                                   f"{_at(child)}")])
            if id(child) not in size:
                todo.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _at(node: yaml.Node) -> str:
    return f"at line {node.start_mark.line + 1}"


def _check_numbers(data: Any) -> list[ConfigIssue]:
    """Numbers that are not finite (``.inf``, ``.nan``, ``1e999``): no setting takes one."""
    issues = []
    seen: set[int] = set()
    todo: list[tuple[str, Any]] = [("", data)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(ConfigIssue(path, f"{value} is not a finite number"))
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            todo += ((f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else
                      str(k), v) for k, v in items)
    return sorted(issues, key=lambda i: i.path)
