"""What the daemon shows and counts: the status over its UNIX socket, engine faults, bad
packets, the route counters it samples for data liveness, and PIM hellos.

::

    host --- d1 ---[ daemon ]--- u1 --- router 192.0.2.254 (PIM hellos; data watched)
                               \\- u2
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import IGMP, TO_EX, Proto, config, records, running, status_of, until
from fakes import FakeNetwork, ip

from mcastproxy import cli
from mcastproxy.config import Config, parse_config
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import CountersSampled, Event, PacketReceived
from mcastproxy.family import Family
from mcastproxy.kernel import KernelError, RouteCounters, Upcall, UpcallKind

TOP = {"pid", "config", "upstreams", "downstream", "routes", "events", "dropped", "drops",
       "engine", "errors", "admission", "accounting"}


class Recording:
    """The engine, keeping every event it was handed; on the events ``fault`` picks, it
    raises, as a bug would make it. (It holds the engine rather than subclass it: the
    compiled build's Engine takes no subclass written in Python.)"""

    def __init__(self, config: Config, fault: Callable[[Event], bool] | None = None) -> None:
        self.engine = Engine(config, rng=random.random)
        self.events: list[Event] = []
        self.bursts: list[int] = []
        """The length of each burst handed over at once (``handle_burst``)."""
        self.fault = fault

    def handle(self, event: Event, now: float) -> None:
        self.events.append(event)
        if self.fault is not None and self.fault(event):
            raise RuntimeError("a bug")
        self.engine.handle(event, now)

    def handle_burst(self, events: Sequence[Event], now: float) -> None:
        self.bursts.append(len(events))
        self.events.extend(events)
        if self.fault is not None and any(self.fault(event) for event in events):
            raise RuntimeError("a bug")
        self.engine.handle_burst(events, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)  # the rest of the engine's surface


def timeless(doc: object) -> object:
    """``doc`` without its relative times (``expire``, ``up-time``), which move on."""
    if isinstance(doc, dict):
        return {k: timeless(v) for k, v in doc.items() if k not in ("expire", "up-time")}
    if isinstance(doc, list):
        return [timeless(v) for v in doc]
    return doc


def upcall(proto: Proto, upstream: str, group: str | None = None) -> Upcall:
    return Upcall(UpcallKind.NOCACHE, upstream, upstream, ip(proto.source),
                  ip(group or proto.group))


async def test_status_answers_over_the_unix_socket_in_its_shape(
    net: FakeNetwork, workdir: Path, proto: Proto, capsys: pytest.CaptureFixture[str],
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(upcall(proto, "u1"))
        await until(lambda: router.routes["u1"])
        state = await status_of(daemon)
        assert timeless(state) == timeless(daemon.status())  # made a moment apart
        assert set(state) == TOP
        assert state["config"] == str(daemon.config_path)
        up = state["upstreams"]["u1"]
        assert set(up) == {"usable", "priority", "groups", "liveness"}
        assert up["groups"] == {proto.group: {"mode": "exclude", "sources": []}}
        link = state["downstream"][f"d1/{proto.family.protocol}"]
        assert set(link) == {"version", "operating-version", "oper-status", "querier",
                             "is-querier", "statistics", "groups", "admission"}
        group = link["groups"][proto.group]
        assert (group["subscribers"], group["upstreams"]) == ([proto.host], ["u1"])
        assert (group["filter-mode"], group["last-reporter"]) == ("exclude", proto.host)
        assert link["admission"] == {"groups-count": 1, "max-groups": 16_384, "subscribers": 1,
                                     "refused": {}}
        assert state["admission"] == {"entries-count": 1, "max-entries": 131_072}
        assert state["routes"] == [{"upstream": "u1", "source": proto.source,
                                    "group": proto.group, "downstream": ["d1"]}]
        assert state["errors"] == {}
        # ``mcastproxy status`` reads it (from another thread: it runs its own loop).
        code = await asyncio.to_thread(cli.main, ["status", "--socket",
                                                  str(daemon.status_socket)])
        assert code == 0
        out = capsys.readouterr().out
        assert f"route ({proto.source}, {proto.group}) u1 -> d1" in out
        assert f"{proto.group} from u1: {proto.host}" in out


async def test_an_engine_fault_is_counted_and_the_daemon_goes_on(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    def poisoned(event: Event) -> bool:
        return isinstance(event, PacketReceived) and event.source == ip(proto.host2)

    engine = Recording(parse_config(config(proto)), fault=poisoned)
    async with running(net, workdir, config(proto), engine=engine) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(upcall(proto, "u1"))
        await until(lambda: router.routes["u1"])
        sock.inject_message("d1", proto.host2, proto.join(proto.group2))
        await until(lambda: daemon.errors["engine"] == 1, what="the fault counted")
        state = await status_of(daemon)
        assert state["errors"] == {"engine": 1}
        # The daemon goes on: another host's join is proxied, and its flow routed.
        sock.inject_message("d1", proto.host, proto.join(proto.group2))
        router.push_upcall(upcall(proto, "u1", proto.group2))
        await until(lambda: len(router.routes["u1"]) == 2, what="routed after the fault")
        assert (TO_EX, ip(proto.group2)) in records(sock.messages("u1"))


async def test_an_engine_fault_in_a_burst_is_counted_once_and_the_daemon_goes_on(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    def poisoned(event: Event) -> bool:
        return isinstance(event, PacketReceived) and event.source == ip(proto.host2)

    engine = Recording(parse_config(config(proto)), fault=poisoned)
    async with running(net, workdir, config(proto), engine=engine) as daemon:
        sock = net.sockets[proto.family]
        # Three reports read at once, one engine pass: the second one makes the engine fail.
        sock.inject_message("d1", proto.host, proto.join())
        sock.inject_message("d1", proto.host2, proto.join(proto.group2))
        sock.inject_message("d1", proto.host, proto.join(proto.group2))
        await until(lambda: daemon.errors["engine"] == 1, what="the fault counted")
        assert engine.bursts == [3]
        assert "engine failed on a burst of 3 events" in caplog.text
        # The daemon goes on: the next read is handled.
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
        assert daemon.errors["engine"] == 1


async def test_a_route_the_kernel_refuses_is_counted_and_the_daemon_goes_on(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        router.refuse("set_route", KernelError("route in table 4600: No buffer space"))
        for group in (proto.group, proto.group2):
            sock.inject_message("d1", proto.host, proto.join(group))
            router.push_upcall(upcall(proto, "u1", group))
        await until(lambda: router.routes["u1"])
        assert daemon.errors == {"set route": 1}
        assert list(router.routes["u1"]) == [(ip(proto.source), ip(proto.group2))]
        assert "No buffer space" in caplog.text


MALFORMED = {
    "truncated": lambda p: b"\x22\x00\x00",
    "bad checksum": lambda p: b"\x16\x00\x00\x00" + bytes(p.family.length),
    "empty": lambda p: b"",
    "garbage": lambda p: bytes(range(256)) * 4,
}


async def test_malformed_packets_are_counted_and_never_crash(
    net: FakeNetwork, workdir: Path, proto: Proto, capsys: pytest.CaptureFixture[str],
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        src, dst = ip(proto.host), proto.family.all_v3_routers
        for make in MALFORMED.values():
            sock.inject("d1", src, dst, make(proto))
        sock.inject("eth9", src, dst, b"\x16\x00\x00\x00")  # an interface nobody knows
        await until(lambda: sum(daemon.status()["dropped"].values()) >= len(MALFORMED) + 1)
        state = await status_of(daemon)
        assert state["errors"] == {}
        assert state["dropped"]["socket: empty"] == 1
        assert state["dropped"]["socket: unknown interface"] == 1
        assert sum(state["dropped"].values()) == len(MALFORMED) + 1
        assert state["downstream"][f"d1/{proto.family.protocol}"]["groups"] == {}
        # ``mcastproxy status`` shows each drop where it happened.
        code = await asyncio.to_thread(cli.main, ["status", "--socket",
                                                  str(daemon.status_socket)])
        assert code == 0
        out = capsys.readouterr().out
        assert "dropped on d1: " + ", ".join(
            f"{k} {v}" for k, v in state["drops"]["d1"].items()) in out
        assert "dropped by the sockets: " in out
        assert "unknown interface 1" in out
        # The next good report is proxied.
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(upcall(proto, "u1"))
        await until(lambda: router.routes["u1"])


async def test_the_counters_of_watched_upstreams_are_sampled_for_the_engine(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    # u1's channels are watched for data (counters read every 25 ms); u2's are not.
    candidates = "[{interface: u1, liveness: {data: 100ms}}, {interface: u2}]"
    text = config(proto, candidates=candidates)
    engine = Recording(parse_config(text))

    def samples() -> list[CountersSampled]:
        return [e for e in engine.events if isinstance(e, CountersSampled)]

    async with running(net, workdir, text, engine=engine) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        for upstream in ("u1", "u2"):  # both candidates tie: both joined, both routed
            router.push_upcall(upcall(proto, upstream))
        await until(lambda: router.routes["u1"] and router.routes["u2"])
        key = ("u1", ip(proto.source), ip(proto.group))
        router.count(*key, RouteCounters(7, 7000, 0))
        await until(lambda: samples() and samples()[-1].packets == {key: 7},
                    what="a sample of u1's route alone")
        router.count(*key, RouteCounters(9, 9000, 0))
        await until(lambda: samples()[-1].packets == {key: 9}, what="the next sample")
        assert all(set(s.packets) == {key} for s in samples())  # never u2's
        data = {r["upstream"]: r.get("data") for r in (await status_of(daemon))["routes"]}
        assert data["u2"] is None  # not watched
        assert data["u1"] is not None
        # A table the kernel cannot read this time is left out, and sampling goes on.
        router.refuse("counters", KernelError("table gone"), on="u1")
        n = len(samples())
        await until(lambda: len(samples()) > n + 1)
        assert daemon.errors.get("engine") is None


async def test_pim_hellos_reach_the_engine(net: FakeNetwork, workdir: Path) -> None:
    candidates = ("[{interface: u1, routers: [192.0.2.254], liveness: {hellos: true}}, "
                  "{interface: u2}]")
    async with running(net, workdir, config(IGMP, candidates=candidates)) as daemon:
        pim = net.hellos[Family.V4]
        assert pim.listening == {"u1", "u2"}
        pim.inject("u1", "192.0.2.254")  # the configured router: evidence of life
        pim.inject("u1", "192.0.2.99")  # anyone else: counted and ignored (draft §7)
        pim.inject("d1", "10.1.0.99")  # not listened to: the socket drops it
        await until(lambda: daemon.status()["upstreams"]["u1"]["liveness"]["rejected_signals"])
        state = await status_of(daemon)
        assert state["dropped"]["hello from a router not configured for the upstream"] == 1
        assert state["upstreams"]["u1"]["usable"] is True
        assert pim.dropped == {Drop.UNKNOWN_INTERFACE: 1}
