"""Resiliency: a standby upstream serves once the active one's link goes down (draft §5.1).

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1; its link is taken down            sends g1 after the takeover
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      priority 10, active                             priority 5, standby
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |
      [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111 (joins g1: 239.1.1.1, ff1e::1:1)

sub1's join goes to u1 alone; prov1's eth0 loses carrier, u2 takes over (and ``explain
--live`` says why), and the channel comes from prov2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest
from provider_channels import Fam, delivered
from running_proxy import Proxy

from mcastlab import wait_until
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

RESILIENCY = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  takeover: true
  candidates:
    - interface: u1
      priority: 10
    - interface: u2
      priority: 5
"""


def test_resiliency_standby_serves_when_the_active_link_goes_down(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    proxy = proxy_with(RESILIENCY)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    assert proxy.reports("prov2", fam) == []
    proxy.send("prov1", fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20, 5)
    # The active upstream's link loses carrier: the standby takes over.
    proxy.lab.set_link("prov1", "eth0", up=False)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    # `explain --live` takes the running proxy's view of which upstreams are usable.
    out = json.loads(proxy.lab.run(
        "proxy", sys.executable, "-m", "mcastproxy", "explain", "-c", str(proxy.config),
        "--subscriber", "10.1.1.11" if fam.v == 4 else "fe80::ff:fe00:d111",
        "--group", fam.g1, "--live", str(proxy.status_socket), "--json"))
    assert out["upstreams"] == ["u2"]
    assert out["liveness"]["u1"]["usable"] is False
    assert out["liveness"]["u1"]["inactive_because"] == "link down"
    proxy.send("prov2", fam, fam.g1, count=20)
    wait_until(lambda: len(delivered(sub1, fam.g1).get("prov2", [])) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20)), "prov2": list(range(20))}
