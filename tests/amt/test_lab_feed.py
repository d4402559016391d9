"""Namespace scenario: the relay forwards real multicast it receives on its multicast side,
as a relay in a provider's network does (the lab relay's ``--feed``).

::

    gw: receiver on amt0 <- TUN <- gateway  ---  router  ---  relay  feed ---  src
                                                              (joins the gateways' channels
                                                               on feed; forwards what it sees)

A sender in ``src`` sends the channel into the relay's ``feed`` link; the relay joins it there
(the kernel's IGMP / MLD report) once a gateway asked for it, and forwards each packet through
the tunnel, unchanged: the receiver sees the source's own packets, sender id and all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from amt_lab import TUN, TUN_ADDRESS4, start_gateway

from mcastlab import JoinMode, Lab, Receiver, wait_until
from mcastlab.amt_topologies import FEED_SOURCE, RELAY, amt_lab
from mcastlab.sockopts import packed
from mcastproxy.wire.messages import Report

pytestmark = pytest.mark.netns

CHANNEL = {4: (FEED_SOURCE[4], "232.1.1.1"), 6: (FEED_SOURCE[6], "ff3e::8000:1")}


@pytest.mark.parametrize(("inner", "transport"), [(4, 6), (6, 4)],
                         ids=["igmp-over-ipv6", "mld-over-ipv4"])
def test_multicast_from_the_feed_reaches_the_gateway(
    make_lab: Callable[..., Lab], inner: int, transport: int
) -> None:
    lab = make_lab(amt_lab(feed=True))
    relay = lab.python_json("relay", "mcastlab.amtrelay", "--address", RELAY[transport],
                            "--feed", "feed", "--max-seconds", "60")
    assert relay.wait_event(lambda e: e.get("event") in ("ready", "error"))["event"] == "ready"
    source, group = CHANNEL[inner]
    with lab.capture("src", "eth0") as cap, start_gateway(lab, inner, transport) as gw:
        rx = tun_receiver_for(lab, inner, source, group)
        gw.call("join", source=source, group=group)
        relay.wait_event(lambda e: e.get("event") == "update")
        # The relay joins the channel on its multicast side: a report leaves feed.
        packet, _ = cap.wait_for(lambda p, m: not p.outgoing and isinstance(m, Report)
                                 and any(r.group == packed(group) for r in m.records))
        assert packet.family == inner
        lab.send("src", group, count=40, rate=400, iface="eth0", source=source,
                 sender_id="src")
        wait_until(lambda: len(rx.packets()) >= 35, timeout=10,
                   message=lambda: f"{len(rx.packets())} packets; {gw.call('status')}")
        assert {(p.source, p.group, p.sender) for p in rx.packets()} == {(source, group, "src")}


def tun_receiver_for(lab: Lab, inner: int, source: str, group: str) -> Receiver:
    if inner == 4:
        lab.run("gw", "ip", "addr", "add", TUN_ADDRESS4, "dev", TUN)
    rx = lab.receiver("gw", TUN)
    rx.join(JoinMode.IGMPV3_SSM if inner == 4 else JoinMode.MLDV2_SSM, group, source)
    return rx
