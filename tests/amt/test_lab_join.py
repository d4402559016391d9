"""Namespace scenario: a gateway joins an SSM channel through a relay two unicast hops away,
and a kernel host socket on the gateway's TUN device receives it.

::

    gw                                     router                 relay
    receiver on amt0 <- TUN <- gateway     (unicast only)         streams 232.1.1.1, ff3e::8000:1
    eth0 10.30.1.2, fd30:1::2  ---------------  ...  ---------------  eth0 10.30.2.2, fd30:2::2
                        AMT over UDP 2268, over IPv4 or IPv6

The gateway discovers the relay (the relay's unicast address as discovery address), asks
with a Request, answers its Membership Query with an update joining the channel; the relay's
Multicast Data is decapsulated into the TUN, where the receiver's (S,G) socket takes it.
Every inner family over every transport family.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from amt_lab import CHANNEL, RATE, join, start_gateway, start_relay, tun_receiver

from mcastlab import Lab, wait_until
from mcastlab.amt_topologies import GATEWAY, amt_lab

pytestmark = pytest.mark.netns


@pytest.mark.parametrize(("inner", "transport"), [(4, 4), (6, 4), (4, 6), (6, 6)],
                         ids=["igmp-over-ipv4", "mld-over-ipv4", "igmp-over-ipv6",
                              "mld-over-ipv6"])
def test_a_channel_arrives_through_the_tunnel(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab())
    relay = start_relay(lab, transport)
    with start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver(lab, inner)
        join(gw, inner)
        packets = rx.wait_packets(20, timeout=10)
        source, group = CHANNEL[inner]
        assert {(p.source, p.group, p.sender) for p in packets} == {(source, group, "relay-1")}
        seqs = [p.seq for p in packets]
        assert seqs == sorted(seqs)  # in order, through the tunnel and the TUN
        # The gateway went through the whole sequence, and the relay saw it (the events of
        # both may trail the data; a message sent again on a loaded machine is seen twice).
        wait_until(lambda: gw.states()[:4] == ["discovering", "relay found", "requesting",
                                               "established"], timeout=5,
                   message=lambda: f"states {gw.states()}")
        for kind in ("discovery", "request", "update"):
            relay.wait_event(lambda e, kind=kind: e.get("event") == kind, timeout=5)
            for event in relay.events(kind):
                assert event["gateway"].startswith(f"[{GATEWAY[6]}]:" if transport == 6
                                                   else f"{GATEWAY[4]}:")
        assert relay.events("update")[0]["channels"] == [[source, group]]
        status = gw.call("status")
        assert status["dropped"] == {}
        wait_until(lambda: gw.call("status")["counts"].get("tun packets written", 0)
                   >= len(rx.packets()), timeout=5)
        # The other family's channel, not joined, never came.
        assert rx.packets(CHANNEL[10 - inner][1]) == []
        assert len(packets) <= RATE * 30
