"""SIGHUP: a good configuration takes effect whole; a bad one, or one the kernel refuses, is
refused whole and the running one stays.

::

    before:  d1 ---[ daemon ]--- u1          after:  d1, d2 ---[ daemon ]--- u1, u2
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from daemon_harness import IGMP, MLD, Proto, config, running, status_of, until
from fakes import FakeNetwork

from mcastproxy.daemon import Daemon
from mcastproxy.kernel import KernelError, Role
from mcastproxy.wire.messages import Report

WIDER = {"downstream": "[{interface: d1, fast-leave: true}, {interface: d2}]",
         "candidates": "[{interface: u1}, {interface: u2, priority: 5}]"}


def reload_with(daemon: Daemon, text: str) -> None:
    daemon.config_path.write_text(text)
    daemon.reload()


async def test_a_good_configuration_takes_effect(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        router, sock = net.routers[proto.family], net.sockets[proto.family]
        reload_with(daemon, config(proto, **WIDER))
        assert "configuration reloaded" in caplog.text
        assert [c.interface for c in daemon.config.upstream.candidates] == ["u1", "u2"]
        assert router.tables == {"u1": {"u1", "d1", "d2"}, "u2": {"u2", "d1", "d2"}}
        assert sock.listening == {"d1", "d2"}
        assert net.watchers[0].names == {"u1", "u2", "d1", "d2"}
        state = await status_of(daemon)
        assert state["upstreams"]["u2"]["priority"] == 5
        assert set(state["downstream"]) == {f"d1/{proto.family.protocol}",
                                            f"d2/{proto.family.protocol}"}
        # The engine has it too: a join on the new link goes to the new, preferred upstream.
        sock.inject_message("d2", proto.host2, proto.join())
        await until(lambda: any(isinstance(m, Report) for m in sock.messages("u2")))

        # And back: what the new file drops is taken out of the kernel.
        reload_with(daemon, config(proto, candidates="[{interface: u2}]",
                                   downstream="[{interface: d2}]"))
        assert router.tables == {"u2": {"u2", "d2"}}
        assert ("remove_interface", "u1") in router.calls
        assert ("remove_interface", "d1") in router.calls


async def test_an_interface_may_change_role(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    two = "[{interface: d1}, {interface: d2}]"
    async with running(net, workdir, config(proto, downstream=two)) as daemon:
        router = net.routers[proto.family]
        reload_with(daemon, config(proto, downstream="[{interface: d1}]",
                                   candidates="[{interface: u1}, {interface: d2}]"))
        assert router.tables == {"u1": {"u1", "d1"}, "d2": {"d2", "d1"}}
        assert router.calls[-2:] == [("remove_interface", "d2"),
                                     ("add_interface", "d2", Role.UPSTREAM)]


BAD = {
    "not yaml": "downstream: [unclosed",
    "not multicast": None,  # made below, per protocol
    "no upstream": "igmp: {}\ndownstream: [{interface: d1}]\n",
}


@pytest.mark.parametrize("bad", list(BAD))
async def test_a_bad_configuration_is_refused_and_the_old_one_kept_whole(
    net: FakeNetwork, workdir: Path, proto: Proto, bad: str, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        router, sock = net.routers[proto.family], net.sockets[proto.family]
        before, calls, status = daemon.config, list(router.calls), await status_of(daemon)
        text = BAD[bad] or config(proto, candidates=(
            "[{interface: u1}, {interface: u2, records: [{group: 10.0.0.0/8}]}]"))
        reload_with(daemon, text)
        assert "reload refused, keeping the running configuration" in caplog.text
        assert daemon.config is before
        assert router.calls == calls
        assert net.watchers[0].names == {"u1", "d1"}
        after = await status_of(daemon)
        assert after == status
        # Still running as before.
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: sock.messages("u1"))


@pytest.mark.parametrize("change", ["other on", "swap"])
async def test_turning_igmp_or_mld_on_or_off_is_refused(
    net: FakeNetwork, workdir: Path, proto: Proto, change: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = MLD if proto is IGMP else IGMP
    async with running(net, workdir, config(proto)) as daemon:
        before, calls = daemon.config, list(net.routers[proto.family].calls)
        text = config(other)
        if change == "other on":
            text = f"{proto.setting}\n{text}"
        reload_with(daemon, text)
        assert "turning IGMP or MLD on or off needs a restart" in caplog.text
        assert daemon.config is before
        assert net.routers[proto.family].calls == calls
        assert set(net.routers) == {proto.family}


async def test_a_configuration_the_kernel_refuses_is_undone_and_refused(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        router = net.routers[proto.family]
        before, tables = daemon.config, router.tables
        # d2 is added first, then u2's table is refused: d2 must go again.
        router.refuse("add_interface", KernelError("no table left in 4600..4600"), on="u2")
        reload_with(daemon, config(proto, **WIDER))
        assert daemon.config is before
        assert router.tables == tables
        assert daemon.errors["reload"] == 1
        assert "no table left" in caplog.text


async def test_sighup_reloads(net: FakeNetwork, workdir: Path, proto: Proto) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        daemon.config_path.write_text(config(proto, **WIDER))
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: len(daemon.config.upstream.candidates) == 2, what="the reload")
        assert "u2" in net.routers[proto.family].tables
