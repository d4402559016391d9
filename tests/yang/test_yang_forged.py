"""A forged or careless YANG document is refused whole, each fault named by its node (RFC
8040's ``error-path``, an instance identifier) and its reason: unknown nodes, wrong JSON
types, values out of range, keys missing or twice, two cases of one choice, huge lists,
protocol trees that disagree, instances that are not the proxy's."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mcastproxy.api.errors import ApiError
from mcastproxy.api.yangdata import ROUTING, to_yang
from mcastproxy.api.yangread import from_yang
from mcastproxy.api.yangtree import MAX_ENTRIES
from mcastproxy.config import parse_config

BASE = to_yang(parse_config("""\
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}, {interface: d2}]
upstream: {candidates: [{interface: u1, records: [{group: 232.1.0.0/16}]}, {interface: u2}]}
"""))[ROUTING]
CPP = "/ietf-routing:routing/control-plane-protocols/control-plane-protocol"
IGMP_AT = f"{CPP}[type='ietf-igmp-mld:igmp'][name='mcastproxy']/ietf-igmp-mld:igmp"
MLD_AT = f"{CPP}[type='ietf-igmp-mld:mld'][name='mcastproxy']/ietf-igmp-mld:mld"
PROXY_AT = f"{CPP}[type='mcastproxy:multi-upstream-proxy'][name='mcastproxy']/mcastproxy:proxy"


def instance(tree: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in tree["control-plane-protocols"]["control-plane-protocol"]:
        if entry["type"] == kind:
            return entry  # type: ignore[no-any-return]
    raise KeyError(kind)


def proxy(tree: dict[str, Any]) -> dict[str, Any]:
    return instance(tree, "mcastproxy:multi-upstream-proxy")["mcastproxy:proxy"]  # type: ignore[no-any-return]


def igmp(tree: dict[str, Any]) -> dict[str, Any]:
    return instance(tree, "ietf-igmp-mld:igmp")["ietf-igmp-mld:igmp"]  # type: ignore[no-any-return]


def refusal(tree: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(ApiError) as refused:
        from_yang(tree)
    assert refused.value.status == 400
    body = refused.value.body()["ietf-restconf:errors"]["error"]
    return [(e["error-path"], e["error-tag"], e["error-message"]) for e in body]


def forge(change: Any) -> dict[str, Any]:
    tree = copy.deepcopy(BASE)
    change(tree)
    return tree


CANDIDATE = f"{PROXY_AT}/upstream/candidate[interface='u1']"
CASES = {
    "unknown node": (lambda t: proxy(t)["upstream"].update(colour="blue"),
                     f"{PROXY_AT}/upstream/colour", "unknown-element", "not a node"),
    "unknown module": (lambda t: proxy(t).update({"evil:thing": 1}),
                       f"{PROXY_AT}/evil:thing", "unknown-element", "not a node"),
    "a node not offered": (
        lambda t: t["control-plane-protocols"].update({"ietf-pim-base:pim": {}}),
        "/ietf-routing:routing/control-plane-protocols/ietf-pim-base:pim",
        "operation-not-supported", "not offered by mcastproxy"),
    "a string for a number": (
        lambda t: proxy(t)["upstream"]["candidate"][0].update(priority="10"),
        f"{CANDIDATE}/priority", "invalid-value", "whole number"),
    "a number for a decimal64": (
        lambda t: proxy(t)["upstream"].update({"active-interval": 90}),
        f"{PROXY_AT}/upstream/active-interval", "invalid-value", "JSON string"),
    "too many digits": (
        lambda t: proxy(t)["upstream"].update({"active-interval": "1.0001"}),
        f"{PROXY_AT}/upstream/active-interval", "invalid-value", "at most 3 digits"),
    "out of range": (
        lambda t: igmp(t)["interfaces"].update({"robustness-variable": 8}),
        f"{IGMP_AT}/interfaces/robustness-variable", "invalid-value", "not within 1..7"),
    "a wrong enum": (
        lambda t: proxy(t)["upstream"].update(ties="coin"),
        f"{PROXY_AT}/upstream/ties", "invalid-value", "robust or share"),
    "an empty leaf not [null]": (
        lambda t: igmp(t)["interfaces"]["interface"][0].update({"immediate-leave": True}),
        f"{IGMP_AT}/interfaces/interface[interface-name='d1']/immediate-leave",
        "invalid-value", "[null]"),
    "a bad prefix": (
        lambda t: proxy(t)["upstream"]["candidate"][0]["records"][0].update(group="232.1/99"),
        f"{CANDIDATE}/records[id='1']/group", "invalid-value", "not an address prefix"),
    "a key missing": (
        lambda t: proxy(t)["upstream"]["candidate"].append({"priority": 1}),
        f"{PROXY_AT}/upstream/candidate[3]", "data-missing", "key interface"),
    "a key twice": (
        lambda t: proxy(t)["upstream"]["candidate"].append({"interface": "u1"}),
        f"{CANDIDATE}", "data-exists", "same key"),
    "two cases of a choice": (
        lambda t: igmp(t)["interfaces"].update({"mcastproxy:ssm-range": ["232.0.0.0/8"],
                                                "mcastproxy:no-ssm-range": [None]}),
        f"{IGMP_AT}/interfaces/mcastproxy:no-ssm-range", "invalid-value", "another case"),
    "a list that is not an array": (
        lambda t: proxy(t)["upstream"].update(candidate={"interface": "u1"}),
        f"{PROXY_AT}/upstream/candidate", "invalid-value", "JSON array"),
    "a huge list": (
        lambda t: proxy(t)["upstream"]["candidate"][0].update(
            records=[{"id": i} for i in range(MAX_ENTRIES + 1)]),
        f"{CANDIDATE}/records", "too-big", "more than"),
    "a mandatory leaf missing": (
        lambda t: proxy(t).setdefault("policy", {}).update(
            {"group-policy": [{"id": 1, "group": "232.0.0.0/8"}]}),
        f"{PROXY_AT}/policy/group-policy[id='1']/action", "data-missing", "required"),
    "protocols that disagree": (
        lambda t: igmp(t)["interfaces"].update({"query-interval": "60"}),
        f"{MLD_AT}/interfaces/query-interval", "invalid-value", "one value to IPv4 and IPv6"),
    "links that differ": (
        lambda t: igmp(t)["interfaces"]["interface"].pop(),
        f"{MLD_AT}/interfaces/interface", "invalid-value", "not those of igmp"),
    "an upstream not a candidate": (
        lambda t: instance(t, "ietf-igmp-mld-proxy:igmp-proxy")[
            "ietf-igmp-mld-proxy:igmp-proxy"]["interfaces"]["interface"].append({"name": "u9"}),
        f"{CPP}[type='ietf-igmp-mld-proxy:igmp-proxy'][name='mcastproxy']/"
        "ietf-igmp-mld-proxy:igmp-proxy/interfaces/interface", "invalid-value",
        "are the candidates"),
    "a link of the proxy's tree not a link": (
        lambda t: proxy(t).update(downstream={"interface": [{"name": "d9", "max-robustness": 2}]}),
        f"{PROXY_AT}/downstream/interface[name='d9']", "invalid-value", "not a downstream"),
    "another instance's name": (
        lambda t: instance(t, "ietf-igmp-mld:igmp").update(name="other"),
        f"{CPP}[type='ietf-igmp-mld:igmp'][name='other']/name", "invalid-value",
        "named 'mcastproxy'"),
    "another protocol": (
        lambda t: t["control-plane-protocols"]["control-plane-protocol"].append(
            {"type": "ietf-routing:static", "name": "mcastproxy"}),
        f"{CPP}[type='ietf-routing:static'][name='mcastproxy']/type", "invalid-value",
        "not a protocol of mcastproxy"),
    "the proxy's tree in another instance": (
        lambda t: instance(t, "ietf-igmp-mld:igmp").update({"mcastproxy:proxy": {}}),
        f"{CPP}[type='ietf-igmp-mld:igmp'][name='mcastproxy']/mcastproxy:proxy",
        "invalid-value", "only in an instance of its type"),
    "no proxy instance": (
        lambda t: t["control-plane-protocols"]["control-plane-protocol"].pop(),
        CPP, "data-missing", "needs the instance"),
    "a version per link": (
        lambda t: igmp(t)["interfaces"]["interface"][0].update(version=2),
        f"{IGMP_AT}/interfaces/interface[interface-name='d1']/version", "invalid-value",
        "one version for every link"),
    "an upstream's fixed version": (
        lambda t: instance(t, "ietf-igmp-mld-proxy:igmp-proxy")[
            "ietf-igmp-mld-proxy:igmp-proxy"]["interfaces"]["interface"][0].update(
            {"igmp-version": 2}),
        f"{CPP}[type='ietf-igmp-mld-proxy:igmp-proxy'][name='mcastproxy']/"
        "ietf-igmp-mld-proxy:igmp-proxy/interfaces/interface[name='u1']/igmp-version",
        "invalid-value", "not within 3..3"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_forged_tree_is_refused_naming_the_node(case: str) -> None:
    change, path, tag, words = CASES[case]
    errors = refusal(forge(change))
    assert any(p == path and t == tag and words in m for p, t, m in errors), errors


def test_the_base_is_good() -> None:
    doc, _ = from_yang(copy.deepcopy(BASE))
    assert [c["interface"] for c in doc["upstream"]["candidates"]] == ["u1", "u2"]


def test_every_fault_is_named_at_once() -> None:
    def two(t: dict[str, Any]) -> None:
        proxy(t)["upstream"].update(ties="coin", takeover="yes")

    paths = {p for p, _, _ in refusal(forge(two))}
    assert paths == {f"{PROXY_AT}/upstream/ties", f"{PROXY_AT}/upstream/takeover"}


@pytest.mark.parametrize("tree", [None, [], "routing", 1, {"control-plane-protocols": []}])
def test_a_tree_of_the_wrong_shape_is_refused(tree: Any) -> None:
    assert refusal(tree)


def test_names_given_twice_in_two_forms_are_refused() -> None:
    # RFC 7951 §4: "ietf-routing:control-plane-protocols" is the same member, qualified.
    tree = copy.deepcopy(BASE)
    tree["ietf-routing:control-plane-protocols"] = tree["control-plane-protocols"]
    assert any("given twice" in m for _, _, m in refusal(tree))
