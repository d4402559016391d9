"""Namespace scenarios: AMT upstreams added, changed and removed by a reload (SIGHUP).

::

    prov1 ---- u1 proxy wan ---- router (unicast only) ---- relay 10.30.2.2 and fd30:2::2
               d1    amt1 (the TUN: made by the reload that adds it, gone with the one that
               |           removes it)
              sub1

The proxy starts with u1 alone. A reload adds amt1: its TUN appears, its gateway reaches the
relay (its queries reach the host side), and when u1 goes down the channel is taken over through
it. A reload moves amt1 to the relay's IPv6 address: the IPv4 tunnel is torn down, the same
TUN carries on through the new one, and the channel with it. A reload removes amt1: the relay
gets the Teardown and the TUN is gone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_amt_lab import (
    SSM,
    amt_config,
    gateway,
    relay_channels,
    start_relay,
    wait_relay_queries,
)

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import PROXY_WAN, amt_proxy_lab

pytestmark = pytest.mark.netns


def _links(lab: Lab) -> str:
    return lab.run("proxy", "ip", "-o", "link")


def test_a_reload_adds_changes_and_removes_an_amt_upstream(
    make_lab: Callable[..., Lab]
) -> None:
    lab = make_lab(amt_proxy_lab(native=True))
    relay4 = start_relay(lab, 4, sender="relay-4")
    relay6 = start_relay(lab, 6, sender="relay-6")
    proxy = lab.proxy(amt_config(native=True, amt=False), forwarding="recorded")
    assert "amt1" not in _links(lab)
    assert proxy.status().get("amt", {}) == {}
    source, group = SSM[4]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM, group, source)
    wait_until(lambda: group in proxy.status()["upstreams"]["u1"]["groups"], timeout=10)

    # Added: the TUN is made, the gateway reaches the relay, its queries reach the host side.
    proxy.reload(amt_config(native=True))
    assert "amt1" in _links(lab)
    wait_relay_queries(proxy, "igmp")
    assert proxy.status()["upstreams"]["amt1"]["usable"]
    assert relay_channels(relay4) == set()  # u1 carries the channel
    # ... and takes the channel over when u1 fails.
    lab.set_link("prov1", "eth0", up=False)
    wait_until(lambda: (source, group) in relay_channels(relay4), timeout=10,
               message=lambda: f"relay {relay_channels(relay4)}; {proxy.status()['upstreams']}")

    # Changed: the relay's IPv6 address. The IPv4 tunnel goes (Teardown); the same TUN goes
    # on through the IPv6 one, which learns the channel.
    teardowns = len(relay4.events("teardown"))
    proxy.reload(amt_config(native=True, transport=6))
    wait_until(lambda: len(relay4.events("teardown")) > teardowns, timeout=5)
    wait_until(lambda: (source, group) in relay_channels(relay6), timeout=10,
               message=lambda: f"relay6 {relay_channels(relay6)}; {proxy.status()['amt']}")
    wait_until(lambda: relay_channels(relay4) == set(), timeout=5)
    update = next(e for e in relay6.events("update") if [source, group] in e["channels"])
    assert str(update["gateway"]).startswith(f"[{PROXY_WAN[6]}]:")
    assert proxy.status()["amt"]["amt1"]["relay"] == "fd30:2::2"
    wait_until(lambda: gateway(proxy, "igmp")["data-packets"] > 10, timeout=10)

    # Removed: the relay gets the Teardown, the TUN goes, the proxy goes on with u1.
    teardowns = len(relay6.events("teardown"))
    lab.set_link("prov1", "eth0", up=True)
    proxy.reload(amt_config(native=True, amt=False))
    wait_until(lambda: len(relay6.events("teardown")) > teardowns, timeout=5)
    wait_until(lambda: relay_channels(relay6) == set(), timeout=5)
    wait_until(lambda: "amt1" not in _links(lab), timeout=5)
    assert "amt" not in proxy.status() or proxy.status()["amt"] == {}
    wait_until(lambda: group in proxy.status()["upstreams"]["u1"]["groups"], timeout=10)
    assert proxy.running


def test_a_reload_that_changes_an_amt_upstreams_address_is_refused(
    make_lab: Callable[..., Lab]
) -> None:
    lab = make_lab(amt_proxy_lab())
    start_relay(lab)
    proxy = lab.proxy(amt_config(), forwarding="recorded")
    wait_until(lambda: proxy.status()["upstreams"]["amt1"]["usable"], timeout=10)
    proxy.config.write_text(amt_config().replace("    - interface: amt1\n",
                                                 "    - interface: amt1\n"
                                                 "      address: 192.0.0.2\n"))
    proxy.daemon.popen.send_signal(1)  # SIGHUP
    wait_until(lambda: "needs a restart" in proxy.output(), timeout=5)
    assert "changing its address" in proxy.output()
    assert proxy.status()["upstreams"]["amt1"]["usable"]
