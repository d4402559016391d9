"""YANG instance data in JSON (RFC 7951), read strictly and edited by the schema.

The schema is the one made from the modules (``yangschema``: ``yang/schema.json``), so this
module knows of YANG only what a document needs: containers, lists and their keys, leaves
and leaf-lists with their types. ``schema`` is the configuration's (what a write is checked
by), ``operational`` the configuration and the state (``config false``), which a GET may
name. It does three things:

- ``check``: a document (or a subtree) against the schema: no unknown node, each value of
  its type (RFC 7951 §6: 64-bit numbers and decimal64 are JSON strings, ``empty`` is
  ``[null]``) and within its range, list keys present and unique, at most one case of a
  choice, a list of at most ``MAX_ENTRIES``. Each problem names the node by its instance
  identifier (RFC 7951 §6.11), as RFC 8040's ``error-path`` wants. The document comes back
  with member names in RFC 7951's form (module-qualified where the module changes).
- ``Target``: a RESTCONF data resource (RFC 8040 §3.5.3, ``.../list=key1,key2/leaf``)
  resolved in the schema, each key checked by its leaf's type (an address written in its
  canonical form, as the data holds it); ``get``, ``replace``, ``merge`` and ``remove`` it
  in a tree.
- ``merge_tree``: RFC 8040 §4.6.1's plain patch: containers merged member by member, list
  entries by their keys, leaf-lists by value.
"""

from __future__ import annotations

import copy as _copy
import functools
import ipaddress
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mcastproxy.api.errors import ApiError, Problem
from mcastproxy.api.yangschema import load_schema

MAX_ENTRIES = 65_536  # entries of one list or leaf-list: thousands of records, not millions
# A key of a resource's path: the longest a key of these modules may be is an IPv6 address
# with its zone, or a name; anything longer names nothing and is not echoed back whole.
MAX_KEY = 255
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_INT_BOUNDS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


@functools.cache
def operational() -> dict[str, Any]:
    """The schema of the configuration and the state (RFC 8342's operational view)."""
    return load_schema()


@functools.cache
def schema() -> dict[str, Any]:
    """The schema of the configuration: the state's nodes left out."""
    return {name: _config_only(node) for name, node in operational().items()
            if node.get("config", True)}


def _config_only(node: dict[str, Any]) -> dict[str, Any]:
    if "children" not in node:
        return node
    return {**node, "children": {name: _config_only(sub)
                                 for name, sub in node["children"].items()
                                 if sub.get("config", True)}}


def child(node: dict[str, Any], name: str) -> tuple[str, dict[str, Any]] | None:
    """The child ``name`` (``module:name``, or ``name`` in ``node``'s module) of a schema
    node: its qualified name and node; None if it has none."""
    full = name if ":" in name else f"{node['module']}:{name}"
    found = node.get("children", {}).get(full)
    return None if found is None else (full, found)


def member(name: str, node: dict[str, Any], parent_module: str | None) -> str:
    """RFC 7951 §4: a member's name, qualified where its module is not its parent's."""
    local = name.partition(":")[2]
    return name if node["module"] != parent_module else local


def segment(name: str, node: dict[str, Any], parent_module: str | None) -> str:
    return "/" + member(name, node, parent_module)


def predicate(node: dict[str, Any], entry: dict[str, Any]) -> str:
    return "".join(f"[{k}={_quote(entry.get(k))}]" for k in node["keys"])


def _quote(value: Any) -> str:
    text = _text(value)
    return f"'{text}'" if "'" not in text else f'"{text}"'


def _text(value: Any) -> str:
    if value == [None]:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- checking -------------------------------------------------------------------------------


def check(node: dict[str, Any], name: str, value: Any, path: str,
          parent_module: str | None) -> tuple[Any, list[Problem]]:
    """``value`` of schema ``node`` (named ``name``) at instance path ``path`` (its own
    segment included): the value with member names in RFC 7951's form, and the problems."""
    problems: list[Problem] = []
    out = _check(node, value, path, problems)
    return out, problems


def _problem(problems: list[Problem], path: str, message: str,
             tag: str = "invalid-value") -> None:
    problems.append(Problem(message, path=path, tag=tag))


