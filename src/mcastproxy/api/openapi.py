"""The API's OpenAPI 3.1 description, served at ``/openapi.json``.

It describes the resources as they are in stage 1 (the configuration is the file's document;
the YANG module that types it is stage 2), the errors as RFC 8040 §7.1 has them, and the
two ways to authenticate. Contract tests (schemathesis) read it.
"""

from __future__ import annotations

from typing import Any

from mcastproxy.api.errors import YANG_JSON

_ERROR = {"$ref": "#/components/schemas/errors"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed or invalid (the body names the field and the reason)",
            401: "no or a bad token", 403: "a read token writing, or a host section",
            404: "no such resource", 406: "not acceptable", 412: "the If-Match is stale",
            413: "the body is too large", 415: "not JSON", 428: "If-Match is needed",
            500: "applying failed; nothing of it is left"}
    return {str(c): {"description": text[c],
                     "content": {YANG_JSON: {"schema": _ERROR}}} for c in codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {YANG_JSON: {"schema": schema}}


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
            "/restconf/data": {"get": {
                "summary": "state and configuration",
                "responses": {"200": {"description": "mcastproxy:state (as status --json) "
                                      "and mcastproxy:config (as the file)",
                                      "content": _json({"type": "object"})},
                              **_errors(401)}}},
            "/restconf/data/mcastproxy:state": {"get": {
                "summary": "the operational state: what mcastproxy status --json shows",
                "responses": {"200": {"description": "the state",
                                      "content": _json({"type": "object"})},
                              **_errors(401)}}},
            "/restconf/data/mcastproxy:config": {
                "get": {"summary": "the running configuration, as the file holds it",
                        "responses": {"200": {"description": "the configuration; ETag header",
                                              "content": _json(CONFIG_BODY)},
                                      **_errors(401)}},
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
            "/openapi.json": {"get": {
                "summary": "this description",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {
                                          "schema": {"type": "object"}}}},
                              **_errors(401)}}},
        },
    }
