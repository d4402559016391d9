"""Data of an (S,G) with no route, arriving on an upstream, raises one NOCACHE upcall from that
upstream's table, naming the upstream, the source and the group.

Topology ``proxy_lab``::

    prov1 eth0 --(5 packets to G, no route)--> u1 [table 4600] proxy [table 4601] u2 -- prov2

The kernel queues the first packets of an unresolved entry and raises no second upcall for
it while it waits (10 s), so five packets give one upcall.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from proxy_agent import Agent

from mcastlab import topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

CASES = {4: ("10.0.1.2", "232.1.0.77"), 6: ("fd00:1::2", "ff3e::1:77")}


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_unknown_flow_gives_one_nocache_upcall(make_lab: Callable, family: int) -> None:
    source, group = CASES[family]
    lab = make_lab(topologies.proxy_lab())
    agent = Agent(lab, "proxy", [])
    agent.call("start", family=family, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    lab.send("prov1", group, count=5, rate=1000, iface="eth0", source=source)
    wait_until(agent.upcalls, timeout=5)
    time.sleep(0.2)  # room for a wrong second one
    upcalls = agent.upcalls()
    assert upcalls == [
        {
            "event": "upcall",
            "family": family,
            "kind": "NOCACHE",
            "table": "u1",
            "interface": "u1",
            "source": source,
            "group": group,
        }
    ]
    stats = agent.call("stats")
    assert stats["upcalls"][str(family)] == {"NOCACHE": 1}
    assert stats["ignored"][str(family)] == 0  # the filters kept IGMP/ICMPv6 off the sockets
