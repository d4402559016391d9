"""A silent provider is replaced by the hot standby: with data liveness (100 ms) on both tied
upstreams, the feeding provider stops sending while its link stays up; the route from it is
found dead and the standby feeds d1. When the provider comes back the feed stays where it is.

::

                 headend 10.0.9.1 / fd00:9::1 (one stream, two outputs)
                   /                                        \\
      prov1 eth0 10.0.1.2/24 fd00:1::2/64        prov2 eth0 10.0.2.2/24 fd00:2::2/64
              |                                          |
      u1 10.0.1.1/24 fd00:1::1/64 ------ proxy ------ u2 10.0.2.1/24 fd00:2::1/64
      (equal priorities, liveness {link, data: 100ms} on both, hold-down 1 s)
                                  d1 10.1.1.1/24 fd01:1::1/64
                                   |
                           [ lan1 ] -- sub1 10.1.1.11/24, fe80::ff:fe00:d111
                                       (joins 239.1.1.1 / ff1e::1:1 any-source)

The headend's output into the feeding provider pauses; its link stays up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest
from failover_stream import MS, PROVIDER, Fam, Stream, gap_ms
from running_proxy import Proxy

from mcastlab import topologies
from mcastlab.configs import DATA_LIVENESS, proxy_config

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

ROBUST_DATA = proxy_config("hold-down: 1s", u1=DATA_LIVENESS, u2=DATA_LIVENESS)


def test_silent_provider_is_replaced_by_the_hot_standby(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(ROBUST_DATA, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    feeder = s.feeder()
    time.sleep(0.5)
    # The feeding provider falls silent (its link stays up); the other still sends.
    paused = s.headend.pause(PROVIDER[feeder])
    other = ({"u1", "u2"} - {feeder}).pop()
    s.fed_by(other)
    s.receiving_after(paused["time_ns"])
    o = s.outage(paused["time_ns"] - 50 * MS)
    assert gap_ms(o) < 1000, o  # 100 ms of silence, sampled every 25 ms
    assert o.duplicates == 0
    assert "is dead: no packet for" in proxy.daemon.output()
    # `mcastproxy status` shows the dead route, now a standby, and counts the event.
    text = proxy.lab.run("proxy", sys.executable, "-m", "mcastproxy", "status", "--socket",
                         str(proxy.status_socket))
    assert f"{feeder} -> (standby) [data dead]" in text, text
    assert f"{other} -> d1 [data delivering]" in text, text
    assert "channel dead 1" in text, text
    # The provider comes back: robust reception keeps the feed where it is, no duplicates.
    resumed = s.headend.resume(PROVIDER[feeder])
    time.sleep(1.5)  # past the 1 s hold-down of a returning channel
    assert s.feeder() == other
    back = s.outage(resumed["time_ns"])
    assert gap_ms(back) < 100, back
    assert back.duplicates == 0
    s.no_duplicates()
