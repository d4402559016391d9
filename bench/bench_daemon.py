"""The daemon in a lab of network namespaces: join, leave and zap latency, and reports per
second through real sockets, for mcastproxy (IGMPv3 and MLDv2) and igmpproxy (IGMPv3).

Run (as root): .venv/bin/python bench/bench_daemon.py [--quick] [--products mcastproxy,igmpproxy]
Targets (DESIGN.md): join median <= 1 ms; leave <= 5 ms (fast leave); zap onto a channel
already flowing median <= 2 ms, p99 <= 10 ms; >= 20,000 reports/s; faster than igmpproxy.

The lab is ``topologies.proxy_lab()``: prov1/prov2 -- u1/u2 -- proxy -- d1 (bridge lan1:
sub1, sub2) / d2 (sub3). Per product a fresh lab; in it (programs in bench/_daemon_lab.py):

- the proxy under test (``mcastproxy run``, fast leave on d1 and d2, u1 and u2 candidates
  selected by group; or ``igmpproxy`` with u1 upstream, d1/d2 downstream, u2 disabled);
- in the proxy's namespace, one tap: a single AF_PACKET socket on every interface, with the
  kernel's receive/transmit timestamps (SO_TIMESTAMPNS). A subscriber's report coming in on
  d1 and the proxy's report going out on u1 are stamped by the same clock, by the same
  kernel, on the way through the same socket: their difference is the proxy's latency,
  from the frame reaching d1 to the frame leaving u1, whatever the tap's own scheduling;
- in sub1, a reporter sending IGMPv3 / MLDv2 reports built with ``mcastproxy.wire`` as raw
  frames (any subscriber address), and a tap on eth0 (report out, first data packet in);
- in sub3, a reporter too (a channel another subscriber already watches, on d2);
- in prov1, an upstream router: for each group the proxy joins on u1 it sends a stream of
  packets at once, at the rate of the group's range, until the leave or a time limit.

Figures (each group a fresh one, so each join is a new upstream join):

1. join: report in on d1 -> first report out on u1 naming the group (TO_EX / IS_EX / ALLOW).
2. leave: TO_IN({}) in on d1 from the only subscriber -> TO_IN / BLOCK / Leave out on u1.
3a. zap, channel flowing: sub3 joins a channel on d2, the upstream sends it at 1,000
   packets/s, ~80 ms later sub1 reports it: sub1's report out -> the channel's first packet
   in, both on sub1's eth0 (its kernel's clock). Includes the wait for the next packet of a
   1,000/s stream (0-1 ms, 0.5 ms on average): printed apart as well.
3b. zap, channel not flowing: sub1 reports a channel nobody watches: the proxy joins
   upstream, the upstream router (a Python program, its reaction time printed apart) starts
   sending, the first packet meets no route (NOCACHE upcall), the proxy sets the route.
4. reports per second: the proxy restarted (so no step inherits the last one's state), 200
   fresh channels made to flow to d2 (sub3 joins them), then N single-record joins onto
   them from 100 subscriber addresses on d1 (group by group, so a d1 route changes every
   100 reports), offered at increasing rates, then a sentinel join of a group of its own.
   Rate = reports the proxy got / (first sent -> the sentinel's join out on u1): the
   socket is FIFO, so every report before it has been handled (routes included: both
   proxies set them before reading on). Losses counted at every step: sent, received by d1
   (link counters), dropped by raw sockets (/proc/net/raw* drops), and for mcastproxy the
   memberships its status shows afterwards; and the kernel routes that carry d1. The
   proxy's CPU time (/proc/PID/task/*/schedstat) over the same span gives its cost per
   report. At the top rate mcastproxy's leaves are timed the same way (fast leave).

Also: the floor of the method, the same joins through a minimal asyncio program (raw
socket in, a report out on u1, no proxy), and checks of the clocks (tap events in kernel
time order, no tap drops, a report seen leaving sub1 before it reaches the proxy).

The first joins of each figure are warm-up and not counted (10, 3 with --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# mcastproxy and its lab, from this checkout (installed or not).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab" / "src"))

from mcastlab import JsonProc, Lab, LabError, Proc, Proxy, configs, topologies, wait_until
from mcastlab.proxy import Forwarding, best_forwarding

HELPER = str(Path(__file__).resolve().parent / "_daemon_lab.py")
TO_IN, TO_EX, IS_IN, IS_EX, ALLOW, BLOCK = 3, 4, 1, 2, 5, 6
JOINS = (IS_EX, TO_EX, ALLOW)

MCASTPROXY_CONFIG = configs.WHOLESALE + """
policy:  # the blasts offer more than a link's built-in report rate: throughput is measured
  report-rate: {subscriber: unlimited, link: unlimited}
"""  # channels by group prefix: 239.1/16 u1, 239.2/16 u2
IGMPPROXY_CONFIG = """
phyint u1 upstream ratelimit 0 threshold 1
phyint d1 downstream ratelimit 0 threshold 1
phyint d2 downstream ratelimit 0 threshold 1
phyint u2 disabled
"""

# Group blocks of 4,096 groups each, per family: what each figure uses, and how the upstream
# router streams them (packets/s, seconds at most).
JOIN_BLOCK, ZAP_A_BLOCK, ZAP_B_BLOCK, BLAST_BLOCK, SENTINEL_BLOCK = 1, 2, 3, 4, 5
STREAMS = {ZAP_A_BLOCK: (1000, 0.16), ZAP_B_BLOCK: (1000, 0.1), BLAST_BLOCK: (2, 20)}


@dataclass(frozen=True)
class Fam:
    v: int
    sub1: str  # sub1's address (reports come from it)
    sub3: str
    key: str  # status key suffix

    def group(self, block: int, i: int) -> str:
        if not 0 <= i < 4096:
            raise ValueError(i)
        if self.v == 4:
            n = block * 4096 + i
            return f"239.1.{n >> 8}.{n & 0xFF}"
        return str(ipaddress.IPv6Address("ff1e::1:0") + block * 4096 + i)

    def block_prefix(self, block: int) -> str:
        if self.v == 4:
            return f"239.1.{block * 16}.0/20"
        return f"{ipaddress.IPv6Address('ff1e::1:0') + block * 4096}/116"

    def subscriber(self, i: int) -> str:
        """Blast subscriber i (0..99), on d1's link."""
        return f"10.1.1.{100 + i}" if self.v == 4 else f"fe80::b1a5:{i + 1:x}"


