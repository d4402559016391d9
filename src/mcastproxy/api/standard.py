"""The standard data tree's resources (RFC 8040 §3.5, RFC 7951 JSON): the configuration and
state where RFC 8652 and RFC 9398 place them, RFC 8652's ``clear-groups`` action, and the
modules (RFC 8525's yang-library, whose ``location`` leaves give each module's text, the
schema resource of RFC 8040 §3.7).

- ``GET /restconf/data``: the whole datastore (``datastore``): the interfaces, the routing
  tree with its state, the yang-library, and the project's ``mcastproxy:config`` and
  ``mcastproxy:state``.
- ``GET /restconf/data/ietf-routing:routing[/...]``: the tree (``yangdata.to_yang``) with
  its state (``yangstate``) merged, as RFC 8342's operational view; ``?content=config``
  (RFC 8040 §4.8.1) leaves the state out, ``nonconfig`` the configuration; ``?depth=``
  (§4.8.2) cuts it (``query``). Below it, any node, of the configuration or of the state:
  ``.../control-plane-protocol=mcastproxy:multi-upstream-proxy,mcastproxy/
  mcastproxy:proxy/upstream/candidate=u1``, ``.../control-plane-protocol=ietf-igmp-mld:mld,
  mcastproxy/ietf-igmp-mld:mld/interfaces/interface=d1/group=ff3e%3A%3A8000%3A1``; a key
  is checked by its leaf's type (400 if it cannot be one), a node with no data is a 404
  naming its instance identifier. A node of the state is not written (405).
- ``PUT``, ``PATCH`` (RFC 8040 §4.6.1's plain patch: merged by list keys) and ``DELETE`` of
  any configuration node of it: the running tree is edited there, read back into the file's
  document (``yangdata.from_yang``) and applied exactly as the ``mcastproxy:config``
  resource applies a document: the same ETag and If-Match, the same validation, atomic
  apply and write, the host's sections refused (403).
- ``POST .../control-plane-protocol=ietf-igmp-mld:igmp,mcastproxy/ietf-igmp-mld:igmp/
  clear-groups`` (and ``mld``): the action (RFC 8040 §3.6), for the protocol's groups only.
- ``GET /restconf/data/ietf-yang-library:yang-library`` and
  ``GET /restconf/yang/NAME@REVISION.yang`` (``application/yang``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import ipaddress
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mcastproxy.api import yangtree
from mcastproxy.api.auth import IDENTITY
from mcastproxy.api.document import HOST_SECTIONS, read_json
from mcastproxy.api.errors import CONFIG, YANG_JSON, ApiError, Problem
from mcastproxy.api.query import pruned, read_query, run_sliced
from mcastproxy.api.yangdata import (
    FAMILIES,
    INTERFACES,
    NAME,
    PROXY,
    PROXY_TYPE,
    ROUTING,
    instance_path,
    routing_node,
    to_yang,
)
from mcastproxy.api.yangread import from_yang, yang_path
from mcastproxy.api.yangschema import MODULES, module_file
from mcastproxy.api.yangstate import state_slices

if TYPE_CHECKING:
    from mcastproxy.api.server import ApiServer

LIBRARY = "ietf-yang-library:yang-library"
YANG_TEXT = "application/yang"
_TYPES = (YANG_JSON, "application/json")
STATE = "mcastproxy:state"
_NAMESPACE = re.compile(r'^\s*namespace\s+"([^"]+)"', re.MULTILINE)


class StandardTree:
    """The resources above, for ``server``'s daemon."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self._files = {f"{name}@{revision}.yang": module_file(name, revision)
                       for name, revision, _ in MODULES}

    def routes(self) -> list[web.RouteDef]:
        tree = "/restconf/data/" + ROUTING + "{tail:(/[\\s\\S]*)?}"
        return [web.put(tree, self._put), web.patch(tree, self._patch),
                web.delete(tree, self._delete), web.post(tree, self._action),
                web.get("/restconf/yang/{file}", self._module)]

    def allowed(self, path: str) -> str | None:
        """The methods a path of the tree takes (for a 405's Allow); None if not the tree's."""
        if not path.startswith("/restconf/data/" + ROUTING):
            return None
        return "POST" if path.rstrip("/").endswith(_ACTIONS) else "GET, PUT, PATCH, DELETE"

    # --- reading ------------------------------------------------------------------------------

    async def datastore(self, request: web.Request) -> web.StreamResponse:
        """GET of ``/restconf/data``: the whole datastore (RFC 8040 §3.5.1, RFC 7951 JSON
        of every top-level node): ``ietf-interfaces:interfaces`` and the routing tree with
        its state, RFC 8525's yang-library, and the project's own resources,
        ``mcastproxy:config`` (the file's document) and ``mcastproxy:state`` (the status
        document); ``content`` and ``depth`` as for any node."""
        query = read_query(request.query)
        server = self.server
        tag = server.etag if server.document is not None else ""
        if query.content == "config" and tag and request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        headers = {"ETag": tag} if tag else None
        config = server.daemon.config
        tree: dict[str, Any] = {}
        # The file's document, where it holds what runs (else, until a reload or a PUT, it
        # is left out: the routing tree still shows what runs).
        document = server.document if query.config else None
        if query.config:
            tree[INTERFACES] = to_yang(config)[INTERFACES]
        if not query.state:
            tree[ROUTING] = await self._routing(None)
            if document is not None:
                tree[CONFIG] = document
            return await server.stream(request, await pruned(tree, query.depth),
                                       headers=headers)
        async with server.state_held(request) as state:
            tree[ROUTING] = await self._routing(state, config=query.config)
            tree[LIBRARY] = self._library()
            if document is not None:
                tree[CONFIG] = document
            tree[STATE] = state
            # Streamed while the state is held: the answer is made of it, not copied.
            return await server.stream(request, await pruned(tree, query.depth),
                                       headers=headers)

    async def get(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """GET of a node of the routing tree (``segments``, as the URI has them, from
        ``ietf-routing:routing``): a node of the configuration or of the state, down to one
        group of a link or of an upstream."""
        query = read_query(request.query)
        _not_the_action(segments)
        target = yangtree.resolve(segments, state=True)
        server = self.server
        tag = server.etag if server.document is not None else ""
        if query.content == "config" and tag and request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        if target.state and not query.state:
            raise ApiError(404, "invalid-value", [Problem(
                f"no such data: {target.path()} is state (config false)",
                path=target.path())])
        if query.state:
            async with asyncio.timeout(60.0), server.daemon.status_held() as state:
                routing = await self._routing(state, config=query.config)
        else:
            routing = await self._routing(None)
        value = yangtree.get({ROUTING: routing}, target)
        if target.last.keys is not None:
            value = [value]
        body = await pruned({yangtree.body_member(target): value}, query.depth)
        return await server.stream(request, body, headers={"ETag": tag} if tag else None)

    async def _routing(self, state: dict[str, Any] | None, *, config: bool = True,
                       ) -> dict[str, Any]:
        """The routing tree: its configuration (if ``config``) with the state of status
        document ``state`` (if given) merged in, as RFC 8342's operational view."""
        tree: dict[str, Any] = to_yang(self.server.daemon.config)[ROUTING] if config else {}
        if state is None:
            return tree
        status = await run_sliced(state_slices(state))
        # Both trees are new: the state is grafted into the configuration, not copied.
        merged: dict[str, Any] = yangtree.merge_tree(routing_node(), tree, status[ROUTING],
                                                     copy=False)
        return merged

    async def library(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """RFC 8525's yang-library (``segments`` from it: only the whole is offered); state
        alone (``content=config`` finds nothing)."""
        query = read_query(request.query)
        if segments:
            raise ApiError(404, "invalid-value", f"no such resource: {segments[0][:64]!r} "
                           f"(GET {LIBRARY} whole)")
        if not query.state:
            raise ApiError(404, "invalid-value", [Problem(
                f"no such data: {LIBRARY} is state (config false)", path=f"/{LIBRARY}")])
        return await self.server.stream(request, await pruned({LIBRARY: self._library()},
                                                              query.depth))

    def _library(self) -> dict[str, Any]:
        own: list[dict[str, Any]] = []
        imported: list[dict[str, Any]] = []
        for name, revision, features in MODULES:
            path = module_file(name, revision)
            found = _NAMESPACE.search(path.read_text())
            entry: dict[str, Any] = {
                "name": name, "revision": revision,
                "namespace": found.group(1) if found else "",
                "location": [f"/restconf/yang/{name}@{revision}.yang"]}
            if features:
                entry["feature"] = list(features)
            if name in ("ietf-igmp-mld", "ietf-igmp-mld-proxy"):
                entry["deviation"] = ["mcastproxy-deviations"]
            implemented = name in ("mcastproxy", "mcastproxy-deviations", "ietf-igmp-mld",
                                   "ietf-igmp-mld-proxy", "ietf-routing", "ietf-interfaces",
                                   "ietf-ip", "ietf-pim-base")
            (own if implemented else imported).append(entry)
        content = hashlib.sha256(repr(MODULES).encode()).hexdigest()[:16]
        return {
            "module-set": [{"name": NAME, "module": own, "import-only-module": imported}],
            "schema": [{"name": NAME, "module-set": [NAME]}],
            "datastore": [{"name": "ietf-datastores:running", "schema": NAME},
                          {"name": "ietf-datastores:operational", "schema": NAME}],
            "content-id": content}

    async def _module(self, request: web.Request) -> web.StreamResponse:
        path = self._files.get(request.match_info["file"])
        if path is None:
            raise ApiError(404, "invalid-value", f"no such module: "
                           f"{request.match_info['file']!r} (the yang-library lists them)")
        return web.Response(text=path.read_text(), content_type=YANG_TEXT)

    # --- writing ------------------------------------------------------------------------------

    async def _put(self, request: web.Request) -> web.StreamResponse:
        return await self._edit(request, "replace")

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        return await self._edit(request, "merge")

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        return await self._edit(request, "remove")

    async def _edit(self, request: web.Request, how: str) -> web.StreamResponse:
        server = self.server
        segments = raw_segments(request)
        _not_the_action(segments)
        if yangtree.resolve(segments, state=True).state:
            raise ApiError(405, "operation-not-supported", "a node of the state (config "
                           "false) is read, not written", headers={"Allow": "GET"})
        target = yangtree.resolve(segments)
        if how == "remove":
            identity, tags = server.writer(request, (request.content_type,))
            if len(target.steps) == 1:
                raise ApiError(400, "invalid-value", "the configuration is not deleted "
                               "whole: PUT one", error_type="application")
            value: Any = None
        else:
            identity, tags = server.writer(request, _TYPES)
            value = _body(target, read_json(await request.read()))
        async with server.writing:
            server.check_match(tags)
            base = to_yang(server.daemon.config)[ROUTING]
            holder = {ROUTING: copy.deepcopy(base)}
            if how == "replace":
                yangtree.replace(holder, target, value)
            elif how == "merge":
                yangtree.merge(holder, target, value)
            else:
                yangtree.remove(holder, target)
            new, origins = from_yang(holder[ROUTING])
            _host_sections(base, holder[ROUTING])
            current = server.document
            for section in HOST_SECTIONS:  # as the file has them, not as the tree writes them
                new.pop(section, None)
                if current is not None and section in current:
                    new[section] = current[section]
            fallback = instance_path(PROXY_TYPE)
            server.apply(new, identity.who, request,
                         lambda field: yang_path(origins, field, fallback))
        return web.Response(status=204, headers={"ETag": server.etag})

    # --- the action ---------------------------------------------------------------------------

    async def _action(self, request: web.Request) -> web.StreamResponse:
        """RFC 8652's clear-groups on its data node (RFC 8040 §3.6)."""
        segments = raw_segments(request)
        if not segments or urllib.parse.unquote(segments[-1]) not in _ACTIONS:
            raise ApiError(405, "operation-not-supported", "POST is for actions (the igmp "
                           "and mld trees' clear-groups); data is written with PUT or PATCH",
                           headers={"Allow": "GET, PUT, PATCH, DELETE"})
        target = yangtree.resolve(segments[:-1])
        kind = target.last.name
        entry = target.steps[-2] if len(target.steps) >= 2 else None
        family = next((f for k, _, _, f in FAMILIES if k == kind), None)
        if family is None or entry is None or entry.keys != (kind, NAME):
            raise ApiError(404, "invalid-value", "clear-groups is an action of the igmp and "
                           "mld containers of their instances")
        protocol = "igmp" if family == 4 else "mld"
        if getattr(self.server.daemon.config, protocol) is None:
            raise ApiError(404, "invalid-value", f"no such data: {protocol} is off")
        identity = request[IDENTITY]
        if not identity.may_write():
            raise ApiError(403, "access-denied", f"{identity.who} may read, not write")
        if request.content_type not in _TYPES:
            raise ApiError(415, "invalid-value", f"the body's Content-Type is "
                           f"{request.content_type!r}; expected {' or '.join(_TYPES)}")
        data = read_json(await request.read())
        path = f"{target.path()}/clear-groups"
        given = _input(data, path)
        links = [d.interface for d in self.server.daemon.config.downstream]
        interface = given.get("interface-name")
        if interface is not None and interface not in links:
            raise ApiError(400, "invalid-value", [Problem(
                f"{interface!r} is not an interface of this tree ({', '.join(links)})",
                path=f"{path}/input/interface-name")], error_type="application")
        group = _address(given.get("group-address", "*"), family, True,
                         f"{path}/input/group-address")
        source = _address(given.get("source-address", "*"), family, False,
                          f"{path}/input/source-address")
        # The action of this protocol's tree: its groups alone, in one event.
        self.server.daemon.clear_groups(interface, group, source, identity.who, family)
        return web.Response(status=204)


_ACTIONS = ("clear-groups", "ietf-igmp-mld:clear-groups")


def _not_the_action(segments: list[str]) -> None:
    if segments and urllib.parse.unquote(segments[-1]) in _ACTIONS:
        raise ApiError(405, "operation-not-supported", "clear-groups is an action: POST it",
                       headers={"Allow": "POST"})


def path_segments(request: web.Request) -> list[str]:
    """The path's segments under /restconf/data, each percent-decoded (RFC 8040 §3.5.3):
    decoded one by one, so that ``d1%2Figmp`` is one segment."""
    return [urllib.parse.unquote(s) for s in raw_segments(request)]


def raw_segments(request: web.Request) -> list[str]:
    """The path's segments under /restconf/data as the URI has them (``yangtree.resolve``
    decodes a segment's name and each key apart: a key may hold ``,`` or ``=`` encoded)."""
    raw = request.rel_url.raw_path.removeprefix("/restconf/data").strip("/")
    return [s for s in raw.split("/") if s]


def _body(target: yangtree.Target, data: Any) -> Any:
    """The value a PUT or PATCH body gives ``target`` (RFC 8040 §4.5: the target's node,
    named with its module; a list entry as an array of it), checked by the schema."""
    name = yangtree.body_member(target)
    if not isinstance(data, dict) or list(data) != [name]:
        keys = ", ".join(repr(k) for k in data) if isinstance(data, dict) else type(data).__name__
        raise ApiError(400, "malformed-message", f"expected an object with one member, "
                       f"{name!r}; got {keys}")
    value = data[name]
    step = target.last
    path = target.path()
    if step.keys is not None:
        if not isinstance(value, list) or len(value) != 1:
            raise ApiError(400, "malformed-message", f"{name} is a list entry: an array of "
                           "one entry")
        entry = value[0]
        if not isinstance(entry, dict) or any(
                yangtree._text(entry.get(k)) != v
                for k, v in zip(step.node["keys"], step.keys, strict=True)):
            raise ApiError(400, "invalid-value", [Problem(
                "the entry's keys are not the path's (RFC 8040 §4.5)", path=path)],
                error_type="application")
        checked, problems = yangtree.check(step.node, name, [entry], _list_path(path), None)
        value = checked[0] if checked else {}
    else:
        value, problems = yangtree.check(step.node, name, value, path, None)
    if problems:
        raise ApiError(400, "invalid-value", problems, error_type="application")
    return value


def _list_path(path: str) -> str:
    """The instance path of a list entry's list (its predicates cut)."""
    cut = path.rfind("/")
    head, last = path[:cut], path[cut:]
    return head + last.split("[", 1)[0]


def _host_sections(base: dict[str, Any], new: dict[str, Any]) -> None:
    """403 if ``new`` changes the host's sections of the proxy's tree."""
    def proxy(tree: dict[str, Any]) -> dict[str, Any]:
        for entry in tree.get("control-plane-protocols", {}).get("control-plane-protocol", []):
            if entry.get("type") == PROXY_TYPE:
                return entry.get(PROXY, {})  # type: ignore[no-any-return]
        return {}

    old, changed = proxy(base), proxy(new)
    host = [s for s in HOST_SECTIONS if old.get(s) != changed.get(s)]
    if host:
        at = instance_path(PROXY_TYPE)
        raise ApiError(403, "access-denied", [
            Problem(f"{s} names the host's files and listeners: it is changed in the file, "
                    "by its operator", s, path=f"{at}/{s}") for s in host])


_INPUT = ("interface-name", "all-interfaces", "group-address", "source-address")


def _input(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict) or list(data) != ["ietf-igmp-mld:input"]:
        raise ApiError(400, "malformed-message", "expected an object with one member, "
                       "'ietf-igmp-mld:input' (RFC 8040 §3.6.1)")
    given = data["ietf-igmp-mld:input"]
    if not isinstance(given, dict):
        raise ApiError(400, "invalid-value", "the input is an object")
    unknown = [k for k in given if k not in _INPUT]
    if unknown:
        raise ApiError(400, "unknown-element", [Problem(
            f"{k!r} is not an input of clear-groups", path=f"{path}/input/{k}")
            for k in unknown], error_type="application")
    if ("interface-name" in given) == ("all-interfaces" in given):
        raise ApiError(400, "invalid-value", [Problem(
            "give interface-name or all-interfaces ([null]), one of the two",
            path=f"{path}/input")], error_type="application")
    if "all-interfaces" in given and given["all-interfaces"] != [None]:
        raise ApiError(400, "invalid-value", [Problem(
            "all-interfaces is empty: [null]", path=f"{path}/input/all-interfaces")],
            error_type="application")
    if "interface-name" in given and not isinstance(given["interface-name"], str):
        raise ApiError(400, "invalid-value", [Problem(
            "an interface's name", path=f"{path}/input/interface-name")],
            error_type="application")
    return given


def _address(value: Any, family: int, multicast: bool, path: str) -> bytes | None:
    """An address of the input, packed (``*``: None); ApiError naming ``path`` if it is not
    of the tree's family and kind."""
    if value == "*":
        return None
    kind = "a multicast group" if multicast else "a unicast source"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or address.version != family or address.is_multicast != multicast:
        raise ApiError(400, "invalid-value", [Problem(
            f"{value!r} is not * or {kind} of IPv{family}", path=path)],
            error_type="application")
    return address.packed
