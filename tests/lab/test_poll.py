"""wait_until: returns the predicate's value, or raises TimeoutError with a useful text."""

from __future__ import annotations

import itertools

import pytest

from mcastlab import wait_until


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 3 and "done", timeout=5, interval=0.001) == "done"


def test_times_out_with_the_message_of_the_moment() -> None:
    state = {"n": 0}

    def never() -> bool:
        state["n"] += 1
        return False

    with pytest.raises(TimeoutError, match=r"still waiting after \d+ tries"):
        wait_until(
            never,
            timeout=0.05,
            interval=0.01,
            message=lambda: f"still waiting after {state['n']} tries",
        )
    assert state["n"] >= 2  # at least once at the start and once at the deadline


def test_zero_timeout_tries_once() -> None:
    assert wait_until(lambda: 42, timeout=0) == 42
