"""Reports sent upstream: packets and bytes per join burst and per General Query.

Run: .venv/bin/python bench/bench_reports.py [--groups N ...] [--family 4|6]

One downstream link, one upstream. A subscriber joins N groups (any-source joins, TO_EX({}))
in as few reports as its link's MTU allows; the engine reports the merge upstream at once
and retransmits it (Robustness 2: one more transmission within the Unsolicited Report
Interval). Then the upstream querier sends a General Query and the engine answers it within
Max Resp Time. Every figure counts what the engine sent on the upstream: packets, and bytes
of the IP packets (IPv4 header with Router Alert, 24 octets; IPv6 header with the Hop-by-Hop
Router Alert, 48 octets; then the IGMP / MLD message).

The least a host can send (RFC 9776 §4.2.16, RFC 9777 §5.2.15: records packed up to the
MTU): N / 183 IGMPv3 reports (1500 - 24 - 8 octets of 8-octet records), N / 61 MLDv2
reports (1280 - 48 - 8 octets of 20-octet records: the upstream's MTU is taken to be the
IPv6 minimum unless told otherwise). The records of one event go out at once, packed: the
subscriber's reports are sized for an Ethernet MTU (183 IGMPv3 records, 72 MLDv2 ones), so
each MLDv2 report in becomes two out (61 + 11 records) at the join; the retransmission and
the answer, which gather every group, reach the least.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mcastproxy.actions import SendPacket
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, PacketReceived, TimerExpired
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}]
upstream:
  candidates: [{interface: u1}]
policy:  # one subscriber joins N groups here: the limits are not under test
  max-groups-per-interface: unlimited
  subscriber: {max-groups: unlimited}
  report-rate: {subscriber: unlimited, link: unlimited}
"""
ADDRS = {
    "u1": (bytes((192, 0, 2, 1)), bytes.fromhex("fe800000000000000000000000010001")),
    "d1": (bytes((10, 1, 0, 1)), bytes.fromhex("fe800000000000000000000000d10001")),
}
ROUTER = {4: bytes((192, 0, 2, 2)), 6: bytes.fromhex("fe800000000000000000000000010002")}
HOST = {4: bytes((10, 1, 0, 7)), 6: bytes.fromhex("fe800000000000000000000000d10007")}
V3_ROUTERS = {4: bytes((224, 0, 0, 22)), 6: bytes.fromhex("ff020000000000000000000000000016")}
ALL_SYSTEMS = {4: bytes((224, 0, 0, 1)), 6: bytes.fromhex("ff020000000000000000000000000001")}
IP_HEADER = {4: 20 + 4, 6: 40 + 8}  # with Router Alert
DOWNSTREAM_MTU = 1500
LEAST = {4: (1500 - 24 - 8) // 8, 6: (1280 - 48 - 8) // 20}  # records per report at best


def group(family: int, i: int) -> bytes:
    if family == 4:
        return (0xEF000000 + 0x10000 + i).to_bytes(4)  # 239.1.0.0 and up
    return bytes.fromhex("ff1e0000000000000000000000") + (0x10000 + i).to_bytes(3)


def join_burst(family: int, groups: int) -> list[PacketReceived]:
    """One subscriber's reports joining ``groups`` groups, each report as full as fits."""
    record_size = 8 if family == 4 else 20
    per_report = (DOWNSTREAM_MTU - IP_HEADER[family] - 8) // record_size
    host, dst = HOST[family], V3_ROUTERS[family]
    events = []
    for start in range(0, groups, per_report):
        records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, group(family, i))
                        for i in range(start, min(groups, start + per_report)))
        report = Report(3 if family == 4 else 2, records)
        payload = build_igmp(report) if family == 4 else build_mld(report, host, dst)
        events.append(PacketReceived("d1", family, host, dst, payload))
    return events


def general_query(family: int) -> PacketReceived:
    query = Query(3 if family == 4 else 2, bytes(4 if family == 4 else 16), 10.0, qrv=2,
                  qqi=125)
    src, dst = ROUTER[family], ALL_SYSTEMS[family]
    payload = build_igmp(query) if family == 4 else build_mld(query, src, dst)
    return PacketReceived("u1", family, src, dst, payload)


class Upstream:
    """What the engine sent on u1, counted."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.packets = 0
        self.bytes = 0

    def take(self, actions: list[object]) -> None:
        for a in actions:
            if isinstance(a, SendPacket) and a.interface == "u1":
                self.packets += 1
                self.bytes += IP_HEADER[self.family] + len(a.payload)

    def reset(self) -> tuple[int, int]:
        figures = (self.packets, self.bytes)
        self.packets = self.bytes = 0
        return figures


def run_timers(engine: Engine, now: float, end: float, up: Upstream) -> float:
    while (deadline := engine.next_deadline()) is not None and deadline <= end:
        now = max(now, deadline)
        engine.handle(TimerExpired(), now)
        up.take(engine.pop_actions())
    return end


def bench(family: int, groups: int) -> None:
    name = "IGMPv3" if family == 4 else "MLDv2"
    engine = Engine(parse_config(CONFIG), rng=lambda: 0.5)
    for iface, addrs in ADDRS.items():
        engine.handle(InterfaceUp(iface, addrs), 0.0)
    engine.pop_actions()
    up = Upstream(family)
    burst = join_burst(family, groups)
    t0 = time.perf_counter()
    for ev in burst:
        engine.handle(ev, 1.0)
        up.take(engine.pop_actions())
    took = time.perf_counter() - t0
    at_once = up.reset()
    run_timers(engine, 1.0, 5.0, up)  # the retransmission, within 1 s
    again = up.reset()
    engine.handle(general_query(family), 10.0)
    up.take(engine.pop_actions())
    run_timers(engine, 10.0, 21.0, up)  # the answer, within Max Resp Time (10 s)
    answer = up.reset()
    least = -(-groups // LEAST[family])
    print(f"{name} {groups:>7,} groups ({len(burst):,} reports in, {took:.2f} s): "
          f"join burst {at_once[0]:,} packets / {at_once[1]:,} B, "
          f"retransmission {again[0]:,} / {again[1]:,} B; "
          f"General Query {answer[0]:,} packets / {answer[1]:,} B "
          f"(fewest possible per transmission: {least:,})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, action="append")
    parser.add_argument("--family", type=int, choices=(4, 6), action="append")
    args = parser.parse_args()
    for family in args.family or (4, 6):
        for groups in args.groups or (1_000, 10_000, 100_000):
            bench(family, groups)


if __name__ == "__main__":
    main()
