"""Where Linux delivers IGMP while the mroute tables are active, the facts ``IgmpSocket``'s
design rests on (see ``netio.igmp``):

1. an IGMPv2 report to a routable group (with Router Alert) goes to the Router Alert chain
   only: a raw socket with IP_ROUTER_ALERT and every mroute socket get it, a plain raw
   socket does not;
2. an IGMPv3 report to 224.0.0.22 reaches no raw socket until the interface joins the group;
   then every raw IGMP socket gets it, through local delivery;
3. on both paths, ``IgmpSocket`` gets each packet once.

Topology ``proxy_lab``::

    proxy (u1 [4600], u2 [4601]; d1, d2; probe sockets) d1 --[lan1]-- sub1 (kernel host)
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mcastlab import JoinMode, JsonProc, topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

PROBE = Path(__file__).with_name("delivery_probe.py")
SUB1 = "10.1.1.11"
V2_REPORT, V3_REPORT = 0x16, 0x22


def test_where_igmp_is_delivered(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    lab.sysctl("sub1", "net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval", 100)
    probe = JsonProc(
        lab.ns("proxy"),
        [sys.executable, str(PROBE)],
        log=lab.logdir / "probe.log",
        env=lab.python_env(),
    )
    try:
        probe.wait_event(lambda e: e.get("event") == "ready", 10)
        rx = lab.receiver("sub1", "eth0")

        def seen(kind: int, start: int) -> Counter[str]:
            return Counter(
                e["socket"]
                for e in probe.events("got")[start:]
                if e["src"] == SUB1 and e["type"] == kind
            )

        # 1. IGMPv2 report to 239.2.0.1: the Router Alert chain.
        start = len(probe.events("got"))
        rx.join(JoinMode.IGMPV2, "239.2.0.1")
        wait_until(lambda: seen(V2_REPORT, start)["netio"] >= 1, timeout=5)
        time.sleep(0.2)
        v2 = seen(V2_REPORT, start)
        assert v2["plain"] == 0
        assert v2["router_alert"] == v2["mroute"] == v2["netio"] >= 1

        # 2. IGMPv3 reports to 224.0.0.22: nothing until d1 joins it.
        start = len(probe.events("got"))
        rx.join(JoinMode.IGMPV3_ASM, "239.2.0.2")
        time.sleep(0.5)  # the report and its retransmission (100 ms interval)
        assert seen(V3_REPORT, start) == Counter()
        probe.send("listen d1")
        probe.wait_event(lambda e: e.get("event") == "listening", 5)
        start = len(probe.events("got"))
        rx.join(JoinMode.IGMPV3_ASM, "239.2.0.3")
        wait_until(lambda: seen(V3_REPORT, start)["netio"] >= 1, timeout=5)
        time.sleep(0.5)
        v3 = seen(V3_REPORT, start)
        assert v3["plain"] == v3["router_alert"] == v3["mroute"] == v3["netio"] >= 1
    finally:
        probe.stop()
