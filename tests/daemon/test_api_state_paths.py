"""The state below a link or an upstream, by its path in the standard tree: one group of a
link as RFC 8652 shapes it (``.../interfaces/interface=d1/group=232.1.1.1``), one source of
it, one group of an upstream as RFC 9398 does. Keys are percent-decoded one by one (an IPv6
group's colons, a comma in a key) and checked by their leaf's type: a key that cannot be
one (garbage, too long, another family's address, a unicast group) is refused 400 naming the
list, a well-formed key with no data is a 404 naming the node; a state node is not written.

::

    controller --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1
                                   host on d1 joins G (any source) and G2 from S
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_harness import serving
from daemon_harness import IGMP, TO_EX, Proto, config, records, until
from fakes import FakeNetwork, ip

from mcastproxy.wire.messages import GroupRecord, RecordType, Report

R = "/restconf/data/ietf-routing:routing"
CPP = R + "/control-plane-protocols/control-plane-protocol"


def errors(body: Any) -> list[dict[str, Any]]:
    return body["ietf-restconf:errors"]["error"]  # type: ignore[no-any-return]


def key(text: str) -> str:
    """A key as RFC 8040 §3.5.3 writes it: every reserved character percent-encoded."""
    return quote(text, safe="")


def links(proto: Proto) -> str:
    kind = "ietf-igmp-mld:" + proto.family.protocol
    return f"{CPP}={kind},mcastproxy/{kind}/interfaces/interface"


def upstreams(proto: Proto) -> str:
    kind = f"ietf-igmp-mld-proxy:{proto.family.protocol}-proxy"
    return f"{CPP}={kind},mcastproxy/{kind}/interfaces/interface"


async def subscribed(net: FakeNetwork, proto: Proto) -> None:
    """The host on d1 joins G from any source and G2 from S alone."""
    sock = net.sockets[proto.family]
    sock.inject_message("d1", proto.host, proto.join())
    version = 3 if proto is IGMP else 2
    allow = GroupRecord(RecordType.ALLOW_NEW_SOURCES, ip(proto.group2), (ip(proto.source),))
    sock.inject_message("d1", proto.host, Report(version, (allow,)))
    await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
    await until(lambda: (RecordType.ALLOW_NEW_SOURCES, ip(proto.group2))
                in records(sock.messages("u1")))


async def test_one_group_of_a_link_is_read_by_its_path(net: FakeNetwork, workdir: Path,
                                                       proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (_, api):
        await subscribed(net, proto)
        group = f"{links(proto)}=d1/group={key(proto.group)}"
        status, headers, body = await api.request("GET", group)
        assert status == 200, body
        assert headers["Content-Type"].startswith("application/yang-data+json")
        (entry,) = body["ietf-igmp-mld:group"]  # a list entry: an array of one (RFC 8040)
        assert entry["group-address"] == proto.group
        assert entry["filter-mode"] == "exclude"
        assert entry["last-reporter"] == proto.host
        # Unencoded colons are a path's own characters, and an address is matched in any
        # of its forms (the canonical one is what the data holds).
        spelled = proto.group.upper().replace("::", ":0::") if ":" in proto.group else (
            proto.group)
        for other in (proto.group, spelled):
            status, _, again = await api.request("GET", f"{links(proto)}=d1/group={other}")
            assert (status, again) == (200, body), other
        # A leaf below it, and one source of the other group, with its host.
        status, _, body = await api.request("GET", group + "/filter-mode")
        assert (status, body) == (200, {"ietf-igmp-mld:filter-mode": "exclude"})
        source = f"{links(proto)}=d1/group={key(proto.group2)}/source={key(proto.source)}"
        status, _, body = await api.request("GET", source)
        assert status == 200, body
        (entry,) = body["ietf-igmp-mld:source"]
        assert entry["source-address"] == proto.source
        assert [h["host-address"] for h in entry["host"]] == [proto.host]
        status, _, body = await api.request("GET", f"{source}/host={key(proto.host)}")
        assert status == 200, body


async def test_one_group_of_an_upstream_is_read_by_its_path(net: FakeNetwork, workdir: Path,
                                                            proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (_, api):
        await subscribed(net, proto)
        status, _, body = await api.request("GET", f"{upstreams(proto)}=u1/mcastproxy:usable")
        assert (status, body) == (200, {"mcastproxy:usable": True})
        prefix = "ietf-igmp-mld-proxy:"
        status, _, body = await api.request("GET",
                                            f"{upstreams(proto)}=u1/group={key(proto.group)}")
        assert status == 200, body
        assert body == {prefix + "group": [{"group-address": proto.group,
                                            "filter-mode": "exclude"}]}
        status, _, body = await api.request(
            "GET", f"{upstreams(proto)}=u1/group={key(proto.group2)}/source={key(proto.source)}")
        assert status == 200, body
        assert body[prefix + "source"][0]["source-address"] == proto.source


async def test_what_does_not_exist_is_a_404_naming_it(net: FakeNetwork, workdir: Path,
                                                      proto: Proto) -> None:
    other = "239.9.9.9" if proto is IGMP else "ff15::9:9"
    async with serving(net, workdir, config(proto)) as (_, api):
        await subscribed(net, proto)
        for path, named in (
            (f"{links(proto)}=d1/group={key(other)}", f"[group-address='{other}']"),
            (f"{links(proto)}=d9/group={key(proto.group)}", "[interface-name='d9']"),
            (f"{links(proto)}=d1/group={key(proto.group)}/source={key(proto.source)}",
             f"[source-address='{proto.source}']"),
            (f"{upstreams(proto)}=u7", "[name='u7']"),
            (f"{links(proto)}=d1%2Fx", "[interface-name='d1/x']"),
        ):
            status, headers, body = await api.request("GET", path)
            assert status == 404, path
            assert headers["Content-Type"].startswith("application/yang-data+json")
            (error,) = errors(body)
            assert error["error-tag"] == "invalid-value"
            assert error["error-path"].endswith(named), error
        # A node the schema has not: no such resource.
        status, _, _ = await api.request("GET", f"{links(proto)}=d1/colour")
        assert status == 404
        # The state with content=config: not there.
        status, _, body = await api.request(
            "GET", f"{links(proto)}=d1/group={key(proto.group)}?content=config")
        assert status == 404
        assert "config false" in errors(body)[0]["error-message"]


FORGED = {
    "garbage": "not-an-address",
    "too long": "1" * 4000,
    "too long, encoded": "%41" * 1000,
    "octets out of range": "239.1.1.256",
    "a unicast address": "10.0.0.1",
    "a prefix": "239.1.1.0%2F24",
    "a NUL": "%00",
    "a newline": "239.1.1.1%0A",
    "a quote": "%27%5D",
    "two keys": "239.1.1.1,239.1.1.2",
    "empty": "",
    "bad encoding": "%ZZ",
}


V6 = {"239.1.1.256": "ff15::1:10000", "239.1.1.0%2F24": "ff15::%2F64",
      "239.1.1.1": "ff15::1:1", "239.1.1.2": "ff15::1:2", "10.0.0.1": "2001:db8::1"}


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
async def test_a_forged_key_is_refused_naming_the_list(net: FakeNetwork, workdir: Path,
                                                       proto: Proto, forged: str) -> None:
    async with serving(net, workdir, config(proto)) as (daemon, api):
        await subscribed(net, proto)
        if proto is not IGMP:
            for v4, v6 in V6.items():
                forged = forged.replace(v4, v6)
        for tree in (links(proto) + "=d1", upstreams(proto) + "=u1"):
            status, headers, body = await api.request("GET", f"{tree}/group={forged}")
            assert status == 400, (tree, forged)
            assert headers["Content-Type"].startswith("application/yang-data+json")
            (error,) = errors(body)
            assert (error["error-type"], error["error-tag"]) == ("protocol", "invalid-value")
            if "," not in forged:
                assert error["error-path"].endswith("/group"), error
                assert "group-address" in error["error-message"]
            assert len(error["error-message"]) < 600  # a long key is not echoed whole
        assert daemon.errors["api"] == 0


@pytest.mark.parametrize("proto_of_tree", ["igmp", "mld"])
async def test_another_familys_group_is_refused(net: FakeNetwork, workdir: Path,
                                                proto_of_tree: str) -> None:
    text = ("igmp: {version: 3}\nmld: {version: 2}\ndownstream: [{interface: d1}]\n"
            "upstream: {candidates: [{interface: u1}]}\n")
    wrong = "ff15::1:1" if proto_of_tree == "igmp" else "239.1.1.1"
    family = "IPv4" if proto_of_tree == "igmp" else "IPv6"
    async with serving(net, workdir, text) as (_, api):
        kind = "ietf-igmp-mld:" + proto_of_tree
        for path in (f"{CPP}={kind},mcastproxy/{kind}/interfaces/interface=d1/group={key(wrong)}",
                     f"{CPP}={kind},mcastproxy/{kind}/interfaces/interface=d1/static-group="
                     f"{key(wrong)},*"):
            status, _, body = await api.request("GET", path)
            assert status == 400, path
            assert f"not an {family} address" in errors(body)[0]["error-message"]


async def test_a_node_of_the_state_is_not_written(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        await subscribed(net, IGMP)
        before = daemon.config_path.read_bytes()
        group = f"{links(IGMP)}=d1/group={key(IGMP.group)}"
        for method in ("PUT", "PATCH"):
            status, headers, body = await api.request(
                method, group, {"ietf-igmp-mld:group": [{"group-address": IGMP.group}]},
                headers={"If-Match": "*"})
            assert (status, headers.get("Allow")) == (405, "GET"), method
            assert errors(body)[0]["error-tag"] == "operation-not-supported"
        status, _, _ = await api.request("DELETE", group, headers={"If-Match": "*"})
        assert status == 405
        status, _, _ = await api.request("PUT", f"{upstreams(IGMP)}=u1/mcastproxy:usable",
                                         {"mcastproxy:usable": False},
                                         headers={"If-Match": "*"})
        assert status == 405
        assert daemon.config_path.read_bytes() == before
        # The group is still there, as the subscriber asked.
        assert (await api.request("GET", group))[0] == 200


async def test_a_key_with_a_comma_is_one_key(net: FakeNetwork, workdir: Path) -> None:
    cands = "[{interface: u1, records: [{group: 239.1.1.0/24}]}, {interface: u2}]"
    async with serving(net, workdir, config(IGMP, candidates=cands)) as (_, api):
        proxy = CPP + "=mcastproxy:multi-upstream-proxy,mcastproxy/mcastproxy:proxy"
        # Percent-encoded, a comma is a key's character: one key, no such candidate.
        status, _, body = await api.request("GET", f"{proxy}/upstream/candidate=u1%2Cu2")
        assert status == 404
        assert errors(body)[0]["error-path"].endswith("[interface='u1,u2']")
        # Unencoded, it separates keys: the list has one.
        status, _, body = await api.request("GET", f"{proxy}/upstream/candidate=u1,u2")
        assert status == 400
        assert "comma" in errors(body)[0]["error-message"]
        # A key of a whole number, forged.
        for forged in ("x", "-1", "1.0", "99999999999999999999999"):
            status, _, _ = await api.request("GET",
                                             f"{proxy}/upstream/candidate=u1/records={forged}")
            assert status == 400, forged
        status, _, body = await api.request("GET", f"{proxy}/upstream/candidate=u1/records=1")
        assert status == 200, body
