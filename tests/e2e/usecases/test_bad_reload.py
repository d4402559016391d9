"""A bad reload is refused whole: the daemon says why and keeps proxying by the running rules.

::

      prov1 eth0 10.0.1.2/24 fd00:1::2/64         prov2 eth0 10.0.2.2/24 fd00:2::2/64
              |                                            |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      239.1/16, ff1e::1:0/112                         239.2/16, ff1e::2:0/112
      d1 10.1.1.1/24 fd01:1::1/64                     d2 10.1.2.1/24 fd01:2::1/64
              |
      [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111 (joins g1: 239.1.1.1, ff1e::1:1)

``configs.WHOLESALE`` runs; the file is rewritten with a unicast group prefix and the daemon
gets SIGHUP; afterwards sub1's join still goes to u1.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from provider_channels import Fam
from running_proxy import Proxy

from mcastlab import wait_until
from mcastlab.configs import WHOLESALE
from mcastlab.proxy import best_forwarding
from mcastproxy.wire.messages import RecordType

pytestmark = pytest.mark.netns  # what the proxy says and hears: any kernel


def test_bad_reload_keeps_the_running_configuration(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(WHOLESALE, forwarding=best_forwarding())
    proxy.config.write_text(WHOLESALE.replace("239.1.0.0/16", "10.0.0.0/8"))
    proxy.daemon.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in proxy.daemon.output(), 10)
    assert "is not multicast" in proxy.daemon.output()
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)  # still proxied by the old rules
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
