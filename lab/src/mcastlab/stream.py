"""What a subscriber saw of a numbered stream: duplicates, losses, outages and rates.

A headend (``mcastlab.headend``) numbers its packets; a receiver notes, for each, the
sequence number and its arrival time in nanoseconds (``Receiver.packets()``: ``seq``,
``time_ns``; or a tap's kernel timestamps). From those arrivals alone, whichever upstream
each packet came through:

- a **duplicate** is a sequence number received more than once;
- a **lost** packet is a sequence number, between two received, never received;
- the **outage** of a failover is the largest gap between two consecutive arrivals around
  it: from the last packet before to the first one after, in milliseconds;
- a **rate series** counts arrivals per time bin, in packets per second, for a plot.

Pure functions over ``Arrival`` tuples: no clock, no I/O.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

K = TypeVar("K", bound=Hashable)


class Arrival(NamedTuple):
    """One packet received: its sequence number and when it arrived (ns)."""

    seq: int
    time_ns: int


class Gap(NamedTuple):
    """Two consecutive arrivals (by time) and the silence between them."""

    before: Arrival
    after: Arrival

    @property
    def ms(self) -> float:
        """From the last packet before to the first after, in milliseconds."""
        return (self.after.time_ns - self.before.time_ns) / 1e6


@dataclass(frozen=True, slots=True)
class Outage:
    """What a subscriber lived through in a window around a failover."""

    gap: Gap | None  # the largest gap; None with fewer than two arrivals
    lost: tuple[int, ...]  # sequence numbers missing between the first and last received
    duplicates: int  # arrivals in the window of a sequence number already received

    @property
    def ms(self) -> float | None:
        """The outage in milliseconds: the largest gap."""
        return None if self.gap is None else self.gap.ms


def by_time(arrivals: Iterable[Arrival]) -> list[Arrival]:
    """The arrivals in time order (stable: equal times keep their order)."""
    return sorted(arrivals, key=lambda a: a.time_ns)


def duplicates(arrivals: Iterable[Arrival]) -> dict[int, int]:
    """Sequence number -> how many extra copies of it arrived, for those that arrived twice."""
    seen = Counter(a.seq for a in arrivals)
    return {seq: n - 1 for seq, n in sorted(seen.items()) if n > 1}


def duplicate_count(arrivals: Iterable[Arrival]) -> int:
    """Arrivals of a sequence number already received."""
    return sum(duplicates(arrivals).values())


def lost(arrivals: Iterable[Arrival], first: int | None = None,
         last: int | None = None) -> list[int]:
    """Sequence numbers in [first, last] never received (default: the lowest and highest
    received)."""
    seqs = {a.seq for a in arrivals}
    if not seqs:
        return []
    lo = min(seqs) if first is None else first
    hi = max(seqs) if last is None else last
    return [s for s in range(lo, hi + 1) if s not in seqs]


def window(arrivals: Sequence[Arrival], start_ns: int, end_ns: int, *,
           edges: bool = False) -> list[Arrival]:
    """The arrivals within [start_ns, end_ns] of ``arrivals`` (in time order); with
    ``edges``, also the last one before and the first one after, so a gap crossing an edge
    is whole."""
    times = [a.time_ns for a in arrivals]
    lo, hi = bisect_left(times, start_ns), bisect_right(times, end_ns)
    if edges:
        lo, hi = max(0, lo - 1), min(len(arrivals), hi + 1)
    return list(arrivals[lo:hi])


def gaps(arrivals: Sequence[Arrival]) -> list[Gap]:
    """Every pair of consecutive arrivals (in time order)."""
    ordered = by_time(arrivals)
    return [Gap(a, b) for a, b in itertools.pairwise(ordered)]


def largest_gap(arrivals: Iterable[Arrival], start_ns: int | None = None,
                end_ns: int | None = None) -> Gap | None:
    """The longest silence touching [start_ns, end_ns]: a gap that starts before the window
    or ends after it counts whole (from the last packet before to the first after)."""
    ordered = by_time(arrivals)
    if ordered and (start_ns is not None or end_ns is not None):
        lo = ordered[0].time_ns if start_ns is None else start_ns
        hi = ordered[-1].time_ns if end_ns is None else end_ns
        ordered = window(ordered, lo, hi, edges=True)
    return max(gaps(ordered), key=lambda g: g.ms, default=None)


def gap_around(arrivals: Iterable[Arrival], t_ns: int) -> Gap | None:
    """The gap in which ``t_ns`` falls: the last arrival at or before it, the first after."""
    ordered = by_time(arrivals)
    i = bisect_right([a.time_ns for a in ordered], t_ns)
    if i == 0 or i == len(ordered):
        return None
    return Gap(ordered[i - 1], ordered[i])


def outage(arrivals: Iterable[Arrival], start_ns: int, end_ns: int) -> Outage:
    """The outage in [start_ns, end_ns]: the largest gap (whole, across the edges); the
    packets lost from the last received before the window to the first after it; and the
    arrivals in the window of a packet already received (in it, or before it)."""
    ordered = by_time(arrivals)
    inside = window(ordered, start_ns, end_ns)
    earlier = {a.seq for a in ordered if a.time_ns < start_ns}
    seen: set[int] = set()
    dups = 0
    for a in inside:
        if a.seq in seen or a.seq in earlier:
            dups += 1
        seen.add(a.seq)
    missing = lost(window(ordered, start_ns, end_ns, edges=True))
    return Outage(largest_gap(ordered, start_ns, end_ns), tuple(missing), dups)


def rate_series(times_ns: Iterable[int], start_ns: int, end_ns: int,
                bin_ns: int = 10_000_000) -> list[float]:
    """Packets per second in each bin [start + k*bin, start + (k+1)*bin) up to ``end_ns``."""
    if bin_ns <= 0 or end_ns <= start_ns:
        raise ValueError("needs bin_ns > 0 and end_ns > start_ns")
    bins = -(-(end_ns - start_ns) // bin_ns)
    counts = [0] * bins
    for t in times_ns:
        if start_ns <= t < end_ns:
            counts[(t - start_ns) // bin_ns] += 1
    return [c * 1e9 / bin_ns for c in counts]


def rates_by(items: Iterable[tuple[K, int]], start_ns: int, end_ns: int,
             bin_ns: int = 10_000_000) -> dict[K, list[float]]:
    """A rate series per key (a sender, an upstream) from (key, arrival time ns) pairs."""
    times: dict[K, list[int]] = {}
    for key, t in items:
        times.setdefault(key, []).append(t)
    return {k: rate_series(ts, start_ns, end_ns, bin_ns) for k, ts in times.items()}
