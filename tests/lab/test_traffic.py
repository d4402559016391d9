"""A sender's packets reach a host that joined, in every join mode, each exactly once.

Topology ``lan_pair``::

    router eth0 10.0.0.1 fd00::1 ------------ eth0 10.0.0.2 fd00::2  host
    (sends 50 packets at 500/s)               (a receiver joins the group)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from mcastlab import JoinMode, LabError, Topology, topologies

pytestmark = pytest.mark.netns

COUNT, RATE = 50, 500

GROUPS = {
    JoinMode.IGMPV2: "239.2.0.1",
    JoinMode.IGMPV3_ASM: "239.2.0.2",
    JoinMode.IGMPV3_SSM: "232.2.0.3",
    JoinMode.MLDV1: "ff1e::2:1",
    JoinMode.MLDV2_ASM: "ff1e::2:2",
    JoinMode.MLDV2_SSM: "ff3e::2:3",
}


@pytest.mark.parametrize("mode", list(JoinMode), ids=[m.value for m in JoinMode])
def test_every_packet_arrives_once_from_the_sender(make_lab: Callable, mode: JoinMode) -> None:
    lab = make_lab(topologies.lan_pair())
    group = GROUPS[mode]
    source = "10.0.0.1" if mode.family == 4 else "fd00::1"
    with lab.receiver("host", "eth0") as rx:
        rx.join(mode, group, *([source] if mode.source_specific else []))
        done = lab.send("router", group, count=COUNT, rate=RATE, iface="eth0", source=source)
        assert (done["sent"], done["errors"]) == (COUNT, 0)
        assert done["end"] - done["start"] >= (COUNT - 1) / RATE  # the rate was kept

        got = rx.wait_packets(COUNT, timeout=5, group=group)
    seqs = Counter(p.seq for p in got)
    assert sorted(seqs) == list(range(COUNT))
    assert max(seqs.values()) == 1, "duplicates"
    assert {(p.source, p.sender) for p in got} == {(source, "router")}
    assert all(p.delay is not None and 0 <= p.delay < 1 for p in got)


def test_a_source_not_joined_is_not_received(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with lab.receiver("host", "eth0") as rx:
        rx.join(JoinMode.IGMPV3_SSM, "232.2.0.9", "10.0.0.99")  # not the router
        lab.send("router", "232.2.0.9", count=5, rate=1000, iface="eth0")
        rx.join(JoinMode.IGMPV3_ASM, "239.2.0.9")  # a marker sent after, on another group
        lab.send("router", "239.2.0.9", count=1, rate=1000, iface="eth0")
        rx.wait_packets(1, timeout=5, group="239.2.0.9")
        assert rx.packets("232.2.0.9") == []


def test_sender_errors_are_reported(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with pytest.raises(LabError, match="Cannot assign requested address"):
        lab.send("router", "239.2.0.1", count=3, rate=1000, source="10.9.9.9")  # not ours

    t = Topology()
    a, b = t.hosts("a", "b")
    t.veth(a.iface("eth0", "10.0.0.1/24"), b.iface("eth0", "10.0.0.2/24"))
    lab = make_lab(t)
    with pytest.raises(LabError, match=r"3 errors, first .*Network is unreachable"):
        lab.send("a", "239.2.0.1", count=3, rate=1000)  # no multicast route, no interface
