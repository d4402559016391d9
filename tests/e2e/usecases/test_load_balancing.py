"""Load balancing: channels split between the upstreams by group prefix, and one provider's
source always taken from its own upstream (draft §4.2: a source record outranks a group record).

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1 (239.1.1.1, ff1e::1:1)             sends g1 and g2 (239.2.2.2, ff1e::2:2)
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      239.1/16, ff1e::1:0/112                         239.2/16, ff1e::2:0/112, source prov2
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |                                            |
      [ lan1 ] -- sub1 (joins g1)                     sub3 10.1.2.13/24 (joins g2)
                  10.1.1.11/24, fe80::ff:fe00:d111

sub1's any-source join of g1 is asked of u1, and of u2 for prov2's source exactly; sub1 gets
g1 from both providers' sources, sub3 g2 from prov2, and nothing of g1.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_channels import Fam, delivered
from running_proxy import Proxy

from mcastlab import wait_until
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

LOAD_BALANCING = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  candidates:
    - interface: u1
      records: [{{group: 239.1.0.0/16}}, {{group: "ff1e::1:0/112"}}]
    - interface: u2
      records: [{{group: 239.2.0.0/16}}, {{group: "ff1e::2:0/112"}}, {{source: "{s2}"}}]
"""


def test_load_balancing_by_group_prefix_and_source(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    # Channels split by group prefix; provider 2's source is always taken from u2, even in
    # u1's block (draft §4.2: a source record outranks a group record).
    proxy = proxy_with(LOAD_BALANCING.format(s2=fam.prov_addr["prov2"]))
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    sub3.join(fam.asm, fam.g2)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g2)
    # The any-source join of g1 is also asked of u2 for provider 2's source, exactly.
    proxy.wait_report("prov2", fam, RecordType.ALLOW_NEW_SOURCES, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    proxy.send("prov2", fam, fam.g2, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 40 and len(sub3.packets(fam.g2)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20)), "prov2": list(range(20))}
    assert delivered(sub3, fam.g2) == {"prov2": list(range(20))}
    assert sub3.packets(fam.g1) == []
