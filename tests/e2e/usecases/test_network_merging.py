"""Network merging: each customer base keeps its own provider, by subscriber prefix (draft
§4.1), even for the same channel on the same proxy.

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1 (239.1.1.1, ff1e::1:1)             sends g1 too
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      subscribers 10.1.1.0/24,                        subscribers 10.1.2.0/24,
        fe80::ff:fe00:d100/120                          fe80::ff:fe00:d200/120
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |                                            |
      [ lan1 ] -- sub1 (the first network)            sub3 (the merged network)
                  10.1.1.11/24, fe80::ff:fe00:d111    10.1.2.13/24, fe80::ff:fe00:d213

sub1 and sub3 join g1: the proxy asks it of both providers, sub1 gets it from prov1 and sub3
from prov2, with no duplicates.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_channels import Fam, delivered
from running_proxy import Proxy

from mcastlab import wait_until
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

MERGING = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  takeover: false
  candidates:
    - interface: u1
      records: [{{subscriber: "{base1}"}}]
    - interface: u2
      records: [{{subscriber: "{base2}"}}]
"""
BASES = {4: ("10.1.1.0/24", "10.1.2.0/24"),
         6: ("fe80::ff:fe00:d100/120", "fe80::ff:fe00:d200/120")}


def test_network_merging_each_customer_base_its_own_provider(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    base1, base2 = BASES[fam.v]
    proxy = proxy_with(MERGING.format(base1=base1, base2=base2))
    sub1 = proxy.lab.receiver("sub1", "eth0")  # the first network's customer, on d1
    sub3 = proxy.lab.receiver("sub3", "eth0")  # the merged network's customer, on d2
    sub1.join(fam.asm, fam.g1)
    sub3.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20 and len(sub3.packets(fam.g1)) >= 20, 5)
    # The same channel, each base from its own provider, and no duplicates.
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    assert delivered(sub3, fam.g1) == {"prov2": list(range(20))}
