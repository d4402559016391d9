"""Upstream liveness (draft §5.1, §5.2, §7) on a virtual clock, alone and through the engine."""

from __future__ import annotations

import ipaddress

import pytest

from mcastproxy.config import parse_config
from mcastproxy.liveness import Change, Liveness

R1 = ipaddress.ip_address("10.0.1.2").packed
FORGER = ipaddress.ip_address("10.0.1.66").packed

CONFIG = """
igmp: {{}}
downstream: [{{interface: d1}}]
upstream:
  hold-down: {hold}
  candidates:
    - interface: u1
      priority: 10
      liveness: {{link: true, queries: true}}
      routers: [10.0.1.2]
      active-interval: 2s
    - interface: u2
"""


def live(hold: str = "5s") -> Liveness:
    lv = Liveness(parse_config(CONFIG.format(hold=hold)), 0.0)
    lv.link("u1", True, 0.0)
    lv.link("u2", True, 0.0)
    lv.pop_changes()
    return lv


def run_until(
    lv: Liveness, end: float, queries_every: float | None = None, start: float = 0.0
) -> list[tuple[float, Change]]:
    """Advance to ``end`` deadline by deadline, the router querying every ``queries_every``
    seconds from ``start`` if given; the changes, with when they were seen."""
    out: list[tuple[float, Change]] = []
    ticks = []
    if queries_every:
        t = start
        while t <= end:
            ticks.append(t)
            t += queries_every
    while True:
        d = lv.next_deadline()
        q = ticks[0] if ticks else None
        if q is not None and (d is None or q <= d):
            ticks.pop(0)
            lv.signal("u1", R1, q)
            out += [(q, c) for c in lv.pop_changes()]
            continue
        if d is None or d > end:
            return out
        lv.handle_timers(d)
        out += [(d, c) for c in lv.pop_changes()]


def test_queries_keep_an_upstream_alive_and_silence_kills_it() -> None:
    lv = live()
    assert lv.usable("u1")
    for t in (1.0, 2.5, 4.0):  # queries within the 2 s active interval
        assert lv.signal("u1", R1, t)
        assert run_until(lv, t) == []
    # Silence: unusable exactly one active interval after the last query.
    changes = run_until(lv, 10.0)
    assert [(t, c.usable) for t, c in changes] == [(6.0, False)]
    assert "no query or hello" in changes[0][1].cause
    assert lv.unusable() == {"u1"}


def test_only_the_configured_routers_count() -> None:
    # Draft §7: a host forging queries keeps neither a dead upstream alive ...
    lv = live()
    for t in (1.0, 2.0, 3.0):
        assert not lv.signal("u1", FORGER, t)
    assert [(t, c.usable) for t, c in run_until(lv, 10.0)] == [(2.0, False)]
    assert lv.describe("u1")["rejected_signals"] == 3
    # ... nor, once the real router speaks again, keeps it down (after the hold-down).
    changes = run_until(lv, 20.0, queries_every=1.0, start=11.0)
    assert [(t, c.usable) for t, c in changes if c.usable] == [(16.0, True)]


def test_link_loss_is_immediate_and_return_is_held_down() -> None:
    lv = live()
    lv.link("u1", False, 3.0)
    assert lv.pop_changes() == [Change("u1", False, "link down")]
    lv.link("u1", True, 3.5)
    lv.signal("u1", R1, 3.5)
    assert not lv.usable("u1")
    changes = run_until(lv, 20.0, queries_every=1.0, start=4.0)
    assert [(t, c.usable) for t, c in changes if c.usable] == [(8.5, True)]


def test_no_hold_down_when_nothing_else_is_usable() -> None:
    lv = live()
    lv.link("u2", False, 0.5)
    lv.link("u1", False, 1.0)
    lv.pop_changes()
    lv.link("u1", True, 2.0)
    lv.signal("u1", R1, 2.0)
    assert lv.usable("u1")  # anything beats nothing


@pytest.mark.parametrize("hold", ["0s", "never"])
def test_zero_and_never_hold_downs_return_at_once(hold: str) -> None:
    # "never" is about taking subscriptions back (the engine's business); the upstream
    # itself is usable again at once, for new subscriptions.
    lv = live(hold)
    lv.link("u1", False, 1.0)
    lv.link("u1", True, 2.0)
    lv.signal("u1", R1, 2.0)
    assert lv.usable("u1")


def test_an_override_wins_until_lifted() -> None:
    lv = live()
    lv.force("u1", False, 1.0)
    assert not lv.usable("u1")
    lv.signal("u1", R1, 1.5)
    assert not lv.usable("u1")
    lv.force("u1", None, 2.0)
    assert lv.usable("u1")  # active, and never held down for an override lifted


def test_reload_keeps_what_was_observed() -> None:
    lv = live()
    lv.link("u1", False, 1.0)
    again = Liveness(parse_config(CONFIG.format(hold="5s")), 2.0, previous=lv)
    assert again.unusable() == {"u1"}
