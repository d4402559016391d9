"""The API's OpenAPI 3.1 description, served at ``/openapi.json``.

It describes the resources: the configuration as the file's document (``mcastproxy:config``)
and in the standard tree, whose bodies' JSON Schema is made here from the YANG schema
(``yangschema``: containers and lists as objects and arrays of them, leaves by their YANG
type in RFC 7951's JSON, ranges and enums included), the state, the clear-groups action, the
YANG library and modules; the errors as RFC 8040 §7.1 has them, and the two ways to
authenticate. Contract tests (schemathesis) read it.
"""

from __future__ import annotations

import functools
from typing import Any

from mcastproxy.api.errors import YANG_JSON
from mcastproxy.api.yangtree import member, schema

ROUTING = "ietf-routing:routing"
_ROUTING_PATH = "/restconf/data/" + ROUTING
_CPP = _ROUTING_PATH + "/control-plane-protocols/control-plane-protocol"
_PROXY_PATH = _CPP + "=mcastproxy:multi-upstream-proxy,mcastproxy/mcastproxy:proxy"

_ERROR = {"$ref": "#/components/schemas/errors"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed or invalid (the body names the field and the reason)",
            401: "no or a bad token", 403: "a read token writing, or a host section",
            405: "not offered on this resource",
            409: "the file was edited since it was applied",
            404: "no such resource", 406: "not acceptable", 412: "the If-Match is stale",
            413: "the body is too large", 415: "not JSON", 428: "If-Match is needed",
            500: "applying failed; nothing of it is left"}
    return {str(c): {"description": text[c],
                     "content": {YANG_JSON: {"schema": _ERROR}}} for c in codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {YANG_JSON: {"schema": schema}}


def json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of RFC 7951 JSON of YANG schema ``node``."""
    kind = node["kind"]
    if kind in ("container", "list"):
        props = {member(name, sub, node["module"]): json_schema(sub)
                 for name, sub in node["children"].items() if sub["kind"] != "unoffered"}
        entry: dict[str, Any] = {"type": "object", "properties": props,
                                 "additionalProperties": False}
        if kind == "list":
            entry["required"] = list(node["keys"])
            return {"type": "array", "items": entry}
        return entry
    if kind == "leaf-list":
        return {"type": "array", "items": _leaf_schema(node["type"])}
    return _leaf_schema(node["type"])


def _leaf_schema(spec: dict[str, Any]) -> dict[str, Any]:
    base = spec["base"]
    if base == "union":
        return {"anyOf": [_leaf_schema(t) for t in spec["types"]]}
    if base == "boolean":
        return {"type": "boolean"}
    if base == "empty":
        return {"type": "array", "items": {"type": "null"}, "minItems": 1, "maxItems": 1}
    if base == "enumeration":
        return {"enum": list(spec["enums"])}
    if base == "decimal64":
        return {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    if base in ("int64", "uint64"):
        return {"type": "string", "pattern": r"^-?[0-9]+$"}
    if base.startswith(("int", "uint")):
        low, high = spec.get("range", [None, None])
        out: dict[str, Any] = {"type": "integer"}
        if low is not None:
            out["minimum"], out["maximum"] = int(low), int(high)
        return out
    return {"type": "string"}


@functools.cache
def _tree_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    routing = schema()[ROUTING]
    cpp = routing["children"]["ietf-routing:control-plane-protocols"]["children"][
        "ietf-routing:control-plane-protocol"]
    proxy = cpp["children"]["mcastproxy:proxy"]
    return ({"type": "object", "required": [ROUTING], "additionalProperties": False,
             "properties": {ROUTING: json_schema(routing)}},
            {"type": "object", "required": ["mcastproxy:proxy"], "additionalProperties": False,
             "properties": {"mcastproxy:proxy": json_schema(proxy)}})


CONTENT = {"name": "content", "in": "query", "required": False,
           "schema": {"enum": ["all", "config", "nonconfig"]},
           "description": "RFC 8040 §4.8.1: config, state, or both (the default)"}
DEPTH = {"name": "depth", "in": "query", "required": False,
         "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535},
                              {"enum": ["unbounded"]}]},
         "description": "RFC 8040 §4.8.2: the levels shown, the resource's own being 1"}
READ = [CONTENT, DEPTH]


def _read(summary: str, what: str) -> dict[str, Any]:
    """A GET of data, with RFC 8040's two query parameters."""
    return {"get": {"summary": summary, "parameters": READ,
                    "responses": {"200": {"description": what,
                                          "content": _json({"type": "object"})},
                                  "304": {"description": "not changed (If-None-Match)"},
                                  **_errors(400, 401, 404)}}}


def _state_paths() -> dict[str, Any]:
    """One group of a link (RFC 8652) and of an upstream (RFC 9398), by its keys."""
    out: dict[str, Any] = {}
    for protocol in ("igmp", "mld"):
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                   "description": text} for name, text in (
                       ("interface", "the link's or the upstream's name"),
                       ("group", "the group's address, percent-encoded (RFC 8040 §3.5.3)"))]
        for kind, what in ((f"ietf-igmp-mld:{protocol}", "of a downstream link (RFC 8652)"),
                           (f"ietf-igmp-mld-proxy:{protocol}-proxy",
                            "reported on an upstream (RFC 9398)")):
            path = (f"{_CPP}={kind},mcastproxy/{kind}/interfaces/interface={{interface}}"
                    "/group={group}")
            read = _read(f"one {protocol} group {what}: its state", "the group entry")
            read["get"]["parameters"] = [*READ, *params]
            out[path] = read
    return out


