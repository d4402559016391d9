"""Another subscriber's join while one floods: the daemon through its real sockets, in a lab.

Run (as root): .venv/bin/python bench/bench_attack_wire.py [--joins N] [--rate PPS]
     [--only quiet|refresh|join-50k|spoofed-5k]

``bench_attack.py`` measures the engine alone; this measures what a subscriber sees: the
daemon (``mcastproxy run``, or ``mcastlab.recorded`` on a kernel without multicast routing:
the sockets, the loop and the engine are the same) on ``topologies.proxy_lab()``, an
attacker on d1 (sub1, sending forged IGMPv3 reports, ``Lab.inject``) and the victim, a real
kernel host on d2 (sub3), joining one new group after another with a socket.

The victim's join latency is the time from its report leaving sub3 to the proxy's report of
that group arriving at prov1: both kernel timestamps (``SO_TIMESTAMPNS``, one clock). Each
attack runs at ``--rate`` reports a second, every report as full as an Ethernet MTU allows
(183 group records), from a thread of this process, for as long as the victim's joins take:

- ``quiet``: no attack, the reference;
- ``refresh``: one host re-sending the same 183 groups (work without new state);
- ``join-50k``: one host joining 50,000 groups (274 reports, sent over and over);
- ``spoofed-5k``: 5,000 spoofed source addresses on d1, each joining the same 10 groups.

Printed per attack: the victim's median and 90th-percentile latency and their ratio to the
quiet figures (DESIGN.md's target: within 2x), joins that took longer than 1 s (a report lost
in an overflowing socket buffer waits for the host's retransmission), what the daemon counted
as dropped, its resident set and the CPU time it used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab" / "src"))

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.capture import Capture
from mcastlab.proxy import Proxy, best_forwarding
from mcastproxy.wire import build_igmp, build_ipv4
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates: [{interface: u1}]
"""
PER_REPORT = (1500 - 24 - 8) // 8  # group records without sources in one report: 183
ATTACKS = ("quiet", "refresh", "join-50k", "spoofed-5k")
TARGET_RATIO = 2.0


def report(src: bytes, groups: list[bytes]) -> bytes:
    records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, g) for g in groups)
    return build_ipv4(src, bytes((224, 0, 0, 22)), build_igmp(Report(3, records)))


def group(block: int, i: int) -> bytes:
    return ((239 << 24) | (block << 16) | i).to_bytes(4)


