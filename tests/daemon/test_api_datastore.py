"""``GET /restconf/data``: the whole datastore (RFC 8040 §3.5.1, RFC 7951): the routing tree
with its configuration and state, the interfaces it refers to, the yang-library, and the
project's own ``mcastproxy:config`` and ``mcastproxy:state``; ``content`` (§4.8.1) and
``depth`` (§4.8.2) honoured there and on the routing tree, a forged one refused with RFC
8040's error body.

::

    controller --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1, u2
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_harness import serving
from daemon_harness import IGMP, MLD, TO_EX, Proto, config, records, until
from fakes import FakeNetwork, ip
from yang_harness import YANGLINT, validate

from mcastproxy.api.yangdata import INTERFACES, ROUTING, to_yang

DATA = "/restconf/data"
R = DATA + "/ietf-routing:routing"
LIBRARY = "ietf-yang-library:yang-library"
CONFIG, STATE = "mcastproxy:config", "mcastproxy:state"
TWO = "[{interface: u1}, {interface: u2}]"
BOTH = "igmp: {version: 3}\nmld: {version: 2}\n"


def errors(body: Any) -> list[dict[str, Any]]:
    return body["ietf-restconf:errors"]["error"]  # type: ignore[no-any-return]


async def joined(net: FakeNetwork, proto: Proto) -> None:
    sock = net.sockets[proto.family]
    sock.inject_message("d1", proto.host, proto.join())
    await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))


def links_of(routing: dict[str, Any], proto: Proto) -> list[dict[str, Any]]:
    kind = "ietf-igmp-mld:" + proto.family.protocol
    (entry,) = [e for e in routing["control-plane-protocols"]["control-plane-protocol"]
                if e["type"] == kind]
    return entry[kind]["interfaces"]["interface"]  # type: ignore[no-any-return]


async def test_the_whole_datastore_holds_every_top_level_node(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with serving(net, workdir, config(proto, candidates=TWO)) as (daemon, api):
        await joined(net, proto)
        status, headers, body = await api.request("GET", DATA)
        assert status == 200
        assert headers["Content-Type"].startswith("application/yang-data+json")
        assert set(body) == {INTERFACES, ROUTING, LIBRARY, CONFIG, STATE}
        # The routing tree: its configuration and its state, as RFC 8342's operational view.
        routing = body[ROUTING]
        assert "mcastproxy:proxy" in json.dumps(routing)
        (link,) = links_of(routing, proto)
        assert link["oper-status"] == "up"
        assert [g["group-address"] for g in link["group"]] == [proto.group]
        assert body[INTERFACES] == to_yang(daemon.config)[INTERFACES]
        assert body[LIBRARY]["module-set"][0]["module"]
        # The project's own: the file's document and the status document.
        assert body[CONFIG]["upstream"]["candidates"] == [{"interface": "u1"},
                                                          {"interface": "u2"}]
        assert proto.group in body[STATE]["upstreams"]["u1"]["groups"]
        # One ETag for the configuration, whichever resource it is read from.
        _, tag = await api.config()
        assert headers["ETag"] == tag
        if YANGLINT is not None:  # the standard part is valid YANG data with its state
            standard = {k: v for k, v in body.items() if k in (INTERFACES, ROUTING)}
            assert validate(standard, kind="get") == ""


async def test_content_selects_configuration_or_state(net: FakeNetwork, workdir: Path,
                                                      proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (daemon, api):
        await joined(net, proto)
        status, headers, body = await api.request("GET", DATA + "?content=config")
        assert status == 200
        assert set(body) == {INTERFACES, ROUTING, CONFIG}
        assert body[ROUTING] == to_yang(daemon.config)[ROUTING]
        assert "group" not in links_of(body[ROUTING], proto)[0]
        tag = headers["ETag"]
        status, _, _ = await api.request("GET", DATA + "?content=config",
                                         headers={"If-None-Match": tag})
        assert status == 304
        status, _, body = await api.request("GET", DATA + "?content=nonconfig")
        assert status == 200
        assert set(body) == {ROUTING, LIBRARY, STATE}
        assert "mcastproxy:proxy" not in json.dumps(body[ROUTING])
        assert links_of(body[ROUTING], proto)[0]["group"][0]["group-address"] == proto.group
        # The project's resources hold one kind each: the other finds nothing.
        status, _, body = await api.request("GET", DATA + "/mcastproxy:config?content=nonconfig")
        assert (status, errors(body)[0]["error-tag"]) == (404, "invalid-value")
        status, _, _ = await api.request("GET", DATA + "/mcastproxy:state?content=config")
        assert status == 404
        status, _, _ = await api.request("GET", DATA + f"/{LIBRARY}?content=config")
        assert status == 404


async def test_depth_cuts_the_datastore_and_the_routing_tree(net: FakeNetwork,
                                                            workdir: Path) -> None:
    text = BOTH + "downstream: [{interface: d1}]\nupstream: {candidates: " + TWO + "}\n"
    async with serving(net, workdir, text) as (_, api):
        for p in (IGMP, MLD):
            await joined(net, p)
        # Of the datastore, the top-level nodes are at level 1.
        status, _, body = await api.request("GET", DATA + "?depth=1")
        assert status == 200
        assert body == {key: {} for key in (INTERFACES, ROUTING, LIBRARY, CONFIG, STATE)}
        status, _, whole = await api.request("GET", R)
        # The routing tree is at level 1, its list of instances at 3 (entries shown empty).
        assert (await api.request("GET", R + "?depth=1"))[2] == {ROUTING: {}}
        assert (await api.request("GET", R + "?depth=2"))[2] == {
            ROUTING: {"control-plane-protocols": {}}}
        _, _, body = await api.request("GET", R + "?depth=3")
        instances = whole[ROUTING]["control-plane-protocols"]["control-plane-protocol"]
        assert body == {ROUTING: {"control-plane-protocols": {
            "control-plane-protocol": [{} for _ in instances]}}}
        # At 4, each instance's leaves, and its protocol's container, empty.
        _, _, body = await api.request("GET", R + "?depth=4")
        for entry, full in zip(body[ROUTING]["control-plane-protocols"]
                               ["control-plane-protocol"], instances, strict=True):
            (container,) = set(full) - {"type", "name"}
            assert entry == {"type": full["type"], "name": full["name"], container: {}}
        # Deep enough, or unbounded: the tree whole.
        for depth in ("12", "65535", "unbounded"):
            status, _, body = await api.request("GET", R + f"?depth={depth}&content=all")
            assert status == 200
            _strip_times(body)
            _strip_times(whole)
            assert body == whole, depth
        # Below a node: the node is level 1 (a link with its groups shown empty).
        kind = "ietf-igmp-mld:igmp"
        link = (f"{R}/control-plane-protocols/control-plane-protocol={kind},mcastproxy/{kind}"
                "/interfaces/interface=d1")
        status, _, body = await api.request("GET", link + "?depth=2")
        assert status == 200
        (entry,) = body["ietf-igmp-mld:interface"]
        assert entry["interface-name"] == "d1"
        assert entry["group"] == [{}]
        # With content: the configuration's tree, cut.
        status, _, body = await api.request("GET", DATA + "?depth=2&content=config")
        assert set(body) == {INTERFACES, ROUTING, CONFIG}
        assert body[ROUTING] == {"control-plane-protocols": {}}


def _strip_times(body: Any) -> None:
    """The seconds a state shows move between two reads."""
    if isinstance(body, dict):
        for key in ("expire", "up-time"):
            body.pop(key, None)
        for value in body.values():
            _strip_times(value)
    elif isinstance(body, list):
        for value in body:
            _strip_times(value)


FORGED_DEPTHS = ["0", "-1", "65536", "4294967297", "1" * 400, "x", "1.5", "", "+3",
                 quote(" 3"), quote("٣"), "0x10", "unbounded2", "3%00"]


@pytest.mark.parametrize("depth", FORGED_DEPTHS)
async def test_a_forged_depth_is_refused(net: FakeNetwork, workdir: Path, depth: str) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        for where in (DATA, R, f"{R}/control-plane-protocols", DATA + "/mcastproxy:state",
                      DATA + "/mcastproxy:config", DATA + f"/{LIBRARY}"):
            status, headers, body = await api.request("GET", f"{where}?depth={depth}")
            assert status == 400, (where, depth)
            assert headers["Content-Type"].startswith("application/yang-data+json")
            (error,) = errors(body)
            assert (error["error-type"], error["error-tag"]) == ("protocol", "invalid-value")
            assert "depth" in error["error-message"]
            assert len(error["error-message"]) < 300
        # Given twice, or another parameter than RFC 8040's two: refused too.
        for query in ("depth=2&depth=3", "content=config&content=all", "fields=type",
                      "content=everything", "depth"):
            status, _, body = await api.request("GET", f"{R}?{query}")
            assert status == 400, query
            assert errors(body)[0]["error-type"] == "protocol"
        # The daemon goes on: the state is read as before.
        status, _, _ = await api.request("GET", DATA + "?depth=3")
        assert status == 200
        assert daemon.errors["api"] == 0
