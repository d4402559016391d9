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


@pytest.mark.parametrize(("resolver", "address", "port"), [
    ("10.0.0.53", "10.0.0.53", 53), ("10.0.0.53:5353", "10.0.0.53", 5353),
    ("fd00::53", "fd00::53", 53), ("'[fd00::53]:5353'", "fd00::53", 5353),
    ("'[fd00::53]'", "fd00::53", 53),
])  # fmt: skip
def test_driad_with_a_resolver_and_its_cache_bounds(resolver: str, address: str,
                                                   port: int) -> None:
    amt = parse_config(CONFIG % f"{{relay: 10.30.2.2, driad: true, resolver: {resolver}, "
                                "min-ttl: 1s, max-ttl: 10m, max-relays: 4}"
                       ).upstream.candidates[1].amt
    assert amt is not None
    assert amt.driad
    assert amt.resolver == (ipaddress.ip_address(address), port)
    assert (amt.min_ttl, amt.max_ttl, amt.max_relays) == (1.0, 600.0, 4)
    plain = parse_config(CONFIG % "{relay: 10.30.2.2}").upstream.candidates[1].amt
    assert plain is not None
    assert (plain.driad, plain.resolver) == (False, None)


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
    ("{relay: 10.0.0.1, resolver: 10.0.0.53}", AT, "needs driad: true"),
    ("{relay: 10.0.0.1, driad: true, resolver: dns.example}", f"{AT}.resolver",
     "names are not looked up"),
    ("{relay: 10.0.0.1, driad: true, resolver: '10.0.0.53:0'}", f"{AT}.resolver",
     "port must be 1-65535"),
    ("{relay: 10.0.0.1, driad: true, resolver: '10.0.0.53:99999'}", f"{AT}.resolver",
     "port must be 1-65535"),
    ("{relay: 10.0.0.1, driad: true, resolver: '[fd00::53'}", f"{AT}.resolver",
     "[ADDRESS]:PORT"),
    ("{relay: 10.0.0.1, driad: true, resolver: 224.0.0.251}", f"{AT}.resolver",
     "not a unicast address"),
    ("{relay: 10.0.0.1, driad: true, resolver: [10.0.0.53]}", f"{AT}.resolver",
     "expected ADDRESS"),
    ("{relay: 10.0.0.1, driad: true, min-ttl: 2h, max-ttl: 1h}", AT, "min-ttl"),
    ("{relay: 10.0.0.1, driad: true, min-ttl: -1}", f"{AT}.min-ttl", "negative"),
    ("{relay: 10.0.0.1, driad: true, max-ttl: 0}", f"{AT}.max-ttl", "greater than 0"),
    ("{relay: 10.0.0.1, driad: true, max-relays: 0}", f"{AT}.max-relays", "greater than"),
    ("{relay: 10.0.0.1, driad: true, max-relays: 65}", f"{AT}.max-relays", "less than"),
    ("{relay: 10.0.0.1, driad: 'yes please'}", f"{AT}.driad", "boolean"),
])  # fmt: skip
def test_bad_amt_settings_are_refused_with_the_field_and_the_reason(
    amt: str, path: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG % amt)
    assert [i.path for i in info.value.issues] == [path]
    assert reason in info.value.issues[0].reason
