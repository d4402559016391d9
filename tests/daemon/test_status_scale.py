"""Answering ``status`` never holds up the proxy, however many groups it shows: the answer is
made and written a slice at a time, and reports are handled in between.

::

    4,000 groups x host on d1 ---[ daemon ]--- u1 (a route per group)
                   host on d2 --/        \\--- mcastproxy status (a large answer)
                   a new join  ---> reported on u1 before the answer is complete
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

from daemon_harness import IGMP, TO_EX, config, records, running, until
from fakes import FakeNetwork, ip

from mcastproxy.config import Config, parse_config
from mcastproxy.engine import Engine
from mcastproxy.kernel import Upcall, UpcallKind
from mcastproxy.snapshot import EngineSnapshot
from mcastproxy.wire.messages import GroupRecord, Report

GROUPS = 4000
RECORDS = 100  # per report
# The longest the loop may go without a turn while status is answered: ten times the daemon's
# slice, for a shared machine; made in one go, this answer holds the loop for 0.3 s or more.
STALL = 0.05

class Counted:
    """The engine, counting the sliced snapshots asked of it. (It holds the engine rather
    than subclass it: the compiled build's Engine takes no subclass written in Python.)"""

    def __init__(self, cfg: Config) -> None:
        self.engine = Engine(cfg, rng=random.random)
        self.sliced = 0

    def snapshot_slices(self, now: float | None = None) -> Generator[None, None, EngineSnapshot]:
        self.sliced += 1
        return self.engine.snapshot_slices(now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)  # the rest of the engine's surface


def group(i: int) -> str:
    return f"239.3.{i // 256}.{i % 256}"


async def test_a_join_is_proxied_while_a_large_status_is_answered(
    net: FakeNetwork, workdir: Path,
) -> None:
    text = config(IGMP, downstream="[{interface: d1}, {interface: d2}]",
                  extra="policy: {subscriber: {max-groups: unlimited}}")  # one host, 4,000
    engine = Counted(parse_config(text))
    async with running(net, workdir, text, engine=engine) as daemon:
        sock, router = net.sockets[IGMP.family], net.routers[IGMP.family]
        for link, host in (("d1", IGMP.host), ("d2", IGMP.host2)):
            for first in range(0, GROUPS, RECORDS):
                report = Report(3, tuple(GroupRecord(TO_EX, ip(group(i)))
                                         for i in range(first, first + RECORDS)))
                sock.inject_message(link, host, report)
        for i in range(GROUPS):
            router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", ip(IGMP.source),
                                      ip(group(i))))
        await until(lambda: len(router.routes["u1"]) == GROUPS, timeout=15.0)
        assert daemon.status_socket is not None
        path = daemon.status_socket

        async def join_meanwhile(answer: asyncio.Task[bytes]) -> None:
            await until(lambda: engine.sliced, what="the answer under way")
            sock.inject_message("d1", IGMP.host, IGMP.join(IGMP.group))
            await until(lambda: (TO_EX, ip(IGMP.group)) in records(sock.messages("u1")),
                        what="the join reported upstream")
            assert not answer.done()  # reported before the answer was complete

        stalls, text = await probed(path, join_meanwhile)
        state = json.loads(text)  # here, not in the loop the probe watched
        assert len(state["routes"]) == GROUPS
        assert len(state["downstream"]["d2/igmp"]["groups"]) == GROUPS
        assert len(state["downstream"]["d1/igmp"]["groups"]) in (GROUPS, GROUPS + 1)
        # How long the loop went without a turn: the least of two answers' longest, so that
        # another program taking this CPU for a while once is not counted.
        again, _ = await probed(path)
        waited = min(max(stalls), max(again))
        assert waited < STALL, f"the loop waited {waited * 1e3:.0f} ms"


async def probed(path: Path, meanwhile: Callable[[asyncio.Task[bytes]], Awaitable[None]]
                 | None = None) -> tuple[list[float], bytes]:
    """A status answer's text, and how long the loop went without a turn each time while it
    was made (``meanwhile`` runs in the meantime)."""
    loop = asyncio.get_running_loop()
    stalls: list[float] = []

    async def probe() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0)
            stalls.append(loop.time() - before)

    prober = asyncio.create_task(probe())
    answer = asyncio.create_task(raw_status(path))
    if meanwhile is not None:
        await meanwhile(answer)
    text = await answer
    prober.cancel()
    return stalls, text


async def raw_status(path: Path) -> bytes:
    """The answer's text, as ``mcastproxy status`` reads it (it decodes it in a process of
    its own)."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        return await reader.read()
    finally:
        writer.close()
