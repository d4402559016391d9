"""A redundant headend's numbered stream through the proxy, as the failover scenarios watch it.

A headend sends one channel, numbered, at 1,000 packets/s into both providers from the same
source (``proxy_lab(headend=True)``), so the proxy sees the same (S, G) on u1 and on u2;
sub1 joins it any-source (239.1.1.1 / ff1e::1:1: not SSM ranges). At the subscriber a
duplicate is a sequence number received twice, a loss one never received, and the outage
the longest silence around the failure (``mcastlab.stream``). Which upstream feeds d1 is
read from the daemon's status (its routes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from running_proxy import Proxy

from mcastlab import HeadendOutput, JoinMode, wait_until
from mcastlab.headend import Headend
from mcastlab.receiver import Receiver
from mcastlab.stream import Arrival, Outage, duplicates, outage
from mcastlab.topologies import HEADEND_SOURCE

RATE = 1000
MS = 1_000_000
PROVIDER = {"u1": "prov1", "u2": "prov2"}


@dataclass(frozen=True)
class Fam:
    v: int
    asm: JoinMode
    group: str


FAMS = {4: Fam(4, JoinMode.IGMPV3_ASM, "239.1.1.1"), 6: Fam(6, JoinMode.MLDV2_ASM, "ff1e::1:1")}


def gap_ms(o: Outage) -> float:
    """The outage's longest silence in ms (there were packets around it)."""
    assert o.ms is not None, "no packets around the failure"
    return o.ms


class Stream:
    """The proxy with the headend sending the channel into both providers, sub1 watching."""

    def __init__(self, proxy: Proxy, fam: Fam) -> None:
        self.proxy = proxy
        self.fam = fam
        self.rx: Receiver = proxy.lab.receiver("sub1", "eth0")
        self.rx.join(fam.asm, fam.group)
        src = HEADEND_SOURCE[fam.v]
        self.headend: Headend = proxy.lab.headend(
            [HeadendOutput(p, "eth0", fam.group, src) for p in ("prov1", "prov2")],
            rate=RATE, count=60 * RATE)
        self.rx.wait_packets(100, 10, group=fam.group)

    def arrivals(self) -> list[Arrival]:
        return [Arrival(p.seq, p.time_ns) for p in self.rx.packets(self.fam.group)
                if p.seq is not None]

    def feeder(self, timeout: float = 5.0) -> str:
        """The one upstream feeding d1 (waiting until there is exactly one)."""
        found: set[str] = set()

        def one() -> bool:
            found.clear()
            found.update(self.proxy.feeders(self.fam.group))
            return len(found) == 1

        wait_until(one, timeout, 0.02, message=lambda: f"feeders of d1: {found}")
        return found.pop()

    def fed_by(self, upstream: str, timeout: float = 5.0) -> int:
        """Wait until ``upstream`` alone feeds d1; when it was seen to (monotonic ns)."""
        wait_until(lambda: self.proxy.feeders(self.fam.group) == {upstream}, timeout, 0.02,
                   message=lambda: f"d1 is fed by {self.proxy.feeders(self.fam.group)}, "
                                   f"not {upstream}")
        return time.monotonic_ns()

    def receiving_after(self, t_ns: int, timeout: float = 5.0) -> None:
        """Wait until packets arrive again, 300 ms of them, after ``t_ns``."""
        wait_until(lambda: sum(a.time_ns > t_ns for a in self.arrivals()) >= 0.3 * RATE,
                   timeout, message="the subscriber does not receive the channel again")

    def outage(self, start_ns: int, end_ns: int | None = None) -> Outage:
        return outage(self.arrivals(), start_ns, end_ns or time.monotonic_ns())

    def no_duplicates(self) -> None:
        assert duplicates(self.arrivals()) == {}, "a packet reached the subscriber twice"
