"""Namespace scenarios: the relay behind the proxy's AMT upstream restarts, and the channel
comes back by itself.

::

    sub1 ---- d1 proxy wan ---- router (unicast only) ---- relay 10.30.2.2 (killed, started
                   amt1 (TUN)                                               again: no tunnels,
                                                                            a new MAC secret)

The restarted relay knows nothing of the proxy's gateway; the gateway's next Request (the
relay's query interval, 1 s here) gets a Membership Query from it, which the gateway answers
with the whole membership, and the relay streams again (the payload's sender id says which
relay process sent a packet).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_amt_lab import SSM, amt_config, gateway, relay_channels, start_relay

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import amt_proxy_lab

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("inner", [4, 6], ids=["igmp", "mld"])
def test_a_restarted_relay_gets_the_channel_again(
    make_lab: Callable[..., Lab], inner: int
) -> None:
    lab = make_lab(amt_proxy_lab())
    relay = start_relay(lab, sender="relay-1")
    proxy = lab.proxy(amt_config(), forwarding="recorded")
    protocol = "igmp" if inner == 4 else "mld"
    source, group = SSM[inner]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM if inner == 4 else JoinMode.MLDV2_SSM, group, source)
    wait_until(lambda: (source, group) in relay_channels(relay), timeout=10)
    wait_until(lambda: gateway(proxy, protocol)["data-packets"] > 0, timeout=10)
    relay.stop()
    queries = gateway(proxy, protocol)["messages"]["queries-accepted"]
    second = start_relay(lab, sender="relay-2")
    wait_until(lambda: (source, group) in relay_channels(second), timeout=10,
               message=lambda: f"the second relay holds {relay_channels(second)}; "
                               f"{gateway(proxy, protocol)}")
    before = gateway(proxy, protocol)["data-packets"]
    wait_until(lambda: gateway(proxy, protocol)["data-packets"] > before + 10, timeout=10)
    g = gateway(proxy, protocol)
    assert g["state"] == "established"
    assert g["messages"]["queries-accepted"] > queries
    # It took the channel from an Update made with its own MAC: its query's, not the first
    # relay's (an Update the gateway sent before that query is refused, as it should be).
    update = second.wait_event(lambda e: e.get("event") == "update"
                               and [source, group] in e["channels"], timeout=5)
    assert update["gateway"] in {e["gateway"] for e in second.events("request")}
