"""Namespace scenario: native first, AMT as takeover (RFC 8313 §3.3-§3.5).

::

    prov1 eth0 ---- u1 (priority 10, native)
                      proxy  wan ---- router (unicast only) ---- relay 10.30.2.2
                      amt1 (priority 0, the TUN)
                      d1 ---- sub1 (joins 232.1.1.1 from 10.0.9.1, or ff3e::8000:1)

The channel is joined on u1 alone while u1 is up; the relay holds nothing. prov1's link goes
down: the proxy takes the channel over through AMT (the relay gets the Membership Update);
it comes back: after the 1 s hold-down the channel returns to u1 and the relay is told to
leave it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from proxy_amt_lab import SSM, amt_config, relay_channels, start_relay

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import amt_proxy_lab

pytestmark = pytest.mark.netns


def _joined_on(proxy, name: str, group: str) -> bool:  # type: ignore[no-untyped-def]
    return group in proxy.status()["upstreams"][name]["groups"]


@pytest.mark.parametrize("inner", [4, 6], ids=["igmp", "mld"])
def test_the_amt_upstream_takes_over_and_gives_back(
    make_lab: Callable[..., Lab], inner: int
) -> None:
    lab = make_lab(amt_proxy_lab(native=True))
    relay = start_relay(lab)
    proxy = lab.proxy(amt_config(native=True), forwarding="recorded")
    source, group = SSM[inner]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM if inner == 4 else JoinMode.MLDV2_SSM, group, source)
    wait_until(lambda: _joined_on(proxy, "u1", group), timeout=10,
               message=lambda: str(proxy.status()["upstreams"]))
    time.sleep(1.5)  # a few of the relay's query intervals: nothing asked of it meanwhile
    assert relay_channels(relay) == set()
    assert not _joined_on(proxy, "amt1", group)
    # u1's link goes down: the channel is taken over through AMT.
    lab.set_link("prov1", "eth0", up=False)
    wait_until(lambda: (source, group) in relay_channels(relay), timeout=10,
               message=lambda: f"relay {relay_channels(relay)}; {proxy.status()['upstreams']}")
    assert _joined_on(proxy, "amt1", group)
    # u1 is back: after the hold-down the channel returns to it, and the relay lets go.
    t_up = time.monotonic()
    lab.set_link("prov1", "eth0", up=True)
    wait_until(lambda: relay_channels(relay) == set(), timeout=10,
               message=lambda: f"relay {relay_channels(relay)}")
    assert time.monotonic() - t_up >= 0.9, "u1 took the channel back before its hold-down"
    wait_until(lambda: _joined_on(proxy, "u1", group), timeout=5)
    assert not _joined_on(proxy, "amt1", group)
