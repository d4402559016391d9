"""Bandwidth and upstream admission end to end (README, "Bandwidth admission", "Upstream
admission"): kernel hosts join on d1 and d2; a link's budget refuses a channel while a
mandatory one is still admitted; with ``ties: share`` channels are spread over u1 and u2 within
their budgets and move to u2 when u1 goes down. What is joined is read at the upstreams'
side in status (``proxy.joined``), refusals in status by reason.

    prov1 -- u1 --+             +-- d1 -- sub1, sub2
                  +-- proxy ----+
    prov2 -- u2 --+             +-- d2 -- sub3
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from edge_lab import drops

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.proxy import Proxy
from mcastlab.recorded import data_path
from mcastproxy.drops import Drop

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]
SOURCE = "10.0.9.1"

TABLE = """
policy:
  bandwidth:
    channels:
      - {group: 232.1.9.9/32, rate: 1M, class: mandatory}
      - {group: 232.1.0.0/16, rate: 8M}
"""


def refused(proxy: Proxy, link: str, reason: Drop) -> int:
    return drops(proxy, link).get(reason.value, 0)


def test_a_link_budget_refuses_a_channel_and_admits_a_mandatory_one(edge: Edge) -> None:
    lab, proxy = edge("igmp: {version: 3}\n" + TABLE + """
downstream:
  - {interface: d1, policy: {max-bandwidth: 16M}}
  - {interface: d2}
upstream:
  candidates: [{interface: u1}]
""")
    sub1, sub2 = lab.receiver("sub1", "eth0"), lab.receiver("sub2", "eth0")
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.1", SOURCE)
    sub2.join(JoinMode.IGMPV3_SSM, "232.1.0.2", SOURCE)
    wait_until(lambda: proxy.joined("232.1.0.1") == proxy.joined("232.1.0.2") == {"u1"}, 5)
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.3", SOURCE)  # a third 8M channel: over 16M
    wait_until(lambda: refused(proxy, "d1", Drop.LINK_MAX_BANDWIDTH) >= 1, 5,
               message=lambda: str(drops(proxy, "d1")))
    assert not proxy.joined("232.1.0.3")
    sub2.join(JoinMode.IGMPV3_SSM, "232.1.9.9", SOURCE)  # mandatory: admitted over budget
    wait_until(lambda: proxy.joined("232.1.9.9") == {"u1"}, 5)
    # sub2 watches what sub1 watches: the link carries it already, nothing new to admit.
    sub2.join(JoinMode.IGMPV3_SSM, "232.1.0.1", SOURCE)
    wait_until(lambda: "10.1.1.12" in proxy.status()["downstream"]["d1/igmp"]["groups"][
        "232.1.0.1"]["subscribers"], 5)
    # d2 has no budget of its own.
    lab.receiver("sub3", "eth0").join(JoinMode.IGMPV3_SSM, "232.1.0.3", SOURCE)
    wait_until(lambda: proxy.joined("232.1.0.3") == {"u1"}, 5)
    # explain: the channel's rate and the budget, and --live the running proxy's counts.
    said = json.loads(lab.run(
        "proxy", sys.executable, "-m", "mcastproxy", "explain", "-c", str(proxy.config),
        "--link", "d1", "--subscriber", "10.1.1.11", "--source", SOURCE, "--group",
        "232.1.0.3", "--live", str(proxy.status_socket), "--json"))
    assert said["policy"]["d1"]["bandwidth"] == {
        "rate": 8_000_000, "class": "optional", "where": "policy.bandwidth.channels[1]"}
    assert {"scope": "link", "name": "max-bandwidth", "value": 16_000_000,
            "where": "downstream[0].policy.max-bandwidth"} in said["policy"]["d1"]["limits"]
    assert said["live"]["joined"] == ["u1"]
    assert said["live"]["links"]["d1/igmp"]["refused"][Drop.LINK_MAX_BANDWIDTH.value] >= 1
    # top: one frame of the same.
    frame = lab.run("proxy", sys.executable, "-m", "mcastproxy", "top", "--once", "--socket",
                    str(proxy.status_socket))
    assert "17Mbit/s of 16Mbit/s" in frame, frame  # a mandatory 1M over the 16M budget
    assert "232.1.9.9" in frame
    assert Drop.LINK_MAX_BANDWIDTH.value in frame


def test_shared_ties_spread_channels_within_budgets_and_move_on_takeover(edge: Edge) -> None:
    lab, proxy = edge("igmp: {version: 3}\n" + TABLE + """
downstream:
  - {interface: d1}
  - {interface: d2}
