"""Messages that break the validity rules make no state, and each is counted by reason
(RFC 9776 §4 and §9, RFC 9777 §5 and §7: TTL and hop limit 1, Router Alert, a link-local
source for MLD), whether sent to the all-routers group or unicast to the proxy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from edge_lab import drops, groups
from forged import TO_EX, igmpv3_report, mldv2_report

from mcastlab import Lab, wait_until
from mcastlab.proxy import Proxy
from mcastproxy.drops import Drop

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}]
upstream:
  candidates: [{interface: u1}]
"""
SUB1 = "10.1.1.11"
SUB1_LL = "fe80::ff:fe00:d111"


def test_each_invalid_report_is_dropped_by_reason_and_a_valid_one_is_taken(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    to_proxy = lab.mac("proxy", "d1")
    forged = {
        Drop.TTL_NOT_ONE: [igmpv3_report(SUB1, [(TO_EX, "239.9.0.1", ())], ttl=64),
                           igmpv3_report(SUB1, [(TO_EX, "239.9.0.2", ())], ttl=64,
                                         dst="10.1.1.1")],
        Drop.NO_ROUTER_ALERT: [igmpv3_report(SUB1, [(TO_EX, "239.9.0.3", ())], ra=False),
                               mldv2_report(SUB1_LL, [(TO_EX, "ff1e::9:4", ())], ra=False)],
        Drop.HOP_LIMIT_NOT_ONE: [mldv2_report(SUB1_LL, [(TO_EX, "ff1e::9:5", ())], hlim=255)],
        Drop.SOURCE_NOT_LINK_LOCAL: [mldv2_report("fd01:1::11", [(TO_EX, "ff1e::9:6", ())])],
    }
    sent = lab.inject("sub1", "eth0", [p for ps in forged.values() for p in ps], to=to_proxy)
    assert sent == 6
    want = {reason.value: len(ps) for reason, ps in forged.items()}
    wait_until(lambda: {r: drops(proxy, "d1").get(r) for r in want} == want, 5,
               message=lambda: f"drops on d1: {drops(proxy, 'd1')}")
    assert not groups(proxy, "d1/igmp")
    assert not groups(proxy, "d1/mld")
    assert not proxy.status()["upstreams"]["u1"]["groups"]

    # The same reports, valid: taken (so what was dropped above was dropped for its fault).
    lab.inject("sub1", "eth0", [igmpv3_report(SUB1, [(TO_EX, "239.9.0.1", ())]),
                                mldv2_report(SUB1_LL, [(TO_EX, "ff1e::9:4", ())])])
    wait_until(lambda: proxy.joined("239.9.0.1") == {"u1"} and proxy.joined("ff1e::9:4")
               == {"u1"}, 5)


def test_a_flood_of_malformed_and_invalid_packets_is_counted_and_the_proxy_serves_on(
    edge: Edge,
) -> None:
    lab, proxy = edge(CONFIG)
    good = igmpv3_report(SUB1, [(TO_EX, "239.9.1.1", ())])
    truncated = good[:-3]
    bad_checksum = good[:-1] + bytes([good[-1] ^ 0xFF])
    flood = [truncated, bad_checksum, igmpv3_report(SUB1, [(TO_EX, "239.9.1.2", ())], ttl=9)]
    lab.inject("sub1", "eth0", flood * 1000)
    wait_until(lambda: sum(drops(proxy, "d1").values()) + sum(
        proxy.status()["dropped"].values()) >= 3000, 10,
        message=lambda: f"{proxy.status()['dropped']} {drops(proxy, 'd1')}")
    assert proxy.running
    # Another subscriber is served (sub1, the flooding host, is held to its report rate).
    lab.inject("sub2", "eth0", [igmpv3_report("10.1.1.12", [(TO_EX, "239.9.1.1", ())])])
    wait_until(lambda: proxy.joined("239.9.1.1") == {"u1"}, 5)
    assert proxy.joined("239.9.1.2") == set()
