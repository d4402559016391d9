"""Failover under a steady stream: the outage and the packets lost at a subscriber, per kind of
failure, over many failovers, with mcastproxy running in a lab of network namespaces.

Run (as root): .venv/bin/python bench/bench_failover.py [--quick] [--family 4|6|both]
                                                        [--plot failover.png] [--reps N]
Targets (the issue "Upstream takeover, liveness and robust reception"): carrier loss with a
hot standby <= 50 ms of outage; a silent provider with 100 ms data detection <= 200 ms; no
duplicate ever.

The lab is ``topologies.proxy_lab(headend=True)``. A headend (``mcastlab.headend``)
sends one channel, numbered, at 1,000 packets/s into both providers from the same source
(10.0.9.1 / fd00:9::1, group 239.1.1.1 / ff1e::1:1), so that the proxy gets the same (S, G)
on u1 and on u2. sub1 joins it any-source (a lab receiver holds the membership, on another
port), and a recorder (bench/_failover_lab.py) keeps the sequence number and the kernel's
arrival time of every packet reaching sub1's application socket; another, in the proxy's
namespace, of every packet arriving on u1 and on u2 (an AF_PACKET tap).

Kinds of failure, each repeated (20 times, 5 with --quick); one lab per family, the daemon
started afresh for each configuration:

0. steady state: the second before each failure of 1, both providers delivering to the
   proxy, both upstreams joined: the baseline gap, and robust reception's duplicates.

1. carrier loss, hot standby: u1 and u2 of equal priority (robust reception: both joined,
   one feeds d1); the feeding provider's eth0 goes down, so its upstream loses carrier.
2. carrier loss, no standby: u1 priority 10, u2 5: prov1's eth0 goes down; u2 is joined.
3. silent provider, hot standby: as 1 with ``liveness: {link: true, data: 100ms}``; the
   headend stops sending into the feeding provider, whose link stays up.
4. silent provider, no standby: as 2 with ``data: 100ms``; the headend stops sending into
   prov1: the channel alone is selected again without u1, and joined on u2.
5. carrier loss with priorities and ``resilient`` (u2 joined too, as hot standby).
6. return after the hold-down (1 s): prov1's eth0 up again after 2 (6b: after 5), u1 takes
   the channel back; its outage is the longest silence from the link coming up to 0.4 s
   after u1 feeds again (a return should cost nothing: the channel is already flowing).

For each failover: the outage is the longest silence at the subscriber from the failure to
0.4 s after the new upstream was seen to feed (the status socket), between the kernel
timestamps of the last packet before and the first after (``mcastlab.stream``); the
packets lost are the sequence numbers missing between them; a duplicate is an arrival of a
sequence number already received. "switch" runs from the command that made the failure
(``ip link set``, a few ms, or the headend's pause) to the status showing the new feeder,
polled every few ms: the control plane's view.

Between repetitions the state is restored: the link up, the provider resumed (for 4 the
channel is tried on u1 again after the hold-down and taken back once u1 delivers), and the
next failure waits until the standby is joined and delivering again.

The carrier changes are the kernel's urgent kind: u1/u2 and their peers have different
interface indexes (``proxy_lab(headend=True)``), so the kernel's link watch announces them
at once. A physical NIC's carrier loss is not urgent: the link watch handles it at most a
second after its last run for any device of the machine, so on a host where other links
changed in the last second it is announced up to a second late, and the outage with it
(on this shared machine, where other labs come and go, that was 0.2-0.9 s in about one
failover in five before the indexes were made to differ).

The providers send whether asked or not (the lab has no upstream router): a takeover by join
(2, 4) measures the proxy's part only; in a network the provider's join latency comes on top.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# mcastproxy and its lab, from this checkout (installed or not).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab" / "src"))

from mcastlab import HeadendOutput, JoinMode, JsonProc, Lab, Proxy, topologies, wait_until
from mcastlab.configs import DATA_LIVENESS as DATA
from mcastlab.configs import proxy_config as config
from mcastlab.stream import Arrival, outage, rate_series
from mcastlab.topologies import HEADEND_SOURCE

HELPER = str(Path(__file__).resolve().parent / "_failover_lab.py")
RATE = 1000  # packets per second, into each provider
PORT = 5001  # the stream
MEMBER_PORT = 5002  # the receiver that only holds sub1's membership
SETTLE = 0.4  # s of the new feed measured after a switch
HOLD_DOWN = 1.0
BIN_NS = 20_000_000  # the plot's bins: 20 ms
PROVIDER = {"u1": "prov1", "u2": "prov2"}
MS = 1_000_000


@dataclass(frozen=True)
class Fam:
    v: int
    asm: JoinMode
    group: str
    source: str


FAMS = {4: Fam(4, JoinMode.IGMPV3_ASM, "239.1.1.1", HEADEND_SOURCE[4]),
        6: Fam(6, JoinMode.MLDV2_ASM, "ff1e::1:1", HEADEND_SOURCE[6])}


@dataclass(frozen=True)
class Kind:
    key: str
    title: str
    target_ms: float | None = None


KINDS = [
    Kind("steady", "0 steady state, both joined (tie), 1 s"),
    Kind("carrier-hot", "1 carrier loss, hot standby (tie)", 50.0),
    Kind("carrier-join", "2 carrier loss, no standby (join)"),
    Kind("silent-hot", "3 silent provider, hot standby, data 100 ms", 200.0),
    Kind("silent-join", "4 silent provider, no standby, data 100 ms"),
    Kind("carrier-resilient", "5 carrier loss, priorities + resilient"),
    Kind("return", "6 return after hold-down (after 2)"),
    Kind("return-resilient", "6b return after hold-down (after 5)"),
]
KIND = {k.key: k for k in KINDS}
FAILURES = [k for k in KINDS if k.key != "steady"]  # the kinds plotted


# Configurations (mcastlab.configs.proxy_config): d1 and d2 downstream, u1 and u2 candidates.
P1, P2 = ", priority: 10", ", priority: 5"
HOLD = f"hold-down: {HOLD_DOWN:g}s"
RESILIENT = 'resilient: [{group: 239.0.0.0/8}, {group: "ff1e::/16"}]'


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    outage_ms: float | None
    lost: int
    duplicates: int
    switch_ms: float | None


@dataclass
class PlotWindow:
    """One failover to draw: when it happened and when the new feeder was seen (ns)."""

    kind: str
    event: int
    switch: int | None
    sample: Sample
    series: dict[str, list[int]] = field(default_factory=dict)  # line -> arrival times
    start: int = 0
    end: int = 0


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def values(self, attr: str) -> list[float]:
        return [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    ys = sorted(xs)
    return ys[max(0, math.ceil(p / 100 * len(ys)) - 1)]  # nearest rank


class Results:
    """Samples per (family, kind), the failures, the windows to plot, the duplicates."""

    def __init__(self) -> None:
        self.by: dict[tuple[int, str], Result] = {}
        self.plots: dict[tuple[int, str], PlotWindow] = {}
        self.total_duplicates: dict[tuple[int, str], int] = {}  # (family, config) -> n
        self.aborted: dict[tuple[int, str], str] = {}

    def of(self, v: int, kind: str) -> Result:
        return self.by.setdefault((v, kind), Result())

    def add(self, v: int, kind: str, sample: Sample, event: int, switch: int | None, *,
            plot: bool = True) -> None:
        self.of(v, kind).samples.append(sample)
        if plot:
            self.plots.setdefault((v, kind), PlotWindow(kind, event, switch, sample))
        log(f"  IPv{v} {kind}: outage {fmt(sample.outage_ms, 1)} ms, lost {sample.lost}, "
            f"duplicates {sample.duplicates}, switch {fmt(sample.switch_ms, 1)} ms")

    @contextlib.contextmanager
    def attempt(self, v: int, kind: str, failures: list[int]) -> Iterator[None]:
        """One repetition: a failure is noted and the run goes on; three in a row end it."""
        try:
            yield
        except (TimeoutError, OSError, RuntimeError) as e:
            self.of(v, kind).errors.append(f"{type(e).__name__}: {e}")
            log(f"  IPv{v} {kind}: FAILED: {type(e).__name__}: {e}")
            failures[0] += 1
            if failures[0] >= 3:
                raise RuntimeError(f"{kind}: three failures in a row, giving up") from e
        else:
            failures[0] = 0


def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# -- the lab --------------------------------------------------------------------------------


class Rig:
    """One family: a lab, the headend, the recorders and sub1's membership, all kept across
    the configurations; the daemon, started afresh for each (``configure``).

    One lab for all: deleting a lab's namespaces goes on in the kernel after ``ip netns del``
    returns, holding the lock that carrier changes also need, and would delay the next
    lab's failovers by hundreds of milliseconds."""

    def __init__(self, fam: Fam, tmp: Path, seconds: float) -> None:
        self.fam = fam
        self.tmp = tmp
        self.procs: list[JsonProc] = []
        self.daemon: Proxy | None = None
        self.lab = Lab(topologies.proxy_lab(headend=True)).up()
        try:
            self.taps = self.recorder("proxy", "--packet", "u1", "--packet", "u2")
            self.sub = self.recorder("sub1", "--udp", "eth0")
            self.member = self.lab.receiver("sub1", "eth0", port=MEMBER_PORT)
            outputs = [HeadendOutput(p, "eth0", fam.group, fam.source) for p in PROVIDER.values()]
            self.headend = self.lab.headend(outputs, rate=RATE, count=int(RATE * seconds),
                                            max_seconds=seconds + 30)
        except BaseException:
            self.close()
            raise

    def configure(self, text: str) -> None:
        """Run the daemon afresh with ``text``; sub1 joins again; the channel reaches d1."""
        self.stop_daemon()
        for prov in PROVIDER.values():  # whatever the last configuration left behind
            self.set_link(prov, up=True)
            self.headend.resume(prov)
        self.daemon = self.lab.proxy(text, workdir=self.tmp, timeout=15)
        self.member.join(self.fam.asm, self.fam.group)
        wait_until(lambda: len(self.feeders()) == 1, 10, message="the channel does not reach d1")

    def stop_daemon(self) -> None:
        if self.daemon is None:
            return
        with contextlib.suppress(Exception):
            self.member.leave(self.fam.group)
        self.daemon.stop(grace=5.0)
        self.daemon = None

    def recorder(self, host: str, *args: str) -> JsonProc:
        assert self.lab.logdir is not None
        p = JsonProc(self.lab.ns(host), [sys.executable, HELPER, "--port", str(PORT), *args],
                     log=self.lab.logdir / f"{host}-recorder-{len(self.procs)}.log",
                     env=self.lab.python_env())
        self.procs.append(p)
        p.wait_event(lambda e: e.get("e") == "ready", 15)
        return p

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_daemon()
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                p.stop(grace=1.0)
        self.lab.down()

    # -- the daemon's view

    def status(self) -> dict[str, Any]:
        assert self.daemon is not None, "no daemon running"
        return self.daemon.status()

    def routes(self) -> list[dict[str, Any]]:
        assert self.daemon is not None, "no daemon running"
        return self.daemon.routes(self.fam.group)

    def feeders(self) -> set[str]:
        assert self.daemon is not None, "no daemon running"
        return self.daemon.feeders(self.fam.group)

    def standby_ready(self, *, data: bool) -> bool:
        """Both upstreams carry the channel and one feeds d1 (and both deliver, if watched)."""
        rs = self.routes()
        if {r["upstream"] for r in rs} != {"u1", "u2"}:
            return False
        if len({r["upstream"] for r in rs if "d1" in r["downstream"]}) != 1:
            return False
        return not data or all(r.get("data") == "delivering" for r in rs)

    def wait_fed_by(self, upstream: str, timeout: float = 5.0) -> int:
        """Poll until ``upstream`` alone feeds d1; the time it was seen (ns)."""
        wait_until(lambda: self.feeders() == {upstream}, timeout, 0.003,
                   message=lambda: f"d1 fed by {self.feeders() or 'nothing'}, not {upstream}")
        return time.time_ns()

    def usable(self, upstream: str) -> bool:
        return bool(self.status()["upstreams"][upstream]["usable"])

    # -- failures

    def set_link(self, prov: str, *, up: bool) -> int:
        """Take ``prov``'s eth0 down or up; the time just before (ns)."""
        t = time.time_ns()
        self.lab.set_link(prov, "eth0", up=up)
        return t

    def pause(self, prov: str) -> int:
        t = time.time_ns()
        self.headend.pause(prov)
        return t

    # -- what arrived

    def dump(self, rec: JsonProc, t0: int, t1: int) -> dict[str, list[Arrival]]:
        ident = str(time.monotonic_ns())
        start = len(rec.events())
        rec.send(f"dump {ident} {t0} {t1}")
        ev = rec.wait_event(lambda e: e.get("id") == ident, 10, start=start)
        return {k: [Arrival(s, t) for s, t in zip(*v, strict=True)]
                for k, v in ev["series"].items()}

    def steady(self, seconds: float = 1.0) -> Sample:
        """The last ``seconds`` at the subscriber, with no failure: the baseline."""
        end = time.time_ns()
        start = end - int(seconds * 1e9)
        o = outage(self.dump(self.sub, start - 1_000 * MS, end)["eth0"], start, end)
        return Sample(o.ms, len(o.lost), o.duplicates, None)

    def measure(self, event: int, switch: int | None) -> Sample:
        """The subscriber's view of the failure at ``event``: wait SETTLE, then look back."""
        time.sleep(SETTLE)
        end = time.time_ns()
        arrivals = self.dump(self.sub, event - 1_000 * MS, end)["eth0"]
        o = outage(arrivals, event, end)
        return Sample(o.ms, len(o.lost), o.duplicates,
                      None if switch is None else (switch - event) / MS)

    def duplicates(self) -> int:
        """Arrivals at sub1, so far, of a packet it had already received."""
        ident = str(time.monotonic_ns())
        start = len(self.sub.events())
        self.sub.send(f"stats {ident}")
        ev = self.sub.wait_event(lambda e: e.get("id") == ident, 10, start=start)
        return int(ev["duplicates"]["eth0"])

    def fill_plot(self, w: PlotWindow) -> None:
        """Read what arrived around ``w``'s failure: from 0.5 s before to 1.5 s after; for a
        return, from 0.3 s before to the end of its measurement (the next failure follows)."""
        if w.kind.startswith("return"):
            end = (w.switch if w.switch is not None else w.event + 2e9) + SETTLE * 1e9
            w.start, w.end = int(w.event - 0.3e9), int(end)
        else:
            w.start, w.end = int(w.event - 0.5e9), int(w.event + 1.5e9)
        taps = self.dump(self.taps, w.start, w.end)
        sub = self.dump(self.sub, w.start, w.end)
        w.series = {"u1 in": [a.time_ns for a in taps.get("u1", [])],
                    "u2 in": [a.time_ns for a in taps.get("u2", [])],
                    "sub1": [a.time_ns for a in sub.get("eth0", [])]}


