"""Namespace scenario: DRIAD failover (RFC 8777 §4.2.1): a source's first relay is down, so
its channels go to the relay of its next record, and a source with no other record to the
configured relay.

::

    sub1 ---- d1 proxy wan ---- router (unicast only; the lab's DNS server) ---- relay
                   amt1 (TUN)                                         \\     10.30.2.2 (relay-4)
                                                                       \\    fd30:2::2 (relay-6,
                                                                        \\    the configured one)
                                                                         relay2 10.30.4.2: down
                                                                         (no relay running)

    1.9.0.10.in-addr.arpa.  AMTRELAY 10 1 1 10.30.4.2   X = (10.0.9.1, 232.1.1.1): down first,
                            AMTRELAY 20 1 1 10.30.2.2       then relay-4
    5.9.0.10.in-addr.arpa.  AMTRELAY 10 1 1 10.30.4.2   Y = (10.0.9.5, 232.1.1.5): down only,
                                                            then the configured relay-6

One gateway asks 10.30.4.2 for both; unanswered (Requests at 0, 1 and 3 s), it gives up at
7 s. X moves to relay-4, Y to relay-6; status counts the two failovers and names the relay
passed over.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_amt_lab import amt_config, amt_status, relay_channels, start_dns, start_relay

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import RELAY, RELAY2, RESOLVER, amt_proxy_lab

pytestmark = pytest.mark.netns

X = ("10.0.9.1", "232.1.1.1")
Y = ("10.0.9.5", "232.1.1.5")
RECORDS = [f"1.9.0.10.in-addr.arpa. 60 AMTRELAY 10 1 1 {RELAY2[4]}",
           f"1.9.0.10.in-addr.arpa. 60 AMTRELAY 20 1 1 {RELAY[4]}",
           f"5.9.0.10.in-addr.arpa. 60 AMTRELAY 10 1 1 {RELAY2[4]}"]


def test_a_relay_that_is_down_fails_over_to_the_next_record_then_the_configured(
    make_lab: Callable[..., Lab]
) -> None:
    lab = make_lab(amt_proxy_lab(driad=True))
    relay4 = start_relay(lab, 4, sender="relay-4", streams=[X, Y])
    relay6 = start_relay(lab, 6, sender="relay-6", streams=[X, Y])
    start_dns(lab, RECORDS)
    config = amt_config(transport=6, amt_extra=f", driad: true, resolver: \"{RESOLVER[4]}\"")
    proxy = lab.proxy(config, forwarding="recorded")
    rx = lab.receiver("sub1", "eth0")
    for source, group in (X, Y):
        rx.join(JoinMode.IGMPV3_SSM, group, source)

    def say() -> str:
        return (f"relay-4 {relay_channels(relay4)}, relay-6 {relay_channels(relay6)}; "
                f"{amt_status(proxy).get('driad')}")

    # About 7 s of silence from the relay that is down, then each goes on.
    wait_until(lambda: relay_channels(relay4) == {X} and relay_channels(relay6) == {Y},
               timeout=25, message=say)
    driad = amt_status(proxy)["driad"]
    assert driad["failovers"] == 2
    assert list(driad["passed-over"]) == [f"{RELAY2[4]} igmp"]
    assert driad["sources"]["10.0.9.1"]["relay"] == RELAY[4]
    assert driad["sources"]["10.0.9.1"]["passed-over"] == [RELAY2[4]]
    assert driad["sources"]["10.0.9.5"]["relay"] is None  # the configured relay
    assert list(driad["gateways"]) == [f"{RELAY[4]} igmp"]  # the one that gave up is gone
    assert "does not answer" in proxy.output()
    # X's data comes through relay-4's gateway.
    wait_until(lambda: amt_status(proxy)["driad"]["gateways"][f"{RELAY[4]} igmp"]
               ["data-packets"] > 10, timeout=10, message=say)
    assert proxy.running
