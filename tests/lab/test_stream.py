"""Stream analysis: duplicates, losses, gaps, outages and rates from (seq, time) arrivals."""

from __future__ import annotations

import pytest

from mcastlab.stream import (
    Arrival,
    Gap,
    duplicate_count,
    duplicates,
    gap_around,
    largest_gap,
    lost,
    outage,
    rate_series,
    rates_by,
    window,
)

MS = 1_000_000


def steady(seqs: range, t0_ms: float = 0.0, every_ms: float = 1.0) -> list[Arrival]:
    """One arrival per sequence number, ``every_ms`` apart from ``t0_ms``."""
    return [Arrival(s, round((t0_ms + i * every_ms) * MS)) for i, s in enumerate(seqs)]


# A failover: 0..99 at 1 ms, silence, then 140..199 from t = 140 ms (40 packets lost).
FAILOVER = steady(range(100)) + steady(range(140, 200), t0_ms=140.0)


def test_duplicates_are_sequence_numbers_received_more_than_once() -> None:
    arrivals = [*steady(range(5)), Arrival(2, 9 * MS), Arrival(2, 10 * MS), Arrival(4, 11 * MS)]
    assert duplicates(arrivals) == {2: 2, 4: 1}
    assert duplicate_count(arrivals) == 3
    assert duplicates(steady(range(5))) == {}
    assert duplicate_count([]) == 0


@pytest.mark.parametrize(
    ("arrivals", "first", "last", "missing"),
    [
        (FAILOVER, None, None, list(range(100, 140))),
        (steady(range(3, 6)), 0, 7, [0, 1, 2, 6, 7]),  # bounds from the sender
        ([Arrival(5, 0), Arrival(3, 1), Arrival(4, 2)], None, None, []),  # reordered, all in
        ([], None, None, []),
    ],
)
def test_lost_are_the_sequence_numbers_never_received(
    arrivals: list[Arrival], first: int | None, last: int | None, missing: list[int]
) -> None:
    assert lost(arrivals, first, last) == missing


def test_window_with_and_without_its_edges() -> None:
    xs = steady(range(10), every_ms=10.0)  # 0, 10, ..., 90 ms
    assert [a.seq for a in window(xs, 25 * MS, 50 * MS)] == [3, 4, 5]
    assert [a.seq for a in window(xs, 25 * MS, 50 * MS, edges=True)] == [2, 3, 4, 5, 6]
    assert [a.seq for a in window(xs, 0, 5 * MS, edges=True)] == [0, 1]  # nothing before
    assert [a.seq for a in window(xs, 92 * MS, 99 * MS, edges=True)] == [9]  # after the end


def test_the_largest_gap_is_the_failover() -> None:
    g = largest_gap(FAILOVER)
    assert g == Gap(Arrival(99, 99 * MS), Arrival(140, 140 * MS))
    assert g is not None
    assert g.ms == pytest.approx(41.0)
    # Limited to a window that the silence starts before and ends after: still whole.
    g = largest_gap(FAILOVER, 110 * MS, 120 * MS)
    assert g is not None
    assert g.ms == pytest.approx(41.0)
    # A window of steady traffic only: the usual 1 ms.
    g = largest_gap(FAILOVER, 150 * MS, 190 * MS)
    assert g is not None
    assert g.ms == pytest.approx(1.0)
    assert largest_gap([Arrival(0, 0)]) is None
    assert largest_gap([]) is None


def test_gaps_are_taken_in_time_order_whatever_the_input_order() -> None:
    shuffled = list(reversed(FAILOVER))
    g = largest_gap(shuffled)
    assert g is not None
    assert (g.before.seq, g.after.seq) == (99, 140)


def test_gap_around_an_event_time() -> None:
    g = gap_around(FAILOVER, 120 * MS)
    assert g is not None
    assert (g.before.seq, g.after.seq) == (99, 140)
    g = gap_around(FAILOVER, 99 * MS)  # at a packet: from it to the next
    assert g is not None
    assert (g.before.seq, g.after.seq) == (99, 140)
    assert gap_around(FAILOVER, -1) is None  # nothing before
    assert gap_around(FAILOVER, 500 * MS) is None  # nothing after: not over yet


def test_outage_around_a_failover() -> None:
    o = outage(FAILOVER, 50 * MS, 180 * MS)
    assert o.ms == pytest.approx(41.0)
    assert o.lost == tuple(range(100, 140))
    assert o.duplicates == 0


def test_outage_counts_duplicates_across_a_switch() -> None:
    # A make-before-break return that overlaps: 95..99 arrive again from the other side,
    # one of them after the window opened and its first copy before.
    arrivals = [*steady(range(100)), *steady(range(95, 110), t0_ms=100.5)]
    o = outage(arrivals, 100 * MS, 120 * MS)
    assert o.duplicates == 5
    assert o.lost == ()
    assert duplicate_count(arrivals) == 5


def test_outage_with_no_packets_in_the_window() -> None:
    # The window opens in the silence (the failure was noticed after the last packet):
    # the gap and the losses still count from the last packet before to the first after.
    o = outage(FAILOVER, 110 * MS, 130 * MS)
    assert o.ms == pytest.approx(41.0)
    assert o.lost == tuple(range(100, 140))
    assert o.duplicates == 0
    o = outage(FAILOVER, 120 * MS, 180 * MS)
    assert o.lost == tuple(range(100, 140))
    assert outage([], 0, MS).ms is None


def test_rate_series_counts_per_bin_in_packets_per_second() -> None:
    rates = rate_series([a.time_ns for a in FAILOVER], 0, 200 * MS, 20 * MS)
    assert len(rates) == 10
    assert rates[:5] == [1000.0] * 5  # 0..99 ms
    assert rates[5:7] == [0.0, 0.0]  # 100..139 ms: silent
    assert rates[7:] == [1000.0] * 3
    assert rate_series([5, 15], 0, 25, 10) == [1e8, 1e8, 0.0]  # a short last bin
    with pytest.raises(ValueError, match="bin"):
        rate_series([], 0, 10, 0)


def test_rates_by_key() -> None:
    items = [("u1", a.time_ns) for a in FAILOVER[:100]] + [
        ("u2", a.time_ns) for a in FAILOVER[100:]]
    rates = rates_by(items, 0, 200 * MS, 100 * MS)
    assert rates == {"u1": [1000.0, 0.0], "u2": [0.0, 600.0]}