# -- the failovers ----------------------------------------------------------------------------


def tie(rig: Rig, res: Results, n: int, *, silent: bool) -> None:
    """Kinds 1 and 3: the feeder of a robust-reception pair fails; the other feeds."""
    kind = "silent-hot" if silent else "carrier-hot"
    v = rig.fam.v
    failures = [0]
    for _ in range(n):
        with res.attempt(v, kind, failures):
            wait_until(lambda: rig.standby_ready(data=silent), 15,
                       message=lambda: f"no hot standby: {rig.routes()}")
            if not silent:
                time.sleep(1.0)
                res.add(v, "steady", rig.steady(1.0), 0, None, plot=False)
            (feeder,) = rig.feeders()
            other = "u2" if feeder == "u1" else "u1"
            prov = PROVIDER[feeder]
            t = rig.pause(prov) if silent else rig.set_link(prov, up=False)
            try:
                t_sw = rig.wait_fed_by(other)
                res.add(v, kind, rig.measure(t, t_sw), t, t_sw)
            finally:
                if silent:
                    rig.headend.resume(prov)
                else:
                    rig.set_link(prov, up=True)


def priorities(rig: Rig, res: Results, n: int, *, resilient: bool) -> None:
    """Kinds 2 and 6 (5 and 6b with ``resilient``): u1 loses carrier, u2 takes over; u1 comes
    back and takes the channel back after its hold-down."""
    fail, back = ("carrier-resilient", "return-resilient") if resilient else (
        "carrier-join", "return")
    v = rig.fam.v
    failures = [0]
    for _ in range(n):
        with res.attempt(v, fail, failures):
            wait_until(lambda: rig.feeders() == {"u1"}
                       and (not resilient or rig.standby_ready(data=False)), 15,
                       message=lambda: f"u1 does not feed alone: {rig.routes()}")
            t = rig.set_link("prov1", up=False)
            ok = False
            try:
                t_sw = rig.wait_fed_by("u2")
                res.add(v, fail, rig.measure(t, t_sw), t, t_sw)
                ok = True
            finally:
                t_up = rig.set_link("prov1", up=True)
            if ok:
                with res.attempt(v, back, [0]):
                    t_back = rig.wait_fed_by("u1", HOLD_DOWN + 10)
                    res.add(v, back, rig.measure(t_up, t_back), t_up, t_back)