def _tree_paths() -> dict[str, Any]:
    routing, proxy = _tree_schemas()
    content = CONTENT
    writes = (400, 401, 403, 409, 412, 413, 415, 428, 500)

    def resource(what: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {"summary": f"{what}: configuration and state (RFC 7951)",
                    "parameters": [content, DEPTH],
                    "responses": {"200": {"description": "the data; ETag header",
                                          "content": _json({"type": "object"})},
                                  "304": {"description": "not changed (If-None-Match)"},
                                  **_errors(400, 401, 404)}},
            "put": {"summary": f"replace {what} (applied like a reload, written to the file)",
                    "parameters": [IF_MATCH],
                    "requestBody": {"required": True, "content": _json(body)},
                    "responses": {"204": {"description": "applied and written"},
                                  **_errors(*writes)}},
            "patch": {"summary": f"merge into {what} (RFC 8040 §4.6.1, by list keys)",
                      "parameters": [IF_MATCH],
                      "requestBody": {"required": True, "content": _json(body)},
                      "responses": {"204": {"description": "applied and written"},
                                    **_errors(*writes)}},
            "delete": {"summary": f"delete {what} (applied like a reload, written to the "
                                  "file); the whole routing tree is not deleted",
                       "parameters": [IF_MATCH],
                       "responses": {"204": {"description": "applied and written"},
                                     **_errors(400, 401, 403, 404, 409, 412, 428, 500)}},
        }

    def action(protocol: str) -> dict[str, Any]:
        group = {"anyOf": [{"enum": ["*"]}, {"type": "string"}]}
        return {"post": {
            "summary": f"RFC 8652's clear-groups of {protocol} (RFC 8040 §3.6)",
            "requestBody": {"required": True, "content": _json({
                "type": "object", "required": ["ietf-igmp-mld:input"],
                "additionalProperties": False, "properties": {"ietf-igmp-mld:input": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "interface-name": {"type": "string"},
                        "all-interfaces": _leaf_schema({"base": "empty"}),
                        "group-address": group, "source-address": group}}}})},
            "responses": {"204": {"description": "cleared"},
                          **_errors(400, 401, 403, 404, 415)}}}

    return {
        _ROUTING_PATH: resource("the routing tree (RFC 8652, RFC 9398, mcastproxy)",
                                routing),
        _PROXY_PATH: resource("the proxy's own tree (the mcastproxy module)", proxy),
        **{f"{_CPP}=ietf-igmp-mld:{p},mcastproxy/ietf-igmp-mld:{p}/clear-groups": action(p)
           for p in ("igmp", "mld")},
        "/restconf/data/ietf-yang-library:yang-library": _read(
            "the modules, their features and deviations (RFC 8525)", "the library"),
        **_state_paths(),
        "/restconf/yang/{module}": {"get": {
            "summary": "a module's text (RFC 8040 §3.7), as the library's location says",
            "parameters": [{"name": "module", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "YANG", "content": {"application/yang": {
                "schema": {"type": "string"}}}}, **_errors(401, 404)}}},
    }


