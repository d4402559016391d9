"""The configuration as YANG data: RFC 8652 and RFC 9398's trees with the ``mcastproxy``
module's augmentation (RFC 7951 JSON), to and from the configuration file's document.

The file and the tree say the same thing; neither holds what the other cannot (a test walks
both and the models). ``to_yang`` writes a running ``Config`` as the datastore
(``ietf-routing:routing`` and the ``ietf-interfaces:interfaces`` its references need);
``yangread.from_yang`` reads a routing tree back into the file's document, which is then
validated and applied exactly as the file is. So a YAML file and an API document of the
same content give the same running state.

Where the tree is:

- ``control-plane-protocol=ietf-igmp-mld:igmp,mcastproxy`` (and ``mld``; present while the
  file has ``igmp``, ``mld``): RFC 8652's ``interfaces`` holds the protocol's ``version``,
  the global ``timers`` (``robustness-variable``, ``query-interval``,
  ``query-max-response-time``, ``last-member-query-interval``; the others and the SSM range
  and mapping are the module's), ``max-groups-per-interface``; ``global/max-entries``; an
  ``interface`` per downstream link with its ``timers``, ``immediate-leave`` (fast-leave),
  ``require-router-alert``, ``verify-source-subnet``, ``max-groups`` and the
  ``static-group`` of the protocol.
- ``control-plane-protocol=ietf-igmp-mld-proxy:igmp-proxy,mcastproxy`` (and ``mld-proxy``):
  RFC 9398's list of upstream interfaces, one per candidate.
- ``control-plane-protocol=mcastproxy:multi-upstream-proxy,mcastproxy``: the module's
  ``proxy``: ``upstream`` (the draft's selection), ``downstream`` (a link's settings RFC
  8652 lacks: querier, routers, its policy), ``policy``, and the host's sections
  ``metrics``, ``accounting``, ``api``.

What the proxy applies to both protocols but RFC 8652 has per protocol is given alike in
both trees; a tree whose igmp and mld disagree is refused, naming the second. Static groups
are per protocol in RFC 8652: read back, a link's IPv4 ones come before its IPv6 ones.
Leaves equal to their default are left out (RFC 6243's "trim").
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from mcastproxy.api.yangtree import child, schema
from mcastproxy.config import Candidate, Config, Downstream, Record
from mcastproxy.membership.timers import ProtocolTimers
from mcastproxy.policyconfig import (
    ChannelPattern,
    GlobalPolicy,
    LinkPolicy,
    PolicyRule,
    ReportRate,
    SubscriberLimits,
)

NAME = "mcastproxy"  # the name of the proxy's control-plane protocol instances
ROUTING = "ietf-routing:routing"
INTERFACES = "ietf-interfaces:interfaces"
IGMP, MLD = "ietf-igmp-mld:igmp", "ietf-igmp-mld:mld"
IGMP_PROXY, MLD_PROXY = "ietf-igmp-mld-proxy:igmp-proxy", "ietf-igmp-mld-proxy:mld-proxy"
PROXY_TYPE, PROXY = "mcastproxy:multi-upstream-proxy", "mcastproxy:proxy"
# The type of each instance, and the container it holds (RFC 8652/9398's ``when``).
INSTANCES = {IGMP: IGMP, MLD: MLD, IGMP_PROXY: IGMP_PROXY, MLD_PROXY: MLD_PROXY,
             PROXY_TYPE: PROXY}
FAMILIES = ((IGMP, IGMP_PROXY, "igmp", 4), (MLD, MLD_PROXY, "mld", 6))
MCP = "mcastproxy:"
# The file's timers and their leaves: RFC 8652's, else the module's.
TIMERS = {
    "robustness": "robustness-variable",
    "query-interval": "query-interval",
    "query-response-interval": "query-max-response-time",
    "last-member-query-interval": "last-member-query-interval",
    "last-member-query-count": MCP + "last-member-query-count",
    "startup-query-interval": MCP + "startup-query-interval",
    "startup-query-count": MCP + "startup-query-count",
    "unsolicited-report-interval": MCP + "unsolicited-report-interval",
}
COUNTS = ("robustness", "last-member-query-count", "startup-query-count")
_DEFAULT_TIMERS = ProtocolTimers()


def instance_path(kind: str) -> str:
    """The instance identifier of an instance (``kind``: its type)."""
    return (f"/{ROUTING}/control-plane-protocols/control-plane-protocol"
            f"[type='{kind}'][name='{NAME}']/{INSTANCES[kind]}")


# --- values ---------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration as decimal64 (RFC 7951: a string), to the millisecond."""
    return format(Decimal(f"{value:.3f}").normalize(), "f")