FAMS = {
    4: Fam(4, "10.1.1.11", "10.1.2.13", "igmp"),
    6: Fam(6, "fe80::ff:fe00:d111", "fe80::ff:fe00:d213", "mld"),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """Latencies in ms of one figure, with what was not measured and why."""

    values: list[float] = field(default_factory=list)
    missing: int = 0
    note: str = ""

    def add(self, ms: float | None) -> None:
        if ms is None:
            self.missing += 1
        else:
            self.values.append(ms)

    @property
    def n(self) -> int:
        return len(self.values)

    def pct(self, p: float) -> float | None:
        if not self.values:
            return None
        xs = sorted(self.values)
        return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]  # nearest rank

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def median(self) -> float | None:
        return self.pct(50)

    @property
    def p99(self) -> float | None:
        return self.pct(99)

    def brief(self) -> str:
        if not self.values:
            return f"n=0 missing={self.missing}"
        return (f"median {self.median:.3f}  p99 {self.p99:.3f}  min {min(self.values):.3f}  "
                f"max {max(self.values):.3f} ms  (n={self.n}, missing={self.missing})")


def ms(a: int | None, b: int | None) -> float | None:
    """b - a in ms (kernel ns timestamps), or None."""
    return None if a is None or b is None else (b - a) / 1e6


# -- the lab --------------------------------------------------------------------------------------


