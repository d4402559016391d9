"""Namespace scenario: the gateway's Teardown, on the last leave and on stop, as the relay
sees it; after it no more data comes.

::

    gw: receiver on amt0 <- TUN <- gateway  ---  router  ---  relay

RFC 7450 §5.1.7: the Teardown carries the nonce, MAC and Gateway fields of the query that set
the tunnel up; the lab relay checks the MAC against those fields and forgets the tunnel.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from amt_lab import CHANNEL, join, start_gateway, start_relay, tun_receiver

from mcastlab import Lab, wait_until
from mcastlab.amt_topologies import amt_lab

pytestmark = pytest.mark.netns

TRANSPORTS = [(4, 4), (6, 6)]
IDS = ["igmp-over-ipv4", "mld-over-ipv6"]


def _tunnels(relay) -> list:  # type: ignore[no-untyped-def]
    return relay.command("tunnels")["tunnels"]


@pytest.mark.parametrize(("inner", "transport"), TRANSPORTS, ids=IDS)
def test_stop_tears_the_tunnel_down(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab())
    relay = start_relay(lab, transport)
    with start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver(lab, inner)
        join(gw, inner)
        rx.wait_packets(5, timeout=10)
        (tunnel,) = _tunnels(relay)
        assert gw.call("stop")["stopped"]
        teardown = relay.wait_event(lambda e: e.get("event") == "teardown", timeout=5)
        assert teardown["gateway"] == tunnel["gateway"]
        assert relay.events("refused") == []
        assert _tunnels(relay) == []


@pytest.mark.parametrize(("inner", "transport"), TRANSPORTS, ids=IDS)
def test_the_last_leave_tears_the_tunnel_down(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab())
    relay = start_relay(lab, transport)
    with start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver(lab, inner)
        join(gw, inner)
        rx.wait_packets(5, timeout=10)
        source, group = CHANNEL[inner]
        assert gw.call("leave", source=source, group=group)["state"] == "relay found"
        teardown = relay.wait_event(lambda e: e.get("event") == "teardown", timeout=5)
        updates = relay.events("update")
        assert updates[-1]["channels"] == []  # the BLOCK came first
        assert _tunnels(relay) == []
        # No more data: the gateway gets what the relay sent the tunnel before the Teardown
        # (some of it may still be on its way), and nothing after.
        sent = teardown["sent"]
        wait_until(lambda: gw.call("status")["delivered"] >= sent, timeout=5)
        relay.command("tunnels")  # one relay round trip later
        assert gw.call("status")["delivered"] == sent
