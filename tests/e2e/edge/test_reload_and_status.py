"""What an operator's file or a busy status cannot do to a running proxy: a reload with a file
the loader or the kernel would refuse is refused whole, the proxy keeps its rules and serves
on; status at 50,000 groups does not hold up another subscriber's join; the status socket is
the owner's alone; a flood of spoofed queriers costs a few log lines."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable

import pytest
from edge_lab import drops
from forged import TO_EX, igmpv3_query, igmpv3_report

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.proxy import Proxy
from mcastproxy.drops import Drop
from mcastproxy.wire import build_igmp, build_ipv4
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

pytestmark = pytest.mark.netns

Edge = Callable[[str], tuple[Lab, Proxy]]

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates: [{interface: u1}]
policy:  # one host joins 50,000 groups here, in 274 reports at once
  max-groups-per-interface: unlimited
  subscriber: {max-groups: unlimited}
  report-rate: {subscriber: unlimited}
"""
BOMB = "a: &a [" + ",".join(["x"] * 9) + "]\n" + "".join(
    f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))

BAD_FILES: dict[str, bytes] = {
    "an interface name with a NUL": CONFIG.replace("{interface: d2}",
                                                   '{interface: "d2\\0x"}').encode(),
    "an interface name over 15 octets": CONFIG.replace("d2", "d2-far-too-long-a-name").encode(),
    "a YAML alias bomb": (CONFIG + BOMB).encode(),
    "bytes that are not UTF-8": CONFIG.encode() + b"\n# \xff\xfe\n",
    "a file cut short": CONFIG.encode()[:40],
}


@pytest.mark.parametrize("content", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_reload_the_loader_or_kernel_would_refuse_changes_nothing(
    edge: Edge, content: bytes,
) -> None:
    lab, proxy = edge(CONFIG)
    rx = lab.receiver("sub3", "eth0")
    rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
    wait_until(lambda: proxy.joined("239.1.1.1") == {"u1"}, 5)
    before = proxy.output().count("reload refused")
    proxy.config.write_bytes(content)
    proxy.daemon.popen.send_signal(1)  # SIGHUP
    wait_until(lambda: proxy.output().count("reload refused") > before, 10)
    assert "Traceback" not in proxy.output()
    # Both links still served by the running rules: d2's member stays, d1 takes a new join.
    lab.inject("sub1", "eth0", [igmpv3_report("10.1.1.11", [(TO_EX, "239.1.1.2", ())])])
    wait_until(lambda: proxy.joined("239.1.1.2") == {"u1"}, 5)
    assert proxy.joined("239.1.1.1") == {"u1"}
    assert set(proxy.status()["downstream"]) == {"d1/igmp", "d2/igmp"}


def test_status_at_50000_groups_does_not_hold_up_a_join(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    per = (1500 - 24 - 8) // 8
    groups = [((239 << 24) | (20 << 16) | i).to_bytes(4) for i in range(50_000)]
    reports = [build_ipv4(bytes((10, 1, 1, 11)), bytes((224, 0, 0, 22)), build_igmp(Report(
        3, tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, g) for g in groups[i:i + per]))))
        for i in range(0, len(groups), per)]
    lab.inject("sub1", "eth0", reports)
    wait_until(lambda: len(proxy.status()["upstreams"]["u1"]["groups"]) >= 50_000, 60,
               interval=1.0)
    cap = lab.capture("prov1", "eth0")
    # Status asked for over and over, from another thread, while another subscriber joins.
    done = threading.Event()
    asked: list[tuple[int, int]] = []  # each status request: (sent, answered), ns

    def ask() -> None:
        while not done.is_set():
            t = time.time_ns()
            proxy.status()
            asked.append((t, time.time_ns()))

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    sent: dict[bytes, int] = {}
    mark = cap.mark()
    try:
        for i in range(1, 6):
            time.sleep(0.3)  # spread over the status answers being made and sent
            sent[bytes((239, 21, 0, i))] = time.time_ns()  # the capture's clock
            lab.inject("sub3", "eth0", [igmpv3_report("10.1.2.13", [(TO_EX, f"239.21.0.{i}",
                                                                      ())])])
        for group in sent:
            cap.wait_for(lambda p, m, group=group: p.src == "10.0.1.1" and any(
                r.group == group for r in getattr(m, "records", ())), 10, start=mark)
    finally:
        done.set()
        asker.join()
    # The joins came while status was being made and sent.
    assert sum(any(a <= t <= b for a, b in asked) for t in sent.values()) >= 3, (asked, sent)
    first = {}
    for p, m in cap.messages(mark):
        for r in getattr(m, "records", ()):
            if p.src == "10.0.1.1" and r.group in sent and r.group not in first:
                first[r.group] = p.kernel_ns or 0
    latencies = sorted((first[g] - sent[g]) / 1e6 for g in sent)
    # Each join went out while status answers were being made and sent: far below the
    # seconds a status built in one go took at this size (milliseconds).
    assert latencies[-1] < 500, (latencies, [(b - a) / 1e6 for a, b in asked])


def test_the_status_socket_is_the_owners_alone(edge: Edge) -> None:
    _, proxy = edge(CONFIG)
    mode = proxy.status_socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_five_hundred_spoofed_queriers_cost_a_few_log_lines(edge: Edge) -> None:
    lab, proxy = edge(CONFIG)
    spoofed = [igmpv3_query(f"10.1.{1 + i // 250}.{i % 250 + 2}") for i in range(500)]
    lab.inject("sub1", "eth0", spoofed)
    refused = Drop.QUERY_ON_ALWAYS_QUERIER_LINK.value
    wait_until(lambda: drops(proxy, "d1").get(refused) == 500, 10)
    lines = [line for line in proxy.output().splitlines() if "query-refused" in line
             or "dropped: the proxy is always querier" in line]
    assert 1 <= len(lines) <= 64
