"""PIM hellos of u1's configured router keep u1 usable; their silence fails it over to u2
within its active interval (draft §5.2), while hellos forged by another host on the link
count for nothing (draft §7).

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
        hellos from the router 10.0.1.2 / fe80::ff:fe00:b102 (pim_hello.py), then silence
        forged hellos from 10.0.1.99 / fe80::99, all along
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      priority 10, liveness: link and hellos,         priority 5
        routers [the router], active-interval 1.5 s
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |
      [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111 (joins g1: 239.1.1.1, ff1e::1:1)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from provider_channels import Fam
from running_proxy import Proxy

from mcastlab import wait_until
from mcastlab.proxy import best_forwarding
from mcastproxy.wire.messages import RecordType

pytestmark = pytest.mark.netns  # what the proxy says and hears: any kernel

HELLO_LIVENESS = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  takeover: true
  hold-down: 1s
  candidates:
    - interface: u1
      priority: 10
      liveness: {{link: true, hellos: true}}
      routers: ["{router}"]
      active-interval: 1500ms
    - interface: u2
      priority: 5
"""
HELLO_SOURCE = {4: "10.0.1.2", 6: "fe80::ff:fe00:b102"}
FORGER = {4: "10.0.1.99", 6: "fe80::99"}  # on u1's link, not one of its routers


def test_pim_hellos_keep_an_upstream_and_their_silence_fails_it_over(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(HELLO_LIVENESS.format(router=HELLO_SOURCE[fam.v]),
                       forwarding=best_forwarding())
    script = str(Path(__file__).with_name("pim_hello.py"))
    hellos = proxy.lab.popen("prov1", sys.executable, script, "eth0", str(fam.v), "40", "0.25",
                             HELLO_SOURCE[fam.v])
    # A host on the link forges hellos all along, from an address that is not a configured
    # router (draft §7): they count for nothing.
    prefix = "/24" if fam.v == 4 else "/64"
    proxy.lab.run("prov1", "ip", "address", "add", FORGER[fam.v] + prefix, "dev", "eth0",
                  *(() if fam.v == 4 else ("nodad",)))
    forger = proxy.lab.popen("prov1", sys.executable, script, "eth0", str(fam.v), "80", "0.1",
                             FORGER[fam.v])
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    # While hellos come (well past the 1.5 s active interval), u1 keeps the channel.
    wait_until(lambda: hellos.output().count("sent") >= 12, 10)
    assert proxy.reports("prov2", fam) == []
    # The router falls silent: within the active interval the standby takes over.
    hellos.stop()
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    assert forger.output().count("sent") > hellos.output().count("sent")  # still forging
    assert "upstream u1 is unusable: no query or hello" in proxy.daemon.output()
    assert f"hello on u1 from {FORGER[fam.v]}, not one of its routers" in proxy.daemon.output()
    dropped = proxy.status()["dropped"]
    assert dropped["hello from a router not configured for the upstream"] >= 10