def silent_join(rig: Rig, res: Results, n: int) -> None:
    """Kind 4: prov1 falls silent with no standby: the channel is joined on u2. Restored by
    resuming prov1: after its hold-down the channel is tried on u1 again, and taken back
    once u1 delivers (u2 feeds meanwhile)."""
    v = rig.fam.v
    failures = [0]
    for _ in range(n):
        with res.attempt(v, "silent-join", failures):
            wait_until(lambda: rig.feeders() == {"u1"} and len(rig.routes()) == 1, 15,
                       message=lambda: f"u1 does not carry the channel alone: {rig.routes()}")
            t = rig.pause("prov1")
            try:
                t_sw = rig.wait_fed_by("u2")
                res.add(v, "silent-join", rig.measure(t, t_sw), t, t_sw)
            finally:
                rig.headend.resume("prov1")
            rig.wait_fed_by("u1", HOLD_DOWN + 10)


@dataclass(frozen=True)
class Scenario:
    name: str
    text: str
    kinds: tuple[str, ...]
    run: Callable[[Rig, Results, int], None]


SCENARIOS = [
    Scenario("tie", config(HOLD), ("carrier-hot",),
             lambda rig, res, n: tie(rig, res, n, silent=False)),
    Scenario("tie, data 100 ms", config(HOLD, u1=DATA, u2=DATA), ("silent-hot",),
             lambda rig, res, n: tie(rig, res, n, silent=True)),
    Scenario("priorities", config(HOLD, u1=P1, u2=P2), ("carrier-join", "return"),
             lambda rig, res, n: priorities(rig, res, n, resilient=False)),
    Scenario("priorities, data 100 ms", config(HOLD, u1=P1 + DATA, u2=P2 + DATA),
             ("silent-join",), silent_join),
    Scenario("priorities, resilient", config(HOLD, RESILIENT, u1=P1, u2=P2),
             ("carrier-resilient", "return-resilient"),
             lambda rig, res, n: priorities(rig, res, n, resilient=True)),
]


