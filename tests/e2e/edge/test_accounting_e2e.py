"""Accounting end to end (RFC 8313 §4.3.3, §4.6): a kernel host joins and leaves a channel
through the proxy with its routes recorded, data simulated on u1 (``mcastlab.recorded``'s data
file: upcalls and route counters as the kernel would give them); the session log gets the
session's lines with its bytes, status and ``mcastproxy accounting`` count them, and a refused
join and a flood of garbage reach the security log, bounded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from forged import TO_EX, igmpv3_report

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.proxy import Proxy
from mcastlab.receiver import Receiver
from mcastlab.recorded import data_path
from mcastproxy import settlement

pytestmark = pytest.mark.netns


SOURCE, GROUP = "10.0.1.2", "232.1.0.5"


def config(logs: Path) -> str:
    return f"""
igmp: {{version: 3}}
policy:
  group-policy: [{{action: deny, group: 239.255.0.0/16}}]
downstream: [{{interface: d1, fast-leave: true}}]
upstream: {{candidates: [{{interface: u1}}]}}
accounting:
  session-log: {logs / "sessions.log"}
  security-log: {logs / "security.log"}
  sample-interval: 100ms
"""


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def flows(path: Path, packets: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flows": [{"upstream": "u1", "source": SOURCE, "group": GROUP,
                                          "packets": packets, "bytes": 1316 * packets}]}))
    tmp.replace(path)  # whole or not at all, for the router's reader


def start(make_lab: Callable[..., Lab], logs: Path) -> tuple[Lab, Proxy, Receiver]:
    """The proxy lab, the proxy with accounting on (recorded routes), sub1 on GROUP, and the
    channel's data flowing on u1: 100 packets before the route, 150 after."""
    lab = make_lab(topologies.proxy_lab())
    proxy = lab.proxy(config(logs), forwarding="recorded")
    data = data_path(proxy.config)
    sub1 = lab.receiver("sub1", "eth0")
    sub1.join(JoinMode.IGMPV3_SSM, GROUP, SOURCE)
    wait_until(lambda: proxy.joined(GROUP) == {"u1"}, 5)
    flows(data, 100)  # the channel's first packets arrive on u1: an upcall, then a route
    wait_until(lambda: proxy.feeders(GROUP) == {"u1"}, 5)
    flows(data, 250)

    def delivered() -> dict[str, Any]:
        return dict((proxy.status().get("accounting") or {}).get("links", {}).get("d1", {}))

    # The route counts from when it was made, as a kernel entry does: 150 packets.
    wait_until(lambda: delivered().get("bytes") == 1316 * 150, 5,
               message=lambda: f"{proxy.status().get('accounting')}")
    return lab, proxy, sub1


def test_counters_reach_status_and_refusals_and_floods_the_security_log(
        make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab, proxy, sub1 = start(make_lab, tmp_path)
    acc = proxy.status()["accounting"]
    assert acc["upstreams"]["u1"] == {"packets": 150, "bytes": 1316 * 150}
    assert acc["channels"] == [{"upstream": "u1", "source": SOURCE, "group": GROUP,
                                "packets": 150, "bytes": 1316 * 150}]
    sub1.join(JoinMode.IGMPV3_ASM, "239.255.0.1")  # the policy denies it
    # A flood: 3,000 reports sent from afar (TTL 64) by one host, each dropped and counted:
    # beyond its report rate first, the rest for their TTL.
    forged = igmpv3_report("10.1.1.99", [(TO_EX, "239.1.0.9", [])], ttl=64)
    assert lab.inject("sub2", "eth0", [forged] * 3000) == 3000
    security = tmp_path / "security.log"

    def flooded() -> int:
        return sum(x["count"] for x in lines(security) if x["event"] == "drops"
                   and x["reason"] in ("ttl-not-one", "subscriber-rate", "link-rate"))

    wait_until(lambda: flooded() == 3000, 10, message=lambda: f"{lines(security)}")
    wait_until(lambda: any(x["event"] == "join-refused" for x in lines(security)), 5)
    refusal = next(x for x in lines(security) if x["event"] == "join-refused")
    assert refusal["subscriber"] == "10.1.1.11"
    assert refusal["group"] == "239.255.0.1"
    drops = [x for x in lines(security) if x["event"] == "drops"]
    assert len(drops) <= 30  # counts a second, not a line per packet
    proxy.stop()


def test_a_kernel_host_s_session_is_logged_and_summed(make_lab: Callable[..., Lab],
                                                      tmp_path: Path) -> None:
    _, proxy, sub1 = start(make_lab, tmp_path)
    sub1.leave(GROUP, SOURCE)
    wait_until(lambda: not proxy.feeders(GROUP), 5)
    sessions = tmp_path / "sessions.log"
    wait_until(lambda: any(x["event"] == "end" for x in lines(sessions)), 5,
               message=lambda: f"session log: {lines(sessions)}")
    end = next(x for x in lines(sessions) if x["event"] == "end")
    assert (end["link"], end["subscriber"], end["source"], end["group"]) == (
        "d1", "10.1.1.11", SOURCE, GROUP)
    assert end["upstream"] == ["u1"]
    # What the link was delivered of the channel during the session: every packet the route
    # counted, since the host joined before the first one.
    assert (end["packets"], end["bytes"]) == (150, 1316 * 150)
    assert end["zap-ms"] is not None
    proxy.stop()
    summary = settlement.summarize(settlement.log_files(sessions), by="subscriber")
    assert summary.rows["10.1.1.11"].bytes == 1316 * 150
    assert summary.skipped == 0
