"""The ``amt`` settings of an upstream candidate (``config.AmtSettings``): what is taken, and
what is refused with the field and the reason."""

from __future__ import annotations

import ipaddress

import pytest

from mcastproxy.config import ConfigError, parse_config

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}]
upstream:
  candidates:
    - {interface: u1, priority: 10}
    - {interface: amt1, address: [192.0.0.2], amt: %s}
"""
AT = "upstream.candidates[1].amt"


def test_a_relay_or_a_discovery_address_over_either_family() -> None:
    amt = parse_config(CONFIG % "{relay: 10.30.2.2}").upstream.candidates[1].amt
    assert amt is not None
    assert amt.target == ipaddress.ip_address("10.30.2.2")
    assert amt.port == 2268
    assert amt.querier == ()
    amt = parse_config(CONFIG % "{discovery: 2001:db8::1, port: 4000, querier: [fe80::9, "
                                "10.0.0.1]}").upstream.candidates[1].amt
    assert amt is not None
    assert amt.relay is None
    assert amt.target == ipaddress.ip_address("2001:db8::1")
    assert amt.port == 4000
    assert [str(q) for q in amt.querier] == ["fe80::9", "10.0.0.1"]
    assert parse_config(CONFIG % "{relay: 10.30.2.2}").upstream.candidates[0].amt is None


@pytest.mark.parametrize(("amt", "path", "reason"), [
    ("{}", AT, "give relay"),
    ("{relay: 10.0.0.1, discovery: 10.0.0.2}", AT, "one of the two"),
    ("{relay: 232.1.1.1}", f"{AT}.relay", "not a unicast address"),
    ("{discovery: 0.0.0.0}", f"{AT}.discovery", "not a unicast address"),
    ("{relay: 255.255.255.255}", f"{AT}.relay", "not a unicast address"),
    ("{relay: 'ff02::1'}", f"{AT}.relay", "not a unicast address"),
    ("{relay: relay.example}", f"{AT}.relay", "is not an IP address"),
    ("{relay: 10.0.0.1, port: 0}", f"{AT}.port", "greater than or equal to 1"),
    ("{relay: 10.0.0.1, port: 65536}", f"{AT}.port", "less than or equal to 65535"),
    ("{relay: 10.0.0.1, querier: 'fd00::1'}", AT, "not link-local"),
    ("{relay: 10.0.0.1, querier: [fe80::1, fe80::2]}", AT, "one address per family"),
    ("{relay: 10.0.0.1, querier: 224.0.0.1}", AT, "not a unicast address"),
    ("{relay: 10.0.0.1, tunnel: gre}", f"{AT}.tunnel", "unknown key"),
])  # fmt: skip
def test_bad_amt_settings_are_refused_with_the_field_and_the_reason(
    amt: str, path: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG % amt)
    assert [i.path for i in info.value.issues] == [path]
    assert reason in info.value.issues[0].reason
