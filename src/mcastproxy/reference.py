"""The configuration reference, made from the configuration's models so that it cannot drift:
``python -m mcastproxy.reference > docs/configuration.md``.

Every section of the file (a model of ``config``, ``policyconfig`` or the protocol timers) is a
table of its keys with the default and the range the models enforce, and what each means
with the RFC or draft section it comes from (``MEANING``). A test fails when a key of a model
has no meaning written here, when a meaning is left for a key that is gone, and when
docs/configuration.md is not what this module makes.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Iterator
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mcastproxy.config import Config

# "Model.field" -> what it means, and where it comes from.
MEANING: dict[str, str] = {
    "Config.igmp": "IPv4: proxy IGMP (absent: IPv4 is not proxied).",
    "Config.mld": "IPv6: proxy MLD (absent: IPv6 is not proxied).",
    "Config.timers": "The protocol timers of every link (RFC 9776 §8, RFC 9777 §9).",
    "Config.downstream": "The downstream (subscriber) links, at least one (RFC 4605 §2).",
    "Config.upstream": "The upstream candidates and how they are chosen (draft §3-§5).",
    "Config.policy": "What may be joined and what state may cost, for every link "
                     "(RFC 8313 §6.1; README, Policy and limits).",
    "Config.metrics": "Prometheus metrics (absent: no listener).",
    "IgmpSettings.version": "The IGMP version the router side speaks (RFC 9776 §7).",
    "IgmpSettings.ssm_ranges": "Groups taken as SSM: any-source joins to them are ignored "
                               "(RFC 4604; default 232.0.0.0/8, RFC 4607; [] turns it off).",
    "IgmpSettings.ssm_map": "SSM mapping: older hosts' joins of these SSM groups become "
                            "joins of the given sources.",
    "MldSettings.version": "The MLD version the router side speaks (RFC 9777 §8).",
    "MldSettings.ssm_ranges": "Groups taken as SSM (RFC 4604; default ff3x::/32 for every "
                              "scope, RFC 4607; [] turns it off).",
    "MldSettings.ssm_map": "SSM mapping for MLDv1 hosts.",
    "SsmMapEntry.group": "A group prefix within the SSM ranges.",
    "SsmMapEntry.sources": "The sources an older host's join of such a group asks for "
                           "(1 to 64 addresses).",
    "ProtocolTimers.robustness": "Robustness Variable (RFC 9776 §8.1).",
    "ProtocolTimers.query_interval": "Query Interval between General Queries (§8.2).",
    "ProtocolTimers.query_response_interval": "Max Response Time of General Queries (§8.3).",
    "ProtocolTimers.last_member_query_interval": "Last Member Query Interval (§8.8).",
    "ProtocolTimers.last_member_query_count": "Last Member Query Count (§8.9; default: the "
                                              "Robustness Variable).",
    "ProtocolTimers.startup_query_interval": "Startup Query Interval (§8.6; default: a "
                                             "quarter of the Query Interval).",
    "ProtocolTimers.startup_query_count": "Startup Query Count (§8.7; default: the "
                                          "Robustness Variable).",
    "ProtocolTimers.unsolicited_report_interval": "Between an upstream's retransmitted "
                                                  "state-change reports (§8.11).",
    "Downstream.interface": "The link's interface name (1-15 octets, as the kernel takes).",
    "Downstream.fast_leave": "End a group at once when its last tracked subscriber leaves "
                             "(explicit tracking, RFC 9776 §6.6.3 without the queries).",
    "Downstream.timers": "This link's own timers, over the global ones.",
    "Downstream.querier": "always: the proxy is querier and drops others' queries; elect: "
                          "the RFC 9776 §6.6.2 election among routers (README, Security).",
    "Downstream.routers": "With querier: elect, who takes part (none: any sender).",
    "Downstream.max_robustness": "Ceiling on the QRV adopted from another querier "
                                 "(RFC 9776 §4.1.6).",
    "Downstream.max_query_interval": "Ceiling on the QQI adopted from another querier "
                                     "(§4.1.7).",
    "Downstream.specific_query_rate": "Group-specific queries a second; beyond, they are "
                                      "merged into a General Query (0: none).",
    "Downstream.require_router_alert": "true: every message needs Router Alert, IGMPv1 too; "
                                       "false: not checked; unset: the RFCs' rule "
                                       "(RFC 8652, RFC 9776 §9.2).",
    "Downstream.verify_source_subnet": "IGMP reports only from the link's subnets or "
                                       "0.0.0.0 (RFC 8652, RFC 9776 §9.2).",
    "Downstream.policy": "This link's policy and limits, over the global ones.",
    "Downstream.static_group": "Groups the link always receives, whoever reports them "
                               "(RFC 8652 static-group); never refused by policy, counted "
                               "by the limits.",
    "StaticGroup.group": "The group (one multicast address, not of link-local scope).",
    "StaticGroup.source": "Its source (absent: any source; an SSM group needs one).",
    "LinkPolicy.default": "permit or deny when no rule of any level matches.",
    "LinkPolicy.ssm_only": "Refuse any-source joins on this link.",
    "LinkPolicy.group_policy": "Ordered rules, first match wins, tried after a subscriber "
                               "prefix's and before the global ones (RFC 8652).",
    "LinkPolicy.max_groups": "Groups with state on the link, IGMP and MLD together "
                             "(RFC 8652 max-groups).",
    "LinkPolicy.subscriber": "Each subscriber's limits on this link.",
    "LinkPolicy.exceptions": "Channels no limit counts or refuses, with the global ones.",
    "LinkPolicy.subscribers": "Rules and limits per subscriber prefix on this link.",
    "LinkPolicy.report_rate": "This link's report rate limits.",
    "GlobalPolicy.default": "permit or deny when no rule of any level matches "
                            "(unset: permit).",
    "GlobalPolicy.ssm_only": "Refuse any-source joins on every link.",
    "GlobalPolicy.group_policy": "Ordered rules tried last, first match wins (RFC 8652).",
    "GlobalPolicy.max_entries": "(link, group) pairs with state over the proxy "
                                "(RFC 8652 max-entries).",
    "GlobalPolicy.max_groups_per_interface": "Each link's max-groups unless it sets one "
                                             "(RFC 8652).",
    "GlobalPolicy.subscriber": "Each subscriber's limits, unless its link says otherwise.",
    "GlobalPolicy.exceptions": "Channels no limit counts or refuses, on every link.",
    "GlobalPolicy.report_rate": "Report rate limits of every link, unless it says otherwise.",
    "GlobalPolicy.bandwidth": "The channel bandwidth table: what each channel costs "
                              "(RFC 8313 §6.1).",
    "GlobalPolicy.max_bandwidth_per_interface": "Each link's max-bandwidth unless it sets one "
                                                "(bits a second; built in: unlimited).",
    "LinkPolicy.max_bandwidth": "The rates of the channels on the link, both families "
                                "(bits a second: 400M, 1G; built in: unlimited).",
    "SubscriberLimits.max_bandwidth": "The rates of the channels one subscriber holds on a "
                                      "link (bits a second; built in: unlimited).",
    "SubscriberPolicy.max_bandwidth": "Each of these subscribers' max-bandwidth.",
    "BandwidthTable.channels": "Entries of (source, group) prefixes with their rate and class, "
                               "first match wins.",
    "BandwidthTable.default_rate": "The rate of a channel no entry matches (0: not counted).",
    "BandwidthTable.preempt": "A mandatory channel that would take a link past its "
                              "max-bandwidth preempts optional channels, the least watched "
                              "first, instead of going over.",
    "BandwidthTable.learn": "Channels no entry matches cost what they are measured to carry "
                            "(from the kernel's counters), when more than default-rate.",
    "BandwidthTable.learn_margin": "Added to a measured rate, a fraction (0.2: a fifth more).",
    "BandwidthTable.empty_after": "A channel asked upstream this long with no traffic is empty: "
                                  "counted and logged (RFC 8313 §6.1; unset: not watched).",
    "BandwidthTable.refuse_empty_for": "How long a new join of an empty channel is refused "
                                       "(unset: counted only).",
    "ChannelBandwidth.source": "Sources of the channels (absent: any, and any-source joins).",
    "ChannelBandwidth.group": "Groups of the channels (absent: any).",
    "ChannelBandwidth.rate": "Bits a second the channel costs: 8000000, 8M, 2.5M, 500k.",
    "ChannelBandwidth.channel_class": "optional (refused when it does not fit) or mandatory "
                                      "(always admitted, and counted).",
    "PolicyRule.action": "permit or deny.",
    "PolicyRule.source": "Sources the rule covers (absent: any; a rule with a source never "
                         "matches an any-source join).",
    "PolicyRule.group": "Groups the rule covers (absent: any).",
    "SubscriberLimits.max_groups": "Groups one subscriber may hold state for on a link.",
    "SubscriberLimits.max_group_sources": "Sources one subscriber may ask for in a group "
                                          "(RFC 8652 max-group-sources).",
    "ChannelPattern.source": "Sources of the excepted channels (absent: any, and any-source "
                             "joins).",
    "ChannelPattern.group": "Groups of the excepted channels (absent: any).",
    "SubscriberPolicy.prefix": "The subscribers' addresses (IPv6: link-local).",
    "SubscriberPolicy.default": "permit or deny for these subscribers when no rule matches.",
    "SubscriberPolicy.group_policy": "Rules tried first for these subscribers.",
    "SubscriberPolicy.max_groups": "Each of these subscribers' max-groups.",
    "SubscriberPolicy.max_group_sources": "Each of these subscribers' max-group-sources.",
    "ReportRate.subscriber": "Reports and leaves a second from one subscriber (burst: two "
                             "seconds' worth; built in: 100).",
    "ReportRate.link": "Reports and leaves a second from all of a link's subscribers "
                       "(built in: 10,000).",
    "Upstream.default": "The upstream for what no record selects (draft §3.2; absent: the "
                        "highest address).",
    "Upstream.takeover": "Move subscriptions off an upstream that fails (draft §5).",
    "Upstream.active_interval": "How long an upstream stays active without evidence of life "
                                "(draft §5.2; default: about twice the query interval).",
    "Upstream.hold_down": "How long a recovered upstream waits before it takes its channels "
                          "back (none: at once).",
    "Upstream.resilient": "Channels received from every tied upstream at once (robust "
                          "reception, draft §3.3).",
    "Upstream.leave_on_stop": "Leave upstream what was joined when the proxy stops.",
    "Upstream.candidates": "The upstream interfaces, at least one.",
    "Config.accounting": "Accounting, the session log and the security log (RFC 8313 "
                         "§4.3.3, §4.6; README, Accounting); absent: off.",
    "AccountingSettings.session_log": "An absolute path: one JSON line per session start and "
                                      "end (subscriber, channel, link, upstreams, times, zap "
                                      "time, bytes); absent: no session log.",
    "AccountingSettings.security_log": "An absolute path: refused joins and queries, routers "
                                       "not configured, and drops counted each second by "
                                       "interface and reason, as JSON lines; absent: none.",
    "AccountingSettings.max_size": "Rotate a log by itself once it would pass this size "
                                   "(octets, or with k, M, G); absent: never (logrotate).",
    "AccountingSettings.keep": "Rotated files kept by max-size rotation: PATH.1 .. PATH.KEEP.",
    "AccountingSettings.sample_interval": "Between two readings of every route's counters "
                                          "(one ioctl each, read in 1 ms slices).",
    "Config.api": "The controller API: RESTCONF-style resources (RFC 8040) to read the state "
                  "and configuration and change it like a reload (absent: off; README, "
                  "Controller API).",
    "ApiSettings.socket": "A UNIX socket to serve the API on; its file's rights decide who "
                          "may connect (with no tokens, whoever connects may write).",
    "ApiSettings.socket_mode": "The socket file's rights: 0600 (the daemon's user, the "
                               "default) or 0660 (and its group).",
    "ApiSettings.listen": "ADDRESS:PORT of a TCP listener; needs tls, and tokens or "
                          "tls.client-ca: never unauthenticated, never in clear.",
    "ApiSettings.tls": "TLS (1.2 or later) of the TCP listener.",
    "ApiSettings.tokens": "A file of bearer tokens (RFC 6750), one a line: NAME read|write "
                          "TOKEN (16-256 characters); NAME is who a change is logged as. Read "
                          "at check, start and each reload; others may not read it.",
    "TlsSettings.certificate": "The listener's certificate chain (PEM).",
    "TlsSettings.key": "The listener's private key (PEM).",
    "TlsSettings.client_ca": "When given, every client shows a certificate this CA signed; who "
                             "is its subject.",
    "TlsSettings.client_access": "What a client certificate may do without a token: read "
                                 "(default) or write.",
    "Upstream.ties": "robust: tied candidates are all asked (draft §3.3); share: each channel "
                     "is placed on the tied candidate with the most room.",
    "Candidate.max_bandwidth": "The rates of the channels this upstream carries (bits a "
                               "second; unset: unlimited); a join none can carry is refused.",
    "Candidate.max_groups": "The groups this upstream may be asked for (RFC 8652 max-groups; "
                            "unset: unlimited).",
    "Record.subscriber": "Subscribers the record covers (absent: any; draft §4.1).",
    "Record.source": "Sources the record covers (absent: any).",
    "Record.group": "Groups the record covers (absent: any).",
    "Candidate.interface": "The upstream's interface name.",
    "Candidate.priority": "Higher is preferred among the candidates a record selects "
                          "(draft §3.2).",
    "Candidate.address": "The upstream's address(es), for the default upstream's highest-"
                         "address choice (draft §3.2); for an AMT upstream, also given to its "
                         "TUN device (/32, /128).",
    "Candidate.amt": "An AMT upstream (RFC 7450): the interface is a TUN device the proxy "
                     "makes at start and removes at stop, where a gateway delivers what a "
                     "relay tunnels to it over unicast (README, AMT).",
    "AmtSettings.relay": "The relay's unicast address (IPv4 or IPv6: the tunnel's family); or "
                         "give discovery.",
    "AmtSettings.discovery": "An address to find a relay at by Relay Discovery (RFC 7450 "
                             "§4.1.1, §5.2.3.4: an anycast address, e.g. in 192.52.193.0/24 "
                             "or 2001:3::/32, §7); or give relay.",
    "AmtSettings.port": "The relay's UDP port (RFC 7450 §7).",
    "AmtSettings.querier": "The source address of the relay's General Queries inside the "
                           "TUN, one per family (default 0.0.0.0 and fe80::1; an MLD one is "
                           "link-local, RFC 9777 §5.1.14).",
    "AmtSettings.driad": "DRIAD (RFC 8777): each source's channels through the relay the "
                         "AMTRELAY record of its reverse name gives (precedence, D bit, "
                         "relay types 1-3), on to the next record's relay when one does not "
                         "answer; any-source joins, sources with no record or no relay that "
                         "answers and failed lookups through relay or discovery (README, "
                         "AMT).",
    "AmtSettings.resolver": "The DNS server DRIAD asks: ADDRESS, or ADDRESS:PORT "
                            "([ADDRESS]:PORT for IPv6); absent, the system's (resolv.conf).",
    "AmtSettings.min_ttl": "The shortest a DRIAD answer is kept, whatever its TTL.",
    "AmtSettings.max_ttl": "The longest a DRIAD answer is kept, whatever its TTL.",
    "AmtSettings.max_relays": "Relays DRIAD may tunnel to besides the configured one, per "
                              "inner family; the sources of any more go to the configured one.",
    "Candidate.active_interval": "This upstream's active interval (draft §5.2).",
    "Candidate.liveness": "What counts as evidence of life (draft §5.1).",
    "Candidate.routers": "The routers whose queries and hellos count, and the only ones "
                         "heard on this upstream (draft §7).",
    "Candidate.hold_down": "This upstream's hold-down.",
    "Candidate.records": "Address prefix records selecting this upstream (draft §4.1).",
    "Evidence.link": "The interface's carrier and state (netlink).",
    "Evidence.queries": "Queries from the upstream's routers (draft §5.1).",
    "Evidence.hellos": "PIM hellos from the upstream's routers.",
    "Evidence.data": "Per channel: data within this interval, or the channel is taken over.",
    "MetricsSettings.listen": "ADDRESS:PORT (an IP address, [ADDRESS] for IPv6) of the "
                              "Prometheus listener; changed at a restart.",
}


def _models() -> Iterator[type[Any]]:
    """Every model reachable from ``Config``, in the order the file has them, once each."""
    seen: set[type[Any]] = set()
    todo: list[type[Any]] = [Config]
    while todo:
        model = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        yield model
        for annotation in _annotations(model).values():
            for arg in _flatten(annotation):
                if isinstance(arg, type) and (issubclass(arg, BaseModel)
                                              or dataclasses.is_dataclass(arg)):
                    todo.append(arg)


def _flatten(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _flatten(arg)


def _annotations(model: type[Any]) -> dict[str, Any]:
    if dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model, include_extras=True)
        return {f.name: hints[f.name] for f in dataclasses.fields(model)}
    return {name: f.annotation for name, f in model.model_fields.items()}


def fields() -> list[str]:
    """Every "Model.field" of the configuration."""
    return [f"{m.__name__}.{name}" for m in _models() for name in _annotations(m)]


def _key(name: str) -> str:
    return name.replace("_", "-")


def _default(model: type[Any], name: str) -> str:
    if dataclasses.is_dataclass(model):
        f = next(f for f in dataclasses.fields(model) if f.name == name)
        value = f.default if f.default is not dataclasses.MISSING else None
    else:
        info = model.model_fields[name]
        if info.default is PydanticUndefined and info.default_factory is None:
            return "required"
        value = info.get_default(call_default_factory=True)
    if value is None:
        return "-"
    if isinstance(value, BaseModel) or dataclasses.is_dataclass(value):
        return "(its defaults)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[]" if not value else ", ".join(map(str, value))
    return str(value)


_BOUNDS = ((Ge, ">=", "ge"), (Gt, ">", "gt"), (Le, "<=", "le"), (Lt, "<", "lt"))


def _range(model: type[Any], name: str) -> str:
    if dataclasses.is_dataclass(model):
        return ""
    return ", ".join(f"{sign} {getattr(meta, attr)}"
                     for meta in model.model_fields[name].metadata
                     for kind, sign, attr in _BOUNDS if isinstance(meta, kind))


def markdown() -> str:
    """docs/configuration.md."""
    lines = ["# Configuration reference", "",
             "Made by `python -m mcastproxy.reference` from the configuration's models (a test "
             "checks that it is current and that every key is described). YAML; keys in "
             "kebab-case; durations take `125s`, `500ms` or seconds.", ""]
    for model in _models():
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines += [f"## {model.__name__}", ""]
        if doc and not doc.startswith(model.__name__ + "("):
            lines += [doc, ""]
        lines += ["| key | default | range | meaning |", "| --- | --- | --- | --- |"]
        for name in _annotations(model):
            meaning = MEANING.get(f"{model.__name__}.{name}", "(not described)")
            lines.append(f"| `{_key(name)}` | {_default(model, name)} | "
                         f"{_range(model, name)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
