"""The security log under a flood, on a virtual clock: lines a second bounded per event kind,
drops as per-second counts by interface and reason, not a line per packet."""

from __future__ import annotations

import json
from pathlib import Path

from mcastproxy.actions import Log
from mcastproxy.jsonlines import LineWriter
from mcastproxy.securitylog import SecurityLog

WALL = 1_800_000_000.0


def refused(n: int) -> Log:
    return Log("warning", "join-refused", f"IGMP join of (*, 239.2.0.{n % 250}) on d1 from "
               f"10.1.{n // 250 % 250}.{n % 250} refused: over the subscriber's max-groups",
               {"interface": "d1", "subscriber": f"10.1.{n // 250 % 250}.{n % 250}",
                "source": "*", "group": f"239.2.0.{n % 250}",
                "reason": "subscriber-max-groups"})


def read(writer: LineWriter) -> list[dict[str, object]]:
    writer.flush()
    return [json.loads(x) for x in writer.path.read_text().splitlines()]


def test_a_flood_of_refusals_is_bounded_lines_a_second(tmp_path: Path) -> None:
    writer = LineWriter(tmp_path / "security.log")
    sec = SecurityLog(writer, per_second=20)
    drops = {("d1", "subscriber-max-groups"): 0}
    for second in range(10):
        for i in range(10_000):  # ten thousand refused joins a second
            now = second + i / 10_000
            sec.event(refused(i), now, WALL + now)
        drops = {("d1", "subscriber-max-groups"): (second + 1) * 10_000,
                 ("d1", "subscriber-rate"): (second + 1) * 50_000}
        sec.tick(second + 1.0, WALL + second + 1, drops)
    lines = read(writer)
    # 20 refusals a second, one "suppressed" a second, two drop counts a second.
    assert len(lines) <= 10 * (20 + 1 + 2)
    events = [x for x in lines if x["event"] == "join-refused"]
    assert len(events) == 200
    assert events[0]["subscriber"] == "10.1.0.0"
    assert events[0]["reason"] == \
        "subscriber-max-groups"
    held = [x for x in lines if x["event"] == "suppressed"]
    assert sum(int(x["count"]) for x in held) == 10 * (10_000 - 20)  # type: ignore[call-overload]
    assert sec.suppressed == 10 * (10_000 - 20)
    counts = [x for x in lines if x["event"] == "drops"]
    assert len(counts) == 20
    assert {(x["interface"], x["reason"], x["count"]) for x in counts[-2:]} == {
        ("d1", "subscriber-max-groups", 10_000), ("d1", "subscriber-rate", 50_000)}


def test_drops_before_the_log_began_are_not_news(tmp_path: Path) -> None:
    writer = LineWriter(tmp_path / "security.log")
    sec = SecurityLog(writer)
    sec.baseline({("-", "truncated header"): 7})
    sec.tick(1.0, WALL, {("-", "truncated header"): 7})
    sec.tick(2.0, WALL + 1, {("-", "truncated header"): 9, ("d2", "ttl-not-one"): 1})
    lines = read(writer)
    assert [(x["interface"], x["reason"], x["count"], x["total"]) for x in lines] == [
        ("-", "truncated header", 2, 9), ("d2", "ttl-not-one", 1, 1)]


def test_only_security_events_are_written(tmp_path: Path) -> None:
    writer = LineWriter(tmp_path / "security.log")
    sec = SecurityLog(writer)
    sec.event(Log("info", "upstream-join", "joined 239.1.1.1 on u1", {}), 0.0, WALL)
    sec.event(Log("warning", "query-refused", "IGMP query on d1 from 10.1.0.9 dropped",
                  {"interface": "d1", "source": "10.1.0.9", "weird": object()}), 0.1, WALL)
    lines = read(writer)
    assert [x["event"] for x in lines] == ["query-refused"]
    assert lines[0]["source"] == "10.1.0.9"
    assert isinstance(lines[0]["weird"], str)
    assert lines[0]["time"] == "2027-01-15T08:00:00.000Z"


def test_forged_field_values_stay_inside_their_json_string(tmp_path: Path) -> None:
    writer = LineWriter(tmp_path / "security.log")
    sec = SecurityLog(writer)
    evil = '10.1.0.9"}\n{"event":"drops","count":-1'
    sec.event(Log("warning", "join-refused", evil, {"subscriber": evil}), 0.0, WALL)
    lines = read(writer)
    assert len(lines) == 1
    assert lines[0]["subscriber"] == evil