class Bench:
    """One product in one lab: the proxy, taps, reporters and the upstream router."""

    def __init__(self, lab: Lab, product: str, tmp: Path, quickleave: bool = False,
                 floor: int = 0, forwarding: Forwarding = "kernel",
                 accounting: bool = False) -> None:
        self.lab = lab
        self.accounting = accounting  # mcastproxy with its session and security logs on
        self.product = product
        self.tmp = tmp
        self.procs: list[Proc] = []
        self.quickleave = quickleave
        self.forwarding = forwarding  # or "recorded": routes in memory (mcastlab.recorded)
        # igmpproxy joins each group upstream with a socket join: let it hold more than 20.
        lab.sysctl("proxy", "net.ipv4.igmp_max_memberships", 16384)
        self.ptap = self.program("proxy", "tap", "--mode", "ctl", "--poll-ms", "10")
        self.stap = self.program("sub1", "tap", "--iface", "eth0", "--mode", "ctl",
                                 "--poll-ms", "10")
        self.rep1 = self.program("sub1", "reporter", "--iface", "eth0")
        self.rep3 = self.program("sub3", "reporter", "--iface", "eth0")
        streams = []
        for fam in FAMS.values():
            for block, (rate, seconds) in STREAMS.items():
                streams += ["--stream", f"{fam.block_prefix(block)}={rate}:{seconds}"]
        self.up = self.program("prov1", "upstream", "--iface", "eth0", "--src4", "10.0.1.2",
                               "--src6", "fd00:1::2", *streams)
        self._ids = 0
        self.sent: dict[int, tuple[str, int]] = {}  # report id -> (group, record type)
        self.floor = Sample()
        if product == "mcastproxy" and floor:
            self.floor = echo_floor(self, FAMS[4], floor)
        self.daemon = self.start_daemon()

    def program(self, host: str, name: str, *args: str) -> JsonProc:
        p = JsonProc(self.lab.ns(host), [sys.executable, HELPER, name, *args],
                     log=self.tmp / f"{host}-{name}-{len(self.procs)}.log",
                     env=self.lab.python_env())
        self.procs.append(p)
        p.wait_event(lambda e: e.get("e") == "ready", 15)
        return p

    def start_daemon(self) -> Proc | Proxy:
        d: Proc | Proxy
        if self.product == "mcastproxy":
            config = MCASTPROXY_CONFIG
            if self.accounting:
                config += (f"accounting: {{session-log: {self.tmp / 'sessions.log'}, "
                           f"security-log: {self.tmp / 'security.log'}, "
                           "sample-interval: 1s}\n")
            d = self.lab.proxy(config, workdir=self.tmp, timeout=15,
                               forwarding=self.forwarding)
        else:
            cfg = self.tmp / "igmpproxy.conf"
            cfg.write_text(("quickleave\n" if self.quickleave else "") + IGMPPROXY_CONFIG)
            d = self.lab.popen("proxy", "igmpproxy", "-n", str(cfg))
            # Ready once its VIFs are in the kernel.
            wait_until(lambda: "u1" in self.lab.run("proxy", "cat", "/proc/net/ip_mr_vif")
                       and "d2" in self.lab.run("proxy", "cat", "/proc/net/ip_mr_vif"), 15,
                       message="igmpproxy did not start")
        time.sleep(0.5)
        if not d.running:
            raise LabError(f"{self.product} exited: {d.output()[-2000:]}")
        return d

    def restart_daemon(self) -> None:
        """Stop the proxy (it removes its kernel state) and start it again, empty."""
        self.daemon.stop(grace=5.0)
        self.daemon = self.start_daemon()

    def close(self) -> None:
        for p in reversed([*self.procs, self.daemon]):
            with contextlib.suppress(Exception):
                p.stop(grace=2.0)

    def cpu_ns(self) -> int:
        """CPU time the proxy has used so far (all its threads), from /proc/PID/schedstat."""
        total = 0
        for task in Path(f"/proc/{self.daemon.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
        return total

    def cpu_idle(self, window: float = 0.3) -> bool:
        """Whether the proxy used under 5% of a CPU over the next ``window`` seconds."""
        c0 = self.cpu_ns()
        time.sleep(window)
        return self.cpu_ns() - c0 < 0.05 * window * 1e9

    def status(self) -> dict[str, Any]:
        assert isinstance(self.daemon, Proxy), "only mcastproxy has a status socket"
        return self.daemon.status()

    # -- reports

    def send(self, rep: JsonProc, fam: Fam, src: str, rtype: int, group: str) -> None:
        self._ids += 1
        self.sent[self._ids] = (group, rtype)
        rep.send(json.dumps({"op": "send", "fam": fam.v, "src": src, "rec": [[rtype, group]],
                             "id": self._ids}))

    def blast(self, rep: JsonProc, fam: Fam, srcs: list[str], groups: list[str], rtype: int,
              rate: float, sentinel: tuple[str, int, str] | None, timeout: float = 60
              ) -> dict[str, Any]:
        self._ids += 1
        n = self._ids
        cmd: dict[str, Any] = {"op": "blast", "fam": fam.v, "srcs": srcs, "groups": groups,
                               "type": rtype, "rate": rate, "id": n}
        if sentinel is not None:
            cmd["sentinel"] = {"src": sentinel[0], "rec": [[sentinel[1], sentinel[2]]]}
        start = len(rep.events())
        rep.send(json.dumps(cmd))
        return rep.wait_event(lambda e: e.get("id") == n and e.get("e") == "blasted", timeout,
                              start=start)

    def mark(self, tap: JsonProc, timeout: float = 10) -> int:
        """Index into the tap's events after everything it has received so far."""
        self._ids += 1
        mid = str(self._ids)
        start = len(tap.events())
        tap.send(f"mark {mid}")
        mark = tap.wait_event(lambda e: e.get("e") == "mark" and e.get("id") == mid, timeout,
                              start=start)
        events = tap.events()
        return next(i for i in range(start, len(events)) if events[i] is mark) + 1

    def mode(self, tap: JsonProc, mode: str) -> None:
        start = len(tap.events())
        tap.send(f"mode {mode}")
        tap.wait_event(lambda e: e.get("e") == "mode" and e.get("mode") == mode, 10, start=start)

    # -- kernel counters in the proxy's namespace

    def raw_drops(self) -> int:
        total = 0
        for f in ("/proc/net/raw", "/proc/net/raw6"):
            lines = self.lab.run("proxy", "cat", f).splitlines()[1:]
            total += sum(int(line.split()[-1]) for line in lines if line.strip())
        return total

    def link_rx(self, iface: str) -> tuple[int, int]:
        info = json.loads(self.lab.run("proxy", "ip", "-s", "-j", "link", "show", "dev", iface))
        rx = info[0]["stats64"]["rx"]
        return int(rx["packets"]), int(rx["dropped"])

    def routes_with(self, fam: Fam, groups: Iterable[str], oif: str) -> int:
        if self.forwarding == "recorded":
            return 0  # no upcalls without the kernel's routing: no routes to count
        argv = ["ip", "-6" if fam.v == 6 else "-4", "mroute", "show", "table", "all"]
        wanted = {ipaddress.ip_address(g) for g in groups}
        found = set()
        for line in self.lab.run("proxy", *argv).splitlines():
            m = re.match(r"\(([^,]+),\s*([^)]+)\).*Oifs:\s*([^S]*)", line)
            if m and ipaddress.ip_address(m.group(2).strip()) in wanted and oif in m.group(3):
                found.add(m.group(2).strip())
        return len(found)


def softnet_drops() -> int:
    total = 0
    for line in Path("/proc/net/softnet_stat").read_text().splitlines():
        total += int(line.split()[1], 16)
    return total


# -- event indexes ------------------------------------------------------------------------------


def ctl_times(events: list[dict[str, Any]], iface: str, out: bool, types: Iterable[int],
              leave_only: bool = False) -> dict[str, list[int]]:
    """group -> kernel times of IGMP/MLD records of ``types`` on ``iface`` in one direction."""
    kinds = set(types)
    got: dict[str, list[int]] = {}
    for e in events:
        if e.get("e") != "c" or e["if"] != iface or e["o"] != out or e["m"] not in ("R", "L"):
            continue
        for rtype, group, nsrc in e["r"]:
            if rtype in kinds and not (leave_only and rtype in (TO_IN, IS_IN) and nsrc):
                got.setdefault(group, []).append(e["t"])
    return got


def first_after(times: list[int] | None, t: int | None) -> int | None:
    if not times or t is None:
        return None
    later = [x for x in times if x >= t]
    return min(later) if later else None


def data_starts(events: list[dict[str, Any]], iface: str, out: bool
                ) -> dict[str, list[dict[str, Any]]]:
    got: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("e") == "start" and e["if"] == iface and e["o"] == out:
            got.setdefault(e["g"], []).append(e)
    return got


def first_start_after(starts: list[dict[str, Any]] | None, t: int | None
                      ) -> dict[str, Any] | None:
    if not starts or t is None:
        return None
    later = [s for s in starts if s["t"] >= t]
    return min(later, key=lambda s: s["t"]) if later else None


@dataclass
class Checks:
    """What says the timestamps can be trusted."""

    inversions: int = 0  # consecutive ctl events of one tap out of time order
    max_inversion_us: float = 0.0
    packets: int = 0
    tap_drops: int = 0
    bridge_us: list[float] = field(default_factory=list)  # sub1 out -> proxy d1 in, same report
    user_to_kernel_us: list[float] = field(default_factory=list)  # reporter send() -> sub1 tap

    def order(self, events: list[dict[str, Any]]) -> None:
        last = None
        for e in events:
            if e.get("e") != "c":
                continue
            if last is not None and e["t"] < last:
                self.inversions += 1
                self.max_inversion_us = max(self.max_inversion_us, (last - e["t"]) / 1e3)
            last = e["t"] if last is None else max(last, e["t"])


# -- figures ------------------------------------------------------------------------------------


def echo_floor(b: Bench, fam: Fam, n: int) -> Sample:
    """Join latency of the ``echo`` program (no proxy running): the floor of the method
    and of Python with asyncio on this machine."""
    echo = b.program("proxy", "echo")
    groups = [fam.group(0, i) for i in range(n)]
    p0 = b.mark(b.ptap)
    for g in groups:
        b.send(b.rep1, fam, fam.sub1, TO_EX, g)
        time.sleep(0.02)
    time.sleep(0.1)
    ev = b.ptap.events()[p0:b.mark(b.ptap)]
    echo.stop()
    d1 = ctl_times(ev, "d1", False, (TO_EX,))
    u1 = ctl_times(ev, "u1", True, (TO_EX,))
    out = Sample()
    for g in groups[10:]:
        t = min(d1[g]) if g in d1 else None
        out.add(ms(t, first_after(u1.get(g), t)))
    return out


def sleep_until(t: float) -> None:
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


def join_leave(b: Bench, fam: Fam, n: int, warm: int, checks: Checks,
               leave_wait: float) -> tuple[Sample, Sample]:
    """Fresh group i joined at 20i ms and left at 20i + 50 ms by sub1 alone."""
    groups = [fam.group(JOIN_BLOCK, i) for i in range(n)]
    p0, s0, r0 = b.mark(b.ptap), b.mark(b.stap), len(b.rep1.events())
    t0 = time.monotonic() + 0.05
    plan = sorted([(t0 + 0.02 * i, TO_EX, g) for i, g in enumerate(groups)]
                  + [(t0 + 0.02 * i + 0.05, TO_IN, g) for i, g in enumerate(groups)])
    for at, rtype, g in plan:
        sleep_until(at)
        b.send(b.rep1, fam, fam.sub1, rtype, g)
    # Wait for the upstream leaves (igmpproxy: its last-member queries first).
    deadline = time.monotonic() + leave_wait
    while time.monotonic() < deadline:
        time.sleep(0.25)
        ev = b.ptap.events()[p0:]
        ups = ctl_times(ev, "u1", True, (TO_IN, IS_IN, BLOCK), leave_only=True)
        if all(g in ups for g in groups):
            break
    ev = b.ptap.events()[p0:b.mark(b.ptap)]
    sev = b.stap.events()[s0:b.mark(b.stap)]
    checks.order(ev)
    checks.order(sev)
    d1_join = ctl_times(ev, "d1", False, (TO_EX,))
    d1_leave = ctl_times(ev, "d1", False, (TO_IN,), leave_only=True)
    up_join = ctl_times(ev, "u1", True, JOINS)
    up_leave = ctl_times(ev, "u1", True, (TO_IN, IS_IN, BLOCK), leave_only=True)
    wrong = ctl_times(ev, "u2", True, JOINS)
    sub_out = ctl_times(sev, "eth0", True, (TO_EX,))
    sent = [(b.sent[e["id"]], e["t"]) for e in b.rep1.events()[r0:] if e.get("e") == "sent"]
    join, leave = Sample(), Sample()
    for i, g in enumerate(groups):
        tj = min(d1_join[g]) if g in d1_join else None
        tl = min(d1_leave[g]) if g in d1_leave else None
        if g in sub_out and tj is not None:
            checks.bridge_us.append((tj - min(sub_out[g])) / 1e3)
        if i < warm:
            continue
        join.add(ms(tj, first_after(up_join.get(g), tj)))
        leave.add(ms(tl, first_after(up_leave.get(g), tl)))
    for (g, rtype), t_user in sent:
        if rtype == TO_EX and g in sub_out:
            checks.user_to_kernel_us.append((min(sub_out[g]) - t_user) / 1e3)
    if wrong:
        join.note = f"{len(wrong)} groups also joined on u2!"
    return join, leave


def zap_flowing(b: Bench, fam: Fam, n: int, warm: int, checks: Checks
                ) -> tuple[Sample, Sample]:
    """Channel i: sub3 joins (d2) at 100i ms, sub1 at +80 ms; both leave at +140 ms."""
    b.mode(b.ptap, "data")
    b.mode(b.stap, "data")
    groups = [fam.group(ZAP_A_BLOCK, i) for i in range(n)]
    p0, s0 = b.mark(b.ptap), b.mark(b.stap)
    t0 = time.monotonic() + 0.05
    plan = []
    for i, g in enumerate(groups):
        at = t0 + 0.1 * i
        plan += [(at, b.rep3, fam.sub3, TO_EX, g), (at + 0.08, b.rep1, fam.sub1, TO_EX, g),
                 (at + 0.14, b.rep1, fam.sub1, TO_IN, g), (at + 0.141, b.rep3, fam.sub3, TO_IN, g)]
    plan.sort(key=lambda x: x[0])
    for at, rep, src, rtype, g in plan:
        sleep_until(at)
        b.send(rep, fam, src, rtype, g)
    time.sleep(0.3)
    ev = b.ptap.events()[p0:b.mark(b.ptap)]
    sev = b.stap.events()[s0:b.mark(b.stap)]
    b.mode(b.ptap, "ctl")
    b.mode(b.stap, "ctl")
    checks.order(ev)
    checks.order(sev)
    sub_join = ctl_times(sev, "eth0", True, (TO_EX,))
    sub_in = data_starts(sev, "eth0", False)
    d1_join = ctl_times(ev, "d1", False, (TO_EX,))
    u1_in = data_starts(ev, "u1", False)
    d1_out = data_starts(ev, "d1", True)
    d2_out = data_starts(ev, "d2", True)
    zap, proxy = Sample(), Sample()
    not_flowing = next_ok = 0
    for i, g in enumerate(groups):
        if i < warm:
            continue
        ts = min(sub_join[g]) if g in sub_join else None
        tr = min(d1_join[g]) if g in d1_join else None
        # Flowing: coming in on u1 and forwarded to d2 already when sub1's report came.
        flowing = (tr is not None and u1_in.get(g) and d2_out.get(g)
                   and min(s["t"] for s in u1_in[g]) < tr and min(s["t"] for s in d2_out[g]) < tr)
        if not flowing:
            not_flowing += 1
            continue
        first = first_start_after(sub_in.get(g), ts)
        zap.add(ms(ts, first["t"] if first else None))
        out = first_start_after(d1_out.get(g), tr)
        proxy.add(ms(tr, out["t"] if out else None))
        # Was the first packet to reach u1 after the report already forwarded to d1 (the
        # one before it came in before the report)? Then the route was ready in < 1 gap.
        if out and out.get("in_prev") is not None and out["in_prev"] < tr:
            next_ok += 1
    if not_flowing:
        zap.note = f"{not_flowing} channels were not flowing yet at the join: left out"
    proxy.note = f"{next_ok}/{proxy.n} forwarded the first packet to arrive after the report"
    return zap, proxy


def zap_new(b: Bench, fam: Fam, n: int, warm: int, checks: Checks) -> tuple[Sample, ...]:
    """Channel i, which nobody watches: sub1 joins at 60i ms, leaves at +40 ms."""
    b.mode(b.ptap, "data")
    b.mode(b.stap, "data")
    groups = [fam.group(ZAP_B_BLOCK, i) for i in range(n)]
    p0, s0 = b.mark(b.ptap), b.mark(b.stap)
    t0 = time.monotonic() + 0.05
    plan = sorted([(t0 + 0.06 * i, TO_EX, g) for i, g in enumerate(groups)]
                  + [(t0 + 0.06 * i + 0.04, TO_IN, g) for i, g in enumerate(groups)])
    for at, rtype, g in plan:
        sleep_until(at)
        b.send(b.rep1, fam, fam.sub1, rtype, g)
    time.sleep(0.3)
    ev = b.ptap.events()[p0:b.mark(b.ptap)]
    sev = b.stap.events()[s0:b.mark(b.stap)]
    b.mode(b.ptap, "ctl")
    b.mode(b.stap, "ctl")
    checks.order(ev)
    checks.order(sev)
    sub_join = ctl_times(sev, "eth0", True, (TO_EX,))
    sub_in = data_starts(sev, "eth0", False)
    d1_join = ctl_times(ev, "d1", False, (TO_EX,))
    up_join = ctl_times(ev, "u1", True, JOINS)
    u1_in = data_starts(ev, "u1", False)
    d1_out = data_starts(ev, "d1", True)
    zap, router, proxy = Sample(), Sample(), Sample()
    for i, g in enumerate(groups):
        if i < warm:
            continue
        ts = min(sub_join[g]) if g in sub_join else None
        first = first_start_after(sub_in.get(g), ts)
        zap.add(ms(ts, first["t"] if first else None))
        tr = min(d1_join[g]) if g in d1_join else None
        tu = first_after(up_join.get(g), tr)
        tin = first_start_after(u1_in.get(g), tu)
        tout = first_start_after(d1_out.get(g), tin["t"] if tin else None)
        router.add(ms(tu, tin["t"] if tin else None))
        if tr is not None and tu is not None and tin and tout:
            proxy.add(ms(tr, tu) + ms(tin["t"], tout["t"]))  # type: ignore[operator]
        else:
            proxy.add(None)
    return zap, router, proxy


@dataclass
class BlastStep:
    offered: float  # reports/s asked of the sender (0: as fast as it goes)
    n: int
    sent: int = 0
    send_rate: float = 0.0  # what the sender achieved
    rate: float | None = None  # processed: reports / (first sent -> sentinel out on u1)
    lost_link: int = 0  # sent, not received by d1
    raw_drops: int = 0
    softnet_drops: int = 0
    members: int | None = None  # mcastproxy: memberships on d1 afterwards
    routes: int = 0
    groups: int = 0
    leave_rate: float | None = None
    cpu_us: float | None = None  # the proxy's CPU time per report, joins
    busy: float | None = None  # the proxy's CPU time / wall time, first sent -> sentinel out

    def line(self) -> str:
        offered = "max" if not self.offered else f"{self.offered:,.0f}/s"
        rate = f"{self.rate:,.0f}/s" if self.rate else "sentinel not seen"
        members = "" if self.members is None else f", memberships {self.members:,}/{self.n:,}"
        leave = f", leaves {self.leave_rate:,.0f}/s" if self.leave_rate else ""
        cpu = ("" if self.cpu_us is None else
               f" [proxy CPU {self.cpu_us:.0f} us/report, busy {100 * (self.busy or 0):.0f}%]")
        return (f"offered {offered:>9}: sent {self.sent:,} at {self.send_rate:,.0f}/s, "
                f"processed {rate}{leave}{cpu}; lost on the link {self.lost_link}, raw socket "
                f"drops {self.raw_drops}, softnet drops {self.softnet_drops}{members}, "
                f"routes with d1 {self.routes}/{self.groups}")


def wait_upstream(b: Bench, p0: int, group: str, leave: bool, timeout: float,
                  raw0: int) -> int | None:
    """Kernel time of the first report out on u1 joining (leaving) ``group`` since tap event
    ``p0``, waiting up to ``timeout`` seconds, or less once the proxy has dropped reports
    (raw socket drops above ``raw0``) and gone idle: a sentinel dropped with them never
    comes."""
    types = (TO_IN, IS_IN, BLOCK) if leave else JOINS
    deadline = time.monotonic() + timeout
    idle = 0
    while time.monotonic() < deadline:
        seen = ctl_times(b.ptap.events()[p0:], "u1", True, types, leave_only=leave).get(group)
        if seen:
            return min(seen)
        if b.raw_drops() > raw0:
            idle = idle + 1 if b.cpu_idle(0.25) else 0
            if idle >= 3:
                b.mark(b.ptap)
                seen = ctl_times(b.ptap.events()[p0:], "u1", True, types,
                                 leave_only=leave).get(group)
                return min(seen) if seen else None
        else:
            time.sleep(0.05)
    return None


def blast_step(b: Bench, fam: Fam, rate: float, subs: list[str], groups: list[str],
               sentinel: str, hook: Callable[[], None] | None = None) -> BlastStep:
    # Each step from a proxy just started, so that no step inherits the state of the one
    # before (igmpproxy holds left groups for seconds).
    b.restart_daemon()
    # The channels flow to the proxy and on to d2 first (sub3 watches them).
    b.mode(b.ptap, "data")
    p0 = b.mark(b.ptap)
    b.blast(b.rep3, fam, [fam.sub3], groups, TO_EX, 2000, None)

    def flowing() -> bool:
        ev = b.ptap.events()[p0:]
        return len({e["g"] for e in ev if e.get("e") == "start" and e["if"] == "d2"
                    and e["o"]}) >= len(groups)

    with contextlib.suppress(TimeoutError):
        wait_until(flowing, 5)
    b.mode(b.ptap, "out")
    time.sleep(0.2)
    if hook is not None:
        hook()
    st = BlastStep(rate, len(subs) * len(groups), groups=len(groups))
    p0 = b.mark(b.ptap)
    rx0, raw0, sn0 = b.link_rx("d1")[0], b.raw_drops(), softnet_drops()
    cpu0 = b.cpu_ns()
    res = b.blast(b.rep1, fam, subs, groups, TO_EX, rate, (fam.sub1, TO_EX, sentinel))
    st.sent = res["sent"]
    st.send_rate = st.sent / max(1e-9, (res["t1"] - res["t0"]) / 1e9)
    seen = wait_upstream(b, p0, sentinel, False, 10 + st.n / 1000, raw0)
    cpu1 = b.cpu_ns()
    time.sleep(0.3)
    # d1's counter also counts the odd other packet (a host's report, neighbour discovery):
    # a loss of as many could hide behind them.
    st.lost_link = max(0, st.sent + 1 - (b.link_rx("d1")[0] - rx0))
    st.raw_drops = b.raw_drops() - raw0
    if seen is not None:
        # Reports the proxy got (the rest were dropped on the way or in its socket), over the
        # time from the first sent to the sentinel's join upstream.
        got = st.sent + 1 - st.lost_link - st.raw_drops
        st.rate = got / ((seen - res["t0"]) / 1e9)
        # The proxy's CPU from just before the blast to the sentinel seen (up to the tap's
        # 10 ms polling and this loop's 50 ms later, when the proxy is idle again).
        st.cpu_us = (cpu1 - cpu0) / 1e3 / got
        st.busy = (cpu1 - cpu0) / max(1, seen - res["t0"])
    st.softnet_drops = softnet_drops() - sn0
    st.routes = b.routes_with(fam, groups, "d1")
    if b.product == "mcastproxy":
        down = b.status()["downstream"].get(f"d1/{fam.key}", {}).get("groups", {})
        st.members = sum(len(down.get(g, {}).get("subscribers", ())) for g in groups)
        if not rate:
            # The same reports as leaves, timed the same way (fast leave: the sentinel's
            # leave goes upstream at once). igmpproxy's leave upstream waits for its
            # queries: not timed.
            p0 = b.mark(b.ptap)
            raw1 = b.raw_drops()
            res = b.blast(b.rep1, fam, subs, groups, TO_IN, rate, (fam.sub1, TO_IN, sentinel))
            seen = wait_upstream(b, p0, sentinel, True, 10 + st.n / 1000, raw1)
            if seen is not None:
                st.leave_rate = (res["sent"] + 1) / ((seen - res["t0"]) / 1e9)
    b.blast(b.rep3, fam, [fam.sub3], groups, TO_IN, 2000, None)
    time.sleep(0.5)
    b.mode(b.ptap, "ctl")
    return st


def blast(b: Bench, fam: Fam, rates: list[float], n: int, step0: int) -> list[BlastStep]:
    """Per rate, with the proxy restarted: fresh channels flowing to d2 (sub3 joined), then
    n joins onto them from 100 subscribers on d1 and a sentinel; at the top rate (0, as
    fast as the sender goes) also the same n leaves (mcastproxy)."""
    subs = [fam.subscriber(i) for i in range(100)]
    ngroups = max(1, n // len(subs))
    steps = []
    b.mode(b.stap, "off")
    for k, rate in enumerate(rates):
        step = step0 + k
        groups = [fam.group(BLAST_BLOCK, step * ngroups + i) for i in range(ngroups)]
        st = blast_step(b, fam, rate, subs, groups, fam.group(SENTINEL_BLOCK, step))
        log(f"  {st.line()}")
        steps.append(st)
    b.mode(b.stap, "ctl")
    return steps


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Result:
    join: Sample | None = None
    leave: Sample | None = None
    zap_a: Sample | None = None
    zap_a_proxy: Sample | None = None
    zap_b: Sample | None = None
    zap_b_router: Sample | None = None
    zap_b_proxy: Sample | None = None
    blast: list[BlastStep] = field(default_factory=list)

    @property
    def sustained(self) -> float | None:
        """The best processed rate of a step that lost nothing."""
        ok = [s.rate for s in self.blast if s.rate and not s.raw_drops and not s.lost_link
              and (s.members is None or s.members == s.n)]
        return max(ok) if ok else None


def run_product(product: str, fams: list[int], a: argparse.Namespace, checks: Checks,
                quickleave: bool = False, only_join: bool = False) -> dict[int, Result]:
    results: dict[int, Result] = {}
    label = product + (" (quickleave)" if quickleave else "")
    with Lab(topologies.proxy_lab()) as lab:
        tmp = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
        b = Bench(lab, product, tmp, quickleave, a.floor, a.forwarding, a.accounting)
        if b.floor.values:
            log(f"floor (asyncio echo, no proxy): {b.floor.brief()}")
            results[0] = Result(join=b.floor)
        try:
            for v in fams:
                fam = FAMS[v]
                r = results[v] = Result()
                log(f"{label} IPv{v}: join and leave, {a.joins} groups")
                wait = 2.0 if product == "mcastproxy" or quickleave else 25.0
                r.join, r.leave = join_leave(b, fam, a.joins, a.warm, checks, wait)
                log(f"  join  {r.join.brief()}")
                log(f"  leave {r.leave.brief()}")
                if only_join:
                    continue
                if b.forwarding == "recorded":
                    log(f"{label} IPv{v}: no zaps: routes are recorded, not in the kernel")
                    log(f"{label} IPv{v}: reports per second, {a.blast_n:,} per step")
                    r.blast = blast(b, fam, a.rates, a.blast_n, 0)
                    continue
                log(f"{label} IPv{v}: zap onto a flowing channel, {a.zaps} channels")
                r.zap_a, r.zap_a_proxy = zap_flowing(b, fam, a.zaps, a.warm, checks)
                log(f"  zap (flowing) at sub1 {r.zap_a.brief()} {r.zap_a.note}")
                log(f"  ... in the proxy       {r.zap_a_proxy.brief()}")
                log(f"  ... {r.zap_a_proxy.note}")
                log(f"{label} IPv{v}: zap onto a new channel, {a.zaps} channels")
                r.zap_b, r.zap_b_router, r.zap_b_proxy = zap_new(b, fam, a.zaps, a.warm, checks)
                log(f"  zap (new) at sub1      {r.zap_b.brief()}")
                log(f"  ... upstream router    {r.zap_b_router.brief()}")
                log(f"  ... in the proxy       {r.zap_b_proxy.brief()}")
                log(f"{label} IPv{v}: reports per second, {a.blast_n:,} per step")
                r.blast = blast(b, fam, a.rates, a.blast_n, 0)
                if a.profile and product == "mcastproxy":
                    profile(b, fam, a)
            for tap in (b.ptap, b.stap):
                start = len(tap.events())
                tap.send("stats")
                st = tap.wait_event(lambda e: e.get("e") == "stats", 10, start=start)
                checks.packets += st["packets"]
                checks.tap_drops += st["drops"]
            if not b.daemon.running:
                raise LabError(f"{product} died: {b.daemon.output()[-2000:]}")
            if b.accounting and product == "mcastproxy":
                acc = b.status().get("accounting") or {}
                for name, state in (acc.get("logs") or {}).items():
                    log(f"{name}: {state['lines']} lines written, {state['dropped']} dropped, "
                        f"{state['errors']} errors")
        finally:
            b.close()
            if a.keep_logs:
                log(f"logs kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    return results


def profile(b: Bench, fam: Fam, a: argparse.Namespace) -> None:
    """py-spy on the daemon during one more blast as fast as the sender goes; the functions
    with the most samples (own and inclusive) to DIR/mcastproxy-ipvN.txt."""
    spy = shutil.which("py-spy") or a.py_spy
    if not spy or not Path(spy).exists():
        log("  (no py-spy: no profile)")
        return
    folded = Path(a.profile) / f"mcastproxy-ipv{fam.v}.folded"
    folded.parent.mkdir(parents=True, exist_ok=True)
    spies: list[subprocess.Popen[bytes]] = []

    def attach() -> None:
        spies.append(subprocess.Popen(
            [spy, "record", "--pid", str(b.daemon.pid), "--format", "raw", "--rate", "1000",
             "--nonblocking", "--output", str(folded)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)

    subs = [fam.subscriber(i) for i in range(100)]
    step = len(a.rates) + 1
    ngroups = max(1, a.blast_n // len(subs))
    groups = [fam.group(BLAST_BLOCK, step * ngroups + i) for i in range(ngroups)]
    try:
        steps = [blast_step(b, fam, 0, subs, groups, fam.group(SENTINEL_BLOCK, step), attach)]
    finally:
        for p in spies:
            p.send_signal(2)  # SIGINT: py-spy writes its output and stops
            p.wait(30)
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        # "function (file:line)" -> "function (file)": a function once, whatever line.
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if any("select" in f and "selectors" in f for f in frames[-2:]):
            continue  # idle in the event loop
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    lines = [f"profile of mcastproxy (IPv{fam.v}) over a blast: {steps[0].line()}",
             f"{total} busy samples", "", "own time:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in
              sorted(own.items(), key=lambda x: -x[1])[:25]]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in
              sorted(incl.items(), key=lambda x: -x[1])[:40]]
    out = folded.with_suffix(".txt")
    out.write_text("\n".join(lines) + "\n")
    log(f"  profile in {out}")


# -- the table ------------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(res: dict[str, dict[int, Result]]) -> str:
    cols: list[tuple[str, Result | None]] = []
    if "mcastproxy" in res:
        cols += [("mcastproxy IPv4", res["mcastproxy"].get(4)),
                 ("mcastproxy IPv6", res["mcastproxy"].get(6))]
    if "igmpproxy" in res:
        cols.append(("igmpproxy IPv4", res["igmpproxy"].get(4)))
    if "igmpproxy-quickleave" in res:
        cols.append(("igmpproxy quickleave", res["igmpproxy-quickleave"].get(4)))

    def lat(attr: str, p: float) -> Callable[[Result], tuple[float | None, str]]:
        def get(r: Result) -> tuple[float | None, str]:
            s: Sample | None = getattr(r, attr)
            if s is None or not s.values:
                return None, "-"
            v = s.pct(p)
            return v, fmt(v) + ("" if not s.missing else f" ({s.missing} miss)")
        return get

    def ready(r: Result) -> tuple[float | None, str]:
        # The first packet to reach d1 left at route ready + the wait for the next packet
        # of a 1,000/s stream, whose phase is random: 0.5 ms on average.
        s = r.zap_a_proxy
        if s is None or s.mean is None:
            return None, "-"
        return s.mean - 0.5, fmt(s.mean - 0.5)

    def cpu(r: Result) -> tuple[float | None, str]:
        xs = sorted(x.cpu_us for x in r.blast if x.cpu_us is not None and x.busy
                    and x.busy > 0.9)
        if not xs:
            return None, "-"
        return xs[len(xs) // 2], f"{xs[len(xs) // 2]:.0f}"

    def rate(r: Result) -> tuple[float | None, str]:
        s = r.sustained
        best = max((x.rate for x in r.blast if x.rate), default=None)
        if best is None:
            return None, "-"
        if s == best:
            return s, f"{s:,.0f}"
        return s, f"{f'{s:,.0f}' if s else '-'} ({best:,.0f} lossy)"

    # figure, value getter, target text, limit (None: no target), higher is better
    rows: list[tuple[str, Callable[[Result], tuple[float | None, str]], str, float | None,
                     bool]] = [
        ("1 join, median (ms)", lat("join", 50), "<= 1", 1.0, False),
        ("1 join, p99 (ms)", lat("join", 99), "", None, False),
        ("2 leave, median (ms)", lat("leave", 50), "<= 5", 5.0, False),
        ("2 leave, p99 (ms)", lat("leave", 99), "<= 5", 5.0, False),
        ("3a zap flowing, median (ms)", lat("zap_a", 50), "<= 2", 2.0, False),
        ("3a zap flowing, p99 (ms)", lat("zap_a", 99), "<= 10", 10.0, False),
        ("   in the proxy, median", lat("zap_a_proxy", 50), "", None, False),
        ("   route ready, mean (est.)", ready, "", None, False),
        ("3b zap new channel, median (ms)", lat("zap_b", 50), "", None, False),
        ("3b zap new channel, p99 (ms)", lat("zap_b", 99), "", None, False),
        ("   upstream router's part, median", lat("zap_b_router", 50), "", None, False),
        ("   the proxy's part, median", lat("zap_b_proxy", 50), "", None, False),
        ("4 reports/s without loss", rate, ">= 20,000", 20_000.0, True),
        ("   proxy CPU per report (us)", cpu, "", None, False),
    ]
    head = ["figure", *[c[0] for c in cols], "target", "met", "beats igmpproxy"]
    body = []
    for name, get, target, limit, higher in rows:
        vals = [get(r) if r is not None else (None, "-") for _, r in cols]
        mine = [v for (label, _), (v, _) in zip(cols, vals, strict=True)
                if label.startswith("mcastproxy")]
        theirs = [v for (label, _), (v, _) in zip(cols, vals, strict=True)
                  if label.startswith("igmpproxy") and v is not None]
        met = ""
        measured = [v for v in mine if v is not None]  # columns not run are not misses
        if limit is not None and measured:
            good = [v >= limit if higher else v <= limit for v in measured]
            met = "yes" if all(good) else "NO"
        beats = ""
        v4 = mine[0] if mine else None
        if v4 is not None and theirs and name[0].isdigit():
            best = max(theirs) if higher else min(theirs)
            beats = "yes" if (v4 > best if higher else v4 < best) else "NO"
        body.append([name, *[t for _, t in vals], target, met, beats])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
              for row in body]
    return "\n".join(lines)


def git_state() -> str:
    """The commit measured, and whether the tree differs from it (others work in it too)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    try:
        ver = subprocess.run(["igmpproxy", "-h"], capture_output=True, text=True, check=False)
    except OSError:  # not installed (left out on a kernel without multicast routing)
        return f"mcastproxy {rev}"
    igmp = next((x for x in (ver.stdout + ver.stderr).splitlines() if "igmpproxy 0" in x), "")
    return f"mcastproxy {rev}" + (f", {igmp.strip()}" if igmp else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run of under a minute")
    ap.add_argument("--products", default="mcastproxy,igmpproxy")
    ap.add_argument("--families", default="4,6", help="mcastproxy's families (4,6)")
    ap.add_argument("--joins", type=int, help="groups joined and left (default 300)")
    ap.add_argument("--zaps", type=int, help="zaps per kind (default 210)")
    ap.add_argument("--blast", dest="blast_n", type=int, help="reports per blast step")
    ap.add_argument("--rates", help="offered reports/s per step, 0 = as fast as possible")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the daemon in an extra blast")
    ap.add_argument("--py-spy", default="/tmp/pyspy/bin/py-spy")
    ap.add_argument("--floor", type=int, help="reports to the asyncio echo (default 200)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the programs' logs")
    ap.add_argument("--forwarding", choices=["kernel", "recorded"], default=None,
                    help="mcastproxy's routes in the kernel, or recorded in memory (a kernel "
                         "without multicast routing: no zaps, no igmpproxy); default: the "
                         "kernel's where it has multicast routing")
    ap.add_argument("--accounting", action="store_true",
                    help="mcastproxy with accounting on: a session log and a security log "
                         "(accounting: in its configuration), to measure what they cost")
    ap.add_argument("--no-quickleave", action="store_true",
                    help="skip the extra igmpproxy run with quickleave")
    a = ap.parse_args(argv)
    a.warm = 3 if a.quick else 10
    a.joins = a.joins or (40 if a.quick else 300)
    a.zaps = a.zaps or (30 if a.quick else 210)
    a.floor = a.floor if a.floor is not None else (30 if a.quick else 200)
    a.blast_n = a.blast_n or (5000 if a.quick else 20_000)
    default_rates = "0" if a.quick else "2500,5000,10000,20000,0"
    a.rates = [float(x) for x in (a.rates or default_rates).split(",")]
    a.forwarding = a.forwarding or best_forwarding()
    products = a.products.split(",")
    if a.forwarding == "recorded" and "igmpproxy" in products:
        log("igmpproxy needs the kernel's multicast routing: left out")
        products.remove("igmpproxy")
    fams = [int(x) for x in a.families.split(",")]
    if "igmpproxy" in products and not shutil.which("igmpproxy"):
        log("installing igmpproxy (apt-get install -y igmpproxy)")
        subprocess.run(["apt-get", "install", "-y", "igmpproxy"], check=True,
                       stdout=subprocess.DEVNULL)
    checks = Checks()
    res: dict[str, dict[int, Result]] = {}
    started = time.monotonic()
    for product in products:
        res[product] = run_product(product, fams if product == "mcastproxy" else [4], a, checks)
    if "igmpproxy" in products and not a.no_quickleave:
        res["igmpproxy-quickleave"] = run_product("igmpproxy", [4], a, checks,
                                                  quickleave=True, only_join=True)
    print()
    print(f"bench_daemon on {git_state()}; {'quick' if a.quick else 'full'} run, "
          f"{a.joins} joins/leaves, "
          f"{a.zaps} zaps per kind ({a.warm} warm-up left out of each), blasts of "
          f"{a.blast_n:,} reports; {time.monotonic() - started:.0f} s")
    print(table(res))
    print()
    for product, by_fam in res.items():
        for v, r in by_fam.items():
            if r.blast and v:
                print(f"reports/s, {product} IPv{v}:")
                for st in r.blast:
                    print(f"  {st.line()}")
    floor = res.get("mcastproxy", {}).get(0)
    if floor is not None and floor.join is not None and floor.join.values:
        print()
        print("floor: the same join through a minimal asyncio program in Python (raw socket in,"
              " report out on u1, no proxy):")
        print(f"  {floor.join.brief()}")
    bridge = sorted(checks.bridge_us)
    u2k = sorted(checks.user_to_kernel_us)
    print()
    print("clock checks: tap events out of kernel-time order: "
          f"{checks.inversions} (largest {checks.max_inversion_us:.0f} us); tap drops "
          f"{checks.tap_drops} of {checks.packets} packets")
    if bridge:
        print(f"  same report, sub1 eth0 out -> proxy d1 in (two taps, two namespaces): "
              f"min {bridge[0]:.0f} us, median {bridge[len(bridge) // 2]:.0f} us, "
              f"max {bridge[-1]:.0f} us (negative would mean the clocks disagree)")
    if u2k:
        print(f"  reporter's time.time_ns() before send -> its frame's kernel stamp: "
              f"median {u2k[len(u2k) // 2]:.0f} us")
    for product, by_fam in res.items():
        for v, r in by_fam.items():
            for name in ("join", "zap_a"):
                s = getattr(r, name)
                if s is not None and s.note:
                    print(f"  note: {product} IPv{v} {name}: {s.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