def _check(node: dict[str, Any], value: Any, path: str, problems: list[Problem]) -> Any:
    kind = node["kind"]
    if kind == "container":
        if not isinstance(value, dict):
            _problem(problems, path, "a container is a JSON object")
            return {}
        return _members(node, value, path, problems)
    if kind == "list":
        if not isinstance(value, list):
            _problem(problems, path, "a list is a JSON array of its entries")
            return []
        return _entries(node, value, path, problems)
    if kind == "leaf-list":
        if not isinstance(value, list):
            _problem(problems, path, "a leaf-list is a JSON array of its values")
            return []
        if len(value) > min(node.get("max-elements", MAX_ENTRIES), MAX_ENTRIES):
            _problem(problems, path, f"more than "
                     f"{min(node.get('max-elements', MAX_ENTRIES), MAX_ENTRIES)} values",
                     "too-big" if len(value) > MAX_ENTRIES else "invalid-value")
            return []
        if len(value) < node.get("min-elements", 0):
            _problem(problems, path, f"at least {node['min-elements']} values")
        seen: set[str] = set()
        for i, v in enumerate(value):
            at = f"{path}[.={_quote(v)}]" if isinstance(v, str) else f"{path}[{i + 1}]"
            why = leaf_problem(node["type"], v)
            if why:
                _problem(problems, at, why)
            elif _text(v) in seen:
                _problem(problems, at, "given twice")
            seen.add(_text(v))
        return list(value)
    if kind == "leaf":
        why = leaf_problem(node["type"], value)
        if why:
            _problem(problems, path, why)
        return value
    _problem(problems, path, "not offered by mcastproxy", "operation-not-supported")
    return None


