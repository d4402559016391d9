"""Namespace scenarios: DRIAD (RFC 8777), each source's channels through the relay its
reverse name's AMTRELAY record names.

::

    sub1 ---- d1 proxy wan ---- router (unicast only; the lab's DNS server) ---- relay  10.30.2.2
                   amt1 (TUN)                                              \\--- relay2 10.30.4.2

    1.9.0.10.in-addr.arpa.  AMTRELAY 10 0 1 10.30.4.2   X = (10.0.9.1, 232.1.1.1): relay2, by
                                                            Relay Discovery first (D bit clear)
    5.9.0.10.in-addr.arpa.  AMTRELAY 10 1 3 relay.lab.  Y = (10.0.9.5, 232.1.1.5): the relay
    relay.lab.              A 10.30.2.2                     named, its own address (D bit set)

Both relays stream both channels; each must be asked for its own only. amt1's configured relay
is 10.30.2.2 (Y's too, so Y shares that gateway). When X's record expires it is asked again;
changed, X moves to the other relay. A resolver that answers with forged IDs makes the lookup
fail after its lifetime: X goes to the configured relay, the failure is counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from proxy_amt_lab import (
    amt_config,
    amt_status,
    dns_queries,
    gateway,
    relay_channels,
    start_dns,
    start_relay,
)

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import RELAY, RELAY2, RESOLVER, amt_proxy_lab
from mcastlab.procs import JsonProc

pytestmark = pytest.mark.netns

X = ("10.0.9.1", "232.1.1.1")
Y = ("10.0.9.5", "232.1.1.5")
X_NAME, Y_NAME = "1.9.0.10.in-addr.arpa.", "5.9.0.10.in-addr.arpa."
RECORDS = [f"{X_NAME} 2 AMTRELAY 10 0 1 {RELAY2[4]}",
           f"{Y_NAME} 60 AMTRELAY 10 1 3 relay.lab.",
           f"relay.lab. 60 A {RELAY[4]}"]
CONFIG = amt_config(amt_extra=f", driad: true, resolver: \"{RESOLVER[4]}\", min-ttl: 1s")
DRIAD_GATEWAY = f"{RELAY2[4]} (discovery) igmp"


def _lab(make_lab: Callable[..., Lab]) -> tuple[Lab, JsonProc, JsonProc]:
    lab = make_lab(amt_proxy_lab(driad=True))
    relay = start_relay(lab, sender="relay-1", streams=[X, Y])
    relay2 = start_relay(lab, sender="relay-2", host="relay2", address=RELAY2[4],
                         streams=[X, Y])
    return lab, relay, relay2


def _join(lab: Lab, *channels: tuple[str, str]) -> None:
    rx = lab.receiver("sub1", "eth0")
    for source, group in channels:
        rx.join(JoinMode.IGMPV3_SSM, group, source)


def test_each_source_is_carried_by_the_relay_of_its_record(make_lab: Callable[..., Lab]) -> None:
    lab, relay, relay2 = _lab(make_lab)
    dns = start_dns(lab, RECORDS)
    proxy = lab.proxy(CONFIG, forwarding="recorded")
    _join(lab, X, Y)
    wait_until(lambda: relay_channels(relay2) == {X}, timeout=10,
               message=lambda: f"relay2 {relay_channels(relay2)}; {amt_status(proxy)}")
    wait_until(lambda: relay_channels(relay) == {Y}, timeout=10,
               message=lambda: f"relay {relay_channels(relay)}; {amt_status(proxy)}")
    assert relay2.events("discovery"), "X's record has the D bit clear: discovery first"
    assert dns_queries(dns, "relay.lab.", "A") >= 1
    # Each channel's data comes through its own relay's gateway.
    wait_until(lambda: amt_status(proxy)["driad"]["gateways"][DRIAD_GATEWAY]["data-packets"]
               > 20, timeout=10, message=lambda: str(amt_status(proxy)["driad"]))
    wait_until(lambda: gateway(proxy, "igmp")["data-packets"] > 20, timeout=10)
    driad = amt_status(proxy)["driad"]
    # Both found, nothing failed. X's TTL (2 s) may have run out meanwhile on a loaded
    # machine, and X been asked (and found) again: the two at least.
    assert set(driad["lookups"]) == {"found"}, driad["lookups"]
    assert driad["lookups"]["found"] >= 2
    assert driad["failures"] == {}
    assert driad["sources"]["10.0.9.1"]["relay"] == f"{RELAY2[4]} (discovery)"
    assert driad["sources"]["10.0.9.5"]["relay"] == RELAY[4]
    assert amt_status(proxy)["dropped"] == {}

    # X's record (TTL 2 s) expires and is asked again; changed, X moves to the first relay.
    asked = dns_queries(dns, X_NAME)
    wait_until(lambda: dns_queries(dns, X_NAME) > asked, timeout=10)
    assert relay_channels(relay2) == {X}
    teardowns = len(relay2.events("teardown"))
    dns.command(json.dumps({"cmd": "set", "records": [
        f"{X_NAME} 2 AMTRELAY 10 1 1 {RELAY[4]}", *RECORDS[1:]]}))
    wait_until(lambda: relay_channels(relay) == {X, Y}, timeout=10,
               message=lambda: f"relay {relay_channels(relay)}; {amt_status(proxy)}")
    wait_until(lambda: len(relay2.events("teardown")) > teardowns, timeout=5)
    assert relay_channels(relay2) == set()
    assert amt_status(proxy)["driad"]["gateways"] == {}


def test_forged_answers_leave_the_source_with_the_configured_relay(
    make_lab: Callable[..., Lab]
) -> None:
    lab, relay, relay2 = _lab(make_lab)
    dns = start_dns(lab, RECORDS, "--forge", "wrong-id")
    proxy = lab.proxy(CONFIG, forwarding="recorded")
    _join(lab, X)
    wait_until(lambda: dns_queries(dns, X_NAME) >= 1, timeout=10)
    # dnspython ignores the forged answers; the lookup fails at its lifetime (3 s).
    wait_until(lambda: relay_channels(relay) == {X}, timeout=15,
               message=lambda: f"relay {relay_channels(relay)}; {amt_status(proxy)}")
    assert relay_channels(relay2) == set()
    driad = amt_status(proxy)["driad"]
    assert driad["failures"] == {"timeout": 1}
    assert driad["sources"]["10.0.9.1"]["relay"] is None
    assert proxy.running
