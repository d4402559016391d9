#!/usr/bin/env python3
"""A controller of mcastproxy's API in a few lines of the standard library.

Reads the running configuration (and its ETag), changes it with If-Match (RFC 8040), and
prints what the proxy answered: 204 and the new ETag, or RFC 8040's error body naming the
node and the reason (412 if another controller changed the configuration in between: read
it again and retry). ``move`` works on the standard tree (the ``mcastproxy`` YANG module's
``upstream``, PUT whole); ``patch`` merges into the file's document (RFC 7396).

    # over the UNIX socket (the api section's socket), as root or its group:
    examples/controller.py --socket /run/mcastproxy/api.sock get
    examples/controller.py --socket /run/mcastproxy/api.sock move 232.1.1.0/24 u2
    # over TCP with TLS and a token:
    MCASTPROXY_TOKEN=... examples/controller.py --url https://192.0.2.10:8443 \\
        --ca /etc/mcastproxy/ca.pem state upstreams

``move PREFIX UPSTREAM`` takes the group record PREFIX out of every candidate and gives it to
UPSTREAM (what runs is selected again: it moves, make before break). ``record UPSTREAM ID
PREFIX`` sets one record of one candidate (a PATCH of that node of the tree). ``patch JSON``
merges any change. ``tree`` shows the standard tree (RFC 8652, RFC 9398 and the module),
``--content`` and ``--depth`` as RFC 8040 has them; ``group LINK GROUP`` one group of a
link, as RFC 8652 shapes it (its path's keys percent-encoded: an IPv6 group's colons).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import sys
import urllib.parse
from typing import Any

CONFIG = "/restconf/data/mcastproxy:config"
ROUTING = "/restconf/data/ietf-routing:routing"
INSTANCE = ROUTING + "/control-plane-protocols/control-plane-protocol="
UPSTREAM = INSTANCE + "mcastproxy:multi-upstream-proxy,mcastproxy/mcastproxy:proxy/upstream"
YANG = "application/yang-data+json"


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a UNIX socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.token = os.environ.get("MCASTPROXY_TOKEN") or args.token

    def _connection(self) -> http.client.HTTPConnection:
        if self.args.socket:
            return UnixConnection(self.args.socket, self.args.timeout)
        url = urllib.parse.urlsplit(self.args.url)
        if url.scheme != "https":
            sys.exit("controller: --url must be https:// (the API never listens in clear)")
        context = ssl.create_default_context(cafile=self.args.ca)
        if self.args.cert:
            context.load_cert_chain(self.args.cert, self.args.key)
        return http.client.HTTPSConnection(url.hostname or "", url.port or 443,
                                           timeout=self.args.timeout, context=context)

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        hdrs = {"Accept": YANG, **(headers or {})}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = YANG
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            text = response.read().decode()
            return response.status, dict(response.getheaders()), json.loads(text) if text else None
        finally:
            conn.close()


def show(status: int, headers: dict[str, str], body: Any) -> int:
    print(f"{status} {http.client.responses.get(status, '')}")
    if "ETag" in headers:
        print(f"ETag: {headers['ETag']}")
    if body is not None:
        print(json.dumps(body, indent=2))
    return 0 if status < 300 else 1


def move(upstream_tree: dict[str, Any], prefix: str, upstream: str) -> dict[str, Any]:
    """The ``upstream`` container of the standard tree with the group record ``prefix``
    given to ``upstream`` alone."""
    candidates = upstream_tree.get("candidate", [])
    if upstream not in [c["interface"] for c in candidates]:
        sys.exit(f"controller: {upstream} is not a candidate upstream")
    out = []
    for given in candidates:
        cand = dict(given)
        records = [{k: v for k, v in r.items() if k != "id"} for r in cand.get("records", [])]
        records = [r for r in records if r != {"group": prefix}]
        if cand["interface"] == upstream:
            records.append({"group": prefix})
        if records:
            cand["records"] = [{"id": i, **r} for i, r in enumerate(records, 1)]
        else:
            cand.pop("records", None)
        out.append(cand)
    return {**upstream_tree, "candidate": out}


def key(text: str) -> str:
    """A list key in a path (RFC 8040 §3.5.3): every reserved character percent-encoded."""
    return urllib.parse.quote(text, safe="")


def group_path(link: str, group: str) -> str:
    """The path of one group of a downstream link (RFC 8652's igmp or mld tree)."""
    protocol = "ietf-igmp-mld:" + ("mld" if ":" in group else "igmp")
    return (f"{INSTANCE}{protocol},mcastproxy/{protocol}/interfaces/interface={key(link)}"
            f"/group={key(group)}")


def record_path(upstream: str, ident: int) -> str:
    """The path of one address prefix record of a candidate upstream."""
    return f"{UPSTREAM}/candidate={key(upstream)}/records={ident}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="the API's UNIX socket")
    where.add_argument("--url", help="https://ADDRESS:PORT of the API's TCP listener")
    parser.add_argument("--token", help="a bearer token (or MCASTPROXY_TOKEN)")
    parser.add_argument("--ca", help="the CA that signed the API's certificate")
    parser.add_argument("--cert", help="a client certificate (PEM), with --key")
    parser.add_argument("--key")
    parser.add_argument("--timeout", type=float, default=10.0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("get", help="the running configuration and its ETag")
    tree = sub.add_parser("tree", help="the standard tree: configuration and state")
    tree.add_argument("--content", choices=("all", "config", "nonconfig"), default="all")
    tree.add_argument("--depth", default="unbounded", help="levels shown (RFC 8040 §4.8.2)")
    group = sub.add_parser("group", help="one group of a downstream link, and its state")
    group.add_argument("link")
    group.add_argument("group")
    record = sub.add_parser("record", help="set one group record of a candidate upstream")
    record.add_argument("upstream")
    record.add_argument("id", type=int)
    record.add_argument("prefix")
    state = sub.add_parser("state", help="the state, or a subtree of it")
    state.add_argument("path", nargs="*", help="e.g. upstreams=u1")
    patch = sub.add_parser("patch", help="merge a JSON change into the configuration")
    patch.add_argument("change", help='e.g. \'{"upstream": {"default": "u2"}}\'')
    mv = sub.add_parser("move", help="give a group record to one upstream")
    mv.add_argument("prefix")
    mv.add_argument("upstream")
    args = parser.parse_args()
    api = Api(args)

    if args.command == "get":
        return show(*api.call("GET", CONFIG))
    if args.command == "state":
        path = "/".join(urllib.parse.quote(p, safe="=") for p in args.path)
        return show(*api.call("GET", "/restconf/data/mcastproxy:state"
                              + (f"/{path}" if path else "")))
    if args.command == "tree":
        query = urllib.parse.urlencode({"content": args.content, "depth": args.depth})
        return show(*api.call("GET", f"{ROUTING}?{query}"))
    if args.command == "group":
        return show(*api.call("GET", group_path(args.link, args.group)))
    if args.command == "record":
        status, headers, body = api.call("GET", UPSTREAM + "?content=config&depth=1")
        if status != 200:
            return show(status, headers, body)
        entry = {"id": args.id, "group": args.prefix}
        return show(*api.call("PATCH", record_path(args.upstream, args.id),
                              {"mcastproxy:records": [entry]}, {"If-Match": headers["ETag"]}))
    if args.command == "move":
        status, headers, body = api.call("GET", UPSTREAM + "?content=config")
        if status != 200:
            return show(status, headers, body)
        new = move(body["mcastproxy:upstream"], args.prefix, args.upstream)
        return show(*api.call("PUT", UPSTREAM, {"mcastproxy:upstream": new},
                              {"If-Match": headers["ETag"]}))
    status, headers, body = api.call("GET", CONFIG)
    if status != 200:
        return show(status, headers, body)
    return show(*api.call("PATCH", CONFIG, {"mcastproxy:config": json.loads(args.change)},
                          {"If-Match": headers["ETag"]}))


if __name__ == "__main__":
    sys.exit(main())