def attack_packets(attack: str) -> list[bytes]:
    sub1 = bytes((10, 1, 1, 11))
    if attack == "refresh":
        return [report(sub1, [group(10, i) for i in range(PER_REPORT)])]
    if attack == "join-50k":
        groups = [group(11, i) for i in range(50_000)]
        return [report(sub1, groups[i:i + PER_REPORT]) for i in range(0, len(groups), PER_REPORT)]
    if attack == "spoofed-5k":
        groups = [group(12, i) for i in range(10)]
        return [report(bytes((10, 1, 128 + i // 250, i % 250 + 1)), groups) for i in range(5000)]
    return []


class Flood(threading.Thread):
    """Sends ``packets`` round and round from sub1 at ``rate`` a second until stopped."""

    def __init__(self, lab: Lab, packets: list[bytes], rate: float) -> None:
        super().__init__(daemon=True)
        self.lab, self.packets, self.rate = lab, packets, rate
        self.sent = 0
        self.done = threading.Event()

    def run(self) -> None:
        if not self.packets:
            return
        start = time.monotonic()
        batch = max(1, int(self.rate / 100))  # every 10 ms
        while not self.done.is_set():
            due = int((time.monotonic() - start) * self.rate)
            if due <= self.sent:
                time.sleep(0.002)
                continue
            n = min(due - self.sent, batch)
            chunk = [self.packets[(self.sent + i) % len(self.packets)] for i in range(n)]
            self.sent += self.lab.inject("sub1", "eth0", chunk)


def proc_figures(pid: int) -> tuple[int, float]:
    """The daemon's resident set (bytes) and CPU time (s)."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def victim_joins(rx_cap: Capture, up_cap: Capture, rx: object, base: int, n: int) -> list[float]:
    """Latency (ms) of ``n`` joins of new groups 239.200.<base>.i by the victim."""
    out = []
    for i in range(1, n + 1):
        name = f"239.200.{base}.{i}"
        packed = bytes((239, 200, base, i))

        def has(m: object, packed: bytes = packed) -> bool:
            return isinstance(m, Report) and any(r.group == packed for r in m.records)

        m_rx, m_up = rx_cap.mark(), up_cap.mark()
        rx.join(JoinMode.IGMPV3_ASM, name)  # type: ignore[attr-defined]
        sent, _ = rx_cap.wait_for(lambda p, m, has=has: p.outgoing and has(m), 5, start=m_rx)
        got, _ = up_cap.wait_for(lambda p, m, has=has: p.src == "10.0.1.1" and has(m), 15,
                                 start=m_up)
        out.append(((got.kernel_ns or 0) - (sent.kernel_ns or 0)) / 1e6)
        rx.leave(name)  # type: ignore[attr-defined]
    return out


def run_attack(attack: str, joins: int, rate: float, base: int) -> dict[str, object]:
    with Lab(topologies.proxy_lab()) as lab:
        proxy: Proxy = lab.proxy(CONFIG, forwarding=best_forwarding())
        rx_cap, up_cap = lab.capture("sub3", "eth0"), lab.capture("prov1", "eth0")
        rx = lab.receiver("sub3", "eth0")
        rss0, cpu0 = proc_figures(proxy.pid)
        flood = Flood(lab, attack_packets(attack), rate)
        flood.start()
        t0 = time.monotonic()
        time.sleep(0.5 if flood.packets else 0)  # the flood under way before the first join
        try:
            lat = victim_joins(rx_cap, up_cap, rx, base, joins)
        finally:
            flood.done.set()
            flood.join()
        wall = time.monotonic() - t0
        rss1, cpu1 = proc_figures(proxy.pid)
        wait_until(lambda: proxy.status() is not None, 10)
        dropped = proxy.status()["dropped"]
        lat.sort()
        return {"attack": attack, "median": statistics.median(lat),
                "p90": lat[len(lat) * 9 // 10], "slow": sum(x > 1000 for x in lat),
                "sent": flood.sent, "rss_mb": rss1 / 2**20, "rss_grown_mb": (rss1 - rss0) / 2**20,
                "cpu": (cpu1 - cpu0) / wall, "dropped": sum(dropped.values()),
                "forwarding": proxy.forwarding}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--joins", type=int, default=40, help="victim joins per attack")
    ap.add_argument("--rate", type=float, default=1000.0, help="attack reports a second")
    ap.add_argument("--only", choices=ATTACKS, action="append")
    a = ap.parse_args()
    attacks = a.only or list(ATTACKS)
    if "quiet" not in attacks:
        attacks.insert(0, "quiet")
    results = [run_attack(x, a.joins, a.rate, i) for i, x in enumerate(attacks)]
    quiet = results[0]
    print(f"daemon: {quiet['forwarding']} forwarding; {a.joins} victim joins an attack, "
          f"attacks at {a.rate:.0f} reports/s of {PER_REPORT} records")
    print(f"{'attack':<11} {'median ms':>9} {'p90 ms':>7} {'x quiet':>7} {'>1s':>4} "
          f"{'sent':>7} {'dropped':>8} {'RSS MB':>7} {'+RSS':>6} {'CPU':>5}")
    for r in results:
        ratio = r["median"] / quiet["median"]  # type: ignore[operator]
        print(f"{r['attack']:<11} {r['median']:9.2f} {r['p90']:7.2f} {ratio:7.2f} "
              f"{r['slow']:4d} {r['sent']:7d} {r['dropped']:8d} {r['rss_mb']:7.1f} "
              f"{r['rss_grown_mb']:6.1f} {r['cpu']:5.0%}")
    worst = max(r["median"] / quiet["median"] for r in results)  # type: ignore[operator]
    print(f"worst median ratio {worst:.2f} (target <= {TARGET_RATIO:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
