"""The standard tree read back into the configuration file's document (``yangdata`` has
the tree, and what goes where).

``from_yang`` checks a routing tree by the schema (``yangtree.check``: unknown nodes, types,
ranges, keys, sizes), then reads it: the protocols' instances (only the proxy's, of the
types ``yangdata.INSTANCES``), what both protocols' trees must say alike, the links (each
protocol's tree lists the same), the candidates (RFC 9398's lists name them all), the
module's ``proxy``. Every refusal names the node (its instance identifier, RFC 8040's
``error-path``); the document's fields remember where they came from (``origins``), so that
a refusal of the file's validation names the node too (``yang_path``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from mcastproxy.api.errors import ApiError, Problem
from mcastproxy.api.yangdata import (
    COUNTS,
    FAMILIES,
    INSTANCES,
    MCP,
    NAME,
    PROXY_TYPE,
    ROUTING,
    TIMERS,
    instance_path,
    routing_node,
)
from mcastproxy.api.yangtree import check, child, leaf_problem, member

_MISSING = object()


class _Reader:
    """Reads a checked routing tree into the file's document, remembering where each of the
    document's fields came from (``origins``: field -> instance identifier)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.origins: dict[str, str] = {}

    def refuse(self, path: str, message: str, tag: str = "invalid-value") -> None:
        self.problems.append(Problem(message, path=path, tag=tag))

    def put(self, into: dict[str, Any], key: str, value: Any, field: str, path: str) -> None:
        if value is _MISSING:
            return
        into[key] = value
        self.origins[field] = path

    def shared(self, given: list[tuple[Any, str]], what: str) -> Any:
        """One value given in each protocol's tree (``given``: (value or _MISSING, path)):
        the value, or a refusal naming where they differ."""
        first, first_path = given[0]
        for value, path in given[1:]:
            if value != first:
                self.refuse(path, f"{what}: differs from {first_path}; the proxy applies "
                            "one value to IPv4 and IPv6, given alike in both trees")
        return first


def _number(value: str) -> float:
    return float(Decimal(value))


def _count(value: Any) -> Any:
    return value if isinstance(value, int) or value == "unlimited" else int(value)


def from_yang(routing: Any, path: str = f"/{ROUTING}") -> tuple[dict[str, Any], dict[str, str]]:
    """The file's document of the routing tree ``routing`` (the object under
    ``ietf-routing:routing``), and the origins of its fields; ApiError 400 naming each
    node at fault."""
    tree, problems = check(routing_node(), ROUTING, routing, path, None)
    if problems:
        raise ApiError(400, "invalid-value", problems, error_type="application")
    reader = _Reader()
    doc = _read(reader, decode(routing_node(), tree))
    if reader.problems:
        raise ApiError(400, "invalid-value", reader.problems, error_type="application")
    return doc, reader.origins


