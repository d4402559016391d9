"""Join latency through an AMT upstream, in network namespaces: a report on the downstream link
to the Membership Update at the relay, and to the channel's first packet entering the TUN.

Run (as root): .venv/bin/python bench/bench_amt_join.py [--joins N] [--family 4|6]

The lab is ``amt_topologies.amt_proxy_lab()``: the proxy (``mcastlab.recorded``: this kernel
routes no multicast) with amt1 its only upstream, the lab relay (``mcastlab.amtrelay``) two
unicast hops away over IPv4, streaming one channel per join at ``RATE`` packets/s. Each join
is a State-Change Report (ALLOW (S) for a new SSM group; IGMPv3, or MLDv2 with ``--family 6``)
forged onto d1 from sub1 (``Lab.inject``), timed just before it is sent. Measured from there,
on CLOCK_MONOTONIC (one clock for every namespace):

- update: to the relay's event of the Membership Update holding the channel (its ``time_ns``,
  written when the relay had handled the datagram): the proxy's join, its report out of the
  TUN, the gateway reading it and sending the Update, one unicast path;
- first packet: to the channel's first packet written into the TUN (an AF_PACKET socket on
  amt1 in the proxy's namespace, its arrival on the loop's clock): that plus the relay's wait
  for the stream's next packet (up to 1/RATE) and the way back;
- d1 to update: as "update", from the report's arrival on d1 (an AF_PACKET socket on d1 in
  the proxy's namespace) rather than from before the injection: without the cost of
  ``Lab.inject`` (a namespace entered and a socket opened per call);
- in the proxy: from the report's arrival on d1 to the Membership Update leaving on the
  proxy's wan (AF_PACKET on both): the proxy's own part (its join, the report out of the TUN,
  the gateway), without the relay's, which is Python generating every channel's stream.

Joins are one at a time, each waited for; the relay's query interval is long (125 s), so no
query answer is mixed in. Median, p90 and max of N joins (50 by default).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab" / "src"))

from mcastlab import Lab, wait_until
from mcastlab.amt_topologies import RELAY, SUBSCRIBER, amt_proxy_lab
from mcastlab.headend import in_namespace
from mcastproxy.family import Family
from mcastproxy.wire.igmp import build_igmp
from mcastproxy.wire.ipv4 import build_ipv4
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

RATE = 200  # packets/s of each channel at the relay
ETH_P_ALL = 0x0003
CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1}]
upstream:
  candidates:
    - interface: amt1
      liveness: {queries: true}
      amt: {relay: 10.30.2.2}
"""


def channel(family: int, i: int) -> tuple[str, str]:
    if family == 4:
        return "10.0.9.1", f"232.1.{i // 250}.{i % 250 + 1}"
    return "fd00:9::1", f"ff3e::8000:{i + 1:x}"


def report(family: int, source: str, group: str) -> bytes:
    rec = GroupRecord(RecordType.ALLOW_NEW_SOURCES, ipaddress.ip_address(group).packed,
                      (ipaddress.ip_address(source).packed,))
    if family == 4:
        return build_ipv4(ipaddress.ip_address(SUBSCRIBER[4]).packed,
                          Family.V4.all_v3_routers, build_igmp(Report(3, (rec,))))
    from mcastproxy.amt.inner import report_packet  # noqa: PLC0415 - MLD in its IPv6 packet

    return report_packet(Family.V6, ipaddress.ip_address("fe80::ff:fe00:d111").packed,
                         Report(2, (rec,)))


class Tap:
    """Arrivals (monotonic ns) on ``iface`` of the proxy's namespace: the first of each
    group's UDP packet (``first``), and of each IGMP / MLD report (``reports``)."""

    def __init__(self, ns: str, iface: str, family: int) -> None:
        with in_namespace(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.family = family
        self.first: dict[str, int] = {}
        self.reports: list[int] = []
        self.updates: list[int] = []  # AMT Membership Updates leaving (on the wan, IPv4)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic_ns()
            if (len(data) >= 29 and data[0] == 0x45 and data[9] == 17
                    and data[22:24] == b"\x08\xdc" and data[28] == 5):  # to UDP 2268, type 5
                self.updates.append(now)
                continue
            if (self.family == 4 and len(data) >= 20 and data[9] == 2) or (
                    self.family == 6 and len(data) >= 48 and data[6] == 0 and data[48] == 143):
                self.reports.append(now)
                continue
            if self.family == 4 and len(data) >= 20 and data[9] == 17:
                group = socket.inet_ntoa(data[16:20])
            elif self.family == 6 and len(data) >= 40 and data[6] == 17:
                group = socket.inet_ntop(socket.AF_INET6, data[24:40])
            else:
                continue
            self.first.setdefault(group, now)

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        self.sock.close()


def figures(name: str, values_ms: list[float]) -> str:
    values = sorted(values_ms)
    p90 = values[max(0, int(len(values) * 0.9) - 1)]
    return (f"{name:>13}: median {statistics.median(values):7.2f} ms   p90 {p90:7.2f} ms   "
            f"max {values[-1]:7.2f} ms   ({len(values)} joins)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=50)
    parser.add_argument("--family", type=int, choices=(4, 6), default=4)
    args = parser.parse_args()
    fam = args.family
    with Lab(amt_proxy_lab()) as lab:
        streams = []
        for i in range(args.joins):
            streams += ["--stream", ",".join(channel(fam, i))]
        relay = lab.python_json("relay", "mcastlab.amtrelay", "--address", RELAY[4], "--rate",
                                str(RATE), "--query-interval", "125", "--max-seconds", "900",
                                *streams)
        assert relay.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)["event"] \
            == "ready"
        proxy = lab.proxy(CONFIG, forwarding="recorded")
        wait_until(lambda: proxy.status()["upstreams"]["amt1"]["usable"], timeout=10)
        tap = Tap(lab.ns("proxy"), "amt1", fam)
        d1 = Tap(lab.ns("proxy"), "d1", fam)
        wan = Tap(lab.ns("proxy"), "wan", fam)
        in_proxy: list[float] = []
        to_update: list[float] = []
        to_packet: list[float] = []
        from_d1: list[float] = []
        try:
            for i in range(args.joins):
                source, group = channel(fam, i)
                seen = len(relay.events())
                t0 = time.monotonic_ns()
                lab.inject("sub1", "eth0", [report(fam, source, group)])
                event = relay.wait_event(
                    lambda e, g=group: e.get("event") == "update"
                    and any(c[1] == g for c in e["channels"]), timeout=5, start=seen)
                to_update.append((event["time_ns"] - t0) / 1e6)
                wait_until(lambda g=group: g in tap.first, timeout=5)
                to_packet.append((tap.first[group] - t0) / 1e6)
                arrived = [t for t in d1.reports if t >= t0]
                sent = [t for t in wan.updates if t >= t0]
                if arrived:
                    from_d1.append((event["time_ns"] - arrived[0]) / 1e6)
                    if sent:
                        in_proxy.append((sent[0] - arrived[0]) / 1e6)
        finally:
            tap.close()
            d1.close()
            wan.close()
        print(f"AMT join latency, inner IPv{fam}, the relay over IPv4, {args.joins} joins, "
              f"channels at {RATE} packets/s:")
        print(figures("update", to_update))
        print(figures("first packet", to_packet))
        print(figures("d1 to update", from_d1))
        print(figures("in the proxy", in_proxy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
