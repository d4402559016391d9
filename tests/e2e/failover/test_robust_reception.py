"""Robust reception survives the feeding upstream's carrier loss: of two tied upstreams, both
are joined, one feeds d1 and the other is hot standby (draft §3.3); when the feeder's
provider link goes down, the standby feeds at once, with no duplicate.

::

                 headend 10.0.9.1 / fd00:9::1 (one stream, two outputs)
                   /                                        \\
      prov1 eth0 10.0.1.2/24 fd00:1::2/64        prov2 eth0 10.0.2.2/24 fd00:2::2/64
              |                                          |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      (equal priorities, hold-down 1 s: a tie)
                                  d1 10.1.1.1/24 fd01:1::1/64
                                   |
                           [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111
                                       (joins 239.1.1.1 / ff1e::1:1 any-source)

The feeding upstream's provider loses carrier (its eth0 is taken down).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from failover_stream import MS, PROVIDER, Fam, Stream, gap_ms
from running_proxy import Proxy

from mcastlab import topologies
from mcastlab.configs import proxy_config
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

ROBUST = proxy_config("hold-down: 1s")


def test_robust_reception_survives_the_feeders_carrier_loss(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(ROBUST, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    # Equal priorities: both upstreams are joined, one feeds, the other is hot standby.
    for prov in ("prov1", "prov2"):
        proxy.wait_report(prov, fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    feeder = s.feeder()
    t0 = time.monotonic_ns()
    time.sleep(2.0)  # steady state, both providers delivering
    steady = s.outage(t0)
    assert steady.duplicates == 0
    assert gap_ms(steady) < 100, steady
    s.no_duplicates()
    # The feeding upstream loses carrier: the standby feeds at once.
    t = time.monotonic_ns()
    proxy.lab.set_link(PROVIDER[feeder], "eth0", up=False)
    other = ({"u1", "u2"} - {feeder}).pop()
    s.fed_by(other)
    s.receiving_after(t)
    o = s.outage(t - 50 * MS)
    # A swap of routes: milliseconds (bench/bench_failover.py measures it).
    assert gap_ms(o) < 1000, o
    assert o.duplicates == 0
    s.no_duplicates()