def _instances(reader: _Reader, tree: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    base = f"/{ROUTING}/control-plane-protocols/control-plane-protocol"
    found: dict[str, tuple[dict[str, Any], str]] = {}
    entries = tree.get("control-plane-protocols", {}).get("control-plane-protocol", [])
    for entry in entries:
        kind, name = entry["type"], entry["name"]
        at = f"{base}[type='{kind}'][name='{name}']"
        if kind not in INSTANCES:
            reader.refuse(at + "/type", f"{kind} is not a protocol of mcastproxy (it has "
                          f"{', '.join(INSTANCES)})")
            continue
        if name != NAME:
            reader.refuse(at + "/name", f"the proxy's instances are named {NAME!r}")
            continue
        for other in set(INSTANCES.values()) - {INSTANCES[kind]}:
            if other in entry:
                reader.refuse(f"{at}/{other}", f"only in an instance of its type ({other})")
        found[kind] = (entry.get(INSTANCES[kind], {}), f"{at}/{INSTANCES[kind]}")
    if PROXY_TYPE not in found:
        reader.refuse(base, f"needs the instance [type='{PROXY_TYPE}'][name='{NAME}']: its "
                      "mcastproxy:proxy holds the upstream candidates", "data-missing")
    return found


def _read(reader: _Reader, tree: dict[str, Any]) -> dict[str, Any]:
    found = _instances(reader, tree)
    doc: dict[str, Any] = {}
    protocols = [(kind, proxy, attr, found[kind]) for kind, proxy, attr, _ in FAMILIES
                 if kind in found]
    for kind, proxy, attr, _ in FAMILIES:
        if proxy in found and kind not in found:
            reader.refuse(found[proxy][1], f"is for {attr}, which is off (no {kind} "
                          "instance)")
    defaults = {attr: interfaces_defaults(kind) for kind, _, attr, _ in FAMILIES}
    for _, _, attr, (data, at) in protocols:
        interfaces = data.get("interfaces", {})
        section: dict[str, Any] = {}
        # Written out even where it is the default: the file says which version runs.
        reader.put(section, "version", interfaces.get("version", defaults[attr]["version"]),
                   f"{attr}.version", f"{at}/interfaces/version")
        if MCP + "ssm-range" in interfaces:
            reader.put(section, "ssm-ranges", interfaces[MCP + "ssm-range"],
                       f"{attr}.ssm-ranges", f"{at}/interfaces/{MCP}ssm-range")
        elif MCP + "no-ssm-range" in interfaces:
            reader.put(section, "ssm-ranges", [], f"{attr}.ssm-ranges",
                       f"{at}/interfaces/{MCP}no-ssm-range")
        maps = interfaces.get(MCP + "ssm-map", [])
        if maps:
            section["ssm-map"] = [{"group": m["group"], "sources": m.get("source", [])}
                                  for m in maps]
            for i, m in enumerate(maps):
                reader.origins[f"{attr}.ssm-map[{i}]"] = (
                    f"{at}/interfaces/{MCP}ssm-map[group='{m['group']}']")
        doc[attr] = section
    if protocols:
        _read_protocols(reader, doc, protocols)
    mine, at = found.get(PROXY_TYPE, ({}, instance_path(PROXY_TYPE)))
    _read_upstream(reader, doc, mine.get("upstream", {}), f"{at}/upstream")
    for _kind, proxy_kind, attr, _ in FAMILIES:
        if proxy_kind in found:
            _check_upstreams(reader, doc, found[proxy_kind], attr)
    _read_links(reader, doc, mine.get("downstream", {}), f"{at}/downstream")
    _read_policy(reader, doc.setdefault("policy", {}), mine.get("policy", {}),
                 f"{at}/policy", "policy", link=False)
    for host in ("metrics", "accounting", "api"):
        if host in mine:
            doc[host] = _host(mine[host])
            reader.origins[host] = f"{at}/{host}"
    if not doc["policy"]:
        del doc["policy"]
    return doc


def _value(node: dict[str, Any], key: str) -> Any:
    return node.get(key, _MISSING)


def decode(node: dict[str, Any], value: Any) -> Any:
    """A checked ``value`` of schema ``node`` with its leaves as the file writes them:
    decimal64 and 64-bit numbers as numbers (RFC 7951 has them as strings), ``empty`` as
    true."""
    kind = node["kind"]
    if kind == "container" and isinstance(value, dict):
        out = {}
        for name, v in value.items():
            found = child(node, name)
            out[name] = v if found is None else decode(found[1], v)
        return out
    if kind == "list" and isinstance(value, list):
        return [decode({**node, "kind": "container"}, e) for e in value]
    if kind == "leaf-list" and isinstance(value, list):
        return [_leaf(node["type"], v) for v in value]
    if kind == "leaf":
        return _leaf(node["type"], value)
    return value


def _leaf(spec: dict[str, Any], value: Any) -> Any:
    base = spec["base"]
    if base == "union":
        for member_type in spec["types"]:
            if not leaf_problem(member_type, value):
                return _leaf(member_type, value)
        return value
    if base == "empty":
        return True
    if base in ("int64", "uint64") and isinstance(value, str):
        return int(value)
    if base == "decimal64" and isinstance(value, str):
        return float(Decimal(value))
    return value


def interfaces_defaults(kind: str) -> dict[str, Any]:
    """The defaults of the leaves of a protocol's ``interfaces`` (RFC 8652 refines them
    per protocol: MLD's last-member-query-interval has one, IGMP's not)."""
    cpp = routing_node()["children"]["ietf-routing:control-plane-protocols"]["children"][
        "ietf-routing:control-plane-protocol"]
    node = cpp["children"][kind]["children"]["ietf-igmp-mld:interfaces"]
    return {member(name, sub, node["module"]): default_value(sub["type"], sub["default"])
            for name, sub in node["children"].items() if "default" in sub}


def default_value(spec: dict[str, Any], text: str) -> Any:
    """A leaf's default (YANG's text) as the file writes the value."""
    base = spec["base"]
    if base == "boolean":
        return text == "true"
    if base.startswith(("int", "uint")):
        return int(text)
    if base == "decimal64":
        return float(Decimal(text))
    if base == "union":
        for member_type in spec["types"]:
            if member_type["base"] in ("enumeration",) and text in member_type["enums"]:
                return text
        return default_value(spec["types"][0], text)
    return text


def _read_timers(reader: _Reader, given: list[tuple[dict[str, Any], str]], field: str,
                 defaults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The timers given in each protocol's tree (absent: the leaf's default there, if it
    has one; absent everywhere: not set)."""
    out: dict[str, Any] = {}
    for key, leaf in TIMERS.items():
        if all(leaf not in node for node, _ in given):
            continue
        values = [(node.get(leaf, (defaults[i] if defaults else {}).get(leaf, _MISSING)),
                   f"{at}/{leaf}") for i, (node, at) in enumerate(given)]
        value = reader.shared(values, leaf)
        if value is not _MISSING:
            source = next(p for (node, _), (_, p) in zip(given, values, strict=True)
                          if leaf in node)
            reader.put(out, key, float(value) if key not in COUNTS else value,
                       f"{field}.{key}", source)
    return out


def _read_protocols(reader: _Reader, doc: dict[str, Any],
                    protocols: list[tuple[str, str, str, tuple[dict[str, Any], str]]]) -> None:
    given = [(data.get("interfaces", {}), f"{at}/interfaces")
             for _, _, _, (data, at) in protocols]
    for interfaces, at in given:
        if "require-router-alert" in interfaces:
            reader.refuse(f"{at}/require-router-alert", "set per link: the file has no "
                          "value for every link")
    timers = _read_timers(reader, given, "timers",
                          [interfaces_defaults(kind) for kind, _, _, _ in protocols])
    if timers:
        doc["timers"] = timers
    policy = doc.setdefault("policy", {})
    for key, values in (
        ("max-groups-per-interface", [(_value(i, "max-groups-per-interface"),
                                       f"{at}/max-groups-per-interface") for i, at in given]),
        ("max-entries", [(_value(data.get("global", {}), "max-entries"),
                          f"{at}/global/max-entries") for _, _, _, (data, at) in protocols]),
    ):
        value = reader.shared(values, key)
        if value is not _MISSING:
            reader.put(policy, key, value, f"policy.{key}", values[0][1])
    # The links: each protocol lists the same, in the same order.
    lists = []
    for (interfaces, at), (_, _, attr, _) in zip(given, protocols, strict=True):
        entries = interfaces.get("interface", [])
        lists.append((attr, at, {e["interface-name"]: e for e in entries}))
    first_attr, first_at, first = lists[0]
    for attr, at, links in lists[1:]:
        if list(links) != list(first):
            reader.refuse(f"{at}/interface", f"the downstream links of {attr} are not those "
                          f"of {first_attr} ({', '.join(first) or 'none'}), in that order: "
                          "the proxy proxies both protocols on each link")
    downstream = doc.setdefault("downstream", [])
    for i, name in enumerate(first):
        link: dict[str, Any] = {"interface": name}
        field = f"downstream[{i}]"
        reader.origins[field] = f"{first_at}/interface[interface-name='{name}']"
        entries = [(links[name], f"{at}/interface[interface-name='{name}']")
                   for _, at, links in lists if name in links]
        for entry, at in entries:
            if "version" in entry:
                reader.refuse(f"{at}/version", "one version for every link: set it in "
                              "interfaces")
        own = _read_timers(reader, entries, f"{field}.timers")
        if own:
            link["timers"] = own
        for key, leaf in (("fast-leave", "immediate-leave"),
                          ("require-router-alert", "require-router-alert"),
                          ("verify-source-subnet", "verify-source-subnet")):
            value = reader.shared([(_value(e, leaf), f"{at}/{leaf}") for e, at in entries], leaf)
            reader.put(link, key, value, f"{field}.{key}", f"{entries[0][1]}/{leaf}")
        value = reader.shared([(_value(e, "max-groups"), f"{at}/max-groups")
                               for e, at in entries], "max-groups")
        if value is not _MISSING:
            link["policy"] = {"max-groups": value}
            reader.origins[f"{field}.policy.max-groups"] = f"{entries[0][1]}/max-groups"
        static: list[dict[str, Any]] = []
        for entry, at in entries:
            for s in entry.get("static-group", []):
                group = {"group": s["group-addr"]}
                if s["source-addr"] != "*":
                    group["source"] = s["source-addr"]
                reader.origins[f"{field}.static-group[{len(static)}]"] = (
                    f"{at}/static-group[group-addr='{s['group-addr']}']"
                    f"[source-addr='{s['source-addr']}']")
                static.append(group)
        if static:
            link["static-group"] = static
        downstream.append(link)


def _record(reader: _Reader, entry: dict[str, Any], field: str, at: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reader.origins[field] = at
    for key in ("action", "subscriber", "source", "group", "rate", "class"):
        if key in entry:
            reader.put(out, key, entry[key], f"{field}.{key}", f"{at}/{key}")
    return out


def _records_of(reader: _Reader, entries: list[dict[str, Any]], field: str,
                at: str) -> list[dict[str, Any]]:
    return [_record(reader, e, f"{field}[{i}]", f"{at}[id='{e['id']}']")
            for i, e in enumerate(entries)]


def _leaves(reader: _Reader, node: dict[str, Any], keys: Iterable[str], into: dict[str, Any],
            field: str, at: str) -> None:
    for key in keys:
        reader.put(into, key, _value(node, key), f"{field}.{key}", f"{at}/{key}")


def _read_upstream(reader: _Reader, doc: dict[str, Any], up: dict[str, Any], at: str) -> None:
    out: dict[str, Any] = {}
    _leaves(reader, up, ("default", "takeover", "active-interval", "hold-down",
                         "leave-on-stop", "ties"), out, "upstream", at)
    if "resilient" in up:
        out["resilient"] = _records_of(reader, up["resilient"], "upstream.resilient",
                                       f"{at}/resilient")
    candidates = []
    for i, c in enumerate(up.get("candidate", [])):
        field = f"upstream.candidates[{i}]"
        where = f"{at}/candidate[interface='{c['interface']}']"
        reader.origins[field] = where
        cand: dict[str, Any] = {}
        _leaves(reader, c, ("interface", "priority", "address", "active-interval", "routers",
                            "hold-down", "max-bandwidth", "max-groups"), cand, field, where)
        if "liveness" in c:
            cand["liveness"] = {}
            _leaves(reader, c["liveness"], ("link", "queries", "hellos", "data"),
                    cand["liveness"], f"{field}.liveness", f"{where}/liveness")
        if "records" in c:
            cand["records"] = _records_of(reader, c["records"], f"{field}.records",
                                          f"{where}/records")
        if "amt" in c:
            cand["amt"] = {}
            _leaves(reader, c["amt"], ("relay", "discovery", "port", "querier", "driad",
                                       "resolver", "min-ttl", "max-ttl", "max-relays"),
                    cand["amt"], f"{field}.amt", f"{where}/amt")
        candidates.append(cand)
    out["candidates"] = candidates
    reader.origins["upstream.candidates"] = f"{at}/candidate"
    reader.origins["upstream"] = at
    doc["upstream"] = out


def _check_upstreams(reader: _Reader, doc: dict[str, Any],
                     found: tuple[dict[str, Any], str], attr: str) -> None:
    """RFC 9398's upstream interfaces: the candidates, no other."""
    data, at = found
    names = [e["name"] for e in data.get("interfaces", {}).get("interface", [])]
    candidates = [c.get("interface") for c in doc["upstream"]["candidates"]]
    if sorted(names) != sorted(candidates):
        reader.refuse(f"{at}/interfaces/interface", f"the upstream interfaces of {attr} are "
                      f"the candidates ({', '.join(candidates)}); given: "
                      f"{', '.join(names) or 'none'}")


def _read_links(reader: _Reader, doc: dict[str, Any], downstream: dict[str, Any],
                at: str) -> None:
    links = {d["interface"]: (i, d) for i, d in enumerate(doc.get("downstream", []))}
    for entry in downstream.get("interface", []):
        name = entry["name"]
        where = f"{at}/interface[name='{name}']"
        if name not in links:
            reader.refuse(where, f"{name} is not a downstream link (an interface of the igmp "
                          "or mld tree)")
            continue
        i, link = links[name]
        field = f"downstream[{i}]"
        _leaves(reader, entry, ("querier", "routers", "max-robustness", "max-query-interval",
                                "specific-query-rate"), link, field, where)
        if "policy" in entry:
            _read_policy(reader, link.setdefault("policy", {}), entry["policy"],
                         f"{where}/policy", f"{field}.policy", link=True)


def _read_policy(reader: _Reader, out: dict[str, Any], policy: dict[str, Any], at: str,
                 field: str, *, link: bool) -> None:
    keys = ["default", "ssm-only"]
    keys += ["max-bandwidth"] if link else ["max-bandwidth-per-interface"]
    _leaves(reader, policy, keys, out, field, at)
    for key in ("group-policy", "exceptions"):
        if key in policy:
            out[key] = _records_of(reader, policy[key], f"{field}.{key}", f"{at}/{key}")
    for key, leaves in (("subscriber", ("max-groups", "max-group-sources", "max-bandwidth")),
                        ("report-rate", ("subscriber", "link"))):
        if key in policy:
            out[key] = {}
            _leaves(reader, policy[key], leaves, out[key], f"{field}.{key}", f"{at}/{key}")
    if link and "subscribers" in policy:
        subs = []
        for j, s in enumerate(policy["subscribers"]):
            sub: dict[str, Any] = {}
            where = f"{at}/subscribers[prefix='{s['prefix']}']"
            sfield = f"{field}.subscribers[{j}]"
            reader.origins[sfield] = where
            _leaves(reader, s, ("prefix", "default", "max-groups", "max-group-sources",
                                "max-bandwidth"), sub, sfield, where)
            if "group-policy" in s:
                sub["group-policy"] = _records_of(reader, s["group-policy"],
                                                  f"{sfield}.group-policy",
                                                  f"{where}/group-policy")
            subs.append(sub)
        out["subscribers"] = subs
    if not link and "bandwidth" in policy:
        bw = policy["bandwidth"]
        out["bandwidth"] = {}
        _leaves(reader, bw, ("default-rate", "preempt", "learn", "learn-margin", "empty-after",
                             "refuse-empty-for"), out["bandwidth"], f"{field}.bandwidth",
                f"{at}/bandwidth")
        if "channels" in bw:
            out["bandwidth"]["channels"] = _records_of(reader, bw["channels"],
                                                       f"{field}.bandwidth.channels",
                                                       f"{at}/bandwidth/channels")


def _host(section: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in section.items():
        out[key] = _host(value) if isinstance(value, dict) else value
    return out


def yang_path(origins: dict[str, str], field: str, fallback: str) -> str:
    """The instance identifier of the file's ``field`` (a ``ConfigIssue``'s path), from the
    nearest field the tree gave."""
    probe = field
    while probe:
        if probe in origins:
            return origins[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return fallback


def leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every leaf and leaf-list of schema ``node`` below it: (``module:a/module:b``, node)."""
    for name, sub in node.get("children", {}).items():
        path = f"{prefix}/{name}" if prefix else name
        if sub["kind"] in ("leaf", "leaf-list"):
            yield path, sub
        elif sub["kind"] in ("container", "list"):
            yield from leaves(sub, path)

