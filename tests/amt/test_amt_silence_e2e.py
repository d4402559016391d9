"""Namespace scenario: native first, AMT as takeover when the native provider goes silent
(per-channel data liveness, RFC 8313 §3.3-§3.5), and the return after the hold-down.

::

    prov1 eth0 ---- u1 (priority 10; liveness: link, and data within 300 ms per channel)
                      proxy  wan ---- router (unicast only) ---- relay 10.30.2.2
                      amt1 (priority 0, the TUN)
                      d1 ---- sub1 (joins 232.1.1.1 from 10.0.9.1, or ff3e::8000:1)

The daemon runs with its routes recorded: the channel's data on u1 is what the test says
arrived there (``mcastlab.recorded.DataFeed``), so u1 can go silent with its link up. The
channel flows on u1 and the relay holds nothing. u1's data stops: the channel alone is taken
over through amt1 (the relay gets the Membership Update, its data rises on the TUN). u1's
data resumes: after the 1 s hold-down the channel is tried on u1 again, delivers there, and
the relay is told to let it go.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from proxy_amt_lab import SSM, amt_config, gateway, relay_channels, start_relay, tun_rx_packets

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import amt_proxy_lab
from mcastlab.recorded import DataFeed

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("inner", [4, 6], ids=["igmp", "mld"])
def test_a_silent_native_channel_is_taken_over_through_amt_and_given_back(
    make_lab: Callable[..., Lab], inner: int
) -> None:
    lab = make_lab(amt_proxy_lab(native=True))
    relay = start_relay(lab)
    config = amt_config(native=True, u1_liveness="{link: true, data: 300ms}")
    proxy = lab.proxy(config, forwarding="recorded")
    feed = DataFeed(proxy.config)
    try:
        source, group = SSM[inner]
        protocol = "igmp" if inner == 4 else "mld"
        feed.start("u1", source, group)
        rx = lab.receiver("sub1", "eth0")
        rx.join(JoinMode.IGMPV3_SSM if inner == 4 else JoinMode.MLDV2_SSM, group, source)
        wait_until(lambda: proxy.feeders(group) == {"u1"}, timeout=10,
                   message=lambda: str(proxy.routes(group)))
        assert relay_channels(relay) == set()
        assert proxy.joined(group) == {"u1"}

        # u1 goes silent (its link stays up): the channel is taken over through AMT.
        tun_before = tun_rx_packets(lab)
        data_before = gateway(proxy, protocol)["data-packets"]
        # The takeover, and so its hold-down, starts after this (300 ms of silence later).
        t_silent = time.monotonic()
        feed.stop("u1")
        wait_until(lambda: (source, group) in relay_channels(relay), timeout=10,
                   message=lambda: f"relay {relay_channels(relay)}; {proxy.status()['upstreams']}")
        assert "amt1" in proxy.joined(group)
        assert proxy.status()["upstreams"]["u1"]["usable"]  # u1 itself is not down
        wait_until(lambda: gateway(proxy, protocol)["data-packets"] > data_before + 20,
                   timeout=10)
        assert tun_rx_packets(lab) - tun_before >= 20

        # u1's data resumes: after the hold-down the channel returns and the relay lets go.
        feed.start("u1", source, group)
        wait_until(lambda: relay_channels(relay) == set(), timeout=10,
                   message=lambda: f"relay {relay_channels(relay)}; {proxy.joined(group)}")
        assert time.monotonic() - t_silent >= 1.0, "back on u1 before its hold-down"
        wait_until(lambda: proxy.joined(group) == {"u1"}, timeout=5)
        wait_until(lambda: proxy.feeders(group) == {"u1"}, timeout=5)
    finally:
        feed.close()
