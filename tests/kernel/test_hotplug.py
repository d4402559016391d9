"""Interfaces that appear, disappear and are added at run time.

Topology ``proxy_lab``::

    prov1 -- u1 [4600] proxy  u2 (not used at first) -- prov2
                       d1 -- lan1 -- sub1
                       d2 -- sub3      renamed "d3" in the middle of the scenario

The router starts with downstream "d3", which does not exist yet, and a route u1 -> {d3}.
Then d2 is renamed d3 (as a PPPoE or hot-plugged link would appear), the router is told
(``interface_changed``) and the stream reaches sub3; ``remove_interface("d3")`` takes it
out of the route again. Last, u2 is added as an upstream at run time and routes from there.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_agent import Agent

from mcastlab import JoinMode, topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

COUNT, RATE = 20, 500
CASES = {
    4: ("10.0.1.2", "10.0.2.2", "232.1.0.5", JoinMode.IGMPV3_ASM),
    6: ("fd00:1::2", "fd00:2::2", "ff3e::1:5", JoinMode.MLDV2_ASM),
}


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_interfaces_come_and_go(make_lab: Callable, family: int) -> None:
    s1, s2, group, mode = CASES[family]
    lab = make_lab(topologies.proxy_lab())
    agent = Agent(lab, "proxy", [])
    agent.call("start", family=family, upstreams=["u1"], downstreams=["d1", "d3"])
    agent.call(
        "set_route", family=family, table="u1", source=s1, group=group, iif="u1", oifs=["d3"]
    )
    sub3 = lab.receiver("sub3", "eth0")
    sub3.join(mode, group)

    def packets(table: str, source: str) -> int:
        rows = agent.call("counters", family=family)["counters"]
        return next(p for t, s, g, p, _, _ in rows if (t, s, g) == (table, source, group))

    lab.send("prov1", group, count=COUNT, rate=RATE, iface="eth0", source=s1)
    wait_until(lambda: packets("u1", s1) == COUNT)
    assert sub3.packets(group) == []  # d3 does not exist yet

    lab.run("proxy", "ip", "link", "set", "d2", "down")
    lab.run("proxy", "ip", "link", "set", "d2", "name", "d3")
    lab.run("proxy", "ip", "link", "set", "d3", "up")
    agent.call("interface_changed", family=family, name="d3")
    lab.send("prov1", group, count=COUNT, rate=RATE, iface="eth0", source=s1)
    sub3.wait_packets(COUNT, group=group)

    agent.call("remove_interface", family=family, name="d3")
    lab.send("prov1", group, count=COUNT, rate=RATE, iface="eth0", source=s1)
    wait_until(lambda: packets("u1", s1) == 3 * COUNT)
    assert len(sub3.packets(group)) == COUNT

    assert agent.call("add_interface", family=family, name="u2", role="upstream")["tables"] == {
        "u1": 4600,
        "u2": 4601,
    }
    agent.call("add_interface", family=family, name="d3", role="downstream")
    agent.call(
        "set_route", family=family, table="u2", source=s2, group=group, iif="u2", oifs=["d3"]
    )
    lab.send("prov2", group, count=COUNT, rate=RATE, iface="eth0", source=s2)
    sub3.wait_packets(2 * COUNT, group=group)
    assert [p.sender for p in sub3.packets(group)][COUNT:] == ["prov2"] * COUNT
    assert packets("u2", s2) == COUNT
