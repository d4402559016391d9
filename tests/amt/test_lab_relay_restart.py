"""Namespace scenario: the relay restarts mid-stream, or goes away for a while, and the gateway
brings the channel back by itself.

::

    gw: receiver on amt0 <- TUN <- gateway  ---  router  ---  relay (killed, started again)

A restarted relay has no tunnels and a new secret: it knows nothing of the gateway, whose next
Request (the relay's query interval, 1 s here) gets a new Membership Query, answered with the
channel again. A relay gone longer than the Request's retransmissions makes the gateway
discover again, until a relay answers. The receiver sees the stream of the first relay
process, a gap, then that of the second (the payload's sender id says which).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from amt_lab import CHANNEL, join, start_gateway, start_relay, tun_receiver

from mcastlab import Lab, wait_until
from mcastlab.amt_topologies import amt_lab
from mcastlab.procs import JsonProc

pytestmark = pytest.mark.netns

DIAGONAL = [(4, 4), (6, 6)]
IDS = ["igmp-over-ipv4", "mld-over-ipv6"]


def _recovery(rx_packets: list, relay: JsonProc, sender: str) -> float:
    """Seconds from ``relay`` being ready (one monotonic clock in every namespace) to the
    first packet of ``sender`` received."""
    (ready,) = relay.events("ready")
    first = min(p.time_ns for p in rx_packets if p.sender == sender)
    return (first - ready["time_ns"]) / 1e9


@pytest.mark.parametrize(("inner", "transport"), DIAGONAL, ids=IDS)
def test_a_restarted_relay_gets_the_channel_again(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab())
    relay = start_relay(lab, transport, sender="relay-1", query_interval=1)
    with start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver(lab, inner)
        join(gw, inner)
        rx.wait_packets(20, timeout=10)
        relay.stop()
        second = start_relay(lab, transport, sender="relay-2", query_interval=1)
        wait_until(lambda: any(p.sender == "relay-2" for p in rx.packets()), timeout=10,
                   message=lambda: f"no packet of the second relay: {gw.call('status')}")
        # Its events may trail its data; each query after the first is answered too.
        update = second.wait_event(lambda e: e.get("event") == "update", timeout=5)
        assert update["channels"] == [list(CHANNEL[inner])]
        # Recovery within the query interval of the relay being back (a Request then, or one
        # sent again: at most 1 s apart), a few round trips, and a generous margin for a
        # loaded machine; the time the relay itself took to start is not counted.
        assert _recovery(rx.packets(), second, "relay-2") < 5.0
        assert gw.call("status")["state"] == "established"


@pytest.mark.parametrize(("inner", "transport"), DIAGONAL, ids=IDS)
def test_a_relay_gone_for_a_while_is_discovered_again(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab())
    relay = start_relay(lab, transport, sender="relay-1", query_interval=1)
    with start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver(lab, inner)
        join(gw, inner)
        rx.wait_packets(10, timeout=10)
        seen = len(gw.events())
        relay.stop()
        # Its Requests unanswered (1 + QRV of them), the gateway looks for a relay again.
        gw.wait_event(lambda e: e.get("event") == "state" and e["state"] == "discovering",
                      timeout=10, start=seen)
        start_relay(lab, transport, sender="relay-2", query_interval=1)
        wait_until(lambda: any(p.sender == "relay-2" for p in rx.packets()), timeout=10)
        # The agent's events may trail the data it wrote into the TUN.
        wait_until(lambda: gw.states()[-2:] == ["requesting", "established"], timeout=5,
                   message=lambda: f"states {gw.states()}")
        status = gw.call("status")
        assert status["discoveries"] >= 2
