"""What the ledger keeps to share splits and shares is bounded, whatever subscribers ask:
a host (or many forged ones) joining ever new channels empties the tables rather than grows
them, and what the upstreams are asked stays right across the emptying."""

from __future__ import annotations

import ipaddress

from harness import World

from mcastproxy.ledger import SHARED_RESULTS

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1, fast-leave: true}]
upstream: {candidates: [{interface: u1}]}
policy:  # every report at one instant: the rates are not under test
  report-rate: {subscriber: unlimited, link: unlimited}
"""


def test_ever_new_channels_keep_the_tables_bounded() -> None:
    w = World.make(CONFIG, up=("u1", "d1"))
    ledger = w.engine._ledger
    channels = SHARED_RESULTS + 500  # more distinct splits than the tables keep
    base = int(ipaddress.ip_address("10.1.1.0"))
    for i in range(channels):
        host = str(ipaddress.ip_address(base + i))
        group = str(ipaddress.ip_address(int(ipaddress.ip_address("239.9.0.0")) + i))
        w.join("d1", host, group)  # a host each: no per-subscriber limit is reached
        assert len(ledger._splits) <= SHARED_RESULTS
        assert len(ledger._results) <= SHARED_RESULTS
    # Every channel is still asked of u1, and a second subscriber of the first (whose split
    # was dropped when the table emptied) shares what it is given.
    host = w.engine.snapshot().upstream("u1")
    assert host is not None
    assert len(list(host.groups)) == channels
    w.join("d1", "10.1.200.1", "239.9.0.0")
    lg = ledger.link_groups["d1", ipaddress.ip_address("239.9.0.0").packed]
    assert sum(lg.held.values()) == 2
    assert {u: m.state() for u, m in lg.by_upstream.items()}.keys() == {"u1"}