def run_family(fam: Fam, scenarios: list[Scenario], n: int, res: Results, tmp: Path) -> None:
    log(f"IPv{fam.v}: a lab for {len(scenarios)} configurations, {n} failovers per kind")
    try:
        rig = Rig(fam, tmp, seconds=len(scenarios) * max(60.0, n * 8.0))
    except Exception as e:
        for sc in scenarios:
            res.aborted[fam.v, sc.name] = f"the lab did not start: {type(e).__name__}: {e}"
        log(f"  IPv{fam.v}: the lab did not start: {e}")
        return
    try:
        for sc in scenarios:
            run_scenario(rig, sc, n, res)
    finally:
        rig.close()


def run_scenario(rig: Rig, sc: Scenario, n: int, res: Results) -> None:
    v = rig.fam.v
    log(f"IPv{v}, {sc.name}")
    try:
        before = rig.duplicates()
        rig.configure(sc.text)
        sc.run(rig, res, n)
    except Exception as e:
        res.aborted[v, sc.name] = f"{type(e).__name__}: {e}"
        log(f"  IPv{v} {sc.name}: aborted: {e}")
        traceback.print_exc(file=sys.stderr)
    try:
        res.total_duplicates[v, sc.name] = rig.duplicates() - before
        for kind in sc.kinds:
            w = res.plots.get((v, kind))
            if w is not None and not w.series:
                rig.fill_plot(w)
    except Exception as e:
        log(f"  IPv{v} {sc.name}: could not read the recorders: {e}")
    if rig.daemon is not None:
        for line in rig.daemon.output().splitlines():
            if "Traceback" in line or " ERROR " in line:
                log(f"  daemon: {line}")


