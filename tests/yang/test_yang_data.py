"""A configuration file and its YANG data are one: for every example and for files that set
every key, the tree ``to_yang`` makes is valid for libyang (yanglint, with the modules the
package ships), and read back (``from_yang``) it is the same running configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from yang_configs import CONFIGS, EXAMPLES
from yang_harness import YANGLINT, validate

from mcastproxy.api.document import to_yaml
from mcastproxy.api.yangdata import ROUTING, to_yang
from mcastproxy.api.yangread import from_yang
from mcastproxy.config import Config, parse_config

FILES = {p.stem: p.read_text() for p in EXAMPLES} | CONFIGS
needs_yanglint = pytest.mark.skipif(YANGLINT is None, reason="yanglint is not installed")


def round_trip(config: Config) -> Config:
    doc, _ = from_yang(to_yang(config)[ROUTING])
    return parse_config(to_yaml(doc, "a test"))


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_tree_reads_back_as_the_same_configuration(name: str) -> None:
    config = parse_config(FILES[name], name)
    assert round_trip(config) == config


@needs_yanglint
@pytest.mark.parametrize("name", sorted(FILES))
def test_the_tree_is_valid_yang_data(name: str) -> None:
    assert validate(to_yang(parse_config(FILES[name], name))) == ""


def test_every_key_sets_every_section() -> None:
    # The file of every key is as full as the models: a test of it covers each of them.
    tree = to_yang(parse_config(CONFIGS["every-key"]))[ROUTING]
    protocols = tree["control-plane-protocols"]["control-plane-protocol"]
    assert [p["type"] for p in protocols] == [
        "ietf-igmp-mld:igmp", "ietf-igmp-mld:mld", "ietf-igmp-mld-proxy:igmp-proxy",
        "ietf-igmp-mld-proxy:mld-proxy", "mcastproxy:multi-upstream-proxy"]
    proxy = protocols[-1]["mcastproxy:proxy"]
    assert set(proxy) == {"upstream", "downstream", "policy", "metrics", "accounting", "api"}


def test_defaults_are_left_out_and_shared_settings_given_alike() -> None:
    tree = to_yang(parse_config(FILES["igmp-only"]))[ROUTING]
    (igmp, proxy_igmp, proxy) = tree["control-plane-protocols"]["control-plane-protocol"]
    # IGMPv3 is this proxy's default (mcastproxy-deviations), not RFC 8652's IGMPv2.
    assert igmp["ietf-igmp-mld:igmp"] == {"interfaces": {"interface": [
        {"interface-name": "d1"}]}}
    assert proxy_igmp["ietf-igmp-mld-proxy:igmp-proxy"] == {
        "interfaces": {"interface": [{"name": "u1"}]}}
    assert proxy["mcastproxy:proxy"] == {"upstream": {"candidate": [{"interface": "u1"}]}}
    config = parse_config(FILES["every-key"])
    tree = to_yang(config)[ROUTING]
    igmp, mld = (p[k] for p, k in zip(tree["control-plane-protocols"][
        "control-plane-protocol"][:2], ("ietf-igmp-mld:igmp", "ietf-igmp-mld:mld"),
        strict=True))
    assert igmp["global"] == mld["global"] == {"max-entries": 65536}
    assert igmp["interfaces"]["query-max-response-time"] == "2.5"
    link_v4, link_v6 = igmp["interfaces"]["interface"][0], mld["interfaces"]["interface"][0]
    assert {k: v for k, v in link_v4.items() if k != "static-group"} == {
        k: v for k, v in link_v6.items() if k != "static-group"}
    # Static groups are each protocol's own.
    assert [s["group-addr"] for s in link_v4["static-group"]] == ["239.1.1.1", "232.1.1.1"]
    assert link_v6["static-group"] == [{"group-addr": "ff3e::1:1", "source-addr": "2001:db8::5"}]


def test_a_minimal_tree_written_by_hand_is_read() -> None:
    # What a controller may write: RFC 8652's list of links, the proxy's candidates.
    tree = {"control-plane-protocols": {"control-plane-protocol": [
        {"type": "ietf-igmp-mld:igmp", "name": "mcastproxy", "ietf-igmp-mld:igmp": {
            "interfaces": {"interface": [{"interface-name": "d1", "max-groups": 10}]}}},
        {"type": "mcastproxy:multi-upstream-proxy", "name": "mcastproxy",
         "mcastproxy:proxy": {"upstream": {"candidate": [
             {"interface": "u1", "records": [{"id": 7, "group": "232.0.0.0/8"}]}]}}}]}}
    doc, origins = from_yang(tree)
    assert doc == {"igmp": {"version": 3}, "downstream": [
        {"interface": "d1", "policy": {"max-groups": 10}}],
        "upstream": {"candidates": [{"interface": "u1", "records": [{"group": "232.0.0.0/8"}]}]}}
    assert origins["upstream.candidates[0].records[0].group"].endswith(
        "/candidate[interface='u1']/records[id='7']/group")
    assert parse_config(to_yaml(doc, "a test")).igmp is not None


def test_a_file_written_through_the_tree_is_plain_yaml(tmp_path: Path) -> None:
    config = parse_config(FILES["every-key"])
    doc, _ = from_yang(to_yang(config)[ROUTING])
    text = to_yaml(doc, "a test")
    assert "timers:" in text
    assert "candidates:" in text
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert parse_config(path.read_bytes()) == config
