"""Accounting arithmetic: counter deltas through wraps and resets, totals per upstream, link
and channel that outlive their routes, attribution across oif changes, bounded memory."""

from __future__ import annotations

import random

import pytest

from mcastproxy.accounting import Accounting, delta

S, G, G2 = bytes([10, 0, 1, 2]), bytes([232, 1, 1, 1]), bytes([232, 1, 1, 2])
S2 = bytes([10, 0, 1, 3])
R = ("u1", S, G)


def test_delta_grows_and_never_goes_back() -> None:
    assert delta(100, 150) == 50
    assert delta(7, 7) == 0
    # 32-bit counters (a 32-bit kernel's unsigned long): a wrap past 4 GiB.
    assert delta(2**32 - 10, 5, bits=32) == 15
    # A reset (the entry made again behind the daemon's back): counted from zero.
    assert delta(1_000_000, 300, bits=32) == 300
    assert delta(2**40, 300, bits=64) == 300
    # A reading beyond the counter's width (nonsense from a broken source) adds nothing.
    assert delta(2**33, 2**33 - 1, bits=32) == 0


@pytest.mark.parametrize("bits", [32, 64])
def test_delta_is_never_negative_nor_a_span(bits: int) -> None:
    rng = random.Random(bits)
    span = 1 << bits
    for _ in range(20_000):
        a, b = rng.randrange(span), rng.randrange(span)
        d = delta(a, b, bits=bits)
        assert 0 <= d < span
        if b >= a:
            assert d == b - a


def test_a_route_counts_for_its_upstream_and_the_links_in_its_oifs() -> None:
    acc = Accounting()
    acc.route_set(R, frozenset({"d1", "d2"}))
    acc.observe(R, 10, 13_000)
    assert acc.channels[R] == [10, 13_000]
    assert acc.upstreams["u1"] == [10, 13_000]
    assert acc.links == {"d1": [10, 13_000], "d2": [10, 13_000]}
    assert acc.on_link("d1", S, G) == (10, 13_000)
    assert acc.on_link("d1", None, G) == (10, 13_000)
    acc.observe(R, 10, 13_000)  # nothing new
    assert acc.upstreams["u1"] == [10, 13_000]


def test_an_oif_change_is_settled_with_the_reading_taken_before_it() -> None:
    acc = Accounting()
    acc.route_set(R, frozenset({"d1"}))
    acc.observe(R, 5, 500)
    # d2 joins: the 3 packets counted until the change are d1's alone.
    acc.route_set(R, frozenset({"d1", "d2"}), reading=(8, 800))
    acc.observe(R, 10, 1000)
    assert acc.on_link("d1", S, G) == (10, 1000)
    assert acc.on_link("d2", S, G) == (2, 200)
    # d1 leaves; a standby (no oifs) counts for the upstream only.
    acc.route_set(R, frozenset(), reading=(11, 1100))
    acc.observe(R, 20, 2000)
    assert acc.on_link("d1", S, G) == (11, 1100)
    assert acc.on_link("d2", S, G) == (3, 300)
    assert acc.upstreams["u1"] == [20, 2000]


def test_totals_survive_a_route_deleted_and_made_again() -> None:
    acc = Accounting()
    acc.route_set(R, frozenset({"d1"}))
    acc.observe(R, 100, 10_000)
    acc.route_deleted(R, reading=(120, 12_000))
    assert R not in acc.routes
    acc.route_set(R, frozenset({"d1"}))  # a new kernel entry counts from zero
    acc.observe(R, 3, 300)
    assert acc.channels[R] == [123, 12_300]
    assert acc.on_link("d1", S, G) == (123, 12_300)
    assert acc.links["d1"] == [123, 12_300]
    assert acc.resets == 0


def test_a_counter_that_falls_is_a_reset_not_a_negative_or_huge_delta() -> None:
    acc = Accounting(bits=64)
    acc.route_set(R, frozenset({"d1"}))
    acc.observe(R, 1000, 1_000_000)
    acc.observe(R, 4, 400)  # recreated behind our back
    assert acc.channels[R] == [1004, 1_000_400]
    assert acc.resets == 1
    acc32 = Accounting(bits=32)
    acc32.route_set(R, frozenset({"d1"}))
    acc32.observe(R, 10, 2**32 - 100)
    acc32.observe(R, 11, 50)  # the octet counter wrapped
    assert acc32.channels[R] == [11, 2**32 + 50]


def test_readings_of_unknown_routes_change_nothing() -> None:
    acc = Accounting()
    acc.observe(R, 5, 5)
    acc.route_deleted(R, reading=(5, 5))
    assert acc.channels == {}
    assert acc.upstreams == {}
    assert acc.links == {}


def test_any_source_delivery_sums_every_source_of_the_group() -> None:
    acc = Accounting()
    r2 = ("u2", S2, G)
    acc.route_set(R, frozenset({"d1"}))
    acc.route_set(r2, frozenset({"d1"}))
    acc.route_set(("u1", S, G2), frozenset({"d1"}))
    acc.observe(R, 1, 100)
    acc.observe(r2, 2, 200)
    acc.observe(("u1", S, G2), 4, 400)
    assert acc.on_link("d1", None, G) == (3, 300)
    assert acc.on_link("d1", S2, G) == (2, 200)
    assert sorted(acc.carrying("d1", None, G)) == sorted([R, r2])
    assert list(acc.carrying("d1", S2, G)) == [r2]
    assert list(acc.carrying("d2", None, G)) == []


def test_ended_channels_are_forgotten_beyond_the_idle_limit_but_sums_stay() -> None:
    acc = Accounting(idle_limit=100)
    for i in range(1000):
        route = ("u1", S, bytes([232, 1, i // 256, i % 256]))
        acc.route_set(route, frozenset({"d1"}))
        acc.observe(route, 1, 100)
        acc.route_deleted(route)
    assert len(acc.channels) == 100
    assert len(acc.delivered) == 100
    assert len(acc.delivered_group) == 100
    assert acc.by_group == {}
    assert acc.upstreams["u1"] == [1000, 100_000]
    assert acc.links["d1"] == [1000, 100_000]


def test_a_channel_made_again_before_it_is_forgotten_keeps_its_total() -> None:
    acc = Accounting(idle_limit=1)
    acc.route_set(R, frozenset({"d1"}))
    acc.observe(R, 1, 100)
    acc.route_deleted(R)
    acc.route_set(R, frozenset({"d1"}))
    other = ("u1", S, G2)
    acc.route_set(other, frozenset())
    acc.route_deleted(other)  # idle: only it, R is live again
    acc.observe(R, 2, 200)
    assert acc.channels[R] == [3, 300]