def _big(value: int | str) -> str:
    return value if isinstance(value, str) else str(value)  # uint64: a string


def _rate(value: float | str) -> str:
    return value if isinstance(value, str) else seconds(value)


def _listen(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None and v not in ([], {})}


# --- the running configuration as the tree ---------------------------------------------------


def to_yang(config: Config) -> dict[str, Any]:
    """``config`` as the datastore: ``{ietf-interfaces:interfaces, ietf-routing:routing}``
    (RFC 7951 JSON; defaults trimmed)."""
    protocols: list[dict[str, Any]] = []
    for kind, _, attr, family in FAMILIES:
        settings = getattr(config, attr)
        if settings is not None:
            protocols.append({"type": kind, "name": NAME,
                              kind: _protocol(config, settings, family)})
    for _kind, proxy, attr, _ in FAMILIES:
        if getattr(config, attr) is not None:
            upstreams = [{"name": c.interface} for c in config.upstream.candidates]
            protocols.append({"type": proxy, "name": NAME,
                              proxy: {"interfaces": {"interface": upstreams}}})
    protocols.append({"type": PROXY_TYPE, "name": NAME, PROXY: _proxy(config)})
    routing = {"control-plane-protocols": {"control-plane-protocol": protocols}}
    names = [d.interface for d in config.downstream]
    names += [c.interface for c in config.upstream.candidates]
    trimmed = trim(routing_node(), routing)
    # A link with nothing beyond RFC 8652's: no entry in the proxy's tree.
    proxy = trimmed["control-plane-protocols"]["control-plane-protocol"][-1][PROXY]
    links = [e for e in proxy.get("downstream", {}).get("interface", []) if len(e) > 1]
    if links:
        proxy["downstream"]["interface"] = links
    else:
        proxy.pop("downstream", None)
    return {
        INTERFACES: {"interface": [
            {"name": n, "type": "mcastproxy:system-interface", "ietf-ip:ipv4": {},
             "ietf-ip:ipv6": {}} for n in names]},
        ROUTING: trimmed,
    }


def routing_node() -> dict[str, Any]:
    return schema()[ROUTING]  # type: ignore[no-any-return]


