"""The YANG modules the API serves, and the schema the API reads documents with.

The modules are package data (``mcastproxy/yang/``): the project's own, ``mcastproxy``
(the draft's upstream selection and the edge policy, augmenting RFC 8652 and RFC 9398) and
``mcastproxy-deviations`` (where the proxy differs from them), and the IETF modules they
import, verbatim, under ``ietf/``. ``MODULES`` lists them with the features the proxy
implements (RFC 8525's yang-library says the same to a client).

The API does not parse YANG at run time (pyang is a tool of the tests, not of a router): the
schema of the configuration tree it serves, ``/ietf-routing:routing``, is made from the
modules by pyang, here, and shipped as ``yang/schema.json``; a test checks that it is what
the modules say (``python -m mcastproxy.api.yangschema > src/mcastproxy/yang/schema.json``
makes it again). Each node is ``{"kind", "module", ...}``: containers and lists have
``children`` (keyed ``module:name``; a choice's nodes carry their ``case``), lists their
``keys``, leaves their ``type`` (``base``: YANG's built-in type; ``range``, ``fd``
(fraction digits), ``enums``, ``types`` of a union, ``typedefs``: the derived types' names,
``module:name``); the nodes the proxy does not offer are ``{"kind": "unoffered"}``. The
state (``config false``) is there too, each of its nodes marked ``"config": false``, so that
a GET can name a node of it (one group of a link); ``yangtree.schema`` is the configuration
alone, which a write is checked by.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

REVISION = "2026-12-03"
# (module, revision, features implemented): the yang-library's module-set.
MODULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mcastproxy", REVISION, ()),
    ("mcastproxy-deviations", REVISION, ()),
    ("ietf-igmp-mld", "2019-11-01", (
        "feature-igmp", "feature-mld", "global-max-entries", "interface-global-config",
        "per-interface-config", "intf-immediate-leave", "intf-max-groups",
        "intf-require-router-alert", "intf-static-group", "intf-verify-source-subnet",
        "intf-explicit-tracking", "action-clear-groups")),
    ("ietf-igmp-mld-proxy", "2023-05-30", ("igmp-proxy", "mld-proxy")),
    ("ietf-routing", "2018-03-13", ()),
    ("ietf-interfaces", "2018-02-20", ()),
    ("ietf-ip", "2018-02-22", ()),
    ("ietf-pim-base", "2022-10-19", ()),
    ("ietf-bfd-types", "2022-09-22", ()),
    ("iana-bfd-types", "2021-10-21", ()),
    ("ietf-key-chain", "2017-06-15", ()),
    ("ietf-netconf-acm", "2018-02-14", ()),
    ("ietf-access-control-list", "2019-03-04", ()),
    ("ietf-packet-fields", "2019-03-04", ()),
    ("ietf-ethertypes", "2019-03-04", ()),
    ("ietf-routing-types", "2017-12-04", ()),
    ("ietf-inet-types", "2013-07-15", ()),
    ("ietf-yang-types", "2013-07-15", ()),
)
OWN = ("mcastproxy", "mcastproxy-deviations")
DEVIATIONS = "mcastproxy-deviations"
# Modules implemented (their data nodes exist); the others only lend types and groupings.
IMPLEMENTED = ("mcastproxy", "mcastproxy-deviations", "ietf-igmp-mld", "ietf-igmp-mld-proxy",
               "ietf-routing", "ietf-interfaces", "ietf-ip", "ietf-pim-base")
# What the API serves of the routing tree: below these, every node; beside them, none.
OFFERED = {
    "ietf-routing:routing": ("ietf-routing:control-plane-protocols",),
    "ietf-routing:control-plane-protocols": ("ietf-routing:control-plane-protocol",),
    "ietf-routing:control-plane-protocol": (
        "ietf-routing:type", "ietf-routing:name", "ietf-igmp-mld:igmp", "ietf-igmp-mld:mld",
        "ietf-igmp-mld-proxy:igmp-proxy", "ietf-igmp-mld-proxy:mld-proxy", "mcastproxy:proxy"),
}


def yang_dir() -> Path:
    """The folder of the modules (``mcastproxy/yang``, installed with the package)."""
    return Path(str(resources.files("mcastproxy") / "yang"))


def module_file(name: str, revision: str) -> Path:
    folder = yang_dir()
    own = folder / f"{name}@{revision}.yang"
    return own if name in OWN else folder / "ietf" / own.name


def features() -> dict[str, list[str]]:
    return {name: list(feats) for name, _, feats in MODULES if feats or name in (
        "ietf-igmp-mld", "ietf-igmp-mld-proxy")}


def load_schema() -> dict[str, Any]:
    """The shipped schema (``yang/schema.json``)."""
    data: dict[str, Any] = json.loads((yang_dir() / "schema.json").read_text())
    return data


# --- made with pyang (the test extra) ----------------------------------------------------------


def pyang_context() -> Any:
    """A pyang context holding the modules, their features and deviations, validated."""
    from pyang import (  # type: ignore[import-untyped]  # noqa: PLC0415 (the tests' tool)
        context,
        repository,
    )

    folder = yang_dir()
    repo = repository.FileRepository(f"{folder}:{folder / 'ietf'}", use_env=False)
    ctx = context.Context(repo)
    ctx.strict = True
    ctx.features = features()
    modules = []
    for name, revision, _ in MODULES:
        path = module_file(name, revision)
        module = ctx.add_module(str(path), path.read_text())
        modules.append(module)
        if name == DEVIATIONS:
            ctx.deviation_modules.append(module)
    ctx.validate()
    for module in modules:
        module.prune()  # the features not implemented: their nodes go
    return ctx


def make_schema(ctx: Any) -> dict[str, Any]:
    routing = ctx.get_module("ietf-routing").search_one("container", "routing")
    return {"ietf-routing:routing": _node(routing, "ietf-routing:routing")}


def _name(stmt: Any) -> str:
    return f"{stmt.i_module.i_modulename}:{stmt.arg}"


def _node(stmt: Any, name: str) -> dict[str, Any]:
    kind = stmt.keyword
    out: dict[str, Any] = {"kind": kind, "module": stmt.i_module.i_modulename}
    state = not getattr(stmt, "i_config", True)
    if state:
        out["config"] = False
    if kind in ("container", "list"):
        children: dict[str, Any] = {}
        offered = OFFERED.get(name)
        choices: list[str] = []
        _children(stmt, children, choices, offered, None)
        out["children"] = children
        if choices and not state:  # what a state node must hold is the server's to say
            out["mandatory-choices"] = choices
        if kind == "container" and stmt.search_one("presence") is not None:
            out["presence"] = True
        if kind == "list":
            out["keys"] = stmt.search_one("key").arg.split()
    if kind in ("leaf", "leaf-list"):
        out["type"] = _type(stmt.search_one("type"))
        default = stmt.search_one("default")
        if default is not None:
            out["default"] = default.arg
        if (kind == "leaf" and not state
                and stmt.search_one("mandatory", "true") is not None):
            out["mandatory"] = True
    if kind in ("list", "leaf-list"):
        for bound in ("min-elements", "max-elements"):
            s = stmt.search_one(bound)
            if s is not None and s.arg != "unbounded":
                out[bound] = int(s.arg)
        if stmt.search_one("ordered-by", "user") is not None:
            out["ordered-by"] = "user"
    return out


def _children(stmt: Any, into: dict[str, Any], choices: list[str],
              offered: tuple[str, ...] | None, case: str | None) -> None:
    for child in stmt.i_children:
        if child.keyword in ("choice", "case"):
            mandatory = (child.keyword == "choice" and getattr(child, "i_config", True)
                         and child.search_one("mandatory", "true") is not None)
            inner = f"{_name(child)}" if child.keyword == "choice" else f"{case}/{child.arg}"
            if mandatory:
                choices.append(inner)
            _children(child, into, choices, offered, inner)
            continue
        if child.keyword not in ("container", "list", "leaf", "leaf-list"):
            continue  # actions, notifications: served on their own paths
        name = _name(child)
        if offered is not None and name not in offered:
            into[name] = {"kind": "unoffered", "module": child.i_module.i_modulename}
            if not getattr(child, "i_config", True):
                into[name]["config"] = False
            continue
        node = _node(child, name)
        if case is not None:
            node["case"] = case
        into[name] = node


def _number(value: Any) -> int | str:
    if isinstance(value, int):
        return value
    return format(Decimal(str(value)).normalize(), "f") if value is not None else ""


def _type(type_stmt: Any) -> dict[str, Any]:
    spec = type_stmt.i_type_spec
    out: dict[str, Any] = {}
    typedefs = []
    t = type_stmt
    while getattr(t, "i_typedef", None) is not None:
        typedef = t.i_typedef
        typedefs.append(f"{typedef.i_module.i_modulename}:{typedef.arg}")
        t = typedef.search_one("type")
    if typedefs:
        out["typedefs"] = typedefs
    # The bounds in force: the first range met going up from the leaf's own type.
    s = spec
    while s is not None:
        name = type(s).__name__
        if name == "RangeTypeSpec" and "range" not in out:
            out["range"] = [_number(s.min), _number(s.max)]
        if name == "LengthTypeSpec" and "length" not in out:
            out["length"] = [_number(s.min), _number(s.max)]
        if name == "EnumTypeSpec":
            out["enums"] = [e for e, _ in s.enums]
        if name == "PathTypeSpec":
            target = s.i_target_node.search_one("type")
            return {**_type(target), "leafref": True}
        if name == "UnionTypeSpec":
            out["base"] = "union"
            out["types"] = [_type(member) for member in s.types]
            return out
        if name == "Decimal64TypeSpec":
            out["fd"] = s.fraction_digits
        if name == "IntTypeSpec" and "range" not in out:
            out["range"] = [s.min, s.max]
        if s.base is None:
            out["base"] = s.name
        s = s.base
    return out


def main() -> None:
    ctx = pyang_context()
    errors = [e for e in ctx.errors if e[1] not in ("UNUSED_IMPORT", "UNUSED_TYPEDEF")]
    if errors:
        for pos, tag, args in errors:
            sys.stderr.write(f"{pos}: {tag} {args}\n")
    json.dump(make_schema(ctx), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
