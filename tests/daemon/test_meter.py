"""The meter's sampler: every route read in slices with the loop given turns in between, the
zap readings only while a session waits, staging a reload's logs whole or not at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcastproxy import meter as meter_module
from mcastproxy.actions import DeleteRoute, Log, Session, SetRoute
from mcastproxy.config import AccountingSettings
from mcastproxy.family import Family
from mcastproxy.kernel.api import RouteCounters
from mcastproxy.kernel.fake import FakeRouter
from mcastproxy.meter import Meter

S = bytes([10, 0, 1, 2])


def group(i: int) -> bytes:
    return bytes([232, 1, i // 256, i % 256])


def made(tmp_path: Path, n: int, **settings: object) -> tuple[FakeRouter, Meter]:
    router = FakeRouter(4)
    router.start(["u1"], ["d1"])
    m = Meter(AccountingSettings(**settings), {Family.V4: router}, dict)  # type: ignore[arg-type]
    m.open()
    for i in range(n):
        action = SetRoute("u1", S, group(i), frozenset({"d1"}))
        router.set_route("u1", S, group(i), "u1", action.oifs)
        m.route_set(action, m.reading(router, "u1", S, group(i)))
        router.count("u1", S, group(i), RouteCounters(2, 2000, 0))
    return router, m


async def test_a_sample_is_read_in_slices_with_turns_between(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    monkeypatch.setattr(meter_module, "SAMPLE_SLICE", 0.0)  # a turn every 32 routes
    router, m = made(tmp_path, 1000, sample_interval=0.1)
    loop = asyncio.get_running_loop()
    m._loop = loop
    turns = []

    def report() -> None:  # what a report would be: it must run while the sample goes on
        turns.append(m._slicing is not None)
        if m._slicing is not None or not turns[-1]:
            loop.call_soon(report)

    m._on_sample()
    assert m._slicing is not None
    assert m.last_sample is None
    loop.call_soon(report)
    while m._slicing is not None:
        await asyncio.sleep(0)
    assert sum(turns) >= 1000 // 32 - 1
    assert m.last_sample is not None
    assert m.last_sample["routes"] == 1000
    assert m.accounting.upstreams["u1"] == [2000, 2_000_000]
    assert m.accounting.links["d1"] == [2000, 2_000_000]
    assert router.counter_reads == 1000
    m.close(loop.time())


async def test_zap_readings_only_while_a_session_waits(tmp_path: Path) -> None:
    router, m = made(tmp_path, 3, session_log=tmp_path / "s.log")
    loop = asyncio.get_running_loop()
    m.start(loop)
    m._cancel()  # only the zap timer below
    before = router.counter_reads
    m.session(Session("d1", 4, bytes([10, 1, 0, 7]), S, group(0), True), loop.time())
    assert m._zapper is not None
    router.count("u1", S, group(0), RouteCounters(5, 5000, 0))
    while m._zapper is not None:
        await asyncio.sleep(0.01)
    assert m.sessions.zaps == 1
    assert m.sessions.waiting == 0
    reads = router.counter_reads - before
    await asyncio.sleep(0.12)
    assert router.counter_reads - before == reads  # nothing waits: nothing read
    # A route read before it goes: nothing it counted is lost.
    router.count("u1", S, group(0), RouteCounters(9, 9000, 0))
    action = DeleteRoute("u1", S, group(0))
    reading = m.reading(router, "u1", S, group(0))
    router.delete_route("u1", S, group(0))
    m.route_deleted(action, reading)
    assert m.accounting.channels["u1", S, group(0)] == [9, 9000]
    m.close(loop.time())


def test_a_reload_s_logs_are_opened_whole_or_not_at_all(tmp_path: Path) -> None:
    _router, m = made(tmp_path, 0, session_log=tmp_path / "a.log")
    old = m.sessions.writer
    bad = AccountingSettings(session_log=tmp_path / "b.log",
                             security_log=tmp_path / "missing" / "sec.log")
    with pytest.raises(FileNotFoundError):
        m.stage(bad)
    assert not (tmp_path / "b.log").exists() or m.sessions.writer is old
    assert m.sessions.writer is old
    staged = m.stage(AccountingSettings(session_log=tmp_path / "b.log"))
    m.abort(staged)  # another part of the reload failed
    assert m.sessions.writer is old
    staged = m.stage(AccountingSettings(session_log=tmp_path / "b.log"))
    m.commit(staged)
    assert m.sessions.writer is not old
    assert m.sessions.writer is not None
    assert m.sessions.writer.path == tmp_path / "b.log"
    m.close(0.0)


def test_an_engine_reset_ends_the_open_sessions(tmp_path: Path) -> None:
    _, m = made(tmp_path, 1, session_log=tmp_path / "s.log")
    m.session(Session("d1", 4, bytes([10, 1, 0, 7]), S, group(0), True), 1.0)
    m.log(Log("error", "engine-reset", "the engine failed: reset"), 2.0)
    assert m.sessions.open == {}
    m.close(3.0)
    ends = [x for x in (tmp_path / "s.log").read_text().splitlines() if '"end"' in x]
    assert len(ends) == 1
    assert '"ended-by":"reset"' in ends[0]