def _members(node: dict[str, Any], value: dict[str, Any], path: str,
             problems: list[Problem]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cases: dict[str, str] = {}
    for name, v in value.items():
        found = child(node, name) if isinstance(name, str) and name.count(":") <= 1 else None
        if found is None:
            _problem(problems, f"{path}/{name}", f"{name!r} is not a node of "
                     f"{path.rpartition('/')[2] or 'the document'}", "unknown-element")
            continue
        full, sub = found
        at = path + segment(full, sub, node["module"])
        if sub["kind"] == "unoffered":
            _problem(problems, at, "not offered by mcastproxy", "operation-not-supported")
            continue
        case = sub.get("case")
        if case is not None:
            choice, _, which = case.rpartition("/")
            other = cases.setdefault(choice, which)
            if other != which:
                _problem(problems, at, f"of another case of {choice} than {other}")
        key = member(full, sub, node["module"])
        if key in out:
            _problem(problems, at, "given twice")
        out[key] = _check(sub, v, at, problems)
    for choice in node.get("mandatory-choices", ()):
        if choice not in cases:
            _problem(problems, path, f"needs one of the choice {choice}", "data-missing")
    for full, sub in node.get("children", {}).items():
        if sub.get("mandatory") and member(full, sub, node["module"]) not in out:
            _problem(problems, path + segment(full, sub, node["module"]), "is required",
                     "data-missing")
    return out


def _entries(node: dict[str, Any], value: list[Any], path: str,
             problems: list[Problem]) -> list[Any]:
    limit = min(node.get("max-elements", MAX_ENTRIES), MAX_ENTRIES)
    if len(value) > limit:
        _problem(problems, path, f"more than {limit} entries",
                 "too-big" if len(value) > MAX_ENTRIES else "invalid-value")
        return []
    if len(value) < node.get("min-elements", 0):
        _problem(problems, path, f"at least {node['min-elements']} entries")
    out = []
    seen: dict[tuple[str, ...], int] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            _problem(problems, f"{path}[{i + 1}]", "an entry is a JSON object")
            continue
        at = path + predicate(node, entry)
        missing = [k for k in node["keys"] if k not in entry]
        if missing:
            _problem(problems, f"{path}[{i + 1}]", f"the key {', '.join(missing)} is "
                     "missing", "data-missing")
            continue
        out.append(_members(node, entry, at, problems))
        keys = tuple(_text(entry[k]) for k in node["keys"])
        if keys in seen:
            _problem(problems, at, f"the same key as entry {seen[keys]}", "data-exists")
        seen.setdefault(keys, i + 1)
    return out


def leaf_problem(spec: dict[str, Any], value: Any) -> str:
    """Why ``value`` is not of YANG type ``spec`` in RFC 7951 JSON; "" if it is."""
    base = spec["base"]
    if base == "union":
        whys = [leaf_problem(member_type, value) for member_type in spec["types"]]
        return "" if "" in whys else " or ".join(dict.fromkeys(whys))
    if base == "boolean":
        return "" if isinstance(value, bool) else "expected true or false"
    if base == "empty":
        return "" if value == [None] else "expected [null] (an empty leaf, RFC 7951 §6.9)"
    if base == "enumeration":
        enums = spec.get("enums", [])
        return "" if value in enums else f"expected {' or '.join(enums)}"
    if base == "decimal64" or base in ("int64", "uint64"):
        return _string_number(spec, value)
    if base.startswith(("int", "uint")):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number ({base})"
        return _in_range(spec, Decimal(value))
    if base == "string":
        if not isinstance(value, str):
            return "expected a string"
        return _string(spec, value)
    if base == "identityref":
        return "" if isinstance(value, str) and value.count(":") == 1 else (
            "expected an identity, module:name")
    return f"of a type mcastproxy does not take ({base})"


def _string_number(spec: dict[str, Any], value: Any) -> str:
    what = "a decimal number" if spec["base"] == "decimal64" else "a whole number"
    if not isinstance(value, str):
        return f"expected {what} as a JSON string (RFC 7951 §6.1)"
    if spec["base"] == "decimal64":
        if not _DECIMAL.fullmatch(value):
            return f"{value!r} is not a decimal number"
        digits = len(value.partition(".")[2])
        if digits > spec.get("fd", 18):
            return f"{value!r}: at most {spec['fd']} digits after the point"
    elif not re.fullmatch(r"-?[0-9]+", value):
        return f"{value!r} is not a whole number"
    try:
        number = Decimal(value)
    except InvalidOperation:
        return f"{value!r} is not a number"
    return _in_range(spec, number)


def _in_range(spec: dict[str, Any], number: Decimal) -> str:
    bounds = spec.get("range")
    if bounds is None:
        bits = _INT_BOUNDS.get(spec["base"])
        if bits is None:
            return ""
        bounds = [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    low, high = Decimal(str(bounds[0])), Decimal(str(bounds[1]))
    if not low <= number <= high:
        return f"{number} is not within {bounds[0]}..{bounds[1]}"
    return ""


def _string(spec: dict[str, Any], value: str) -> str:
    length = spec.get("length")
    if length is not None and not int(length[0]) <= len(value) <= int(length[1]):
        return f"of {length[0]} to {length[1]} characters"
    for typedef in spec.get("typedefs", ()):
        name = typedef.partition(":")[2]
        try:
            if name.endswith("prefix"):
                net = ipaddress.ip_network(value, strict=False)
                if "/" not in value:
                    raise ValueError
                if name.startswith("ipv4") and net.version != 4:
                    return f"{value!r} is not an IPv4 prefix"
                if name.startswith("ipv6") and net.version != 6:
                    return f"{value!r} is not an IPv6 prefix"
                return ""
            if name.endswith(("address", "address-no-zone")):
                if "%" in value and (name.endswith("no-zone") or "multicast-group" in name):
                    return f"{value!r}: a zone is not of this type ({typedef})"
                address = ipaddress.ip_address(value.partition("%")[0])
                if name.startswith("ipv4") and address.version != 4:
                    return f"{value!r} is not an IPv4 address"
                if name.startswith("ipv6") and address.version != 6:
                    return f"{value!r} is not an IPv6 address"
                if "multicast-group" in name and not address.is_multicast:
                    return f"{value!r} is not a multicast group"
                return ""
        except ValueError:
            what = "an address prefix" if name.endswith("prefix") else "an address"
            return f"{value!r} is not {what} ({typedef})"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "holds a control character"
    return ""


# --- resources ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One node of a resource's path: its schema node, its member name (RFC 7951's form),
    and, for a list entry, its key values."""

    name: str
    node: dict[str, Any]
    member: str
    keys: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Target:
    """A data resource (RFC 8040 §3.5.3) resolved in the schema."""

    steps: tuple[Step, ...]

    @property
    def last(self) -> Step:
        return self.steps[-1]

    @property
    def state(self) -> bool:
        """Whether it is a node of the state (``config false``), which is not written."""
        return any(step.node.get("config") is False for step in self.steps)

    def path(self) -> str:
        """The resource as an instance identifier (RFC 7951 §6.11)."""
        out = ""
        parent: str | None = None
        for step in self.steps:
            out += segment(step.name, step.node, parent)
            if step.keys is not None:
                out += "".join(f"[{k}={_quote(v)}]"
                               for k, v in zip(step.node["keys"], step.keys, strict=True))
            parent = step.node["module"]
        return out


def resolve(segments: list[str], *, state: bool = False) -> Target:
    """The resource of RFC 8040 path ``segments`` (each as the URI has it, ``name`` or
    ``name=key1,key2``, percent-encoded: a key's comma is ``%2C``), in the configuration's
    schema, or with ``state`` in the operational one. ApiError 404 where the schema has no
    such node; 400 where a key is not of its leaf's type (garbage, another family's address,
    longer than ``MAX_KEY``)."""
    root = operational() if state else schema()
    node: dict[str, Any] = {"kind": "container", "module": "", "children": root}
    steps: list[Step] = []
    parent: str | None = None
    for raw in segments:
        raw_name, has_keys, raw_keys = raw.partition("=")
        name = urllib.parse.unquote(raw_name)
        if not steps and ":" not in name:
            raise ApiError(404, "invalid-value", f"no such resource: {_shown(name)!r} (a "
                           "top-level node is named with its module, RFC 8040 §3.5.3)")
        found = child(node, name) if name.count(":") <= 1 else None
        if found is None or found[1]["kind"] == "unoffered":
            raise ApiError(404, "invalid-value", f"no such resource: {_shown(name)!r}")
        full, sub = found
        values: tuple[str, ...] | None = None
        if has_keys:
            if sub["kind"] != "list":
                raise ApiError(400, "invalid-value", f"{name} is not a list: it has no keys")
            values = tuple(urllib.parse.unquote(k) for k in raw_keys.split(","))
            if len(values) != len(sub["keys"]):
                raise ApiError(400, "invalid-value", f"{name} has the keys "
                               f"{', '.join(sub['keys'])}: give each, comma-separated (a "
                               "comma in a key as %2C)")
            at = Target((*steps, Step(full, sub, member(full, sub, parent), None))).path()
            values = tuple(_key(sub, k, v, at) for k, v in zip(sub["keys"], values,
                                                                 strict=True))
        steps.append(Step(full, sub, member(full, sub, parent), values))
        parent = sub["module"]
        node = sub
    return Target(tuple(steps))


def _shown(text: str) -> str:
    """``text`` as an error message may repeat it: cut where it is too long to name."""
    return text if len(text) <= MAX_KEY else text[:MAX_KEY] + "..."


def _key(node: dict[str, Any], name: str, text: str, at: str) -> str:
    """Key ``name`` of list ``node`` given as ``text`` in a path: checked by its leaf's type,
    an address in its canonical form; ApiError 400 naming the list (``at``) if it is not."""
    found = child(node, name)
    spec = found[1]["type"] if found is not None else {"base": "string"}
    why = (f"{_shown(text)!r} is longer than {MAX_KEY} characters" if len(text) > MAX_KEY
           else _key_problem(spec, text))
    if why:
        raise ApiError(400, "invalid-value", [Problem(f"the key {name}: {why}", path=at)])
    return _canonical(spec, text)


def _key_problem(spec: dict[str, Any], text: str) -> str:
    """Why a key's text is not of YANG type ``spec`` ("" if it is): the text is the
    canonical form of any type (RFC 8040 §3.5.3), not its JSON."""
    base = spec["base"]
    if base == "union":
        whys = [_key_problem(t, text) for t in spec["types"]]
        return "" if "" in whys else " or ".join(dict.fromkeys(whys))
    value: Any = text
    if base.startswith(("int", "uint")) and base not in ("int64", "uint64"):
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            return f"{_shown(text)!r} is not a whole number ({base})"
        value = int(text)
    elif base == "boolean":
        value = {"true": True, "false": False}.get(text, text)
    elif base == "empty":
        value = [None] if text == "" else text
    return leaf_problem(spec, value)


def _canonical(spec: dict[str, Any], text: str) -> str:
    """An address key as the data writes it (``FF02:0::1`` is ``ff02::1``)."""
    types = spec["types"] if spec["base"] == "union" else [spec]
    if "%" not in text and any(t.get("typedefs", [""])[0].endswith(
            ("address", "address-no-zone")) for t in types):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    return text


def _matches(node: dict[str, Any], entry: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(entry, dict) and all(
        _text(entry.get(k)) == v for k, v in zip(node["keys"], keys, strict=True))


def _walk(tree: dict[str, Any], target: Target, create: bool,
          ) -> Iterator[tuple[dict[str, Any], Step]]:
    """Each (object holding the step's member, step); created on the way if ``create``."""
    holder = tree
    for i, step in enumerate(target.steps):
        yield holder, step
        if i == len(target.steps) - 1:
            return
        value = holder.get(step.member)
        if step.keys is not None:
            entries = value if isinstance(value, list) else []
            entry = next((e for e in entries if _matches(step.node, e, step.keys)), None)
            if entry is None:
                if not create:
                    raise _missing(target, i)
                entry = dict(zip(step.node["keys"], step.keys, strict=True))
                holder.setdefault(step.member, []).append(entry)
            holder = entry
        else:
            if not isinstance(value, dict):
                if not create:
                    raise _missing(target, i)
                value = holder[step.member] = {}
            holder = value


def _missing(target: Target, last: int = -1) -> ApiError:
    """RFC 8040 §7: 404 for a resource of the schema with no data there, naming the first
    node of its path that has none (``last``: its step)."""
    steps = target.steps if last < 0 else target.steps[:last + 1]
    path = Target(steps).path()
    return ApiError(404, "invalid-value", [Problem(f"no such data: {path}", path=path)])


def get(tree: dict[str, Any], target: Target) -> Any:
    """The data at ``target`` in ``tree`` (a list entry: the entry); ApiError 404 if none."""
    *_, (holder, step) = _walk(tree, target, create=False)
    value = holder.get(step.member)
    if value is None:
        raise _missing(target)
    if step.keys is not None:
        entry = next((e for e in value if _matches(step.node, e, step.keys)), None)
        if entry is None:
            raise _missing(target)
        return entry
    return value


def body_member(target: Target) -> str:
    """The member a body of ``target`` holds: its name qualified with its module (RFC 8040
    §4.4.1, RFC 7951 §4: a top-level member)."""
    return target.last.name


def replace(tree: dict[str, Any], target: Target, value: Any) -> None:
    """RFC 8040 §4.5's PUT: ``value`` (checked) in place of what ``target`` holds."""
    *_, (holder, step) = _walk(tree, target, create=True)
    if step.keys is not None:
        entries = holder.setdefault(step.member, [])
        for i, e in enumerate(entries):
            if _matches(step.node, e, step.keys):
                entries[i] = value
                return
        entries.append(value)
    else:
        holder[step.member] = value


def merge(tree: dict[str, Any], target: Target, value: Any) -> None:
    """RFC 8040 §4.6.1's plain patch of ``target`` with ``value`` (checked)."""
    *_, (holder, step) = _walk(tree, target, create=True)
    if step.keys is not None:
        entries = holder.setdefault(step.member, [])
        for i, e in enumerate(entries):
            if _matches(step.node, e, step.keys):
                entries[i] = merge_tree(step.node, e, value)
                return
        entries.append(value)
    else:
        holder[step.member] = merge_tree(step.node, holder.get(step.member), value)


def remove(tree: dict[str, Any], target: Target) -> None:
    """RFC 8040 §4.7's DELETE; ApiError 404 if nothing is there."""
    *_, (holder, step) = _walk(tree, target, create=False)
    if step.member not in holder:
        raise _missing(target)
    if step.keys is not None:
        entries = holder[step.member]
        kept = [e for e in entries if not _matches(step.node, e, step.keys)]
        if len(kept) == len(entries):
            raise _missing(target)
        holder[step.member] = kept
    else:
        del holder[step.member]


def merge_tree(node: dict[str, Any], old: Any, new: Any, *, copy: bool = True) -> Any:
    """``new`` merged into ``old`` by schema ``node``: neither is changed, unless ``copy``
    is false (both are then the caller's to give: taken as they are, not copied)."""
    dup = _copy.deepcopy if copy else _same
    kind = node["kind"]
    if kind == "container" and isinstance(old, dict) and isinstance(new, dict):
        out = dup(old)
        for name, value in new.items():
            found = child(node, name)
            if found is None:
                out[name] = dup(value)
            else:
                out[name] = merge_tree(found[1], out.get(name), value, copy=copy)
        return out
    if kind == "list" and isinstance(old, list) and isinstance(new, list):
        out_list = dup(old)
        for entry in new:
            keys = tuple(_text(entry.get(k)) for k in node["keys"])
            for i, e in enumerate(out_list):
                if _matches(node, e, keys):
                    out_list[i] = merge_tree({**node, "kind": "container"}, e, entry, copy=copy)
                    break
            else:
                out_list.append(dup(entry))
        return out_list
    if kind == "leaf-list" and isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    return dup(new)


def _same(value: Any) -> Any:
    return value
