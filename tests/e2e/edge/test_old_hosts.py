"""Hosts of every IGMP and MLD version are heard, however the kernel delivers their messages:
an IGMPv1 report (RFC 1112: to the group, never with Router Alert) makes membership unless the
link requires Router Alert strictly (RFC 9776 §9.2: "this solution breaks backwards
compatibility"); a kernel host forced to IGMPv2 or MLDv1 joins and leaves through the proxy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from edge_lab import drops, groups
from forged import igmpv1_report

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.proxy import Proxy, best_forwarding
from mcastproxy.drops import Drop

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]


def config(d1: str = "") -> str:
    return f"""
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true{d1}}}]
upstream:
  candidates: [{{interface: u1}}]
"""


def test_an_igmpv1_report_without_router_alert_makes_membership(edge: Edge) -> None:
    lab, proxy = edge(config())
    lab.inject("sub1", "eth0", [igmpv1_report("10.1.1.11", "239.7.0.1")])
    wait_until(lambda: proxy.joined("239.7.0.1") == {"u1"}, 5)
    assert "10.1.1.11" in groups(proxy, "d1/igmp")["239.7.0.1"]["subscribers"]  # type: ignore[operator]


def test_a_link_that_requires_router_alert_refuses_igmpv1_too(edge: Edge) -> None:
    lab, proxy = edge(config(", require-router-alert: true"))
    lab.inject("sub1", "eth0", [igmpv1_report("10.1.1.11", "239.7.0.1")])
    wait_until(lambda: drops(proxy, "d1").get(Drop.NO_ROUTER_ALERT.value) == 1, 5)
    assert not proxy.joined("239.7.0.1")


@pytest.mark.parametrize(("mode", "group"), [(JoinMode.IGMPV2, "239.7.1.1"),
                                             (JoinMode.MLDV1, "ff1e::7:1")],
                         ids=["igmpv2", "mldv1"])
def test_an_older_kernel_host_joins_and_leaves(edge: Edge, mode: JoinMode, group: str) -> None:
    # Its report goes to the group itself (a routable destination), its leave to all-routers.
    lab, proxy = edge(config())
    rx = lab.receiver("sub1", "eth0")
    rx.join(mode, group)
    wait_until(lambda: proxy.joined(group) == {"u1"}, 5)
    rx.leave(group)
    wait_until(lambda: not proxy.joined(group), 5)


def test_an_igmpv2_box_watches_an_ssm_channel_through_ssm_mapping(
    make_lab: Callable[..., Lab],
) -> None:
    lab = make_lab(topologies.proxy_lab())
    cap = lab.capture("prov1", "eth0")
    proxy = lab.proxy("""
igmp:
  version: 3
  ssm-map: [{group: 232.1.0.0/16, sources: [10.0.1.2]}]
downstream: [{interface: d1, fast-leave: true}]
upstream:
  candidates: [{interface: u1}]
""", forwarding=best_forwarding())
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV2, "232.1.0.7")  # an IGMPv2 report: no source to name
    source, group = bytes((10, 0, 1, 2)), bytes((232, 1, 0, 7))
    _, report = cap.wait_for(lambda p, m: p.src == "10.0.1.1" and any(
        r.group == group and source in r.sources for r in getattr(m, "records", ())), 5)
    assert report.version == 3
    upstream = proxy.status()["upstreams"]["u1"]["groups"]["232.1.0.7"]
    assert (upstream["mode"], upstream["sources"]) == ("include", ["10.0.1.2"])
    rx.leave("232.1.0.7")
    wait_until(lambda: not proxy.joined("232.1.0.7"), 5)
