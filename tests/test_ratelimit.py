"""Report rate limits (``ratelimit.ReportLimiter``), on the caller's clock: a subscriber's
bucket and the link's, a bounded table of senders, an attacker's flood and spoofing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcastproxy.drops import Drop
from mcastproxy.ratelimit import Rate, ReportLimiter

A, B = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))


def admitted(limiter: ReportLimiter, sender: bytes | None, now: float, n: int) -> int:
    return sum(limiter.admit(sender, now) is None for _ in range(n))


def test_a_subscriber_gets_its_burst_then_its_rate() -> None:
    lim = ReportLimiter(Rate(10, 20), None)
    assert admitted(lim, A, 0.0, 100) == 20
    assert lim.admit(A, 0.0) is Drop.SUBSCRIBER_RATE
    assert admitted(lim, A, 0.5, 100) == 5  # 10 a second
    assert admitted(lim, A, 100.0, 100) == 20  # never more than the burst held
    assert admitted(lim, B, 100.0, 3) == 3  # another subscriber is not held up


def test_the_link_bounds_what_spoofed_senders_get() -> None:
    lim = ReportLimiter(Rate(10, 20), Rate(100, 200))
    # 5,000 spoofed addresses, each with a full bucket of its own: the link's holds them.
    got = sum(lim.admit((i + 1).to_bytes(4), 0.0) is None for i in range(5000))
    assert got == 200
    assert lim.admit(A, 0.0) is Drop.LINK_RATE
    assert admitted(lim, A, 1.0, 1000) == 20  # refilled: 100 for the link, A's burst 20


def test_a_link_refusal_gives_the_subscriber_its_token_back() -> None:
    lim = ReportLimiter(Rate(1, 2), Rate(1, 1))
    assert lim.admit(A, 0.0) is None
    assert lim.admit(A, 0.0) is Drop.LINK_RATE
    assert lim.admit(A, 1.0) is None  # A still had a token: the link refused, not A


def test_the_unspecified_sender_counts_against_the_link_only() -> None:
    lim = ReportLimiter(Rate(1, 1), Rate(10, 5))
    assert admitted(lim, None, 0.0, 10) == 5
    assert lim.tracked == 0


def test_the_table_of_senders_is_bounded_least_recent_first() -> None:
    lim = ReportLimiter(Rate(1, 1), None, max_tracked=3)
    for i in range(3):
        assert lim.admit(bytes([i]), 0.0) is None
    assert lim.admit(bytes([0]), 0.0) is Drop.SUBSCRIBER_RATE  # heard again: most recent
    lim.admit(bytes([9]), 0.0)  # a fourth: the least recent (1) goes
    assert lim.tracked == 3
    assert lim.admit(bytes([1]), 0.0) is None  # forgotten, so a full bucket again
    assert lim.admit(bytes([0]), 0.0) is Drop.SUBSCRIBER_RATE  # 0 was kept, still empty


def test_settings_that_cannot_work_are_refused() -> None:
    for bad in ((0, 1), (-1, 5), (1, 0.5)):
        with pytest.raises(ValueError, match="rate limit"):
            Rate(*bad)
    with pytest.raises(ValueError, match="max_tracked"):
        ReportLimiter(None, None, max_tracked=0)


@given(st.lists(st.floats(0, 10), max_size=300), st.floats(0.5, 50), st.integers(1, 20))
def test_never_more_than_burst_plus_rate_times_time(
    gaps: list[float], rate: float, burst: int,
) -> None:
    lim = ReportLimiter(Rate(rate, burst), None)
    now = 0.0
    got = 0
    for gap in gaps:
        now += gap
        got += lim.admit(b"x", now) is None
    assert got <= burst + rate * now + 1e-6