upstream:
  ties: share
  takeover: true
  candidates:
    - {interface: u1, max-bandwidth: 24M}
    - {interface: u2, max-bandwidth: 24M}
""")
    channels = [f"232.1.0.{i}" for i in range(1, 7)]  # 6 x 8M: 3 fit on each
    sub1, sub3 = lab.receiver("sub1", "eth0"), lab.receiver("sub3", "eth0")
    for g in channels:
        sub1.join(JoinMode.IGMPV3_SSM, g, SOURCE)
    wait_until(lambda: all(proxy.joined(g) for g in channels), 5)
    on = {g: proxy.joined(g) for g in channels}
    assert all(len(ups) == 1 for ups in on.values()), on  # one copy each, not both
    assert sum(ups == {"u1"} for ups in on.values()) == 3, on
    # A subscriber on another link of the same channels: the same upstreams, no new copy.
    for g in channels[:3]:
        sub3.join(JoinMode.IGMPV3_SSM, g, SOURCE)
    wait_until(lambda: all("10.1.2.13" in proxy.status()["downstream"]["d2/igmp"]["groups"]
                           .get(g, {}).get("subscribers", ()) for g in channels[:3]), 5)
    assert {g: proxy.joined(g) for g in channels} == on
    # Both full: a seventh optional channel is refused.
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.7", SOURCE)
    wait_until(lambda: refused(proxy, "d1", Drop.UPSTREAM_MAX_BANDWIDTH) >= 1, 5,
               message=lambda: str(drops(proxy, "d1")))
    assert not proxy.joined("232.1.0.7")
    # u1 goes down: its channels are placed on u2 (over its budget: service first).
    lab.set_link("proxy", "u1", up=False)
    wait_until(lambda: all(proxy.joined(g) == {"u2"} for g in channels), 10,
               message=lambda: str({g: proxy.joined(g) for g in channels}))


@contextmanager
def channels_flowing(path: Path, rates: dict[str, int]) -> Iterator[None]:
    """Data arriving on u1 at ``rates`` (group -> bits a second), told to the recorded
    router as totals (``mcastlab.recorded``) every 50 ms until the block ends."""
    stop = threading.Event()
    began = time.monotonic()

    def feed() -> None:
        while not stop.wait(0.05):
            elapsed = time.monotonic() - began
            flows = [{"upstream": "u1", "source": SOURCE, "group": g,
                      "packets": int(elapsed * bps / 8 / 1000), "bytes": int(elapsed * bps / 8)}
                     for g, bps in rates.items()]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"flows": flows}))
            tmp.replace(path)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_rates_are_learned_from_a_2_and_an_8_mbit_channel(
        make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(topologies.proxy_lab())
    proxy = lab.proxy("""
igmp: {version: 3}
policy:
  bandwidth: {learn: true, learn-margin: 0}
downstream:
  - {interface: d1, policy: {max-bandwidth: 100M}}
  - {interface: d2}
upstream:
  candidates: [{interface: u1}]
""", forwarding="recorded")  # the routes' counters are what the test says arrived
    sub1 = lab.receiver("sub1", "eth0")
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.2", SOURCE)
    sub1.join(JoinMode.IGMPV3_SSM, "232.1.0.8", SOURCE)
    wait_until(lambda: proxy.joined("232.1.0.2") == proxy.joined("232.1.0.8") == {"u1"}, 5)

    def used() -> int:
        adm = proxy.status()["downstream"]["d1/igmp"]["admission"]
        return int(adm.get("bandwidth-used", 0))

    assert used() == 0  # nothing measured yet
    with channels_flowing(data_path(proxy.config), {"232.1.0.2": 2_000_000,
                                                    "232.1.0.8": 8_000_000}):
        # A first sample, then a window of at least five seconds (meter.MEASURE_WINDOW).
        wait_until(lambda: used() > 0, 20, message=lambda: str(proxy.status()["downstream"]))
    # 10 Mbit/s, give or take the feeder's and the sampler's timing.
    assert 8_500_000 <= used() <= 11_500_000, used()
    # Status lists the learned rates, and explain --live gives the channel's.
    rates = {(r["source"], r["group"]): r["rate"] for r in proxy.status()["learning"]["rates"]}
    assert 1_700_000 <= rates[SOURCE, "232.1.0.2"] <= 2_300_000, rates
    said = json.loads(lab.run(
        "proxy", sys.executable, "-m", "mcastproxy", "explain", "-c", str(proxy.config),
        "--link", "d1", "--subscriber", "10.1.1.11", "--source", SOURCE, "--group",
        "232.1.0.8", "--live", str(proxy.status_socket), "--json"))
    assert 6_800_000 <= said["live"]["measured"] <= 9_200_000, said["live"]
