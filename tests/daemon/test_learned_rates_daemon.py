"""The daemon measures channel rates from the route counters for the engine's learned rates
(``meter``, ``learning``), with or without accounting configured, on in-memory fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from daemon_harness import Proto, config, running, until
from fakes import FakeNetwork, ip

from mcastproxy import meter
from mcastproxy.kernel.api import RouteCounters, Upcall, UpcallKind


@pytest.fixture(autouse=True)
def short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meter, "MEASURE_WINDOW", 0.2)
    monkeypatch.setattr(meter, "MEASURE_INTERVAL", 0.05)


async def test_a_measured_channel_is_counted_at_its_rate(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    cfg = config(proto, extra="policy: {bandwidth: {learn: true, learn-margin: 0}}\n")
    async with running(net, workdir, cfg) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        src, grp = ip(proto.source), ip(proto.group)
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", src, grp))
        await until(lambda: (src, grp) in router.routes.get("u1", {}))
        key = f"d1/{proto.family.protocol}"

        def used() -> int:
            return int(daemon.status()["downstream"][key]["admission"].get("bandwidth-used", 0))

        assert used() == 0  # not measured yet: the default rate, 0

        async def traffic() -> None:  # 125,000 octets every 20 ms: about 50 Mbit/s
            octets = 0
            while True:
                octets += 125_000
                router.count("u1", src, grp, RouteCounters(octets // 1000, octets, 0))
                await asyncio.sleep(0.02)

        flowing = asyncio.create_task(traffic())
        try:
            await until(lambda: used() > 10_000_000, what="a rate learned for (*,G)")
        finally:
            flowing.cancel()
        # About 50 Mbit/s (the fake's counters climb by the loop's clock; a loaded machine
        # slows the feeding, never speeds it).
        assert used() < 60_000_000