def _timers(timers: ProtocolTimers, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in fields:
        value = getattr(timers, key.replace("-", "_"))
        if value is None:
            continue
        out[TIMERS[key]] = value if key in COUNTS else seconds(value)
    return out


def _protocol(config: Config, settings: Any, family: int) -> dict[str, Any]:
    policy = config.policy
    interfaces: dict[str, Any] = {"version": settings.version,
                                  **_timers(config.timers, TIMERS)}
    if settings.ssm_ranges is not None:
        if settings.ssm_ranges:
            interfaces[MCP + "ssm-range"] = [str(p) for p in settings.ssm_ranges]
        else:
            interfaces[MCP + "no-ssm-range"] = [None]
    if settings.ssm_map:
        interfaces[MCP + "ssm-map"] = [
            {"group": str(e.group), "source": [str(s.network_address) for s in e.sources]}
            for e in settings.ssm_map]
    if policy.max_groups_per_interface is not None:
        interfaces["max-groups-per-interface"] = policy.max_groups_per_interface
    interfaces["interface"] = [_link(d, family) for d in config.downstream]
    out: dict[str, Any] = {"interfaces": interfaces}
    if policy.max_entries is not None:
        out["global"] = {"max-entries": policy.max_entries}
    return out


def _link(link: Downstream, family: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"interface-name": link.interface}
    if link.timers is not None:
        entry.update(_timers(link.timers, [k for k in TIMERS
                                           if k.replace("-", "_") in link.timers_set]))
    if link.fast_leave:
        entry["immediate-leave"] = [None]
    if link.require_router_alert is not None:
        entry["require-router-alert"] = link.require_router_alert
    if link.verify_source_subnet:
        entry["verify-source-subnet"] = [None]
    if link.policy.max_groups is not None:
        entry["max-groups"] = link.policy.max_groups
    static = [{"group-addr": str(s.group), "source-addr": str(s.source or "*")}
              for s in link.static_group if s.group.version == family]
    if static:
        entry["static-group"] = static
    return entry


def _records(records: Iterable[Record | PolicyRule | ChannelPattern],
             ) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(records, 1):
        entry: dict[str, Any] = {"id": i}
        if isinstance(r, PolicyRule):
            entry["action"] = r.action
        for key in ("subscriber", "source", "group"):
            value = getattr(r, key, None)
            if value is not None:
                entry[key] = str(value)
        rate = getattr(r, "rate", None)
        if rate is not None:
            entry["rate"] = str(rate)
            entry["class"] = r.channel_class  # type: ignore[union-attr]
        out.append(entry)
    return out


def _limits(limits: SubscriberLimits | Any) -> dict[str, Any]:
    return _drop_none({
        "max-groups": limits.max_groups, "max-group-sources": limits.max_group_sources,
        "max-bandwidth": None if limits.max_bandwidth is None else _big(limits.max_bandwidth)})


def _report_rate(rate: ReportRate) -> dict[str, Any]:
    return _drop_none({"subscriber": None if rate.subscriber is None else _rate(rate.subscriber),
                       "link": None if rate.link is None else _rate(rate.link)})


def _policy_common(policy: GlobalPolicy | LinkPolicy) -> dict[str, Any]:
    return _drop_none({
        "default": policy.default, "ssm-only": policy.ssm_only,
        "group-policy": _records(policy.group_policy),
        "subscriber": _limits(policy.subscriber),
        "exceptions": _records(policy.exceptions),
        "report-rate": _report_rate(policy.report_rate)})


def _candidate(c: Candidate) -> dict[str, Any]:
    entry = _drop_none({
        "interface": c.interface, "priority": c.priority,
        "address": [str(a) for a in c.address],
        "active-interval": None if c.active_interval is None else seconds(c.active_interval),
        "liveness": _drop_none({
            "link": c.liveness.link, "queries": c.liveness.queries,
            "hellos": c.liveness.hellos,
            "data": None if c.liveness.data is None else seconds(c.liveness.data)}),
        "routers": [str(r) for r in c.routers],
        "hold-down": None if c.hold_down is None else seconds(c.hold_down),
        "records": _records(c.records),
        "max-bandwidth": None if c.max_bandwidth is None else _big(c.max_bandwidth),
        "max-groups": c.max_groups})
    if c.amt is not None:
        entry["amt"] = _drop_none({
            "relay": None if c.amt.relay is None else str(c.amt.relay),
            "discovery": None if c.amt.discovery is None else str(c.amt.discovery),
            "port": c.amt.port, "querier": [str(q) for q in c.amt.querier],
            "driad": c.amt.driad,
            "resolver": None if c.amt.resolver is None else _listen(
                (str(c.amt.resolver[0]), c.amt.resolver[1])),
            "min-ttl": seconds(c.amt.min_ttl), "max-ttl": seconds(c.amt.max_ttl),
            "max-relays": c.amt.max_relays})
    return entry


def _proxy(config: Config) -> dict[str, Any]:
    up = config.upstream
    upstream = _drop_none({
        "default": up.default, "takeover": up.takeover,
        "active-interval": None if up.active_interval is None else seconds(up.active_interval),
        "hold-down": "never" if up.hold_down is None else seconds(up.hold_down),
        "resilient": _records(up.resilient), "leave-on-stop": up.leave_on_stop,
        "ties": up.ties, "candidate": [_candidate(c) for c in up.candidates]})
    links = []
    for d in config.downstream:
        policy = {**_policy_common(d.policy), **_drop_none({
            "max-bandwidth": None if d.policy.max_bandwidth is None
            else _big(d.policy.max_bandwidth),
            "subscribers": [{
                "prefix": str(s.prefix), **_drop_none({
                    "default": s.default, "group-policy": _records(s.group_policy)}),
                **_limits(s)} for s in d.policy.subscribers]})}
        links.append(_drop_none({
            "name": d.interface, "querier": d.querier, "routers": [str(r) for r in d.routers],
            "max-robustness": d.max_robustness,
            "max-query-interval": seconds(d.max_query_interval),
            "specific-query-rate": d.specific_query_rate, "policy": policy}))
    p = config.policy
    bw = p.bandwidth
    policy = {**_policy_common(p), **_drop_none({
        "max-bandwidth-per-interface": None if p.max_bandwidth_per_interface is None
        else _big(p.max_bandwidth_per_interface),
        "bandwidth": _drop_none({
            "channels": _records(bw.channels), "default-rate": str(bw.default_rate),
            "preempt": bw.preempt, "learn": bw.learn, "learn-margin": seconds(bw.learn_margin),
            "empty-after": None if bw.empty_after is None else seconds(bw.empty_after),
            "refuse-empty-for": None if bw.refuse_empty_for is None
            else seconds(bw.refuse_empty_for)})})}
    out: dict[str, Any] = {"upstream": upstream, "downstream": {"interface": links},
                           "policy": policy}
    if config.metrics is not None:
        out["metrics"] = {"listen": _listen(config.metrics.listen)}
    if config.accounting is not None:
        a = config.accounting
        out["accounting"] = _drop_none({
            "session-log": None if a.session_log is None else str(a.session_log),
            "security-log": None if a.security_log is None else str(a.security_log),
            "max-size": None if a.max_size is None else str(a.max_size), "keep": a.keep,
            "sample-interval": seconds(a.sample_interval)})
    if config.api is not None:
        api = config.api
        tls = api.tls
        out["api"] = _drop_none({
            "socket": None if api.socket is None else str(api.socket),
            "socket-mode": f"{api.socket_mode:04o}",
            "listen": None if api.listen is None else _listen(api.listen),
            "tls": None if tls is None else _drop_none({
                "certificate": str(tls.certificate), "key": str(tls.key),
                "client-ca": None if tls.client_ca is None else str(tls.client_ca),
                "client-access": tls.client_access}),
            "tokens": None if api.tokens is None else str(api.tokens)})
    return out


def trim(node: dict[str, Any], value: Any) -> Any:
    """``value`` without the leaves equal to their default, nor the non-presence
    containers left empty (RFC 6243 "trim")."""
    if node["kind"] == "list" and isinstance(value, list):
        return [trim({**node, "kind": "container"}, e) for e in value]
    if node["kind"] != "container" or not isinstance(value, dict):
        return value
    out = {}
    for name, v in value.items():
        found = child(node, name)
        if found is None:
            out[name] = v
            continue
        sub = found[1]
        if sub["kind"] == "leaf" and "default" in sub and _same(sub, v, sub["default"]):
            continue
        t = trim(sub, v)
        if sub["kind"] == "container" and t == {} and not sub.get("presence"):
            continue
        out[name] = t
    return out


def _same(node: dict[str, Any], value: Any, default: str) -> bool:
    if isinstance(value, bool):
        return default == str(value).lower()
    if isinstance(value, int | str):
        try:
            return Decimal(str(value)) == Decimal(default)
        except ArithmeticError:
            return str(value) == default
    return False
