"""Priorities: u1 (10) feeds alone and u2 (5) is not joined; when prov1's link goes down u2
takes over by joining, and when it comes back u1 takes the channel back after the hold-down.

::

                 headend 10.0.9.1 / fd00:9::1 (one stream, two outputs)
                   /                                        \\
      prov1 eth0 10.0.1.2/24 fd00:1::2/64        prov2 eth0 10.0.2.2/24 fd00:2::2/64
              |                                          |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      priority 10                     (hold-down 1 s)  priority 5
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
from failover_stream import MS, Fam, Stream, gap_ms
from running_proxy import Proxy

from mcastlab import topologies
from mcastlab.configs import proxy_config
from mcastproxy.wire.messages import RecordType

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

PRIORITIES = proxy_config("hold-down: 1s", u1=", priority: 10", u2=", priority: 5")


def test_priorities_take_over_by_joining_and_take_back_after_the_hold_down(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(PRIORITIES, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    assert s.feeder() == "u1"
    assert proxy.reports("prov2", fam) == []  # no standby: u2 is not joined
    t = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=False)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    s.fed_by("u2")
    s.receiving_after(t)
    o = s.outage(t - 50 * MS)
    assert gap_ms(o) < 1000, o
    assert o.duplicates == 0
    # u1 is back: after the 1 s hold-down it takes the channel back, with no duplicate.
    t_up = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=True)
    took_back = s.fed_by("u1")
    assert took_back - t_up >= 0.9e9, "u1 took the channel back before its hold-down"
    s.receiving_after(took_back)
    back = s.outage(t_up)
    assert gap_ms(back) < 1000, back
    assert back.duplicates == 0
    s.no_duplicates()
