"""A headend sends one numbered stream into both providers at once, from the same source.

Topology ``proxy_lab(headend=True)``, with no proxy running: the proxy's namespace only
listens, one receiver on each upstream link::

      headend (one process) --- output prov1 ---+--- output prov2
                                                |
      prov1 eth0 10.0.1.2, 10.0.9.1             prov2 eth0 10.0.2.2, 10.0.9.1
                 fd00:9::1  |                              fd00:9::1  |
                            u1 (receiver)  proxy  (receiver) u2 ------+
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from mcastlab import MAX_COUNT, MAX_RATE, HeadendOutput, JoinMode, Lab, LabError, wait_until
from mcastlab.headend import MAX_SECONDS, headend_args, packets_due
from mcastlab.receiver import Packet, Receiver
from mcastlab.topologies import HEADEND_SOURCE, proxy_lab

GROUPS = {4: ("239.1.1.1", JoinMode.IGMPV3_ASM), 6: ("ff1e::1:1", JoinMode.MLDV2_ASM)}


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def outputs(v: int) -> list[HeadendOutput]:
    group = GROUPS[v][0]
    return [HeadendOutput(p, "eth0", group, HEADEND_SOURCE[v]) for p in ("prov1", "prov2")]


def listening(lab: Lab, v: int) -> tuple[Receiver, Receiver]:
    group, mode = GROUPS[v]
    r1, r2 = lab.receiver("proxy", "u1"), lab.receiver("proxy", "u2")
    for r in (r1, r2):
        r.join(mode, group)
    return r1, r2


def seqs(rx: Receiver) -> list[int]:
    return [p.seq for p in rx.packets() if p.seq is not None]


@pytest.mark.netns
def test_both_outputs_carry_the_same_packets(make_lab: Callable[..., Lab], v: int) -> None:
    lab = make_lab(proxy_lab(headend=True))
    # The topology's interface indexes (so that carrier changes are urgent for the kernel).
    assert (lab.ifindex("proxy", "u1"), lab.ifindex("prov1", "eth0")) == (11, 21)
    r1, r2 = listening(lab, v)
    he = lab.headend(outputs(v), rate=1000, count=300)
    done = he.wait_done(5)
    assert done["why"] == "count"
    assert done["sent"] == {"prov1": 300, "prov2": 300}
    assert done["errors"] == {"prov1": 0, "prov2": 0}
    assert 0.299 <= done["end"] - done["start"] < 0.4  # the rate was kept
    got = [r.wait_packets(300, 5) for r in (r1, r2)]
    for packets in got:
        assert sorted(p.seq for p in packets) == list(range(300))  # all, once each
        assert {(p.source, p.sender) for p in packets} == {(HEADEND_SOURCE[v], "headend")}

    def sent(packets: list[Packet]) -> dict[int | None, int | None]:
        return {p.seq: p.sent_ns for p in packets}

    assert sent(got[0]) == sent(got[1])  # the same packet: the same send time


@pytest.mark.netns
def test_pause_stops_one_output_only(make_lab: Callable[..., Lab], v: int) -> None:
    lab = make_lab(proxy_lab(headend=True))
    r1, r2 = listening(lab, v)
    he = lab.headend(outputs(v), rate=1000, count=1500)
    r1.wait_packets(100, 5)
    paused = he.pause("prov1")
    wait_until(lambda: len(r2.packets()) >= paused["seq"] + 100, 5)
    resumed = he.resume("prov1")
    assert paused["seq"] + 50 < resumed["seq"]
    assert 0 < resumed["time_ns"] - paused["time_ns"] < 5e9
    done = he.wait_done(5)
    wait_until(lambda: len(r2.packets()) >= 1500, 5)
    wait_until(lambda: seqs(r1) and seqs(r1)[-1] == 1499, 5)
    pause_span = set(range(paused["seq"], resumed["seq"]))
    assert seqs(r1) == [s for s in range(1500) if s not in pause_span]
    assert seqs(r2) == list(range(1500))
    assert done["sent"] == {"prov1": 1500 - len(pause_span), "prov2": 1500}


def test_a_late_wake_up_sends_the_backlog_at_once_so_the_schedule_never_drifts() -> None:
    # Packet i is due at start + i ms, whatever the lateness of the wake-ups before it.
    assert packets_due(10.0, 9.999, 0.001, 1000) == 0
    assert packets_due(10.0, 10.0, 0.001, 1000) == 1
    assert packets_due(10.0, 10.0105, 0.001, 1000) == 11  # 10.5 ms late: 11 at once
    assert packets_due(10.0, 10.011, 0.001, 1000) == 12  # exactly due counts as due
    assert packets_due(10.0, 99.0, 0.001, 1000) == 1000  # never past the count
    # Float steps: i * interval is always due by its own instant.
    assert all(packets_due(0.0, i * (1 / 3000), 1 / 3000, 10**6) == i + 1 for i in range(3000))


@pytest.mark.netns
def test_a_stream_at_1000_packets_per_second_is_never_early_and_keeps_to_its_end(
    make_lab: Callable[..., Lab],
) -> None:
    lab = make_lab(proxy_lab(headend=True))
    r1, _ = listening(lab, 4)
    he = lab.headend(outputs(4), rate=1000, count=1000, report_every=0.25)
    done = he.wait_done(5)
    assert len(he.events("counts")) >= 3  # the periodic counts
    packets = sorted(r1.wait_packets(1000, 5), key=lambda p: p.seq or 0)
    assert [p.seq for p in packets] == list(range(1000))
    start_ns = int(done["start"] * 1e9)
    # No packet leaves before its instant (a clock-independent truth of the schedule) ...
    assert all((p.sent_ns or 0) >= start_ns + i * 1_000_000 - 1_000 for i, p in enumerate(packets))
    # ... and lateness does not add up: how late it runs on a busy machine is a figure
    # for a benchmark, not a test, but a drifting sender would take twice as long.
    assert done["end"] - done["start"] < 2.0


@pytest.mark.netns
def test_a_send_that_fails_is_counted_and_the_stream_goes_on(
    make_lab: Callable[..., Lab], v: int
) -> None:
    lab = make_lab(proxy_lab(headend=True))
    _, r2 = listening(lab, v)
    lab.set_link("prov1", "eth0", up=False)
    he = lab.headend(outputs(v), rate=1000, count=200)
    done = he.wait_done(5)
    assert done["errors"]["prov1"] == 200
    assert "ENETUNREACH" in done["first_error"]["prov1"]
    assert done["sent"] == {"prov1": 0, "prov2": 200}
    assert sorted(p.seq for p in r2.wait_packets(200, 5)) == list(range(200))


@pytest.mark.netns
def test_commands_that_are_wrong_say_so(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(proxy_lab(headend=True))
    he = lab.headend(outputs(4), rate=100, count=500)
    assert he.outputs == ["prov1", "prov2"]
    with pytest.raises(LabError, match="one of prov1, prov2"):
        he.pause("prov3")
    with pytest.raises(LabError, match="unknown command"):
        he.command("louder")
    counts = he.counts()
    assert counts["paused"] == []
    assert set(counts["sent"]) == {"prov1", "prov2"}
    done = he.finish()
    assert done["why"] == "quit"
    assert done["seq"] < 500
    with pytest.raises(LabError, match="no interface with this name"):
        lab.headend([HeadendOutput("prov1", "eth0", "239.1.1.1"),
                     HeadendOutput("prov2", "nope", "239.1.1.1")], rate=10, count=10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": MAX_RATE + 1, "count": 10}, "rate"),
        ({"rate": 10, "count": MAX_COUNT + 1}, "count"),
        ({"rate": 10, "count": 0}, "count"),
        ({"rate": 10, "count": 10, "max_seconds": MAX_SECONDS + 1}, "max seconds"),
    ],
)
def test_an_unbounded_or_heavy_stream_is_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        headend_args(outputs(4), **kwargs)  # type: ignore[arg-type]


def test_outputs_need_distinct_names_and_the_program_checks_bounds_too() -> None:
    same = [HeadendOutput("prov1", "eth0", "239.1.1.1")] * 2
    with pytest.raises(ValueError, match="names must differ"):
        headend_args(same, rate=10, count=10)
    spec = HeadendOutput("prov1", "eth0", "ff1e::1:1", "fd00:9::1").spec()
    assert HeadendOutput.parse(spec) == HeadendOutput("prov1", "eth0", "ff1e::1:1", "fd00:9::1",
                                                      "prov1")

    def headend(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "mcastlab.headend", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    p = headend("--rate", str(MAX_RATE * 2), "--count", "10", "--output", spec)
    assert p.returncode == 2
    assert "rate" in p.stderr
    # A namespace that is not there: said on stdout, before anything is sent.
    p = headend("--rate", "10", "--count", "10", "--output", "x,mcp-nothere-x,eth0,239.1.1.1")
    assert p.returncode == 1
    assert "No such file" in p.stdout
