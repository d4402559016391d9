"""RFC 8040 §3.5.3 paths resolved in the schema (``yangtree.resolve``): the configuration's
schema and the operational one (the state's nodes, ``config false``, marked), keys decoded
one by one and checked by their leaf's type, addresses in their canonical form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mcastproxy.api.errors import ApiError
from mcastproxy.api.yangtree import MAX_KEY, operational, resolve, schema

TOP = ["ietf-routing:routing", "control-plane-protocols"]
IGMP = [*TOP, "control-plane-protocol=ietf-igmp-mld:igmp,mcastproxy", "ietf-igmp-mld:igmp",
        "interfaces", "interface=d1"]
MLD = [s.replace(":igmp", ":mld") for s in IGMP]
PROXY = [*TOP, "control-plane-protocol=mcastproxy:multi-upstream-proxy,mcastproxy",
         "mcastproxy:proxy", "upstream"]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for sub in node.get("children", {}).values():
        yield sub
        yield from nodes(sub)


def test_the_configurations_schema_holds_no_state() -> None:
    assert not any(n.get("config") is False for n in nodes(schema()["ietf-routing:routing"]))
    state = [n for n in nodes(operational()["ietf-routing:routing"]) if n.get("config") is False]
    assert state
    # Nothing of the state is mandatory for a writer: it is the server's to fill.
    assert not any(n.get("mandatory") or n.get("mandatory-choices") for n in state)


def test_a_group_of_a_link_is_a_node_of_the_state_only() -> None:
    target = resolve([*IGMP, "group=232.1.1.1"], state=True)
    assert target.state
    assert target.last.keys == ("232.1.1.1",)
    assert target.path().endswith("/interface[interface-name='d1']/group"
                                  "[group-address='232.1.1.1']")
    with pytest.raises(ApiError) as refused:
        resolve([*IGMP, "group=232.1.1.1"])
    assert refused.value.status == 404
    assert not resolve(IGMP, state=True).state


@pytest.mark.parametrize(("given", "canonical"), [
    ("ff3e%3A%3A8000%3A1", "ff3e::8000:1"),
    ("ff3e::8000:1", "ff3e::8000:1"),
    ("FF3E%3A0%3A%3A8000%3A1", "ff3e::8000:1"),
    ("ff3e:0:0:0:0:0:8000:1", "ff3e::8000:1"),
])
def test_an_ipv6_key_is_decoded_and_made_canonical(given: str, canonical: str) -> None:
    target = resolve([*MLD, f"group={given}"], state=True)
    assert target.last.keys == (canonical,)


def test_a_comma_encoded_is_part_of_a_key() -> None:
    assert resolve([*PROXY, "candidate=u1%2Cu2"]).last.keys == ("u1,u2",)
    with pytest.raises(ApiError) as refused:
        resolve([*PROXY, "candidate=u1,u2"])
    assert refused.value.status == 400


@pytest.mark.parametrize("key", [
    "garbage", "1" * (MAX_KEY + 1), "%41" * (MAX_KEY + 1), "239.1.1.256", "10.0.0.1",
    "ff15%3A%3A1", "232.1.1.1%00", "", "232.1.1.1%2F32", "232.1.1.1%25eth0",
])
def test_a_forged_group_key_is_refused_naming_the_list(key: str) -> None:
    with pytest.raises(ApiError) as refused:
        resolve([*IGMP, f"group={key}"], state=True)
    assert refused.value.status == 400
    (error,) = refused.value.body()["ietf-restconf:errors"]["error"]
    assert error["error-tag"] == "invalid-value"
    assert error["error-path"].endswith("/interface[interface-name='d1']/group")
    assert len(error["error-message"]) < 2 * MAX_KEY


@pytest.mark.parametrize("key", ["x", "-1", "1.0", "4294967296", "9" * 30, "%31%00"])
def test_a_forged_number_key_is_refused(key: str) -> None:
    with pytest.raises(ApiError) as refused:
        resolve([*PROXY, "candidate=u1", f"records={key}"])
    assert refused.value.status == 400


def test_a_nodes_name_is_decoded_too() -> None:
    assert PROXY[-2:] == ["mcastproxy:proxy", "upstream"]
    target = resolve([*PROXY[:-2], "mcastproxy%3Aproxy", "upstream"])
    assert target.last.name == "mcastproxy:upstream"
    with pytest.raises(ApiError) as refused:
        resolve([*IGMP, "colour"], state=True)
    assert refused.value.status == 404