CONFIG_BODY = {"type": "object", "required": ["mcastproxy:config"],
               "properties": {"mcastproxy:config": {"type": "object"}},
               "additionalProperties": False}
IF_MATCH = {"name": "If-Match", "in": "header", "required": True,
            "schema": {"type": "string"},
            "description": "the ETag of the configuration the change was made from, or *"}


def description() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "mcastproxy controller API", "version": "1",
                 "description": "RESTCONF-style (RFC 8040) resources of an IGMP/MLD proxy "
                                "with several upstreams: its state, its configuration "
                                "(read, replaced, merge-patched like a reload), its events."},
        "security": [{"bearer": []}, {"mutualTLS": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "mutualTLS": {"type": "mutualTLS"},
            },
            "schemas": {
                "errors": {"type": "object", "required": ["ietf-restconf:errors"],
                           "properties": {"ietf-restconf:errors": {
                               "type": "object", "properties": {"error": {
                                   "type": "array", "items": {
                                       "type": "object",
                                       "required": ["error-type", "error-tag"],
                                       "properties": {
                                           "error-type": {"enum": ["transport", "rpc",
                                                                   "protocol", "application"]},
                                           "error-tag": {"type": "string"},
                                           "error-path": {"type": "string"},
                                           "error-message": {"type": "string"},
                                           "error-info": {"type": "object"}}}}}}}},
            },
        },
        "paths": {
            "/restconf": {"get": {
                "summary": "the API root (RFC 8040 §3.3)",
                "responses": {"200": {"description": "the root",
                                      "content": _json({"type": "object"})},
                              **_errors(401)}}},
            "/restconf/data": _read(
                "the whole datastore (RFC 8040 §3.5.1): the interfaces, the routing tree "
                "with its state, the yang-library, mcastproxy:config and mcastproxy:state",
                "every top-level node; ETag header (the configuration's)"),
            "/restconf/data/mcastproxy:state": _read(
                "the operational state: what mcastproxy status --json shows", "the state"),
            "/restconf/data/mcastproxy:config": {
                "get": {"summary": "the running configuration, as the file holds it",
                        "parameters": READ,
                        "responses": {"200": {"description": "the configuration; ETag header",
                                              "content": _json(CONFIG_BODY)},
                                      "304": {"description": "not changed (If-None-Match)"},
                                      **_errors(400, 401, 404, 409)}},
                "put": {"summary": "replace the configuration (applied like a reload, "
                                   "written to the file)",
                        "parameters": [IF_MATCH],
                        "requestBody": {"required": True, "content": _json(CONFIG_BODY)},
                        "responses": {"204": {"description": "applied and written"},
                                      **_errors(400, 401, 403, 412, 413, 415, 428, 500)}},
                "patch": {"summary": "merge a patch into the configuration (RFC 7396)",
                          "parameters": [IF_MATCH],
                          "requestBody": {"required": True, "content": {
                              **_json(CONFIG_BODY),
                              "application/merge-patch+json": {"schema": CONFIG_BODY}}},
                          "responses": {"204": {"description": "applied and written"},
                                        **_errors(400, 401, 403, 412, 413, 415, 428, 500)}},
            },
            "/restconf/streams/events": {"get": {
                "summary": "server-sent events of what the proxy logs",
                "parameters": [{"name": "event", "in": "query", "required": False,
                                "schema": {"type": "string"},
                                "description": "event names to keep, comma-separated"}],
                "responses": {"200": {"description": "an event stream",
                                      "content": {"text/event-stream": {
                                          "schema": {"type": "string"}}}},
                              **_errors(401)}}},
            **_tree_paths(),
            "/openapi.json": {"get": {
                "summary": "this description",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}},
                              **_errors(401)}}},
        },
    }
