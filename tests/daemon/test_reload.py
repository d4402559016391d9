"""SIGHUP: a good configuration takes effect whole; a bad one, one the kernel refuses, or one
any later step fails on (the interface map, the engine, netlink, the loader itself), is refused
whole and the running one stays, kernel, engine, netlink and status as they were.

::

    before:  d1 ---[ daemon ]--- u1          after:  d1, d2 ---[ daemon ]--- u1, u2
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import random
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import IGMP, MLD, TO_EX, Proto, config, records, running, status_of, until
from fakes import FakeInterfaceMap, FakeLinkWatcher, FakeNetwork, ip

from mcastproxy import daemon as daemon_module
from mcastproxy.config import Config, parse_config
from mcastproxy.daemon import Daemon
from mcastproxy.engine import Engine
from mcastproxy.events import ConfigChanged, Event
from mcastproxy.family import Family
from mcastproxy.kernel import KernelError, Role
from mcastproxy.links import LinkEvent
from mcastproxy.netio import Interface
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


# --- whatever fails, a reload applies wholly or not at all ------------------------------------


class Poisoned(FakeInterfaceMap):
    """The interface map, failing to read the names in ``poison`` (as a system call might)."""

    def __init__(self, net: FakeNetwork, poison: set[str]) -> None:
        super().__init__(net)
        self.poison = poison

    def refresh(self, name: str) -> Interface | None:
        if name in self.poison:
            raise OSError(errno.ENODEV, f"cannot read {name}")
        return super().refresh(name)


class FailingEngine:
    """The engine, failing (as a bug would) on the configurations ``fails`` picks. (It
    holds the engine rather than subclass it: the compiled build's Engine takes no subclass
    written in Python.)"""

    def __init__(self, config: Config, fails: Callable[[Config], bool]) -> None:
        self.engine = Engine(config, rng=random.random)
        self.fails = fails

    def handle(self, event: Event, now: float) -> None:
        self.engine.handle(event, now)
        if isinstance(event, ConfigChanged) and self.fails(event.config):
            raise RuntimeError("a bug")

    def handle_burst(self, events: Sequence[Event], now: float) -> None:
        self.engine.handle_burst(events, now)
        if any(isinstance(e, ConfigChanged) and self.fails(e.config) for e in events):
            raise RuntimeError("a bug")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)  # the rest of the engine's surface


def kernel_state(net: FakeNetwork) -> dict[Family, tuple[object, ...]]:
    return {f: (r.tables, {u: dict(routes) for u, routes in r.routes.items()}, r.running)
            for f, r in net.routers.items()}


def without_errors(state: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state.items() if k != "errors"}


async def refused_whole(daemon: Daemon, net: FakeNetwork, proto: Proto, text: str,
                        caplog: pytest.LogCaptureFixture) -> None:
    """Reload ``text``, which must be refused, and check that nothing of it was applied and
    that the daemon goes on serving."""
    sock = net.sockets[proto.family]
    before, kernel, status = daemon.config, kernel_state(net), await status_of(daemon)
    names = set(net.watchers[0].names)
    mapped = {n: daemon.interfaces.get(n) for n in ("u1", "u2", "d1", "d2")}
    reload_with(daemon, text)
    assert "reload refused, keeping the running configuration" in caplog.text
    assert daemon.config is before
    assert daemon.engine.config is before
    assert kernel_state(net) == kernel
    assert net.watchers[0].names == names
    assert {n: daemon.interfaces.get(n) for n in mapped} == mapped
    assert without_errors(await status_of(daemon)) == without_errors(status)
    # Still serving as before: a join is proxied on the old upstream.
    sock.inject_message("d1", proto.host, proto.join(proto.group2))
    await until(lambda: (TO_EX, ip(proto.group2)) in records(sock.messages("u1")))


@pytest.mark.parametrize("error", [
    KernelError("no table left in 4600..4600"), OSError(errno.ENOBUFS, "No buffer space"),
    ValueError("u2 is already a downstream interface"), RuntimeError("a bug"),
], ids=["kernel", "os", "value", "bug"])
async def test_any_refusal_of_a_new_interface_undoes_those_added(
    net: FakeNetwork, workdir: Path, proto: Proto, error: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        # d2 is added first, then u2 is refused: d2 must go again.
        net.routers[proto.family].refuse("add_interface", error, on="u2")
        await refused_whole(daemon, net, proto, config(proto, **WIDER), caplog)
        assert daemon.errors["reload"] == 1
        assert ("remove_interface", "d2") in net.routers[proto.family].calls


@pytest.mark.parametrize("verb", ["remove_interface", "add_interface"])
async def test_a_refused_change_of_role_is_undone(
    net: FakeNetwork, workdir: Path, proto: Proto, verb: str, caplog: pytest.LogCaptureFixture,
) -> None:
    two = "[{interface: d1}, {interface: d2}]"
    async with running(net, workdir, config(proto, downstream=two)) as daemon:
        router = net.routers[proto.family]
        router.refuse(verb, OSError(errno.EBUSY, "Device or resource busy"), on="d2")
        await refused_whole(daemon, net, proto, config(
            proto, downstream="[{interface: d1}]",
            candidates="[{interface: u1}, {interface: d2}]"), caplog)
        assert router.tables == {"u1": {"u1", "d1", "d2"}}


async def test_an_interface_map_that_fails_undoes_the_kernel(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    poison: set[str] = set()
    platform = dataclasses.replace(net.platform(), interfaces=lambda: Poisoned(net, poison))
    async with running(net, workdir, config(proto), platform=platform) as daemon:
        poison.add("u2")
        await refused_whole(daemon, net, proto, config(proto, **WIDER), caplog)
        assert "cannot read u2" in caplog.text


async def test_an_engine_that_fails_on_the_new_configuration_is_given_the_old_one_back(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    def wider(cfg: Config) -> bool:
        return len(cfg.upstream.candidates) == 2

    engine = FailingEngine(parse_config(config(proto)), wider)
    async with running(net, workdir, config(proto), engine=engine) as daemon:
        router, sock = net.routers[proto.family], net.sockets[proto.family]
        before, tables = daemon.config, router.tables
        reload_with(daemon, config(proto, **WIDER))
        assert "reload refused, keeping the running configuration" in caplog.text
        assert "the engine failed on the new configuration" in caplog.text
        assert daemon.config is before
        assert engine.config is before  # reset by its fault, then configured back
        assert router.tables == tables
        assert net.watchers[0].names == {"u1", "d1"}
        assert daemon.errors["reload"] == daemon.errors["engine"] == 1
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))


async def test_netlink_that_fails_to_follow_the_new_interfaces_undoes_the_reload(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    failing: list[str] = []

    class Watcher(FakeLinkWatcher):
        def watch(self, names: Iterable[str]) -> None:
            if failing:
                failing.clear()
                raise OSError(errno.ENOBUFS, "netlink: No buffer space")
            super().watch(names)

    def links(names: Iterable[str], emit: Callable[[LinkEvent], None]) -> Watcher:
        watcher = Watcher(net, names, emit)
        net.watchers.append(watcher)
        return watcher

    platform = dataclasses.replace(net.platform(), links=links)
    async with running(net, workdir, config(proto), platform=platform) as daemon:
        failing.append("once")
        await refused_whole(daemon, net, proto, config(proto, **WIDER), caplog)


async def test_a_loader_that_fails_is_a_refusal(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(path: object) -> Config:
        raise MemoryError

    async with running(net, workdir, config(proto)) as daemon:
        monkeypatch.setattr(daemon_module, "load_config", broken)
        await refused_whole(daemon, net, proto, config(proto, **WIDER), caplog)
        assert daemon.errors["reload"] == 1


KERNEL_REFUSES = {
    "NUL": '"u\\0x"', "16 octets": "u234567890123456", "15 octets in 8 letters": "uéééééééé",
    "space": '"u 2"', "no-break space": '"u\\u00a02"', "slash": "u/2", "colon": '"u:2"',
    "dot": '"."', "dots": '".."', "percent": "u%d", "empty": '""',
}


@pytest.mark.parametrize("name", list(KERNEL_REFUSES))
async def test_a_name_the_kernel_would_refuse_is_refused_before_the_kernel_is_asked(
    net: FakeNetwork, workdir: Path, proto: Proto, name: str, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        calls = list(net.routers[proto.family].calls)
        bad = KERNEL_REFUSES[name]
        text = config(proto, candidates=f"[{{interface: u1}}, {{interface: {bad}}}]")
        await refused_whole(daemon, net, proto, text, caplog)
        assert "upstream.candidates[1].interface" in caplog.text
        assert net.routers[proto.family].calls[:len(calls)] == calls
        assert not [c for c in net.routers[proto.family].calls[len(calls):]
                    if c[0] != "set_route"]


async def test_a_sighup_before_the_start_is_done_reloads_once_it_is(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()  # netlink's first dump, held back by the test

    class Slow(FakeLinkWatcher):
        async def start(self) -> None:
            await gate.wait()
            await super().start()

    def links(names: Iterable[str], emit: Callable[[LinkEvent], None]) -> Slow:
        watcher = Slow(net, names, emit)
        net.watchers.append(watcher)
        return watcher

    path = workdir / "c.yaml"
    path.write_text(config(proto))
    daemon = Daemon(path, parse_config(config(proto)), status_socket=workdir / "s.sock",
                    platform=dataclasses.replace(net.platform(), links=links))
    task = asyncio.create_task(daemon.run())
    await until(lambda: net.watchers, what="the start under way")
    path.write_text(config(proto, **WIDER))
    os.kill(os.getpid(), signal.SIGHUP)  # handled, and kept for later: not ready yet
    await until(lambda: "reload asked for while starting" in caplog.text)
    assert not daemon.ready.is_set()
    assert len(daemon.config.upstream.candidates) == 1
    gate.set()
    await until(lambda: len(daemon.config.upstream.candidates) == 2, what="the reload")
    assert daemon.ready.is_set()
    assert "u2" in net.routers[proto.family].tables
    daemon.stop()
    assert await task == 0
