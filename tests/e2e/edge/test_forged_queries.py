"""A query forged by a host must not silence the querier, nor one from a stranger downgrade an
upstream (RFC 9776 §6.6.2 querier election and §7.3 compatibility, made safe for an access
edge: the links' ``querier`` and ``routers`` settings, and the upstreams' ``routers``).

The attacker is sub1 on d1 (and prov1's side of u1): it sends one query from an address
lower than the proxy's, with the largest robustness and interval the fields can carry.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from edge_lab import drops, groups
from forged import igmpv2_query, igmpv3_query, mldv2_query

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.proxy import Proxy
from mcastproxy.drops import Drop

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]


def config(d1: str = "", u1: str = "") -> str:
    """d1 without fast leave, so that a leave is handled by the querier's queries."""
    return f"""
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1{d1}}}]
upstream:
  candidates: [{{interface: u1{u1}}}]
"""


def querier(proxy: Proxy, link: str) -> bool:
    return bool(proxy.status()["downstream"][link]["is-querier"])


def test_a_hosts_query_on_an_access_link_changes_nothing(edge: Edge) -> None:
    lab, proxy = edge(config())
    cap = lab.capture("sub1", "eth0")
    # QRV 7, QQIC 255 (31744 s): as querier, these would hold state for 7 x 31744 s.
    lab.inject("sub1", "eth0", [igmpv3_query("10.0.0.5", qrv=7, qqic=255),
                                mldv2_query("fe80::5", qrv=7, qqic=255)])
    refused = Drop.QUERY_ON_ALWAYS_QUERIER_LINK.value
    wait_until(lambda: drops(proxy, "d1").get(refused) == 2, 5)
    assert querier(proxy, "d1/igmp")
    assert querier(proxy, "d1/mld")

    # Still the querier: a leave is answered with a group-specific query, and ends the group.
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
    wait_until(lambda: proxy.joined("239.1.1.1") == {"u1"}, 5)
    mark = cap.mark()
    rx.leave("239.1.1.1")
    _, query = cap.wait_for(lambda p, m: p.src == "10.1.1.1" and type(m).__name__ == "Query"
                            and m.group == bytes([239, 1, 1, 1]), 5, start=mark)
    assert query.qrv <= 7
    wait_until(lambda: not proxy.joined("239.1.1.1"), 10)
    assert "239.1.1.1" not in groups(proxy, "d1/igmp")


def test_on_a_shared_link_only_a_listed_router_takes_part_in_the_election(edge: Edge) -> None:
    lab, proxy = edge(config(d1=", querier: elect, routers: [10.0.0.5]"))
    # A stranger lower than the proxy: refused, and the proxy stays querier.
    lab.inject("sub1", "eth0", [igmpv3_query("10.0.0.6", qrv=7, qqic=255)])
    stranger = Drop.QUERY_NOT_FROM_LINK_ROUTER.value
    wait_until(lambda: drops(proxy, "d1").get(stranger) == 1, 5)
    assert querier(proxy, "d1/igmp")
    # The listed router wins the election (RFC 9776 §6.6.2: the lowest address).
    lab.inject("sub1", "eth0", [igmpv3_query("10.0.0.5", qrv=7, qqic=255)])
    wait_until(lambda: not querier(proxy, "d1/igmp"), 5)
    assert drops(proxy, "d1").get(stranger) == 1


def test_a_stranger_cannot_downgrade_an_upstream_to_igmpv2(edge: Edge) -> None:
    lab, proxy = edge(config(u1=", routers: [10.0.1.2]"))
    cap = lab.capture("prov1", "eth0")
    lab.inject("prov1", "eth0", [igmpv2_query("10.0.1.99")])
    refused = Drop.QUERY_NOT_FROM_ROUTER.value
    wait_until(lambda: drops(proxy, "u1").get(refused) == 1, 5)
    rx = lab.receiver("sub1", "eth0")
    mark = cap.mark()
    rx.join(JoinMode.IGMPV3_SSM, "232.1.1.1", "10.0.1.2")
    packet, report = cap.wait_for(lambda p, m: p.src == "10.0.1.1"
                                  and type(m).__name__ == "Report", 5, start=mark)
    assert report.version == 3
    assert packet.dst == "224.0.0.22"

    # The configured router's IGMPv2 query does switch u1 to IGMPv2 (RFC 9776 §7.2.1): the
    # test above could tell the difference.
    lab.inject("prov1", "eth0", [igmpv2_query("10.0.1.2")])
    mark = cap.mark()
    rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
    _, report = cap.wait_for(lambda p, m: p.src == "10.0.1.1" and type(m).__name__ == "Report"
                             and m.records[0].group == bytes([239, 1, 1, 1]), 5, start=mark)
    assert report.version == 2
