"""Wholesale: two providers, each the source of its own channels, one subscriber taking both.

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1 (239.1.1.1, ff1e::1:1)             sends g2 (239.2.2.2, ff1e::2:2)
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |                                            |
      [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111   sub3 10.1.2.13/24 (joins nothing)

``configs.WHOLESALE``: 239.1/16 and ff1e::1:0/112 from u1, 239.2/16 and ff1e::2:0/112
from u2. sub1 joins g1 and g2 any-source; each is asked of its own provider only, arrives
whole, once and in order, and stops upstream and at sub1 after the leave.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_channels import Fam, delivered
from running_proxy import Proxy

from mcastlab import wait_until
from mcastlab.configs import WHOLESALE
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]


def test_wholesale_two_providers_one_subscriber(proxy_with: Callable[[str], Proxy],
                                                fam: Fam) -> None:
    proxy = proxy_with(WHOLESALE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    sub1.join(fam.asm, fam.g2)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g2)
    # Each channel was asked of its own provider only.
    assert not any(fam.g2 in str(m) for m in proxy.reports("prov1", fam))
    proxy.send("prov1", fam, fam.g1)
    proxy.send("prov2", fam, fam.g2)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 40 and len(sub1.packets(fam.g2)) >= 40, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(40))}  # all, once, in order
    assert delivered(sub1, fam.g2) == {"prov2": list(range(40))}
    assert sub3.packets() == []  # d2 asked for nothing
    # Leaves: the proxy leaves upstream, and traffic no longer reaches the subscriber.
    sub1.leave(fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_INCLUDE_MODE, fam.g1)
    before = len(sub1.packets(fam.g1))
    proxy.send("prov1", fam, fam.g1, count=20)
    assert len(sub1.packets(fam.g1)) == before
