"""Every kind of join is proxied: IGMPv2, IGMPv3 any-source and source-specific, MLDv1, MLDv2
likewise, each made by sub1's own kernel (``JoinMode``).

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1 (239.1.1.1, ff1e::1:1)                      |
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      239.1/16, ff1e::1:0/112                         239.2/16, ff1e::2:0/112
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |
      [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111 (joins g1, from prov1 if SSM)

Each join is asked of u1, the channel delivered, and left upstream after the leave.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_channels import FAMS, delivered
from running_proxy import Proxy

from mcastlab import JoinMode, wait_until
from mcastlab.configs import WHOLESALE
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]


@pytest.mark.parametrize("mode", list(JoinMode), ids=[m.value for m in JoinMode])
def test_every_kind_of_join_is_proxied(
    proxy_with: Callable[[str], Proxy], mode: JoinMode
) -> None:
    """IGMPv2, IGMPv3 any-source and source-specific, MLDv1, MLDv2 likewise: joined upstream,
    delivered, left upstream after the leave."""
    fam = FAMS[mode.family]
    proxy = proxy_with(WHOLESALE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sources = (fam.prov_addr["prov1"],) if mode.source_specific else ()
    sub1.join(mode, fam.g1, *sources)
    joined = RecordType.ALLOW_NEW_SOURCES if sources else RecordType.CHANGE_TO_EXCLUDE_MODE
    proxy.wait_report("prov1", fam, joined, fam.g1)
    proxy.send("prov1", fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    sub1.leave(fam.g1, *sources)
    left = RecordType.BLOCK_OLD_SOURCES if sources else RecordType.CHANGE_TO_INCLUDE_MODE
    proxy.wait_report("prov1", fam, left, fam.g1)
