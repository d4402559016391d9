"""A real Prometheus server scrapes the proxy (Debian's ``prometheus``, started by the test with
a 1 s scrape interval in the proxy's namespace), and what it stores matches what was sent:
drops by interface and reason, groups with members per link, upstream usability.

Runs on any kernel (``mcastlab.recorded`` where the kernel has no multicast routing): the
metrics are about what the proxy hears and decides.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from forged import TO_EX, igmpv3_report

from mcastlab import Lab, topologies, wait_until
from mcastlab.prometheus import available
from mcastlab.proxy import best_forwarding

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not available(), reason="needs prometheus (Debian package)")]

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates: [{interface: u1}, {interface: u2}]
metrics: {listen: "127.0.0.1:9105"}
"""


def test_prometheus_stores_what_the_proxy_was_sent(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(topologies.proxy_lab())
    proxy = lab.proxy(CONFIG, forwarding=best_forwarding())
    prom = lab.prometheus("proxy", ["127.0.0.1:9105"])
    wait_until(prom.targets_up, 20, message=lambda: f"targets: {prom.query('up')}")

    joins = [igmpv3_report("10.1.1.11", [(TO_EX, f"239.5.0.{i}", ())]) for i in range(1, 8)]
    bad_ttl = [igmpv3_report("10.1.1.12", [(TO_EX, "239.5.1.1", ())], ttl=64)] * 5
    lab.inject("sub1", "eth0", joins + bad_ttl)
    lab.inject("sub3", "eth0", [igmpv3_report("10.1.2.13", [(TO_EX, "239.5.2.1", ())])])
    lab.set_link("prov2", "eth0", up=False)  # u2 loses its carrier: unusable

    def stored() -> bool:
        ttl = prom.query('mcastproxy_drops_total{interface="d1",reason="ttl-not-one"}')
        groups = prom.query("mcastproxy_memberships")
        usable = prom.query("mcastproxy_upstream_usable")
        return (list(ttl.values()) == [5.0]
                and groups.get((("instance", "127.0.0.1:9105"), ("job", "mcastproxy"),
                                ("link", "d1"))) == 7.0
                and sorted(usable.values()) == [0.0, 1.0])

    wait_until(stored, 20, message=lambda: (
        f"drops {prom.query('mcastproxy_drops_total')}, groups "
        f"{prom.query('mcastproxy_memberships')}, usable "
        f"{prom.query('mcastproxy_upstream_usable')}"))
    assert list(prom.query('mcastproxy_memberships{link="d2"}').values()) == [1.0]
    by_upstream = {dict(k)["upstream"]: v
                   for k, v in prom.query("mcastproxy_upstream_usable").items()}
    assert by_upstream == {"u1": 1.0, "u2": 0.0}
    assert proxy.running
