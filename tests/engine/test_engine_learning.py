"""Learned rates and empty channels through the engine (``learning``), on a virtual clock:
measured rates (``RatesMeasured``, as the daemon hands them from the kernel's counters) become
channels' costs where the table has no entry, counted channels are counted again at them, and
a channel asked with no traffic is found empty, logged, and refused to a new subscriber.

    u1 (upstream) -- proxy -- d1: hosts 10.1.0.11, .12, .13
"""

from __future__ import annotations

from harness import World, ip

from mcastproxy.drops import Drop
from mcastproxy.events import RatesMeasured
from mcastproxy.status import document

M = 1_000_000
S = "192.0.2.9"


def config(bandwidth: str, d1: str = "") -> str:
    return ("igmp: {version: 3}\n"
            f"policy: {{bandwidth: {bandwidth}}}\n"
            f"downstream: [{{interface: d1{', policy: ' + d1 if d1 else ''}}}, "
            "{interface: d2}]\nupstream: {candidates: [{interface: u1}]}\n")


def measured(w: World, **rates: float) -> None:
    """``g1=2e6``: (S, 239.1.1.1) at 2 Mbit/s."""
    w.handle(RatesMeasured({(ip(S), ip(f"239.1.1.{name[1:]}")): bps
                            for name, bps in rates.items()}))


def link_used(w: World) -> int:
    """d1's bandwidth in use, as status shows it."""
    admission = document(w.engine.snapshot(), ["d1", "d2"])["downstream"]["d1/igmp"][
        "admission"]
    return int(admission["bandwidth-used"])


def test_rates_are_learned_from_a_2_and_an_8_mbit_channel() -> None:
    w = World.make(config("{learn: true, learn-margin: 0.25}"))
    w.join("d1", "10.1.0.11", "239.1.1.1", S)
    w.join("d1", "10.1.0.12", "239.1.1.2", S)
    assert link_used(w) == 0  # nothing known yet: the default rate, 0
    measured(w, g1=2 * M, g2=8 * M)
    assert link_used(w) == 2_500_000 + 10 * M  # counted again at what flows, with the margin
    # A small wobble does not move a learned rate; a real change does.
    measured(w, g1=2.1 * M, g2=4 * M)
    assert link_used(w) == 2_500_000 + 5 * M


def test_a_learned_rate_holds_a_later_join_to_the_budget() -> None:
    w = World.make(config("{learn: true, learn-margin: 0}", d1="{max-bandwidth: 10M}"))
    w.join("d1", "10.1.0.11", "239.1.1.1", S)
    w.join("d1", "10.1.0.12", "239.1.1.2", S)
    measured(w, g1=6 * M, g2=3 * M)
    w.leave("d1", "10.1.0.11", "239.1.1.1", S)
    w.run_for(5)  # the last-member queries go unanswered: the channel leaves the link
    assert link_used(w) == 3 * M
    w.clear()
    w.join("d1", "10.1.0.13", "239.1.1.1", S)  # 6M learned, 3M in use, 10M budget: fits
    assert link_used(w) == 9 * M
    w.join("d1", "10.1.0.13", "239.1.1.3", S)  # unknown: free until it is measured
    measured(w, g3=2 * M)
    assert link_used(w) == 11 * M  # over: learned after it was admitted
    w.leave("d1", "10.1.0.13", "239.1.1.3", S)
    w.run_for(5)
    w.join("d1", "10.1.0.12", "239.1.1.3", S)  # now known: 2M does not fit in 1M
    refused = w.engine.dropped.by_interface()["d1"][Drop.LINK_MAX_BANDWIDTH]
    assert refused == 1


def test_an_empty_channel_is_found_logged_and_refused_to_a_new_subscriber() -> None:
    w = World.make(config("{empty-after: 30, refuse-empty-for: 300}"))
    w.join("d1", "10.1.0.11", "239.1.1.1", S)
    for _ in range(4):  # 40 s of measurements with no traffic on it
        w.run_for(10)
        measured(w, g2=1 * M)
    assert w.engine.counts["empty channel"] == 1
    (logged,) = [log for log in w.logs if log.event == "empty-channel"]
    assert "(192.0.2.9, 239.1.1.1)" in logged.message
    w.join("d1", "10.1.0.12", "239.1.1.1", S)  # a repeat: refused
    assert w.engine.dropped.by_interface()["d1"][Drop.EMPTY_CHANNEL] == 1
    w.join("d1", "10.1.0.11", "239.1.1.1", S)  # its holder's refresh is not
    assert w.engine.dropped.by_interface()["d1"][Drop.EMPTY_CHANNEL] == 1
    # Traffic on it clears it: a new subscriber is admitted.
    w.run_for(10)
    measured(w, g1=1 * M)
    w.join("d1", "10.1.0.13", "239.1.1.1", S)
    assert w.engine.dropped.by_interface()["d1"][Drop.EMPTY_CHANNEL] == 1
    assert w.engine.counts["empty channel"] == 1  # counted once


def test_an_empty_channel_is_refused_only_for_refuse_empty_for() -> None:
    w = World.make(config("{empty-after: 30, refuse-empty-for: 60}"))
    w.join("d1", "10.1.0.11", "239.1.1.1", S)
    for _ in range(4):
        w.run_for(10)
        measured(w)
    w.join("d1", "10.1.0.12", "239.1.1.1", S)
    assert w.engine.dropped.by_interface()["d1"][Drop.EMPTY_CHANNEL] == 1
    for _ in range(7):  # 70 s more, still nothing: the refusal ends, the count stays
        w.run_for(10)
        w.join("d1", "10.1.0.11", "239.1.1.1", S)  # the holder keeps it
        measured(w)
    w.join("d1", "10.1.0.12", "239.1.1.1", S)
    assert w.engine.dropped.by_interface()["d1"][Drop.EMPTY_CHANNEL] == 1
    assert w.engine.counts["empty channel"] == 1


def test_without_empty_after_nothing_is_watched() -> None:
    w = World.make(config("{learn: true}"))
    w.join("d1", "10.1.0.11", "239.1.1.1", S)
    for _ in range(10):
        w.run_for(10)
        measured(w)
    assert w.engine.counts.get("empty channel", 0) == 0


def test_a_flood_of_measurements_of_unasked_channels_keeps_nothing() -> None:
    w = World.make(config("{empty-after: 30}"))
    w.handle(RatesMeasured({(ip(f"192.0.2.{i % 250 + 1}"), ip(f"239.9.{i // 250}.1")): 1e6
                            for i in range(5000)}))
    learning = w.engine._learning
    assert learning.seen == {}
    assert learning.asked == {}
