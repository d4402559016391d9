"""Running the daemon on a ``FakeNetwork``: start, wait for a condition, read its status.

``async with running(net, workdir, config) as daemon:`` writes the configuration to
``workdir``, runs a ``Daemon`` on ``net.platform()`` with its status socket in ``workdir``,
and yields it once it is ready; on the way out it stops it and checks that ``run()`` ended
cleanly. ``until(condition)`` lets the loop run (and its timers fire) until the condition
holds, so that nothing waits a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes import FakeNetwork, ip

from mcastproxy.config import parse_config
from mcastproxy.daemon import Daemon, query_status
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, Message, RecordType, Report

POLL = 0.001  # seconds between looks at a condition
TO_EX, TO_IN = RecordType.CHANGE_TO_EXCLUDE_MODE, RecordType.CHANGE_TO_INCLUDE_MODE


async def until(condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Let the loop run until ``condition()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"not within {timeout}s: {what or condition}")
        await asyncio.sleep(POLL)


@contextlib.asynccontextmanager
async def running(net: FakeNetwork, workdir: Path, config: str,
                  **kwargs: Any) -> AsyncIterator[Daemon]:
    """A daemon running ``config`` on ``net`` for the block; ``kwargs`` go to ``Daemon``."""
    path = workdir / "mcastproxy.yaml"
    path.write_text(config)
    kwargs.setdefault("status_socket", workdir / "status.sock")
    kwargs.setdefault("platform", net.platform())
    daemon = Daemon(path, parse_config(config), **kwargs)
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: daemon.ready.is_set() or task.done(), what="the daemon is ready")
        assert not task.done(), f"the daemon ended at start, returning {task.result()}"
        yield daemon
    finally:
        daemon.stop()
        code = await task
    assert code == 0


async def status_of(daemon: Daemon) -> dict[str, Any]:
    """The status as ``mcastproxy status`` reads it: over the UNIX socket."""
    assert daemon.status_socket is not None
    return await query_status(daemon.status_socket)


def records(messages: list[Message]) -> list[tuple[RecordType, bytes]]:
    """The (type, group) of every group record of the reports among ``messages``."""
    return [(r.type, r.group) for m in messages if isinstance(m, Report) for r in m.records]


ADDRESSES = {
    "u1": ("192.0.2.1", "fe80::1:1"), "u2": ("198.51.100.1", "fe80::2:1"),
    "d1": ("10.1.0.1", "fe80::d1:1"), "d2": ("10.2.0.1", "fe80::d2:1"),
}


@dataclass(frozen=True)
class Proto:
    """What a test needs of IGMP or MLD: the configuration's setting, a host on d1 and one on
    d2, two any-source groups, and a source of data beyond the upstreams."""

    family: Family
    setting: str
    host: str
    host2: str
    group: str
    group2: str
    source: str

    def report(self, kind: RecordType, group: str | None = None) -> Report:
        """An IGMPv3 / MLDv2 report with one record of ``kind`` for ``group`` (no sources)."""
        record = GroupRecord(kind, ip(group or self.group))
        return Report(3 if self.family is Family.V4 else 2, (record,))

    def join(self, group: str | None = None) -> Report:
        """A state-change report joining ``group`` from any source (TO_EX{})."""
        return self.report(TO_EX, group)

    def leave(self, group: str | None = None) -> Report:
        """A state-change report leaving ``group`` (TO_IN{})."""
        return self.report(TO_IN, group)


IGMP = Proto(Family.V4, "igmp: {version: 3}", "10.1.0.7", "10.2.0.7", "239.1.1.1",
             "239.1.1.2", "10.0.1.2")
MLD = Proto(Family.V6, "mld: {version: 2}", "fe80::d1:7", "fe80::d2:7", "ff15::1:1",
            "ff15::1:2", "2001:db8:1::2")


def config(proto: Proto, *, downstream: str = "[{interface: d1, fast-leave: true}]",
           candidates: str = "[{interface: u1}]", extra: str = "") -> str:
    """A configuration of ``proto`` alone."""
    return (f"{proto.setting}\ndownstream: {downstream}\n"
            f"upstream: {{candidates: {candidates}}}\n{extra}")
