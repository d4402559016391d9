"""Sessions through the engine: with a session log configured (``accounting: session-log``),
the downstream links (``DownstreamLinks.sessions``) turn each subscriber's sessions into
``actions.Session`` in the outbox, on a virtual clock; without one, there are none.

    u1 (upstream) -- proxy -- d1: 10.1.0.1/24, fe80::d1:1   hosts 10.1.0.7 / fe80::d1:7
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import T, World, ip

from mcastproxy.actions import Session
from mcastproxy.events import PacketReceived
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, Report

CONFIG = ("igmp: {version: 3}\nmld: {version: 2}\n"
          "downstream: [{interface: d1, fast-leave: true, static-group: [{group: %s}]}]\n"
          "upstream: {candidates: [{interface: u1}]}\n")
CASES = {4: ("10.1.0.7", "239.5.0.1", "192.0.2.5", "239.5.0.9"),
         6: ("fe80::d1:7", "ff1e::5:1", "2001:db8::5", "ff1e::5:9")}


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def report(w: World, host: str, record: GroupRecord) -> list[object]:
    """``host`` reports ``record`` on d1; the engine's actions."""
    src = ip(host)
    if len(src) == 4:
        dst, payload = ip("224.0.0.22"), build_igmp(Report(3, (record,)))
    else:
        dst = ip("ff02::16")
        payload = build_mld(Report(2, (record,)), src, dst)
    return list(w.handle(PacketReceived("d1", 4 if len(src) == 4 else 6, src, dst, payload)))


def sessions_of(actions: list[object]) -> list[tuple[str, int, bytes, bytes | None, bytes, bool]]:
    return [(a.interface, a.family, a.subscriber, a.source, a.group, a.start)
            for a in actions if isinstance(a, Session)]


def test_sessions_reach_the_outbox_with_a_session_log(v: int, tmp_path: Path) -> None:
    host, group, source, static = CASES[v]
    log = f"accounting: {{session-log: {str(tmp_path / 'sessions.log')!r}}}\n"
    w = World.make(CONFIG % repr(static) + log, up=("u1", "d1"))
    h, g, s = ip(host), ip(group), ip(source)
    got = sessions_of(report(w, host, GroupRecord(T.MODE_IS_INCLUDE, g, (s,))))
    assert got == [("d1", v, h, s, g, True)]
    assert sessions_of(report(w, host, GroupRecord(T.MODE_IS_INCLUDE, g, (s,)))) == []
    got = sessions_of(report(w, host, GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, g)))
    assert got == [("d1", v, h, s, g, False), ("d1", v, h, None, g, True)]
    got = sessions_of(report(w, host, GroupRecord(T.CHANGE_TO_INCLUDE_MODE, g)))
    assert got == [("d1", v, h, None, g, False)]  # fast leave


def test_no_sessions_by_default(v: int) -> None:
    host, group, _, static = CASES[v]
    w = World.make(CONFIG % repr(static), up=("u1", "d1"))
    actions = report(w, host, GroupRecord(T.CHANGE_TO_EXCLUDE_MODE, ip(group)))
    assert sessions_of(actions) == []