# -- the report -----------------------------------------------------------------------------


def table(res: Results, fams: list[int]) -> str:
    head = ["family", "kind", "n", "failed", "outage ms median", "worst", "lost median",
            "worst", "dups", "switch ms median", "target", "met"]
    body = []
    for v in fams:
        for k in KINDS:
            r = res.by.get((v, k.key))
            if r is None:
                body.append([f"IPv{v}", k.title, "0", "-", "-", "-", "-", "-", "-", "-",
                             target_text(k), "not run"])
                continue
            out = r.values("outage_ms")
            lost = r.values("lost")
            dups = sum(s.duplicates for s in r.samples)
            med, worst = pct(out, 50), (max(out) if out else None)
            met = "-"
            if r.samples:
                met = "yes"
                if k.target_ms is not None and worst is not None and worst > k.target_ms:
                    met = "median only" if med is not None and med <= k.target_ms else "NO"
                if dups:
                    met = "NO (duplicates)"
            elif r.errors:
                met = "FAILED"
            body.append([f"IPv{v}", k.title, str(len(r.samples)), str(len(r.errors)),
                         fmt(med), fmt(worst), fmt(pct(lost, 50), 0),
                         fmt(max(lost) if lost else None, 0), str(dups),
                         fmt(pct(r.values("switch_ms"), 50)), target_text(k), met])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
              for row in body]
    return "\n".join(lines)


