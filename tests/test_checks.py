"""``mcastproxy check``'s warnings (``checks``): interfaces this host lacks, downstream links
without an address to speak from, prefixes of a family whose protocol is off."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mcastproxy.checks import host_view, warnings
from mcastproxy.cli import main
from mcastproxy.config import Config, parse_config


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


HOST = {"d1": [ip("10.1.0.1"), ip("fe80::1")], "d2": [ip("10.2.0.1")], "u1": [ip("192.0.2.1")]}


def test_what_this_host_lacks_is_warned_of() -> None:
    cfg = parse_config("igmp: {version: 3}\nmld: {version: 2}\n"
                       "downstream: [{interface: d1}, {interface: d2}, {interface: d3}]\n"
                       "upstream: {candidates: [{interface: u1}, {interface: u9}]}\n")
    assert warnings(cfg, HOST.get) == [
        "downstream[1].interface: d2 has no IPv6 link-local address: MLD is not spoken there "
        "until it has one (RFC 9777 §5.1.14)",
        "downstream[2].interface: d3 does not exist on this host (the proxy will take it up "
        "when it appears)",
        "upstream.candidates[1].interface: u9 does not exist on this host (the proxy will "
        "take it up when it appears)",
    ]


def test_prefixes_of_a_protocol_that_is_off_never_match() -> None:
    cfg = parse_config("""
igmp: {version: 3}
downstream:
  - interface: d1
    policy: {group-policy: [{action: deny, group: "ff1e::/16"}]}
upstream:
  resilient: [{group: "ff3e::/32"}]
  candidates:
    - {interface: u1, records: [{group: 239.1.0.0/16}, {group: "ff1e::1:0/112"}]}
policy: {exceptions: [{group: "ff3e::1"}]}
""")
    assert warnings(cfg, HOST.get) == [
        'upstream.candidates[0].records[1]: ff1e::1:0/112 is an IPv6 prefix and MLD is off: '
        'it never matches',
        "upstream.resilient[0]: ff3e::/32 is an IPv6 prefix and MLD is off: it never matches",
        "policy.exceptions[0]: ff3e::1/128 is an IPv6 prefix and MLD is off: it never matches",
        "downstream[0].policy.group-policy[0]: ff1e::/16 is an IPv6 prefix and MLD is off: it "
        "never matches",
    ]


def test_check_prints_its_warnings_and_still_takes_the_file(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("igmp: {version: 3}\ndownstream: [{interface: lo}]\n"
                    "upstream: {candidates: [{interface: no-such-if0}]}\n")
    assert main(["check", "-c", str(path)]) == 0  # warnings do not refuse the file
    out = capsys.readouterr()
    # lo exists and has 127.0.0.1: only the upstream that does not exist is warned of.
    assert out.err == (f"{path}: warning: upstream.candidates[0].interface: no-such-if0 does "
                       "not exist on this host (the proxy will take it up when it appears)\n")
    assert out.out.startswith(f"{path}: ok: ")


def test_this_hosts_addresses_come_from_netlink() -> None:
    view = host_view(parse_config("igmp: {version: 3}\ndownstream: [{interface: lo}]\n"
                                  "upstream: {candidates: [{interface: no-such-if0}]}\n"))
    assert ip("127.0.0.1") in (view("lo") or [])
    assert view("no-such-if0") is None


def test_an_amt_upstream_is_made_by_the_proxy_and_an_existing_non_tun_is_named() -> None:
    def cfg(name: str) -> Config:
        amt = "{relay: 192.0.2.10}"
        return parse_config(f"igmp: {{}}\ndownstream: [{{interface: d1}}]\nupstream: "
                            f"{{candidates: [{{interface: {name}, amt: {amt}}}]}}\n")

    host = {**HOST, "lo": [ip("127.0.0.1")]}
    assert not [w for w in warnings(cfg("amt1"), host.get) if "amt1" in w]  # made at start
    (said,) = [w for w in warnings(cfg("lo"), host.get) if "candidates[0]" in w]
    assert said == ("upstream.candidates[0].interface: lo exists and is not a TUN device: the "
                    "AMT upstream cannot use it")
