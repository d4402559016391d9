"""The standard tree's resources: the configuration and state where RFC 8652 and RFC 9398
place them (with the mcastproxy module), changed with the same ETag, If-Match and atomic
apply as ``mcastproxy:config``; RFC 8652's clear-groups action on its node; the YANG library
and the modules' texts.

::

    controller --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1, u2
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_harness import READ_TOKEN, READER, WRITE_TOKEN, WRITER, serving
from daemon_harness import IGMP, MLD, TO_EX, Proto, config, records, status_of, until
from fakes import FakeNetwork, ip
from yang_harness import YANGLINT, validate

from mcastproxy.api.yangdata import ROUTING, to_yang
from mcastproxy.config import load_config, parse_config

R = "/restconf/data/ietf-routing:routing"
CPP = R + "/control-plane-protocols/control-plane-protocol"
PROXY = CPP + "=mcastproxy:multi-upstream-proxy,mcastproxy/mcastproxy:proxy"
UPSTREAM = PROXY + "/upstream"
TWO = "[{interface: u1}, {interface: u2}]"
BOTH = "igmp: {version: 3}\nmld: {version: 2}\n"


def errors(body: Any) -> list[dict[str, Any]]:
    return body["ietf-restconf:errors"]["error"]  # type: ignore[no-any-return]


def interfaces(*names: str) -> dict[str, Any]:
    return {"ietf-interfaces:interfaces": {"interface": [
        {"name": n, "type": "mcastproxy:system-interface", "ietf-ip:ipv4": {},
         "ietf-ip:ipv6": {}} for n in names]}}


def protocol(tree: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in tree["control-plane-protocols"]["control-plane-protocol"]:
        if entry["type"] == kind:
            return entry  # type: ignore[no-any-return]
    raise KeyError(kind)


async def test_the_configuration_is_read_in_the_standard_tree(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with serving(net, workdir, config(proto, candidates=TWO)) as (daemon, api):
        status, headers, body = await api.request("GET", R + "?content=config")
        assert status == 200
        assert headers["Content-Type"].startswith("application/yang-data+json")
        assert body == {ROUTING: to_yang(daemon.config)[ROUTING]}
        # One version, one ETag, whichever form it is read in.
        _, tag = await api.config()
        assert headers["ETag"] == tag
        status, _, _ = await api.request("GET", R + "?content=config",
                                         headers={"If-None-Match": tag})
        assert status == 304
        if YANGLINT is not None:
            assert validate({**body, **interfaces("d1", "u1", "u2")}) == ""
        # A node below, with its keys (RFC 8040 §3.5.3), and a list entry as an array.
        status, _, body = await api.request("GET", UPSTREAM + "/candidate=u2")
        assert (status, body) == (200, {"mcastproxy:candidate": [{"interface": "u2"}]})
        status, _, body = await api.request("GET", UPSTREAM + "/candidate=u9")
        assert status == 404
        status, _, body = await api.request("GET", R + "/nothing")
        assert status == 404
        status, _, body = await api.request("GET", R + "?fields=type")
        assert status == 400


async def test_the_state_is_in_rfc_8652_shape(net: FakeNetwork, workdir: Path,
                                              proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (_, api):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
        kind = "ietf-igmp-mld:" + proto.family.protocol
        status, _, body = await api.request("GET", f"{CPP}={kind},mcastproxy/{kind}")
        assert status == 200
        tree = body[kind]
        (link,) = tree["interfaces"]["interface"]
        assert link["oper-status"] == "up"
        (group,) = link["group"]
        assert group["group-address"] == proto.group
        assert group["filter-mode"] == "exclude"
        assert group["last-reporter"] == proto.host
        assert tree["global"]["groups-count"] == 1
        assert int(tree["global"]["statistics"]["received"]["report"]) >= 1
        # RFC 9398: the group on the upstream, which the module says is usable.
        kind = f"ietf-igmp-mld-proxy:{proto.family.protocol}-proxy"
        status, _, body = await api.request("GET", f"{CPP}={kind},mcastproxy/{kind}"
                                            "/interfaces/interface=u1")
        (upstream,) = body["ietf-igmp-mld-proxy:interface"]
        assert upstream["mcastproxy:usable"] is True
        assert [g["group-address"] for g in upstream["group"]] == [proto.group]
        # Configuration and state together are valid YANG data (the operational view).
        status, _, body = await api.request("GET", R)
        if YANGLINT is not None:
            assert validate({**body, **interfaces("d1", "u1")}, kind="get") == ""
        status, _, body = await api.request("GET", R + "?content=nonconfig")
        assert "mcastproxy:proxy" not in json.dumps(body)


async def test_a_yaml_file_and_a_tree_of_the_same_content_run_the_same(
    net: FakeNetwork, workdir: Path,
) -> None:
    target = (BOTH + "downstream: [{interface: d1, fast-leave: true, policy: {max-groups: 9}}]\n"
              "timers: {query-interval: 60s, last-member-query-interval: 200ms}\n"
              "upstream:\n  ties: share\n  candidates:\n"
              "    - {interface: u1, priority: 5, records: [{group: 232.1.0.0/16}]}\n"
              "    - {interface: u2, liveness: {data: 1s}}\n"
              "policy: {default: deny, group-policy: [{action: permit, group: 232.0.0.0/8}]}\n")
    start = BOTH + "downstream: [{interface: d1}]\nupstream: {candidates: [{interface: u1}]}\n"
    async with serving(net, workdir, start) as (daemon, api):
        _, tag = await api.config()
        tree = to_yang(parse_config(target))[ROUTING]
        # The host's sections stay as they are: the running tree's.
        running = (await api.request("GET", R + "?content=config"))[2][ROUTING]
        protocol(tree, "mcastproxy:multi-upstream-proxy")["mcastproxy:proxy"]["api"] = (
            protocol(running, "mcastproxy:multi-upstream-proxy")["mcastproxy:proxy"]["api"])
        status, headers, body = await api.request("PUT", R, {ROUTING: tree},
                                                  headers={"If-Match": tag})
        assert status == 204, body
        api_section = "api:\n" + daemon.config_path.read_text().split("\napi:\n")[1]
        assert daemon.config == parse_config(target + api_section)
        assert load_config(daemon.config_path) == daemon.config
        assert (await api.config())[1] == headers["ETag"]


async def test_a_patch_of_a_candidate_moves_a_channel(net: FakeNetwork, workdir: Path,
                                                     proto: Proto) -> None:
    group = f"{proto.group}/{32 if proto is IGMP else 128}"
    cands = f"[{{interface: u1, records: [{{group: '{group}'}}]}}, {{interface: u2}}]"
    async with serving(net, workdir, config(proto, candidates=cands)) as (daemon, api):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
        _, headers, _ = await api.request("GET", R + "?content=config")
        tag = headers["ETag"]
        status, _, body = await api.request(
            "PATCH", UPSTREAM + "/candidate=u2",
            {"mcastproxy:candidate": [{"interface": "u2", "records": [
                {"id": 1, "group": group}]}]}, headers={"If-Match": tag})
        assert status == 204, body
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u2")))
        assert proto.group in (await status_of(daemon))["upstreams"]["u2"]["groups"]
        # The same ETag is stale now, in either form.
        status, _, body = await api.request(
            "PATCH", UPSTREAM, {"mcastproxy:upstream": {"takeover": False}},
            headers={"If-Match": tag})
        assert status == 412
        _, tag = await api.config()
        # A leaf replaced, then a record deleted.
        status, _, body = await api.request("PUT", UPSTREAM + "/candidate=u1/priority",
                                            {"mcastproxy:priority": 7},
                                            headers={"If-Match": tag})
        assert status == 204, body
        assert daemon.config.candidate("u1").priority == 7
        _, tag = await api.config()
        status, _, body = await api.request("DELETE", UPSTREAM + "/candidate=u1/records=1",
                                            headers={"If-Match": tag})
        assert status == 204, body
        assert daemon.config.candidate("u1").records == ()
        _, tag = await api.config()
        status, _, body = await api.request("DELETE", UPSTREAM + "/candidate=u1/records=1",
                                            headers={"If-Match": tag})
        assert status == 404


async def test_an_invalid_change_is_refused_naming_the_node(net: FakeNetwork,
                                                           workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP, candidates=TWO)) as (daemon, api):
        before, file = daemon.config, daemon.config_path.read_bytes()
        # Valid YANG, refused by the file's rules: the path is still the tree's.
        status, _, body = await api.request("PUT", UPSTREAM + "/default",
                                            {"mcastproxy:default": "u9"},
                                            headers={"If-Match": "*"})
        assert status == 400
        (error,) = errors(body)
        assert error["error-path"].endswith("/mcastproxy:proxy/upstream/default")
        assert "not a candidate" in error["error-message"]
        assert error["error-info"] == {"mcastproxy:field": "upstream.default"}
        # Not YANG: each node at fault.
        status, _, body = await api.request(
            "PATCH", UPSTREAM, {"mcastproxy:upstream": {"ties": "coin", "colour": 1}},
            headers={"If-Match": "*"})
        assert status == 400
        assert {e["error-path"].rpartition("/")[2] for e in errors(body)} == {"ties", "colour"}
        # A body that names another node than the path, or another entry.
        status, _, body = await api.request("PUT", UPSTREAM, {"mcastproxy:proxy": {}},
                                            headers={"If-Match": "*"})
        assert (status, errors(body)[0]["error-tag"]) == (400, "malformed-message")
        status, _, body = await api.request(
            "PUT", UPSTREAM + "/candidate=u2", {"mcastproxy:candidate": [{"interface": "u1"}]},
            headers={"If-Match": "*"})
        assert status == 400
        # Without If-Match, from a read token, of the host's sections.
        status, _, _ = await api.request("PATCH", UPSTREAM, {"mcastproxy:upstream": {}})
        assert status == 428
        status, _, body = await api.request(
            "PUT", PROXY + "/api/socket", {"mcastproxy:socket": str(workdir / "other.sock")},
            headers={"If-Match": "*"})
        assert status == 403
        assert errors(body)[0]["error-path"].endswith("/mcastproxy:proxy/api")
        status, _, _ = await api.request("DELETE", R, headers={"If-Match": "*"})
        assert status == 400
        # Nested without end, or a list without end: refused before anything is read.
        deep = b'{"ietf-routing:routing": ' + b'{"a": ' * 40 + b"1" + b"}" * 41
        status, _, body = await api.request("PUT", R, raw=deep, headers={"If-Match": "*"})
        assert (status, errors(body)[0]["error-tag"]) == (400, "malformed-message")
        huge = {"mcastproxy:candidate": [{"interface": "u2", "records": [
            {"id": i, "group": "232.0.0.0/8"} for i in range(70_000)]}]}
        status, _, body = await api.request("PUT", UPSTREAM + "/candidate=u2", huge,
                                            headers={"If-Match": "*"})
        assert status == 400
        assert errors(body)[0]["error-path"].endswith("/candidate[interface='u2']/records")
        assert daemon.config is before
        assert daemon.config_path.read_bytes() == file


async def test_a_read_token_reads_the_tree_and_writes_nothing(net: FakeNetwork,
                                                             workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP), tokens=[WRITER, READER],
                       token=READ_TOKEN) as (_daemon, api):
        assert (await api.request("GET", R))[0] == 200
        status, _, body = await api.request("PATCH", UPSTREAM, {"mcastproxy:upstream": {}},
                                            headers={"If-Match": "*"})
        assert (status, errors(body)[0]["error-tag"]) == (403, "access-denied")
        status, _, _ = await api.request(
            "POST", CPP + "=ietf-igmp-mld:igmp,mcastproxy/ietf-igmp-mld:igmp/clear-groups",
            {"ietf-igmp-mld:input": {"all-interfaces": [None], "group-address": "*",
                                     "source-address": "*"}})
        assert status == 403
        api.token = None
        assert (await api.request("GET", R))[0] == 401
        api.token = WRITE_TOKEN
        assert (await api.request("GET", R))[0] == 200


async def test_clear_groups_clears_its_protocol_only(net: FakeNetwork, workdir: Path) -> None:
    text = BOTH + "downstream: [{interface: d1}]\nupstream: {candidates: [{interface: u1}]}\n"
    async with serving(net, workdir, text) as (daemon, api):
        for p in (IGMP, MLD):
            sock = net.sockets[p.family]
            sock.inject_message("d1", p.host, p.join())
            await until(lambda p=p: p.group in daemon.status()["upstreams"]["u1"]["groups"])
        action = CPP + "=ietf-igmp-mld:igmp,mcastproxy/ietf-igmp-mld:igmp/clear-groups"
        status, _, body = await api.request("POST", action, {"ietf-igmp-mld:input": {
            "all-interfaces": [None], "group-address": "*", "source-address": "*"}})
        assert status == 204, body
        groups = daemon.status()["downstream"]
        assert groups["d1/igmp"]["groups"] == {}
        assert MLD.group in groups["d1/mld"]["groups"]
        # The MLD action, one group on one link: its leaves are optional there.
        action = CPP + "=ietf-igmp-mld:mld,mcastproxy/ietf-igmp-mld:mld/clear-groups"
        status, _, body = await api.request("POST", action, {"ietf-igmp-mld:input": {
            "interface-name": "d1", "group-address": MLD.group}})
        assert status == 204, body
        assert daemon.status()["downstream"]["d1/mld"]["groups"] == {}


@pytest.mark.parametrize(("given", "leaf"), [
    ({"all-interfaces": [None], "group-address": "ff15::1", "source-address": "*"},
     "group-address"),
    ({"interface-name": "u1", "group-address": "*", "source-address": "*"}, "interface-name"),
    ({"all-interfaces": [None], "group-address": "*", "source-address": "224.0.0.1"},
     "source-address"),
    ({"all-interfaces": [None], "interface-name": "d1", "group-address": "*",
      "source-address": "*"}, "input"),
    ({"all-interfaces": [None], "group-address": "*", "source-address": "*", "x": 1}, "x"),
])
async def test_a_bad_clear_groups_input_is_refused(
    net: FakeNetwork, workdir: Path, given: dict[str, Any], leaf: str,
) -> None:
    async with serving(net, workdir, config(IGMP)) as (_, api):
        action = CPP + "=ietf-igmp-mld:igmp,mcastproxy/ietf-igmp-mld:igmp/clear-groups"
        status, _, body = await api.request("POST", action, {"ietf-igmp-mld:input": given})
        assert status == 400
        assert errors(body)[0]["error-path"].endswith(f"/{leaf}")
        # Where there is no action, or for a protocol that is off.
        status, _, _ = await api.request("POST", UPSTREAM, {})
        assert status == 405
        mld = CPP + "=ietf-igmp-mld:mld,mcastproxy/ietf-igmp-mld:mld/clear-groups"
        status, _, _ = await api.request("POST", mld, {"ietf-igmp-mld:input": {
            "all-interfaces": [None]}})
        assert status == 404


async def test_the_yang_library_serves_the_modules(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (_, api):
        status, _, body = await api.request("GET",
                                            "/restconf/data/ietf-yang-library:yang-library")
        assert status == 200
        (module_set,) = body["ietf-yang-library:yang-library"]["module-set"]
        names = {m["name"]: m for m in module_set["module"]}
        assert {"mcastproxy", "ietf-igmp-mld", "ietf-igmp-mld-proxy"} <= names.keys()
        assert names["ietf-igmp-mld"]["deviation"] == ["mcastproxy-deviations"]
        assert "action-clear-groups" in names["ietf-igmp-mld"]["feature"]
        for module in module_set["module"] + module_set["import-only-module"]:
            (location,) = module["location"]
            async with api.session.get(f"{api.base}{quote(location)}",
                                       headers=api.headers()) as r:
                assert r.status == 200
                assert r.content_type == "application/yang"
                assert f"module {module['name']} " in await r.text()
        status, _, _ = await api.request("GET", "/restconf/yang/..%2F..%2Fetc%2Fpasswd")
        assert status == 404


async def test_the_example_client_moves_a_record_in_the_tree(net: FakeNetwork,
                                                             workdir: Path) -> None:
    cands = "[{interface: u1, records: [{group: 239.1.1.0/24}]}, {interface: u2}]"
    async with serving(net, workdir, config(IGMP, candidates=cands)) as (daemon, _):
        client = Path(__file__).resolve().parents[2] / "examples" / "controller.py"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(client), "--socket", str(workdir / "api.sock"), "move",
            "239.1.1.0/24", "u2", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out
        assert out.startswith(b"204")
        assert daemon.config.candidate("u1").records == ()
        assert [str(r.group) for r in daemon.config.candidate("u2").records] == [
            "239.1.1.0/24"]


async def test_the_example_client_reads_a_group_and_sets_a_record(net: FakeNetwork,
                                                                 workdir: Path) -> None:
    text = BOTH + ("downstream: [{interface: d1}]\nupstream: {candidates: "
                   "[{interface: u1, records: [{group: 239.1.1.0/24}]}, "
                   "{interface: u2, records: [{group: 239.0.0.0/8}]}]}\n")
    async with serving(net, workdir, text) as (daemon, _):
        net.sockets[MLD.family].inject_message("d1", MLD.host, MLD.join())
        await until(lambda: any(MLD.group in u["groups"]
                                for u in daemon.status()["upstreams"].values()))
        client = Path(__file__).resolve().parents[2] / "examples" / "controller.py"

        async def run(*args: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(client), "--socket", str(workdir / "api.sock"), *args,
                stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            return proc.returncode or 0, out.decode()

        code, out = await run("group", "d1", MLD.group)  # an IPv6 group: its colons encoded
        assert code == 0, out
        assert f'"group-address": "{MLD.group}"' in out
        code, out = await run("group", "d1", "ff15::9")
        assert (code, out.split()[0]) == (1, "404")
        code, out = await run("tree", "--content", "nonconfig", "--depth", "3")
        assert code == 0, out
        code, out = await run("tree", "--depth", "0")
        assert (code, out.split()[0]) == (1, "400")
        code, out = await run("record", "u2", "1", "239.1.1.1/32")
        assert (code, out.split()[0]) == (0, "204"), out
        assert [str(r.group) for r in daemon.config.candidate("u2").records] == ["239.1.1.1/32"]
