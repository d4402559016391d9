"""A route in an upstream's table forwards a provider's stream where it says, counts it, and
the same (S,G) flows from another upstream through that upstream's own table.

Topology ``proxy_lab``; the kernel adapter runs in ``proxy`` (``proxy_agent``)::

      prov1 eth0 (S = 10.0.1.2 / fd00:1::2)     prov2 eth0 (also holds S, for the last step)
         |                                          |
         u1 [table 4600] ---- proxy ---- u2 [table 4601]
         d1                                         d2
         |                                          |
      [lan1] -- sub1 (joined G)                  sub3 (joined G)

Each step sends 50 packets at 500/s: {d1}, then {d2}, then {} (counted, not forwarded),
then u1 -> {d1} and u2 -> {d2} at once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from proxy_agent import Agent

from mcastlab import JoinMode, topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

COUNT, RATE = 50, 500
CASES = {
    4: ("10.0.1.2", "232.1.0.1", JoinMode.IGMPV3_ASM, "10.0.1.2/32"),
    6: ("fd00:1::2", "ff3e::1:1", JoinMode.MLDV2_ASM, "fd00:1::2/128"),
}


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_routes_steer_count_and_stand_by_per_upstream(make_lab: Callable, family: int) -> None:
    source, group, mode, host_route = CASES[family]
    lab = make_lab(topologies.proxy_lab())
    agent = Agent(lab, "proxy", ["u1", "u2", "d1", "d2"])
    agent.call("start", family=family, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    sub1 = lab.receiver("sub1", "eth0")
    sub3 = lab.receiver("sub3", "eth0")
    for rx in (sub1, sub3):
        rx.join(mode, group)

    def route(table: str, oifs: list[str]) -> None:
        agent.call(
            "set_route",
            family=family,
            table=table,
            source=source,
            group=group,
            iif=table,
            oifs=oifs,
        )

    def counted() -> dict[str, int]:
        rows = agent.call("counters", family=family)["counters"]
        return {
            t: packets for t, s, g, packets, _bytes, _wrong in rows if (s, g) == (source, group)
        }

    def send(host: str = "prov1") -> None:
        done = lab.send(host, group, count=COUNT, rate=RATE, iface="eth0", source=source)
        assert done["sent"] == COUNT

    route("u1", ["d1"])
    send()
    sub1.wait_packets(COUNT, group=group)
    assert counted() == {"u1": COUNT}
    assert sub3.packets(group) == []

    route("u1", ["d2"])  # the outgoing set moves
    send()
    sub3.wait_packets(COUNT, group=group)
    assert len(sub1.packets(group)) == COUNT
    assert counted() == {"u1": 2 * COUNT}

    route("u1", [])  # hot standby: nothing forwarded, still counted
    send()
    wait_until(lambda: counted() == {"u1": 3 * COUNT}, timeout=5)
    assert (len(sub1.packets(group)), len(sub3.packets(group))) == (COUNT, COUNT)

    # The same (S,G) from u2 as well: prov2 sends from S too. Each upstream's table decides.
    lab.run(
        "prov2",
        "ip",
        "address",
        "add",
        host_route,
        "dev",
        "eth0",
        *(["nodad"] if family == 6 else []),
    )
    route("u1", ["d1"])
    route("u2", ["d2"])
    send("prov1")
    send("prov2")
    sub1.wait_packets(2 * COUNT, group=group)
    sub3.wait_packets(2 * COUNT, group=group)
    wait_until(lambda: counted() == {"u1": 4 * COUNT, "u2": COUNT}, timeout=5)
    assert {p.sender for p in sub1.packets(group)} == {"prov1"}
    assert [p.sender for p in sub3.packets(group)] == ["prov1"] * COUNT + ["prov2"] * COUNT
    assert (len(sub1.packets(group)), len(sub3.packets(group))) == (2 * COUNT, 2 * COUNT)
    assert agent.upcalls() == []  # every packet had a route