def target_text(k: Kind) -> str:
    return (f"<= {k.target_ms:g} ms, " if k.target_ms is not None else "") + "no dup"


def plot(res: Results, fams: list[int], path: Path) -> str:
    """Packets/s per upstream (arriving at the proxy) and at the subscriber, one failover of
    each kind per family; the text to print about it."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: the bench extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return ("plot: matplotlib is not installed (pip install -e '.[bench]'); "
                "no plot written")
    fig, axes = plt.subplots(len(FAILURES), len(fams), squeeze=False, sharey=True,
                             figsize=(7 * len(fams), 2.3 * len(FAILURES)))
    for col, v in enumerate(fams):
        for row, k in enumerate(FAILURES):
            ax = axes[row][col]
            w = res.plots.get((v, k.key))
            ax.set_title(f"IPv{v}: {k.title}", fontsize=9)
            if w is None or not w.series:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center",
                        transform=ax.transAxes)
                continue
            for name, times in w.series.items():
                rates = rate_series(times, w.start, w.end, BIN_NS)
                xs = [(w.start + i * BIN_NS - w.event) / 1e9 for i in range(len(rates))]
                if name == "sub1":  # underneath, so the upstreams' lines show over it
                    ax.fill_between(xs, rates, step="post", color="0.6", alpha=0.5,
                                    linewidth=0, label="at sub1")
                else:
                    ax.step(xs, rates, where="post", label=f"{name[:2]} in (proxy)",
                            color="tab:blue" if name == "u1 in" else "tab:orange",
                            linestyle="-" if name == "u1 in" else "--", linewidth=1.2)
            ax.axvline(0, color="red", linestyle="--", linewidth=0.8, label="failure")
            if w.switch is not None:
                ax.axvline((w.switch - w.event) / 1e9, color="green", linestyle=":",
                           linewidth=1.0, label="new feeder seen")
            ax.text(0.99, 0.05, f"outage {fmt(w.sample.outage_ms)} ms, lost {w.sample.lost}",
                    ha="right", transform=ax.transAxes, fontsize=8)
            ax.set_ylim(0, RATE * 1.6)
            ax.set_ylabel("packets/s", fontsize=8)
            ax.tick_params(labelsize=7)
            if row == 0:
                ax.legend(fontsize=7, loc="upper left", ncol=5)
        axes[-1][col].set_xlabel("s from the failure (6: from the link coming back)")
    fig.suptitle(f"mcastproxy failover: packets/s arriving on u1 and u2 and reaching sub1 "
                 f"({RATE}/s per provider, {BIN_NS // MS} ms bins)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


def git_state() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "mcastproxy at an unknown commit"
    return f"mcastproxy {rev}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 failovers per kind, not 20")
    ap.add_argument("--family", choices=("4", "6", "both"), default="both")
    ap.add_argument("--reps", type=int, help="failovers per kind (default 20, 5 with --quick)")
    ap.add_argument("--plot", default="failover.png", metavar="PNG",
                    help="where to write the plot (default failover.png)")
    ap.add_argument("--only", help="comma-separated scenario numbers to run (1-5), for debugging")
    a = ap.parse_args(argv)
    n = a.reps or (5 if a.quick else 20)
    fams = [4, 6] if a.family == "both" else [int(a.family)]
    chosen = SCENARIOS
    if a.only:
        chosen = [SCENARIOS[int(i) - 1] for i in a.only.split(",")]
    res = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        for v in fams:
            run_family(FAMS[v], chosen, n, res, Path(tmp))
    print()
    print(f"bench_failover on {git_state()}: {n} failovers per kind at {RATE} packets/s, "
          f"{'quick' if a.quick else 'full'} run, {time.monotonic() - started:.0f} s")
    print(table(res, fams))
    print()
    print("targets: carrier loss with a hot standby <= 50 ms; silent provider with 100 ms data "
          "detection <= 200 ms; no duplicate ever ('met' takes the worst; 'median only': the "
          "median meets it, the worst does not)")
    print("duplicates at sub1 over each whole run (failovers and restores): " + ", ".join(
        f"IPv{v} {name}: {d}" for (v, name), d in sorted(res.total_duplicates.items())))
    for (v, kind), r in sorted(res.by.items()):
        for err in sorted(set(r.errors)):
            print(f"  failed: IPv{v} {KIND[kind].title}: {err} (x{r.errors.count(err)})")
    for (v, name), why in sorted(res.aborted.items()):
        print(f"  aborted: IPv{v} {name}: {why}")
    print(plot(res, fams, Path(a.plot)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
