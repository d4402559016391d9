"""Upstream failover under a steady stream, for real, in IPv4 and IPv6.

A redundant headend sends one channel, numbered, at 1,000 packets/s into both providers from
the same source (``proxy_lab(headend=True)``), so the proxy sees the same (S, G) on u1 and on
u2; sub1 joins it any-source (239.1.1.1 / ff1e::1:1: not SSM ranges)::

                    headend 10.0.9.1 / fd00:9::1 (one stream, two outputs)
                      /                                   \\
      prov1 eth0 (carrier loss: taken down here)     prov2 eth0
              |                                           |
              u1 ------------------- proxy --------------- u2
                                       d1
                                        |
                                  [ lan1 ] -- sub1 (receiver)

At the subscriber a duplicate is a sequence number received twice, a loss one never
received, and the outage the longest silence around the failure (``mcastproxy.lab.stream``).
Which upstream feeds d1 is read from the daemon's status (its routes). The bounds asserted
are generous; ``bench/bench_failover.py`` measures the outages precisely, many times over.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from running_proxy import Proxy

from mcastproxy.lab import HeadendOutput, JoinMode, topologies, wait_until
from mcastproxy.lab.headend import Headend
from mcastproxy.lab.receiver import Receiver
from mcastproxy.lab.stream import Arrival, Outage, duplicates, outage
from mcastproxy.lab.topologies import HEADEND_SOURCE
from mcastproxy.wire.messages import RecordType

pytestmark = pytest.mark.netns

RATE = 1000
MS = 1_000_000
PROVIDER = {"u1": "prov1", "u2": "prov2"}


@dataclass(frozen=True)
class Fam:
    v: int
    asm: JoinMode
    group: str


FAMS = {4: Fam(4, JoinMode.IGMPV3_ASM, "239.1.1.1"), 6: Fam(6, JoinMode.MLDV2_ASM, "ff1e::1:1")}


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def config(*upstream: str, u1: str = "", u2: str = "") -> str:
    """The proxy with d1 and d2 downstream; ``upstream`` settings; u1 and u2 candidates with
    settings of their own (``u1=", priority: 10"``)."""
    settings = "".join(f"  {line}\n" for line in upstream)
    return f"""
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
{settings}  candidates:
    - {{interface: u1{u1}}}
    - {{interface: u2{u2}}}
"""


DATA = ", liveness: {link: true, data: 100ms}"
ROBUST = config("hold-down: 1s")
ROBUST_DATA = config("hold-down: 1s", u1=DATA, u2=DATA)
PRIORITIES = config("hold-down: 1s", u1=", priority: 10", u2=", priority: 5")
NO_TAKEOVER = config("takeover: false", "hold-down: 1s", u1=", priority: 10", u2=", priority: 5")


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


def test_robust_reception_survives_the_feeders_carrier_loss(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(ROBUST, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    # Equal priorities: both upstreams are joined, one feeds, the other is hot standby.
    for prov in ("prov1", "prov2"):
        proxy.wait_report(prov, fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    feeder = s.feeder()
    t0 = time.monotonic_ns()
    time.sleep(2.0)  # steady state, both providers delivering
    steady = s.outage(t0)
    assert steady.duplicates == 0
    assert gap_ms(steady) < 100, steady
    s.no_duplicates()
    # The feeding upstream loses carrier: the standby feeds at once.
    t = time.monotonic_ns()
    proxy.lab.set_link(PROVIDER[feeder], "eth0", up=False)
    other = ({"u1", "u2"} - {feeder}).pop()
    s.fed_by(other)
    s.receiving_after(t)
    o = s.outage(t - 50 * MS)
    # A swap of routes: milliseconds (bench/bench_failover.py measures it).
    assert gap_ms(o) < 1000, o
    assert o.duplicates == 0
    s.no_duplicates()


def test_silent_provider_is_replaced_by_the_hot_standby(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(ROBUST_DATA, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    feeder = s.feeder()
    time.sleep(0.5)
    # The feeding provider falls silent (its link stays up); the other still sends.
    paused = s.headend.pause(PROVIDER[feeder])
    other = ({"u1", "u2"} - {feeder}).pop()
    s.fed_by(other)
    s.receiving_after(paused["time_ns"])
    o = s.outage(paused["time_ns"] - 50 * MS)
    assert gap_ms(o) < 1000, o  # 100 ms of silence, sampled every 25 ms
    assert o.duplicates == 0
    assert "is dead: no packet for" in proxy.daemon.output()
    # `mcastproxy status` shows the dead route, now a standby, and counts the event.
    text = proxy.lab.run("proxy", sys.executable, "-m", "mcastproxy", "status", "--socket",
                         str(proxy.status_socket))
    assert f"{feeder} -> (standby) [data dead]" in text, text
    assert f"{other} -> d1 [data delivering]" in text, text
    assert "channel dead 1" in text, text
    # The provider comes back: robust reception keeps the feed where it is, no duplicates.
    resumed = s.headend.resume(PROVIDER[feeder])
    time.sleep(1.5)  # past the 1 s hold-down of a returning channel
    assert s.feeder() == other
    back = s.outage(resumed["time_ns"])
    assert gap_ms(back) < 100, back
    assert back.duplicates == 0
    s.no_duplicates()


def test_priorities_take_over_by_joining_and_take_back_after_the_hold_down(
    proxy_with: Callable[..., Proxy], fam: Fam
) -> None:
    proxy = proxy_with(PRIORITIES, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    assert s.feeder() == "u1"
    assert proxy.reports("prov2", fam) == []  # no standby: u2 is not joined
    t = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=False)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.group)
    s.fed_by("u2")
    s.receiving_after(t)
    o = s.outage(t - 50 * MS)
    assert gap_ms(o) < 1000, o
    assert o.duplicates == 0
    # u1 is back: after the 1 s hold-down it takes the channel back, with no duplicate.
    t_up = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=True)
    took_back = s.fed_by("u1")
    assert took_back - t_up >= 0.9e9, "u1 took the channel back before its hold-down"
    s.receiving_after(took_back)
    back = s.outage(t_up)
    assert gap_ms(back) < 1000, back
    assert back.duplicates == 0
    s.no_duplicates()


def test_takeover_off_nothing_moves(proxy_with: Callable[..., Proxy], fam: Fam) -> None:
    proxy = proxy_with(NO_TAKEOVER, topologies.proxy_lab(headend=True))
    s = Stream(proxy, fam)
    assert s.feeder() == "u1"
    t_down = time.monotonic_ns()
    proxy.lab.set_link("prov1", "eth0", up=False)
    time.sleep(1.5)  # nothing may happen: let time pass to see that it does not
    t_up = time.monotonic_ns()
    assert proxy.reports("prov2", fam) == []  # u2 was not asked
    assert proxy.feeders(fam.group) <= {"u1"}
    during = [a for a in s.arrivals() if t_down + 100 * MS < a.time_ns < t_up]
    assert during == [], "the channel reached the subscriber while its upstream was down"
    # u1 is back: the channel with it.
    proxy.lab.set_link("prov1", "eth0", up=True)
    s.receiving_after(t_up, timeout=10)
    assert s.feeder() == "u1"
    assert proxy.reports("prov2", fam) == []
    s.no_duplicates()
