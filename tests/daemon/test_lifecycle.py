"""The daemon starts on its platform, runs, and stops leaving nothing behind.

::

    subscribers --- d1 ---[ daemon on a FakeNetwork ]--- u1 --- upstream router
                    d2 ---[  FakeRouter per family  ]--- u2
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import pytest
from daemon_harness import IGMP, MLD, Proto, config, running, until
from fakes import FakeNetwork, ip

from mcastproxy.config import parse_config
from mcastproxy.daemon import Daemon
from mcastproxy.family import Family
from mcastproxy.kernel import FakeRouter, KernelError, MulticastRouter, Upcall, UpcallKind
from mcastproxy.links import LinkWatcher
from mcastproxy.netio import Interface, InterfaceMap
from mcastproxy.netio.pim import PimListener
from mcastproxy.platform import Platform

BOTH = f"""
{IGMP.setting}
{MLD.setting}
downstream: [{{interface: d1}}, {{interface: d2}}]
upstream:
  candidates: [{{interface: u1, liveness: {{hellos: true}}}}, {{interface: u2}}]
"""


def test_the_default_platform_is_the_system() -> None:
    system = Platform()
    assert (system.router, system.hellos, system.interfaces, system.links) == (
        MulticastRouter, PimListener, InterfaceMap, LinkWatcher)
    daemon = Daemon(Path("x.yaml"), parse_config(config(IGMP)))
    assert daemon.platform == system


async def test_start_then_stop_removes_all_kernel_state(net: FakeNetwork, workdir: Path) -> None:
    status = workdir / "status.sock"
    async with running(net, workdir, BOTH) as daemon:
        assert set(net.routers) == set(net.sockets) == set(net.hellos) == {Family.V4, Family.V6}
        for family, router in net.routers.items():
            assert router.running
            assert router.tables == {"u1": {"u1", "d1", "d2"}, "u2": {"u2", "d1", "d2"}}
            assert net.sockets[family].listening == {"d1", "d2"}
            assert net.hellos[family].listening == {"u1", "u2"}
        (watcher,) = net.watchers
        assert watcher.started
        assert watcher.names == {"u1", "u2", "d1", "d2"}
        assert status.exists()
        assert status.stat().st_mode & 0o777 == 0o600
        # A route in each family's kernel table, to be removed at the stop.
        for proto in (IGMP, MLD):
            net.sockets[proto.family].inject_message("d1", proto.host, proto.join())
            net.routers[proto.family].push_upcall(Upcall(
                UpcallKind.NOCACHE, "u1", "u1", ip(proto.source), ip(proto.group)))
        await until(lambda: all(r.routes["u1"] for r in net.routers.values()))
    assert not daemon.ready.is_set()
    for router in net.routers.values():
        assert not router.running
        assert router.tables == {}
        assert router.routes == {}
        assert router.calls[-1] == ("stop",)
    assert all(s.closed for s in (*net.sockets.values(), *net.hellos.values()))
    assert watcher.closed
    assert not status.exists()


async def test_sigterm_stops_it_cleanly(net: FakeNetwork, workdir: Path) -> None:
    path = workdir / "c.yaml"
    path.write_text(config(IGMP))
    daemon = Daemon(path, parse_config(config(IGMP)), platform=net.platform())
    task = asyncio.create_task(daemon.run())
    await until(daemon.ready.is_set)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0
    assert not net.routers[Family.V4].running


@pytest.mark.parametrize("refusal", [
    KernelError("multicast routing is not available in this kernel"),
    PermissionError(1, "Operation not permitted"),
], ids=["kernel", "permission"])
async def test_a_kernel_that_refuses_to_start_ends_the_run_with_1_and_nothing_left(
    net: FakeNetwork, workdir: Path, proto: Proto, refusal: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform = net.platform()

    def router(family: Family) -> FakeRouter:  # the first family starts, the second refuses
        made = platform.router(family)
        if len(net.routers) == 2:
            made.refuse("start", refusal)
        return made

    path = workdir / "c.yaml"
    path.write_text(BOTH)
    daemon = Daemon(path, parse_config(BOTH), status_socket=workdir / "s.sock",
                    platform=dataclasses.replace(platform, router=router))
    assert await daemon.run() == 1
    assert "cannot start" in caplog.text
    assert [r.running for r in net.routers.values()] == [False, False]
    assert all(s.closed for s in (*net.sockets.values(), *net.hellos.values()))
    assert net.watchers == []  # netlink was not even asked
    assert not (workdir / "s.sock").exists()


async def test_a_stop_before_the_run_ends_it_at_once(net: FakeNetwork, workdir: Path) -> None:
    daemon = Daemon(workdir / "c.yaml", parse_config(config(MLD)), platform=net.platform())
    daemon.stop()
    assert await daemon.run() == 0
    assert not net.routers[Family.V6].running


async def test_interfaces_come_and_go_and_the_kernel_and_sockets_follow(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        router, sock = net.routers[proto.family], net.sockets[proto.family]

        def d1() -> Interface:
            iface = daemon.interfaces.get("d1")
            assert iface is not None
            return iface

        index = d1().index
        net.unplug("d1")
        assert daemon.interfaces.get("d1") is None
        assert router.tables == {"u1": {"u1"}}
        assert router.calls[-1] == ("interface_changed", "d1")
        sock.listening.clear()
        net.up("d1", "10.1.0.1", "fe80::d1:1")  # back, as another device
        assert d1().index != index
        assert router.tables == {"u1": {"u1", "d1"}}
        assert router.calls[-1] == ("interface_changed", "d1")
        assert sock.listening == {"d1"}  # listened to again
        # A change of address only: the same device, no VIF change.
        calls = len(router.calls)
        net.up("d1", "10.1.0.2", "fe80::d1:1")
        assert len(router.calls) == calls
        assert d1().ipv4 == bytes([10, 1, 0, 2])


async def test_a_kernel_refusal_on_a_link_change_is_counted(
    net: FakeNetwork, workdir: Path,
) -> None:
    async with running(net, workdir, config(IGMP)) as daemon:
        net.routers[Family.V4].refuse("interface_changed", KernelError("VIF 1 (d1): busy"))
        net.unplug("d1")
        assert daemon.errors["interface"] == 1
        net.up("d1", "10.1.0.1")
        assert net.routers[Family.V4].calls[-1] == ("interface_changed", "d1")
