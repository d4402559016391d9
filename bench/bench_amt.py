"""AMT gateway decapsulation: Multicast Data messages per second on one core, in process.

Run: .venv/bin/python bench/bench_amt.py   (about 10 s)

The target (issue 17) is 100,000 packets per second decapsulated, about a hundred HD channels
of 7 x 188-octet MPEG-TS packets per datagram. Each figure is the best of 3 runs of about
1/3 s (time.perf_counter); every message carries a 1,316-octet UDP payload in IPv4 (1,344
octets of IP packet), or in IPv6 for the last line. The lines:

- codec: ``parse_amt`` (the general decoder) and ``parse_multicast_data`` (the data path's);
- gateway: ``Gateway.receive`` (source and port checked, the codec, the packet's family and
  multicast destination checked, counted, queued), with ``pop_packets`` every 64 packets as
  the transport drains them per wake-up; then the same through ``handle(DatagramReceived)``,
  which makes an event object per datagram;
- context: copying the packet out of the datagram alone (the one copy decapsulation makes).

Not measured here: the socket read and the TUN write of the transport (two system calls per
packet, several microseconds each), which bound the daemon's rate before the gateway does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab" / "src"))

from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.events import DatagramReceived, MembershipChanged, Start
from mcastproxy.amt.gateway import Gateway
from mcastproxy.amt.inner import query_packet
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    MembershipQuery,
    MulticastData,
    build_amt,
    parse_amt,
    parse_multicast_data,
)
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

TARGET = 100_000
RUN_SECONDS = 0.33
PAYLOAD = bytes(7 * 188)
RELAY = bytes([10, 30, 2, 2])
BATCH = 64


def rate(function: Callable[..., Any], *args: Any, per_call: int = 1) -> float:
    """Items per second (``per_call`` items each call): best of 3 runs of ~RUN_SECONDS."""
    number = 1
    while True:  # calibrate
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        number *= 4
    number = max(1, int(number * RUN_SECONDS / elapsed))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        best = min(best, time.perf_counter() - start)
    return number * per_call / best


def line(label: str, per_second: float) -> None:
    print(f"{label:<52} {per_second:>11,.0f}/s  ({1e6 / per_second:6.2f} µs)")


def established_gateway(family: Family) -> Gateway:
    """A gateway with its tunnel up, joined to the channel the data is of."""
    nonces = iter(range(1, 1 << 20))
    gateway = Gateway(family, RELAY, nonce=lambda: next(nonces), discover=False)
    gateway.handle(Start(), 0.0)
    source, group = CHANNELS[family]
    record = GroupRecord(RecordType.MODE_IS_INCLUDE, group, (source,))
    gateway.handle(MembershipChanged((Report(family.newest_version, (record,)),)), 0.0)
    general = Query(family.newest_version, family.unspecified, 10.0, qrv=2, qqi=125)
    packet = query_packet(family, bytes(family.length), general)
    query = build_amt(MembershipQuery(1, 1, packet, False, 40000, bytes(16)))
    gateway.receive(RELAY, AMT_PORT, query, 0.0)
    gateway.pop_actions()
    assert gateway.status().tunnel is not None
    return gateway


CHANNELS = {
    Family.V4: (bytes([10, 0, 9, 1]), bytes([232, 1, 1, 1])),
    Family.V6: (bytes.fromhex("fd000009000000000000000000000001"),
                bytes.fromhex("ff3e0000000000000000000080000001")),
}  # fmt: skip


def message(family: Family) -> bytes:
    source, group = CHANNELS[family]
    return build_amt(MulticastData(udp_packet(source, group, 5001, PAYLOAD)))


def receive_batch(gateway: Gateway, data: bytes) -> None:
    receive = gateway.receive
    for _ in range(BATCH):
        receive(RELAY, AMT_PORT, data, 1.0)
    assert len(gateway.pop_packets()) == BATCH


def handle_batch(gateway: Gateway, data: bytes) -> None:
    handle = gateway.handle
    for _ in range(BATCH):
        handle(DatagramReceived(RELAY, AMT_PORT, data), 1.0)
    assert len(gateway.pop_packets()) == BATCH


def main() -> None:
    data4, data6 = message(Family.V4), message(Family.V6)
    g4, g6 = established_gateway(Family.V4), established_gateway(Family.V6)
    print(f"Python {sys.version.split()[0]}; one core; best of 3 runs of ~{RUN_SECONDS} s; "
          f"{len(data4)}-octet AMT messages (IPv4 inside), {len(data6)} (IPv6)")
    line("codec: parse_amt, Multicast Data", rate(parse_amt, data4))
    line("codec: parse_multicast_data", rate(parse_multicast_data, data4))
    gateway_rate = rate(receive_batch, g4, data4, per_call=BATCH)
    line("gateway: receive + pop_packets, IPv4 inside", gateway_rate)
    line("gateway: handle(DatagramReceived) + pop_packets", rate(handle_batch, g4, data4,
                                                                   per_call=BATCH))
    line("gateway: receive + pop_packets, IPv6 inside", rate(receive_batch, g6, data6,
                                                              per_call=BATCH))
    line("context: the packet's copy alone (data[2:])", rate(lambda d: d[2:], data4))
    assert g4.dropped.by_reason() == {}
    assert g6.dropped.by_reason() == {}
    verdict = "met" if gateway_rate >= TARGET else "not met"
    print(f"target >= {TARGET:,}/s (gateway receive, IPv4 inside): {verdict} "
          f"({gateway_rate:,.0f}/s, {gateway_rate / TARGET:.1f}x)")


if __name__ == "__main__":
    main()
