"""The daemon's accounting on in-memory fakes: route counters into totals that outlive routes,
status' ``accounting``, the metrics, the session and security logs through reloads, SIGHUP
reopening and a bad path refused whole."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import Proto, config, running, status_of, until
from fakes import FakeNetwork, ip
from prometheus_client import generate_latest

from mcastproxy import cli
from mcastproxy.actions import Session
from mcastproxy.config import parse_config
from mcastproxy.daemon import Daemon
from mcastproxy.kernel.api import RouteCounters, Upcall, UpcallKind


def accounting(workdir: Path, *, interval: str = "100ms", logs: str = "sessions.log",
               security: str = "security.log") -> str:
    return (f"accounting: {{session-log: {workdir / logs}, security-log: "
            f"{workdir / security}, sample-interval: {interval}}}\n")


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines()]


async def test_counters_flow_into_status_metrics_and_the_session_log(
    net: FakeNetwork, workdir: Path, proto: Proto, capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = config(proto, extra=accounting(workdir))
    async with running(net, workdir, cfg) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        src, grp = ip(proto.source), ip(proto.group)
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", src, grp))
        await until(lambda: ("u1" in router.routes and (src, grp) in router.routes["u1"]))
        router.count("u1", src, grp, RouteCounters(10, 13_000, 0))
        await until(lambda: daemon.meter.sessions.zaps == 1, what="the first packet is seen")
        await until(lambda: daemon.meter.accounting.upstreams.get("u1") == [10, 13_000],
                    what="the sampler read the counters")
        await until(lambda: (daemon.meter.last_sample or {}).get("routes") == 1,
                    what="a whole sample of the route")
        state = await status_of(daemon)
        acc = state["accounting"]
        assert acc["upstreams"]["u1"] == {"packets": 10, "bytes": 13_000}
        assert acc["links"]["d1"] == {"packets": 10, "bytes": 13_000}
        assert acc["channels"] == [{"upstream": "u1", "source": proto.source,
                                    "group": proto.group, "packets": 10, "bytes": 13_000}]
        assert acc["delivered"][0]["link"] == "d1"
        assert acc["sessions"]["open"] == 1
        assert acc["last-sample"]["routes"] == 1
        code = await asyncio.to_thread(cli.main, ["status", "--socket",
                                                  str(daemon.status_socket)])
        assert code == 0
        out = capsys.readouterr().out
        assert "received u1: 13,000 bytes, 10 packets" in out
        assert "delivered d1: 13,000 bytes, 10 packets" in out
        daemon._publish()
        scraped = generate_latest(daemon.metrics.registry).decode()
        assert 'mcastproxy_upstream_received_bytes_total{upstream="u1"} 13000.0' in scraped
        assert 'mcastproxy_downstream_delivered_packets_total{link="d1"} 10.0' in scraped
        # The leave: the route is read just before it goes, so nothing counted is lost.
        router.count("u1", src, grp, RouteCounters(12, 15_600, 0))
        sock.inject_message("d1", proto.host, proto.leave())
        await until(lambda: (src, grp) not in router.routes["u1"], what="the route is deleted")
        assert daemon.meter.accounting.channels["u1", src, grp] == [12, 15_600]
        # Made again: the kernel counts from zero, the totals go on.
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", src, grp))
        await until(lambda: (src, grp) in router.routes["u1"])
        router.count("u1", src, grp, RouteCounters(1, 1300, 0))
        await until(lambda: daemon.meter.accounting.channels["u1", src, grp] == [13, 16_900])
    ended = [x for x in lines(workdir / "sessions.log") if x["event"] == "end"]
    assert [x["ended-by"] for x in ended] == ["leave", "stop"]  # the second at the stop
    assert ended[0]["subscriber"] == proto.host
    assert ended[0]["source"] == "*"
    assert ended[0]["bytes"] == 15_600
    assert ended[0]["packets"] == 12
    assert ended[0]["upstream"] == ["u1"]
    assert ended[0]["zap-ms"] is not None


async def test_drops_reach_the_security_log_as_counts(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with running(net, workdir, config(proto, extra=accounting(workdir))) as daemon:
        sock = net.sockets[proto.family]
        for _ in range(500):  # a flood of garbage
            sock.inject("d1", ip(proto.host), proto.family.all_v3_routers, b"\x22")
        await until(lambda: any(x["event"] == "drops" for x in lines(workdir / "security.log")),
                    what="a drops line")
        assert daemon.meter.security is not None
    drops = [x for x in lines(workdir / "security.log") if x["event"] == "drops"]
    assert sum(x["count"] for x in drops) == 500
    assert len(drops) <= 3  # one line a second per (interface, reason), not one per packet


async def test_reload_refuses_a_bad_path_whole_and_sighup_reopens(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    cfg = config(proto, extra=accounting(workdir))
    async with running(net, workdir, cfg) as daemon:
        old = daemon.config
        daemon.applier.apply([Session("d1", int(proto.family), ip(proto.host), None,
                               ip(proto.group), True)])
        daemon.config_path.write_text(
            config(proto, downstream="[{interface: d1}, {interface: d2}]",
                   extra=accounting(workdir, logs="gone/sessions.log")))
        daemon.reload()
        assert daemon.config is old  # nothing of it applied: not even the new link
        assert daemon.meter.sessions.writer is not None
        assert daemon.meter.sessions.writer.path == workdir / "sessions.log"
        # logrotate: the file moved away, then SIGHUP (the same configuration).
        (workdir / "sessions.log").rename(workdir / "sessions.log.1")
        daemon.config_path.write_text(cfg)
        daemon.reload()
        daemon.applier.apply([Session("d1", int(proto.family), ip(proto.host), None,
                               ip(proto.group), False)])
        # A reload to other paths opens them, and closes the old ones.
        daemon.config_path.write_text(config(proto, extra=accounting(
            workdir, logs="other.log", security="other-security.log")))
        daemon.reload()
        assert daemon.meter.sessions.writer.path == workdir / "other.log"
        daemon.applier.apply([Session("d1", int(proto.family), ip(proto.host2), None,
                               ip(proto.group), True)])
        await until((workdir / "other.log").exists)
        # Accounting off: open sessions end, the logs are closed, status says null.
        daemon.config_path.write_text(config(proto))
        daemon.reload()
        assert not daemon.meter.on
        assert (await status_of(daemon))["accounting"] is None
    assert [x["event"] for x in lines(workdir / "sessions.log.1")] == ["start"]
    assert [x["event"] for x in lines(workdir / "sessions.log")] == ["end"]
    other = lines(workdir / "other.log")
    assert [x["event"] for x in other] == ["start", "end"]
    assert other[-1]["ended-by"] == "reload"  # the session log was turned off


async def test_a_log_that_cannot_be_opened_refuses_the_start(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    (workdir / "sessions.log").mkdir()  # made after the check: a race, or another process
    cfg = config(proto, extra=accounting(workdir, logs="other.log"))
    daemon = Daemon(workdir / "c.yaml", parse_config(cfg), platform=net.platform(),
                    status_socket=workdir / "status.sock")
    daemon.meter._configured = daemon.meter._configured.model_copy(  # type: ignore[union-attr]
        update={"session_log": workdir / "sessions.log"})
    assert await daemon.run() == 1
    assert net.routers == {}  # the kernel was never touched


async def test_the_engine_s_own_sessions_reach_the_session_log(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    extra = f"accounting: {{session-log: {workdir / 's.log'}, sample-interval: 100ms}}\n"
    async with running(net, workdir, config(proto, extra=extra)) as daemon:
        # The engine says sessions once told to (its router links' ``sessions``); until it
        # turns them on from ``accounting.session-log`` itself, the test does.
        daemon.engine._downstream.sessions = True
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        src, grp = ip(proto.source), ip(proto.group)
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: daemon.meter.sessions.open, what="the engine's session start")
        router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", src, grp))
        await until(lambda: (src, grp) in router.routes["u1"])
        router.count("u1", src, grp, RouteCounters(7, 7000, 0))
        await until(lambda: daemon.meter.sessions.zaps == 1, what="the first packet")
        sock.inject_message("d1", proto.host, proto.leave())
        await until(lambda: not daemon.meter.sessions.open, what="the engine's session end")
    start, end = lines(workdir / "s.log")
    assert (start["event"], start["upstream"]) == ("start", [])  # no route yet at the join
    assert end["event"] == "end"
    assert end["subscriber"] == proto.host
    assert end["source"] == "*"
    assert end["group"] == proto.group
    assert end["upstream"] == ["u1"]  # read before the leave took the link off the route
    assert (end["packets"], end["bytes"]) == (7, 7000)
    assert end["zap-ms"] is not None
