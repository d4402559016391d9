"""Takeover off (draft §5.1): when u1's provider link goes down nothing moves; u2 is never
asked, the channel stops, and comes back with u1.

::

                 headend 10.0.9.1 / fd00:9::1 (one stream, two outputs)
                   /                                        \\
      prov1 eth0 10.0.1.2/24 fd00:1::2/64        prov2 eth0 10.0.2.2/24 fd00:2::2/64
              |                                          |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      priority 10            (takeover: false)         priority 5
                                  d1 10.1.1.1/24 fd01:1::1/64
                                   |
                           [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111
                                       (joins 239.1.1.1 / ff1e::1:1 any-source)

prov1's eth0 is taken down, then up again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from failover_stream import MS, Fam, Stream
from running_proxy import Proxy

from mcastlab import topologies
from mcastlab.configs import proxy_config

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

NO_TAKEOVER = proxy_config("takeover: false", "hold-down: 1s", u1=", priority: 10",
                           u2=", priority: 5")


def test_takeover_off_nothing_moves(proxy_with: Callable[..., Proxy], fam: Fam) -> None:
    proxy = proxy_with(NO_TAKEOVER, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    assert s.feeder() == "u1"
    t_down = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=False)
    time.sleep(1.5)  # nothing may happen: let time pass to see that it does not
    t_up = time.monotonic_ns()
    assert proxy.reports("prov2", fam) == []  # u2 was not asked
    assert proxy.feeders(fam.group) <= {"u1"}
    during = [a for a in s.arrivals() if t_down + 100 * MS < a.time_ns < t_up]
    assert during == [], "the channel reached the subscriber while its upstream was down"
    # u1 is back: the channel with it.
    proxy.lab.set_link("prov1", "eth0", up=True)
    s.receiving_after(t_up, timeout=10)
    assert s.feeder() == "u1"
    assert proxy.reports("prov2", fam) == []
    s.no_duplicates()
