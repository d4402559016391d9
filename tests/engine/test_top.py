"""``mcastproxy top``'s frame, made from status documents of an engine on a virtual clock:
upstreams with their load, links with subscribers and refusals, channels by subscribers with
their upstream, links and rate (from the accounting's byte counters between two answers)."""

from __future__ import annotations

import datetime

from harness import World

from mcastproxy.status import document
from mcastproxy.top import frame

CONFIG = """
igmp: {version: 3}
policy:
  group-policy: [{action: deny, group: 239.255.0.0/16}]
  bandwidth: {channels: [{group: 239.1.0.0/16, rate: 4M}]}
downstream: [{interface: d1, policy: {max-bandwidth: 100M}}, {interface: d2}]
upstream:
  ties: share
  candidates: [{interface: u1, max-bandwidth: 1G}, {interface: u2, max-bandwidth: 1G}]
"""
AT = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)


def state(w: World) -> dict:
    return {"pid": 7, "config": "/etc/mcastproxy/mcastproxy.yaml",
            **document(w.engine.snapshot(w.now), ["d1", "d2"], now=w.now)}


def test_a_frame_shows_upstreams_links_channels_and_refusals() -> None:
    w = World.make(CONFIG)
    for h in range(11, 14):
        w.join("d1", f"10.1.0.{h}", "239.1.0.1")
    w.join("d2", "10.2.0.11", "239.1.0.2")
    w.join("d1", "10.1.0.11", "239.255.0.1")  # refused by the policy
    w.flow("u1", "192.0.2.9", "239.1.0.1")
    out = frame(state(w), at=AT)
    assert "mcastproxy top  2026-12-03 12:00:00Z  pid 7" in out
    lines = out.splitlines()
    d1 = next(line for line in lines if line.startswith("d1/igmp"))
    assert d1.split()[1:5] == ["yes", "1", "3", "1"]  # querier, groups, subscribers, refused
    assert "4Mbit/s of 100Mbit/s" in d1
    channels = lines[lines.index(next(x for x in lines if x.startswith("CHANNEL"))) + 1:]
    first = channels[0].split()
    assert first[:2] == ["(192.0.2.9,", "239.1.0.1)"]
    assert first[3:5] == ["d1", "3"]  # the links it feeds, its subscribers
    assert any("239.1.0.2" in line and "no data yet" in line for line in channels)
    assert "denied by a rule of the global group-policy" in out


def test_rates_come_from_the_accounting_between_two_answers() -> None:
    w = World.make(CONFIG)
    w.join("d1", "10.1.0.11", "239.1.0.1")
    w.flow("u1", "192.0.2.9", "239.1.0.1")
    channel = {"upstream": "u1", "source": "192.0.2.9", "group": "239.1.0.1"}
    before = {**state(w), "accounting": {"channels": [{**channel, "bytes": 1_000_000}]}}
    after = {**state(w), "accounting": {"channels": [{**channel, "bytes": 3_500_000}]}}
    out = frame(after, before, 2.0, at=AT)  # 2.5 MB in 2 s: 10 Mbit/s
    assert "10Mbit/s" in next(line for line in out.splitlines() if "239.1.0.1)" in line)
    # A counter that fell (a route made again) never shows a negative rate.
    out = frame(before, after, 2.0, at=AT)
    assert "0bit/s" in next(line for line in out.splitlines() if "239.1.0.1)" in line)


def test_a_long_list_is_cut_to_its_rows_and_says_so() -> None:
    w = World.make(CONFIG)
    for g in range(1, 31):
        w.join("d1", "10.1.0.11", f"239.2.0.{g}")  # unrated: all admitted
    out = frame(state(w), rows=5, at=AT)
    assert "... 25 more" in out


def test_an_empty_or_partial_answer_still_makes_a_frame() -> None:
    assert "(no channels)" in frame({}, at=AT)
    assert "(no channels)" in frame({"upstreams": {"u1": {"usable": False}},
                                     "downstream": {"d1/igmp": {}}}, at=AT)
