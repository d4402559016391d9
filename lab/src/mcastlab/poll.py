"""Polling for a condition with a deadline: tests wait for what they expect, never a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    *,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises ``TimeoutError`` after ``timeout`` seconds; its text is ``message`` (or what a
    callable ``message`` returns then, so it can describe the state at the deadline).
    The predicate is always called at least once, and once more at the deadline.
    """
    if timeout < 0 or interval <= 0:
        raise ValueError("timeout must be >= 0 and interval > 0")
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        now = time.monotonic()
        if now >= deadline:
            break
        time.sleep(min(interval, deadline - now))
    text = message() if callable(message) else message
    raise TimeoutError(text or f"condition not met within {timeout} s: {predicate!r}")
