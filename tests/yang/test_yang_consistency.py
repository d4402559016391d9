"""The configuration file and the YANG tree hold the same keys, with the same bounds.

Walked from both sides: every key of the file (its pydantic models) has a node in the tree
(``WHERE``), every configuration node of the tree (the schema pyang made of the modules) is
a key's, a list's key or an entry's position (``STRUCTURAL``), or a node the proxy refuses
(``REFUSED``); and for each pair, the values YANG allows at its bounds (ranges, enums,
defaults) are the values the file allows: each bound taken, one step past it refused.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined
from yang_models import FileKey, file_keys, yang_leaves

from mcastproxy.api.yangread import default_value
from mcastproxy.api.yangtree import schema
from mcastproxy.membership.timers import FROM_FILE, ProtocolTimers

C = "control-plane-protocols/control-plane-protocol"
PX = f"{C}/proxy"
FAMILIES = ("igmp", "mld")
TIMER_LEAVES = {"robustness": "robustness-variable", "query-response-interval":
                "query-max-response-time"}
TIMERS = ("robustness", "query-interval", "query-response-interval",
          "last-member-query-interval", "last-member-query-count", "startup-query-interval",
          "startup-query-count", "unsolicited-report-interval")


def _both(sub: str) -> set[str]:
    return {f"{C}/{f}/{sub}" for f in FAMILIES}


def _explicit() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {}
    for f in FAMILIES:
        at = f"{C}/{f}/interfaces"
        where[f"{f}.version"] = {f"{at}/version"}
        where[f"{f}.ssm-ranges"] = {f"{at}/ssm-range", f"{at}/no-ssm-range"}
        where[f"{f}.ssm-map[].group"] = {f"{at}/ssm-map/group"}
        where[f"{f}.ssm-map[].sources"] = {f"{at}/ssm-map/source"}
    for key in TIMERS:
        leaf = TIMER_LEAVES.get(key, key)
        where[f"timers.{key}"] = _both(f"interfaces/{leaf}")
        where[f"downstream[].timers.{key}"] = _both(f"interfaces/interface/{leaf}")
    link = "interfaces/interface"
    where["downstream[].interface"] = _both(f"{link}/interface-name") | {
        f"{PX}/downstream/interface/name"}
    where["downstream[].fast-leave"] = _both(f"{link}/immediate-leave")
    for key in ("require-router-alert", "verify-source-subnet"):
        where[f"downstream[].{key}"] = _both(f"{link}/{key}")
    where["downstream[].static-group[].group"] = _both(f"{link}/static-group/group-addr")
    where["downstream[].static-group[].source"] = _both(f"{link}/static-group/source-addr")
    where["downstream[].policy.max-groups"] = _both(f"{link}/max-groups")
    where["policy.max-entries"] = _both("global/max-entries")
    where["policy.max-groups-per-interface"] = _both("interfaces/max-groups-per-interface")
    where["upstream.candidates[].interface"] = {
        f"{PX}/upstream/candidate/interface", f"{C}/igmp-proxy/interfaces/interface/name",
        f"{C}/mld-proxy/interfaces/interface/name"}
    return where


EXPLICIT = _explicit()
# The module's own: the file's path, its lists' entries named as the module names them.
RENAMED = (("downstream[].", "downstream.interface."),
           ("upstream.candidates[].", "upstream.candidate."))
# Nodes that are no key of the file: instance keys, entries' positions.
STRUCTURAL = {f"{C}/type", f"{C}/name"} | {
    path for path, _ in yang_leaves(schema()["ietf-routing:routing"])
    if path.endswith("/id")}
# RFC 8652/9398 nodes the proxy refuses other values of (yangread says why).
REFUSED = _both("interfaces/require-router-alert") | _both("interfaces/interface/version") | {
    f"{C}/igmp-proxy/interfaces/interface/igmp-version",
    f"{C}/mld-proxy/interfaces/interface/mld-version"}


def where(key: FileKey) -> set[str]:
    if key.path in EXPLICIT:
        return EXPLICIT[key.path]
    path = key.path
    for old, new in RENAMED:
        path = path.replace(old, new)
    return {f"{PX}/" + path.replace("[]", "").replace(".", "/")}


KEYS = list(file_keys())
LEAVES = dict(yang_leaves(schema()["ietf-routing:routing"]))


def test_every_key_of_the_file_has_a_node() -> None:
    missing = {k.path: sorted(where(k) - LEAVES.keys()) for k in KEYS
               if not where(k) <= LEAVES.keys()}
    assert missing == {}


def test_every_node_is_a_key_of_the_file() -> None:
    covered = set().union(*(where(k) for k in KEYS)) | STRUCTURAL | REFUSED
    assert sorted(LEAVES.keys() - covered) == []


def test_the_refused_nodes_are_refused() -> None:
    from mcastproxy.api.errors import ApiError  # noqa: PLC0415
    from mcastproxy.api.yangread import from_yang  # noqa: PLC0415

    base = {"type": "ietf-igmp-mld:igmp", "name": "mcastproxy"}
    proxy = {"type": "mcastproxy:multi-upstream-proxy", "name": "mcastproxy",
             "mcastproxy:proxy": {"upstream": {"candidate": [{"interface": "u1"}]}}}
    for interfaces in ({"require-router-alert": False},
                       {"interface": [{"interface-name": "d1", "version": 2}]}):
        tree = {C.split("/", maxsplit=1)[0]: {"control-plane-protocol": [
            {**base, "ietf-igmp-mld:igmp": {"interfaces": interfaces}}, proxy]}}
        with pytest.raises(ApiError) as refused:
            from_yang(tree)
        assert refused.value.problems[0].path.startswith("/ietf-routing:routing")


# --- bounds -------------------------------------------------------------------------------------


def _adapter(key: FileKey) -> TypeAdapter[Any]:
    assert key.field is not None
    annotation: Any = key.field.annotation
    if key.many:
        annotation = typing.get_args(annotation)[0] if typing.get_origin(annotation) is tuple \
            else annotation
    metadata = key.field.metadata
    return TypeAdapter(Annotated[annotation, *metadata] if metadata else annotation)


def accepts(key: FileKey, value: Any) -> bool:
    """Whether the file takes ``value`` for ``key`` (as a field of its model)."""
    try:
        if key.field is None:  # the protocol timers: checked as the file's, whole
            name = key.path.rpartition(".")[2]
            given = {"query-interval": 31744, "query-response-interval": 0.1, name: value}
            TypeAdapter(ProtocolTimers).validate_python(given, context=FROM_FILE)
        else:
            _adapter(key).validate_python(value, context=FROM_FILE)
    except (ValidationError, ValueError):
        return False
    return True


def _default(key: FileKey) -> Any:
    if key.field is None:
        return getattr(ProtocolTimers(), key.name)
    return key.field.get_default(call_default_factory=True)


def _members(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["types"] if spec["base"] == "union" else [spec]


def _probes(spec: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Values of a YANG type the file must take, and values next to them it must refuse."""
    good: list[Any] = []
    bad: list[Any] = []
    for member in _members(spec):
        base = member["base"]
        if base == "enumeration":
            good += member["enums"]
        elif base == "boolean":
            good += [True, False]
        elif "range" in member and (base == "decimal64" or base.startswith(("int", "uint"))):
            step = Decimal(1).scaleb(-member.get("fd", 0))
            low, high = (Decimal(str(b)) for b in member["range"])
            as_value = float if base == "decimal64" else int
            good += [as_value(low), as_value(high)]
            if low > 0 or base.startswith("int"):
                bad.append(as_value(low - step))
            if high < Decimal("1e15"):  # a bound of the model, not of the type
                bad.append(as_value(high + step))
    if any(m["base"] == "string" for m in _members(spec)):
        bad = []  # strings checked by the file's validators: addresses, prefixes, paths
    return good, bad


