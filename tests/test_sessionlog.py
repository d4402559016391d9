"""The session log on a virtual clock: start and end lines, bytes delivered during the session,
zap time from the join to the first packet, any-source sessions, sessions ended at stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcastproxy.accounting import Accounting, Route
from mcastproxy.actions import Session
from mcastproxy.jsonlines import LineWriter
from mcastproxy.sessionlog import PENDING, ZAP_WAIT, SessionLog, iso

H = bytes([10, 1, 0, 7])
S, S2, G = bytes([10, 0, 1, 2]), bytes([10, 0, 1, 3]), bytes([232, 1, 1, 1])
R = ("u1", S, G)
WALL = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Kernel:
    """Route counters a test sets, read as the daemon reads them."""

    def __init__(self, acc: Accounting) -> None:
        self.acc = acc
        self.counters: dict[Route, tuple[int, int]] = {}
        self.reads = 0

    def read(self, route: Route) -> None:
        self.reads += 1
        if route in self.counters:
            self.acc.observe(route, *self.counters[route])


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Accounting, Kernel, SessionLog, LineWriter]:
    acc = Accounting()
    kernel = Kernel(acc)
    writer = LineWriter(tmp_path / "sessions.log")
    return acc, kernel, SessionLog(acc, writer, kernel.read), writer


def logged(log: SessionLog, writer: LineWriter) -> list[dict[str, object]]:
    log.flush()  # the lines noted are made at a flush
    writer.flush()
    return [json.loads(x) for x in writer.path.read_text().splitlines()]


def join(source: bytes | None = S, start: bool = True, subscriber: bytes = H) -> Session:
    return Session("d1", 4, subscriber, source, G, start)


def test_iso_times_are_utc_with_milliseconds() -> None:
    assert iso(WALL + 0.25) == "2027-01-15T08:00:00.250Z"


def test_a_session_has_a_start_line_and_an_end_line_with_its_bytes(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    acc.route_set(R, frozenset({"d1", "d2"}))
    kernel.counters[R] = (100, 130_000)  # the channel flowed to d2 before the join
    log.handle(join(), 10.0, WALL)
    kernel.counters[R] = (102, 132_600)
    for route in log.zap_routes(10.05):
        kernel.read(route)
    log.check_zaps(10.05)
    kernel.counters[R] = (150, 195_000)
    log.handle(join(start=False), 70.5, WALL + 60.5)
    start, end = logged(log, writer)
    assert start == {"event": "start", "time": iso(WALL), "link": "d1", "family": 4,
                     "subscriber": "10.1.0.7", "source": "10.0.1.2", "group": "232.1.1.1",
                     "upstream": ["u1"], "start": iso(WALL)}
    assert end["event"] == "end"
    assert end["end"] == iso(WALL + 60.5)
    assert end["duration"] == 60.5
    assert end["packets"] == 50
    assert end["bytes"] == 65_000
    assert end["zap-ms"] == 50.0
    assert end["upstream"] == ["u1"]
    assert end["ended-by"] == "leave"
    assert log.open == {}


def test_zap_is_null_when_no_packet_comes_and_the_wait_is_bounded(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    acc.route_set(R, frozenset({"d1"}))
    kernel.counters[R] = (0, 0)
    log.handle(join(), 0.0, WALL)
    assert log.waiting == 1
    for tick in range(1, 20):
        for route in log.zap_routes(tick * 0.05):
            kernel.read(route)
        log.check_zaps(tick * 0.05)
    assert log.waiting == 1
    assert log.zap_routes(ZAP_WAIT + 1) == set()  # gave up: no more readings for it
    assert log.waiting == 0
    log.handle(join(start=False), ZAP_WAIT + 2, WALL + ZAP_WAIT + 2)
    end = logged(log, writer)[-1]
    assert end["zap-ms"] is None
    assert end["bytes"] == 0


def test_the_first_packet_of_a_route_set_after_the_join_is_the_zap(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    log.handle(join(), 5.0, WALL)  # no route yet: the join goes upstream first
    assert log.zap_routes(5.05) == set()
    acc.route_set(R, frozenset({"d1"}))  # the first packet made the upcall
    kernel.counters[R] = (1, 1316)
    for route in log.zap_routes(5.3):
        kernel.read(route)
    log.check_zaps(5.3)
    log.handle(join(start=False), 6.0, WALL + 1)
    end = logged(log, writer)[-1]
    assert end["zap-ms"] == 300.0
    assert end["upstream"] == ["u1"]
    assert end["packets"] == 1


def test_an_any_source_session_sums_every_source_and_names_each_upstream(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    r2 = ("u2", S2, G)
    acc.route_set(R, frozenset({"d1"}))
    log.handle(join(source=None), 0.0, WALL)
    acc.route_set(r2, frozenset({"d1"}))
    kernel.counters[R] = (3, 300)
    kernel.counters[r2] = (4, 400)
    log.handle(join(source=None, start=False), 1.0, WALL + 1)
    end = logged(log, writer)[-1]
    assert end["source"] == "*"
    assert end["upstream"] == ["u1", "u2"]
    assert (end["packets"], end["bytes"]) == (7, 700)


def test_two_subscribers_each_get_the_link_s_copy_during_their_own_session(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    other = bytes([10, 1, 0, 8])
    acc.route_set(R, frozenset({"d1"}))
    log.handle(join(), 0.0, WALL)
    kernel.counters[R] = (10, 1000)
    log.handle(join(subscriber=other), 1.0, WALL + 1)
    kernel.counters[R] = (30, 3000)
    log.handle(join(start=False), 2.0, WALL + 2)
    log.handle(join(start=False, subscriber=other), 2.0, WALL + 2)
    ends = [x for x in logged(log, writer) if x["event"] == "end"]
    assert [(x["subscriber"], x["bytes"]) for x in ends] == [("10.1.0.7", 3000),
                                                             ("10.1.0.8", 2000)]


def test_repeated_starts_and_unknown_ends_change_nothing(parts) -> None:  # type: ignore[no-untyped-def]
    _acc, _kernel, log, writer = parts
    log.handle(join(start=False), 0.0, WALL)  # began before a restart: not ours
    log.handle(join(), 1.0, WALL + 1)
    log.handle(join(), 2.0, WALL + 2)
    assert len(log.open) == 1
    assert [x["event"] for x in logged(log, writer)] == ["start"]


def test_open_sessions_end_at_stop(parts) -> None:  # type: ignore[no-untyped-def]
    _acc, _kernel, log, writer = parts
    for i in range(5):
        log.handle(join(subscriber=bytes([10, 1, 0, 10 + i])), 0.0, WALL)
    log.end_all(9.0, WALL + 9)
    ends = [x for x in logged(log, writer) if x["event"] == "end"]
    assert len(ends) == 5
    assert {x["ended-by"] for x in ends} == {"stop"}
    assert log.open == {}


def test_without_a_writer_sessions_are_kept_but_nothing_written(tmp_path: Path) -> None:
    acc = Accounting()
    log = SessionLog(acc, None, lambda route: None)
    log.handle(join(), 0.0, WALL)
    log.handle(join(start=False), 1.0, WALL + 1)
    assert log.ended == 1


def test_subscribers_waiting_on_one_channel_each_get_their_zap(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    acc.route_set(R, frozenset({"d1"}))
    kernel.counters[R] = (0, 0)
    first, second, third = (bytes([10, 1, 0, n]) for n in (11, 12, 13))
    log.handle(join(subscriber=first), 0.0, WALL)

    def tick(now: float) -> None:
        for route in log.zap_routes(now):
            kernel.read(route)
        log.check_zaps(now)

    tick(0.05)  # no packet yet: the counters as they stand are noted
    log.handle(join(subscriber=second), 0.07, WALL + 0.07)  # joins while nothing moves
    tick(0.1)
    assert log.waiting == 2
    kernel.counters[R] = (1, 1316)  # the first packet
    log.handle(join(subscriber=third), 0.12, WALL + 0.12)  # after it: waits for the next
    tick(0.15)
    assert log.waiting == 1
    kernel.counters[R] = (2, 2632)
    tick(0.2)
    assert log.waiting == 0
    for who in (first, second, third):
        log.handle(join(subscriber=who, start=False), 1.0, WALL + 1)
    zaps = {x["subscriber"]: x["zap-ms"] for x in logged(log, writer) if x["event"] == "end"}
    assert zaps == {"10.1.0.11": 150.0, "10.1.0.12": 80.0, "10.1.0.13": 80.0}


def test_a_start_line_made_later_says_what_was_so_at_the_start(parts) -> None:  # type: ignore[no-untyped-def]
    acc, kernel, log, writer = parts
    acc.route_set(R, frozenset({"d1"}))
    log.handle(join(source=None), 0.0, WALL)
    r2 = ("u2", S2, G)
    acc.route_set(r2, frozenset({"d1"}))  # a second source, from another upstream
    for route in log.zap_routes(0.05):
        kernel.read(route)
    log.check_zaps(0.05)
    assert writer.path.read_text() == ""  # nothing made yet: lines are made at a flush
    log.handle(join(source=None, start=False), 1.0, WALL + 1)
    start, end = logged(log, writer)
    assert start["upstream"] == ["u1"]
    assert start["time"] == start["start"] == iso(WALL)
    assert end["upstream"] == ["u1", "u2"]


def test_lines_noted_past_the_bound_are_made_without_waiting_for_the_flush(parts) -> None:  # type: ignore[no-untyped-def]
    _acc, _kernel, log, writer = parts
    for i in range(PENDING):
        log.handle(join(subscriber=bytes([10, 2, i >> 8, i & 0xFF])), 0.0, WALL)
    assert writer.waiting + writer.lines == PENDING  # handed to the writer already
    assert len(logged(log, writer)) == PENDING


def test_waits_end_in_the_order_they_began(parts) -> None:  # type: ignore[no-untyped-def]
    _acc, _kernel, log, _writer = parts
    for i in range(3):
        log.handle(join(subscriber=bytes([10, 1, 0, 20 + i])), float(i), WALL + i)
    log.handle(join(subscriber=bytes([10, 1, 0, 21]), start=False), 3.0, WALL + 3)
    assert log.waiting == 2
    log.zap_routes(ZAP_WAIT + 0.5)  # the first waited too long
    assert log.waiting == 1
    log.zap_routes(ZAP_WAIT + 2.5)  # the second ended: the third's wait ends now
    assert log.waiting == 0
