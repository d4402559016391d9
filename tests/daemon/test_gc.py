"""The garbage collector's policy (``gcpolicy``): state frozen once the daemon runs and after
every full collection, so a full collection traverses only what is new; what that strands (a
cycle of frozen objects that became garbage) stays small through a daemon's whole life."""

from __future__ import annotations

import gc
from pathlib import Path

from daemon_harness import IGMP, config, records, running, status_of, until
from fakes import FakeNetwork, ip

from mcastproxy.gcpolicy import GcPolicy, stranded


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a


def test_after_a_full_collection_the_survivors_are_frozen_and_new_cycles_still_collected(
) -> None:
    policy = GcPolicy()
    policy.install()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        keep = [Node() for _ in range(1000)]
        gc.collect()  # a full collection
        assert policy.full_collections == 1
        assert gc.get_freeze_count() >= frozen + 1000  # the survivors, frozen
        cycle()  # new garbage in a cycle, in the young generation: still found
        assert gc.collect(0) >= 2
        assert policy.counts()["full-collections"] == 1
        del keep
    finally:
        policy.uninstall()
    assert gc.get_freeze_count() == 0
    assert policy._callback not in gc.callbacks


def test_a_frozen_cycle_is_stranded_and_stranded_finds_it() -> None:
    policy = GcPolicy()
    policy.install()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect()  # a and b survive it: frozen
        del a, b  # garbage now, in a cycle, frozen: never collected by the collector
        gc.collect()
        assert stranded() >= 2
        assert stranded() == 0
    finally:
        policy.uninstall()


async def test_a_daemons_life_strands_next_to_nothing(net: FakeNetwork, workdir: Path) -> None:
    text = config(IGMP, downstream="[{interface: d1, fast-leave: true}, {interface: d2}]",
                  extra="policy: {report-rate: {subscriber: unlimited}}")  # 2,400 reports
    async with running(net, workdir, text) as daemon:
        assert daemon.gc.installed
        sock = net.sockets[IGMP.family]
        groups = [f"239.9.{i // 200}.{i % 200 + 1}" for i in range(400)]
        for round_ in range(3):  # joins, status, a reload, leaves: the I/O around the engine
            for g in groups:
                sock.inject_message("d1", IGMP.host, IGMP.join(g))
            want = 400 * (round_ + 1)
            await until(lambda want=want: len(records(sock.messages("u1"))) >= want)
            gc.collect()  # a full collection: what is alive now is frozen
            await status_of(daemon)
            daemon.reload()
            for g in groups:
                sock.inject_message("d1", IGMP.host, IGMP.leave(g))
            await until(lambda: not daemon.engine.snapshot().upstreams[0].groups)
            await status_of(daemon)
            gc.collect()
        assert daemon.gc.full_collections >= 6
        left = stranded()
        # Cycles among the I/O's objects (a status connection's transport and protocol, an
        # answered future) are what can be stranded: a handful a round, never the engine's.
        assert left < 200, left
    assert not daemon.gc.installed
    assert ip(IGMP.group)  # the harness's helpers are the ones the other daemon tests use
