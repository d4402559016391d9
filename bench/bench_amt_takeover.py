"""Takeover outage from native to AMT, in network namespaces: from the native upstream's failure
to the channel's first Multicast Data decapsulated into the AMT upstream's TUN.

Run (as root): .venv/bin/python bench/bench_amt_takeover.py [--trials N] [--family 4|6]

The lab is ``amt_topologies.amt_proxy_lab(native=True)``: the proxy (``mcastlab.recorded``:
this kernel routes no multicast, so the native data is what the test says arrived on u1,
``mcastlab.recorded.DataFeed``, 2 packets every 20 ms) with u1 first (priority 10; liveness:
its link, and data within ``DATA`` per channel) and amt1 the takeover (priority 0), the lab
relay two unicast hops away over IPv4 streaming the channel at ``RATE`` packets/s (its
query interval 1 s, so amt1 is usable before the failure). One channel is joined on d1 and
flows on u1; then, each trial:

- link down: t0 just before prov1's end of the u1 link is set down (carrier loss, seen by
  the proxy through netlink);
- silence: t0 when the feed stops adding u1's packets (the link stays up; the recorded
  router reads the data file every 20 ms, the proxy samples the route counters four times
  per ``DATA``, and declares the channel dead after ``DATA`` without a packet);

to the first packet of the channel entering amt1 (an AF_PACKET socket on amt1 in the
proxy's namespace, its arrival on CLOCK_MONOTONIC, one clock for every namespace): the
proxy's decision, its report out of the TUN, the Membership Update, the relay's Request
exchange if the tunnel was down, the relay's wait for the stream's next packet (up to
1/RATE), and the way back. Not in it: the kernel forwarding that packet to d1 (no multicast
routing here; with it, one more lookup in the TUN's table). After each trial the failure is
undone and the channel waits on u1 again (the 500 ms hold-down) before the next.

Median and p99 (with few trials, p99 is about the max) of N trials per mode (20 by default).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab" / "src"))

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import RELAY, amt_proxy_lab
from mcastlab.headend import in_namespace
from mcastlab.recorded import DataFeed

RATE = 1000  # packets/s of the channel at the relay
DATA = "100ms"  # u1's per-channel data liveness
ETH_P_ALL = 0x0003
CHANNEL = {4: ("10.0.9.1", "232.1.1.1"), 6: ("fd00:9::1", "ff3e::8000:1")}
CONFIG = f"""
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1}}]
upstream:
  hold-down: 500ms
  candidates:
    - {{interface: u1, priority: 10, liveness: {{link: true, data: {DATA}}}}}
    - interface: amt1
      liveness: {{queries: true}}
      amt: {{relay: {RELAY[4]}}}
"""


class TunTap:
    """Arrival times (monotonic ns) of the UDP packets entering amt1 in the proxy's namespace."""

    def __init__(self, ns: str, iface: str) -> None:
        with in_namespace(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                      socket.htons(ETH_P_ALL))
            self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.times: list[int] = []
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
            v = data[0] >> 4 if data else 0
            if (v == 4 and len(data) >= 20 and data[9] == 17) or (
                    v == 6 and len(data) >= 40 and data[6] == 17):
                self.times.append(now)

    def first_after(self, t0: int) -> int | None:
        return next((t for t in self.times if t >= t0), None)

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        self.sock.close()


def relay_holds(relay, channel: tuple[str, str]) -> bool:  # type: ignore[no-untyped-def]
    answer = relay.command("tunnels")
    return any(list(channel) in t["channels"] for t in answer["tunnels"])


def figures(name: str, values_ms: list[float]) -> str:
    values = sorted(values_ms)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (f"{name:>10}: median {statistics.median(values):7.1f} ms   p99 {p99:7.1f} ms   "
            f"min {values[0]:7.1f} ms   ({len(values)} trials)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--family", type=int, choices=(4, 6), default=4)
    args = parser.parse_args()
    source, group = CHANNEL[args.family]
    results: dict[str, list[float]] = {"link down": [], "silence": []}
    with Lab(amt_proxy_lab(native=True)) as lab:
        relay = lab.python_json("relay", "mcastlab.amtrelay", "--address", RELAY[4], "--rate",
                                str(RATE), "--query-interval", "1", "--max-seconds", "1800",
                                "--stream", f"{source},{group}")
        assert relay.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)["event"] \
            == "ready"
        proxy = lab.proxy(CONFIG, forwarding="recorded")
        feed = DataFeed(proxy.config)
        tap = TunTap(lab.ns("proxy"), "amt1")
        try:
            feed.start("u1", source, group)
            wait_until(lambda: proxy.status()["upstreams"]["amt1"]["usable"], timeout=10)
            rx = lab.receiver("sub1", "eth0")
            rx.join(JoinMode.IGMPV3_SSM if args.family == 4 else JoinMode.MLDV2_SSM, group,
                    source)
            for _ in range(args.trials):
                for mode, outage in results.items():
                    wait_until(lambda: proxy.feeders(group) == {"u1"}
                               and not relay_holds(relay, (source, group)), timeout=15)
                    time.sleep(0.2)  # the route counters sampled with u1 delivering
                    t0 = time.monotonic_ns()
                    if mode == "link down":
                        lab.set_link("prov1", "eth0", up=False)
                    else:
                        feed.stop("u1")
                    wait_until(lambda t0=t0: tap.first_after(t0) is not None, timeout=10)
                    outage.append((tap.first_after(t0) - t0) / 1e6)  # type: ignore[operator]
                    if mode == "link down":
                        lab.set_link("prov1", "eth0", up=True)
                    feed.start("u1", source, group)
        finally:
            tap.close()
            feed.close()
    print(f"AMT takeover outage, native u1 to amt1 (inner IPv{args.family}, the relay over "
          f"IPv4, {RATE} packets/s, data liveness {DATA}): failure to the first packet "
          "decapsulated into the TUN")
    for mode, outage in results.items():
        print(figures(mode, outage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
