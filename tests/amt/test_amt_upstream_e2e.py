"""Namespace scenarios: the proxy whose only upstream is AMT serves kernel hosts on d1.

::

    sub1 eth0 10.1.1.11 ---- d1 proxy wan 10.30.1.2 ---- router (unicast only) ---- relay
                                  amt1 (TUN)                                    10.30.2.2, streams
                                                                                SSM and ASM channels

The host joins on d1 (IGMPv3 SSM and any-source, MLDv2 SSM); the proxy's upstream host side
reports on amt1; the gateway reads those reports from the TUN and carries them to the relay in
Membership Updates, and the relay holds the channels. The relay's queries reach the host side
through the TUN, and its data is decapsulated into the TUN (the
kernel counts it received there). A stop sends the relay a Teardown and the TUN goes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_amt_lab import (
    ASM,
    SSM,
    amt_config,
    amt_status,
    gateway,
    relay_channels,
    start_relay,
    tun_rx_packets,
    wait_relay_queries,
)

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import PROXY_WAN, amt_proxy_lab

pytestmark = pytest.mark.netns

JOINS = {
    "igmpv3-ssm": (4, JoinMode.IGMPV3_SSM, SSM[4]),
    "igmpv3-asm": (4, JoinMode.IGMPV3_ASM, ASM[4]),
    "mldv2-ssm": (6, JoinMode.MLDV2_SSM, SSM[6]),
}


@pytest.mark.parametrize("join", list(JOINS))
@pytest.mark.parametrize("transport", [4, 6], ids=["over-ipv4", "over-ipv6"])
def test_a_host_joins_through_the_amt_upstream(
    make_lab: Callable[..., Lab], join: str, transport: int
) -> None:
    inner, mode, (source, group) = JOINS[join]
    protocol = "igmp" if inner == 4 else "mld"
    lab = make_lab(amt_proxy_lab())
    relay = start_relay(lab, transport)
    proxy = lab.proxy(amt_config(transport=transport), forwarding="recorded")
    # The relay answers the gateway's Request before anything is joined, and its query
    # reaches the host side through the TUN (usable alone would say nothing: query liveness
    # presumes a querier at start).
    wait_relay_queries(proxy, protocol)
    assert proxy.status()["upstreams"]["amt1"]["usable"]
    rx_before = tun_rx_packets(lab)
    rx = lab.receiver("sub1", "eth0")
    if mode is JoinMode.IGMPV3_ASM:
        rx.join(mode, group)
        wanted = (None, group)
    else:
        rx.join(mode, group, source)
        wanted = (source, group)
    wait_until(lambda: wanted in relay_channels(relay), timeout=10,
               message=lambda: f"the relay holds {relay_channels(relay)}")

    def updates() -> list[dict[str, object]]:
        return [e for e in relay.events("update") if [wanted[0], group] in e["channels"]]

    wait_until(lambda: updates() != [], timeout=5)  # its events may trail its answers
    (first, *_) = updates()
    assert first["family"] == inner
    assert str(first["gateway"]).startswith(
        f"[{PROXY_WAN[6]}]:" if transport == 6 else f"{PROXY_WAN[4]}:")
    # The relay's data is decapsulated into the TUN: the gateway counts it, and the kernel
    # counts it received on amt1.
    wait_until(lambda: gateway(proxy, protocol)["data-packets"] >= 20, timeout=10)
    assert tun_rx_packets(lab) - rx_before >= 20
    status = amt_status(proxy)
    assert status["dropped"] == {}
    assert status["tun"]["reports-carried"] >= 1
    assert status["relay"] == ("10.30.2.2" if transport == 4 else "fd30:2::2")
    # Stop: the leave and the Teardown reach the relay, and the TUN is gone.
    seen = len(relay.events("teardown"))
    assert proxy.stop() == 0
    wait_until(lambda: len(relay.events("teardown")) > seen, timeout=5)
    wait_until(lambda: relay_channels(relay) == set(), timeout=5)
    assert "amt1" not in lab.run("proxy", "ip", "-o", "link")


def test_a_leave_reaches_the_relay(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(amt_proxy_lab())
    relay = start_relay(lab)
    proxy = lab.proxy(amt_config(extra="  leave-on-stop: false\n"), forwarding="recorded")
    source, group = SSM[4]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM, group, source)
    wait_until(lambda: (source, group) in relay_channels(relay), timeout=10)
    rx.leave(group, source)
    wait_until(lambda: relay_channels(relay) == set(), timeout=10,
               message=lambda: f"the relay still holds {relay_channels(relay)}")
    assert proxy.status()["upstreams"]["amt1"]["usable"]


def test_a_join_made_while_the_relay_is_silent_reaches_it_once_it_answers(
    make_lab: Callable[..., Lab]
) -> None:
    # RFC 7450 §5.2.3.5: the gateway sends its Request again until the relay's query comes;
    # the report the host side made meanwhile (no tunnel to carry it) is said in the answer
    # to that query.
    lab = make_lab(amt_proxy_lab())
    relay = start_relay(lab, 4, "--mute")
    proxy = lab.proxy(amt_config(), forwarding="recorded")
    wait_until(lambda: len(relay.events("muted")) >= 2, timeout=10)  # sent again
    source, group = SSM[4]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM, group, source)
    wait_until(lambda: amt_status(proxy)["tun"].get("reports-carried", 0) >= 1, timeout=10,
               message=lambda: str(amt_status(proxy)))
    assert gateway(proxy, "igmp")["state"] == "requesting"
    assert relay_channels(relay) == set()
    relay.command("unmute")
    # The next Request gets the query, answered with the channel: within the back-off
    # (sends at 0, 1, 3, 7, 15 s ...: 8 s apart by now, 16 s on a very slow machine).
    wait_until(lambda: (source, group) in relay_channels(relay), timeout=25,
               message=lambda: f"the relay holds {relay_channels(relay)}; {amt_status(proxy)}")
    wait_until(lambda: gateway(proxy, "igmp")["data-packets"] >= 10, timeout=10)
