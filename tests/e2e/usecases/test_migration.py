"""Migration by reload: a channel moved to another upstream by SIGHUP; the running
subscription keeps flowing from the old upstream until it leaves, new ones come from the new.

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
      sends g1 (239.1.1.1, ff1e::1:1)             sends g1 too
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      default                                         239.255/16; after the reload also
                                                      239.1/16, ff1e::1:0/112
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |                                            |
      [ lan1 ] -- sub1 (joins g1 before)              sub3 (joins g1 after the reload)
                  10.1.1.11/24, fe80::ff:fe00:d111    10.1.2.13/24, fe80::ff:fe00:d213
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from provider_channels import Fam, delivered
from running_proxy import Proxy

from mcastlab import wait_until
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

MIGRATION_BEFORE = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  default: u1
  candidates:
    - interface: u1
    - interface: u2
      records: [{group: 239.255.0.0/16}]
"""
MIGRATION_AFTER = MIGRATION_BEFORE.replace(
    "records: [{group: 239.255.0.0/16}]",
    'records: [{group: 239.255.0.0/16}, {group: 239.1.0.0/16}, {group: "ff1e::1:0/112"}]',
)


def test_migration_by_reload_keeps_running_subscriptions(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    # The paper's smooth migration: after the reload, new subscriptions to g1 come from the
    # new upstream while the running one keeps flowing from the old one until it leaves.
    proxy = proxy_with(MIGRATION_BEFORE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.reload(MIGRATION_AFTER)
    sub3.join(fam.asm, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20 and len(sub3.packets(fam.g1)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    assert delivered(sub3, fam.g1) == {"prov2": list(range(20))}
    # The running subscription leaves: the old upstream is left; the new one stays.
    sub1.leave(fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_INCLUDE_MODE, fam.g1)
    assert not any(r.type == RecordType.CHANGE_TO_INCLUDE_MODE
                   for m in proxy.reports("prov2", fam) for r in m.records)