PAIRS = [(k, leaf) for k in KEYS for leaf in sorted(where(k)) if leaf in LEAVES]


@pytest.mark.parametrize(("key", "leaf"), PAIRS, ids=[f"{k.path}={leaf.rpartition('/')[2]}"
                                                      for k, leaf in PAIRS])
def test_bounds_and_enums_are_the_same(key: FileKey, leaf: str) -> None:
    spec = LEAVES[leaf]["type"]
    good, bad = _probes(spec)
    wrap = (lambda v: [v]) if key.many else (lambda v: v)
    if spec["base"] == "empty":
        good = [True] if leaf.rpartition("/")[2] != "no-ssm-range" else []
    if leaf.endswith("static-group/source-addr"):
        good = [v for v in good if v != "*"]  # "*": no source (the key must have one)
    for value in good:
        assert accepts(key, wrap(value)), f"{key.path} refuses {value!r}, which {leaf} takes"
    for value in bad:
        assert not accepts(key, wrap(value)), f"{key.path} takes {value!r}; {leaf} does not"


@pytest.mark.parametrize(("key", "leaf"), PAIRS, ids=[f"{k.path}={leaf.rpartition('/')[2]}"
                                                      for k, leaf in PAIRS])
def test_defaults_are_the_same(key: FileKey, leaf: str) -> None:
    node = LEAVES[leaf]
    ours = _default(key)
    if ours is PydanticUndefined:  # required in the file: in the tree too
        assert node.get("mandatory") or node.get("is-key") or node.get("min-elements"), (
            f"{key.path} is required; {leaf} is not")
        return
    if "default" not in node:
        # No default in the tree: the file's is "not set" (or a link's own timer, which
        # takes the global one, or an empty leaf's absence).
        inherits = key.path.startswith("downstream[].timers.")
        assert ours in (None, (), False) or inherits or node["type"]["base"] == "empty", (
            f"{key.path} defaults to {ours!r}; {leaf} has no default")
        return
    theirs = default_value(node["type"], node["default"])
    if key.field is not None:
        theirs = _adapter(key).validate_python(theirs, context=FROM_FILE)
    assert theirs == ours, f"{leaf} defaults to {theirs!r}, {key.path} to {ours!r}"
