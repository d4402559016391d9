"""Prometheus metrics (``mcastproxy.metrics``): scraped over HTTP from a running daemon, the
values follow what it was sent; labels stay bounded whatever hosts send; a scrape never reads
the engine from the listener's thread (it reads the last published view)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_harness import IGMP, config, records, running, until
from fakes import FakeNetwork, ip
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mcastproxy.metrics import PUBLISH_INTERVAL, Durations

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(address: tuple[str, int]) -> Samples:
    def get() -> str:
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics",
                                    timeout=5) as r:
            return str(r.read().decode())

    text = await asyncio.to_thread(get)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def exported_names(address: tuple[str, int]) -> set[str]:
    """The series names the proxy exports, samples or not yet (a counter of errors that
    never happened has its family and no sample)."""
    def get() -> str:
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics",
                                    timeout=5) as r:
            return str(r.read().decode())

    names: set[str] = set()
    for family in text_string_to_metric_families(await asyncio.to_thread(get)):
        names |= {s.name for s in family.samples}
        names |= {family.name + suffix for suffix in {
            "counter": ("_total",), "gauge": ("",),
            "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ())}
    return names


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def dropped(samples: Samples) -> float:
    return sum(v for k, v in samples.items() if k[0] == "mcastproxy_drops_total")


async def scraped(address: tuple[str, int], condition: Callable[[Samples], bool],
                  timeout: float = 5.0) -> Samples:
    """Scrape until ``condition`` holds of what the listener serves (a view is published
    every ``PUBLISH_INTERVAL``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition(got := await scrape(address)):
        if loop.time() > end:
            raise AssertionError(f"not scraped within {timeout} s: {got}")
        await asyncio.sleep(PUBLISH_INTERVAL / 10)
    return got


async def test_the_metrics_follow_what_the_proxy_was_sent(
    net: FakeNetwork, workdir: Path,
) -> None:
    text = config(IGMP)
    async with running(net, workdir, text, metrics=("127.0.0.1", 0)) as daemon:
        assert daemon.metrics_address is not None
        sock = net.sockets[IGMP.family]
        sock.inject_message("d1", IGMP.host, IGMP.join())
        await until(lambda: records(sock.messages("u1")))
        for _ in range(3):  # three reports that do not decode
            sock.inject("d1", ip(IGMP.host), IGMP.family.all_v3_routers, b"\x22\x00")
        daemon.reload()  # the same file: applied
        (workdir / "mcastproxy.yaml").write_text("upstream: [")
        daemon.reload()  # refused
        got = await scraped(daemon.metrics_address, lambda s: dropped(s) >= 3 and value(
            s, "mcastproxy_reloads_total", result="refused") == 1.0)
    assert value(got, "mcastproxy_upstream_usable", upstream="u1") == 1.0
    on_d1 = {k[1]: v for k, v in got.items()
             if k[0] == "mcastproxy_drops_total" and ("interface", "d1") in k[1]}
    assert sum(on_d1.values()) == 3, on_d1
    assert value(got, "mcastproxy_reloads_total", result="applied") == 1.0
    assert value(got, "mcastproxy_reloads_total", result="refused") == 1.0
    assert value(got, "mcastproxy_reload_seconds_count") == 2.0
    assert (value(got, "mcastproxy_event_handling_seconds_count") or 0) >= 4
    assert value(got, "mcastproxy_routes") == 0.0
    assert (value(got, "mcastproxy_gc_frozen_objects") or 0) > 0
    # RFC 8652's statistics: the join received, and the three that did not decode in error.
    assert value(got, "mcastproxy_messages_total", link="d1", protocol="igmp",
                 direction="received", type="report-v3") == 1.0
    assert (value(got, "mcastproxy_messages_total", link="d1", protocol="igmp",
                  direction="sent", type="query") or 0) >= 1


async def test_bandwidth_in_use_is_a_gauge_per_link_and_upstream(
    net: FakeNetwork, workdir: Path,
) -> None:
    text = config(IGMP, extra="policy: {bandwidth: {channels: [{group: 239.0.0.0/8, rate: 3M}]}}"
                              "\n")
    text = text.replace("candidates: [{interface: u1}]",
                        "candidates: [{interface: u1, max-bandwidth: 1G}]")
    async with running(net, workdir, text, metrics=("127.0.0.1", 0)) as daemon:
        assert daemon.metrics_address is not None
        net.sockets[IGMP.family].inject_message("d1", IGMP.host, IGMP.join())
        got = await scraped(daemon.metrics_address, lambda s: value(
            s, "mcastproxy_link_bandwidth_bits_per_second", link="d1") == 3e6)
    assert value(got, "mcastproxy_upstream_bandwidth_bits_per_second", upstream="u1") == 3e6


async def test_spoofed_hosts_add_no_series(net: FakeNetwork, workdir: Path) -> None:
    async with running(net, workdir, config(IGMP), metrics=("127.0.0.1", 0)) as daemon:
        assert daemon.metrics_address is not None
        sock = net.sockets[IGMP.family]
        sock.inject("d1", ip("10.1.0.7"), IGMP.family.all_v3_routers, b"\x22")
        before = await scraped(daemon.metrics_address, lambda s: dropped(s) == 1)
        for i in range(500):  # 500 spoofed hosts, each sending a report that does not decode
            sock.inject("d1", ip(f"10.1.{1 + i // 250}.{i % 250 + 1}"),
                        IGMP.family.all_v3_routers, b"\x22")
        after = await scraped(daemon.metrics_address, lambda s: dropped(s) == 501)
    series = lambda s: {k for k in s if k[0].startswith("mcastproxy_drops")}  # noqa: E731
    assert series(after) == series(before)


async def test_a_garbage_request_to_the_listener_changes_nothing(
    net: FakeNetwork, workdir: Path,
) -> None:
    async with running(net, workdir, config(IGMP), metrics=("127.0.0.1", 0)) as daemon:
        assert daemon.metrics_address is not None

        def garbage() -> None:
            for junk in (b"\x00" * 70000, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                         b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nx"):
                with socket.create_connection(daemon.metrics_address, timeout=5) as s:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):
                        pass

        await asyncio.to_thread(garbage)
        got = await scrape(daemon.metrics_address)
        assert value(got, "mcastproxy_upstream_usable", upstream="u1") == 1.0


async def test_a_listener_that_cannot_bind_stops_the_start(
    net: FakeNetwork, workdir: Path,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        path = workdir / "mcastproxy.yaml"
        path.write_text(config(IGMP))
        from mcastproxy.config import parse_config  # noqa: PLC0415
        from mcastproxy.daemon import Daemon  # noqa: PLC0415

        daemon = Daemon(path, parse_config(config(IGMP)), platform=net.platform(),
                        status_socket=workdir / "s.sock", metrics=taken.getsockname())
        assert await daemon.run() == 1
    finally:
        taken.close()


DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "mcastproxy.json"


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    queries += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return queries


async def test_every_query_of_the_dashboard_names_a_metric_the_proxy_exports(
    net: FakeNetwork, workdir: Path,
) -> None:
    # Every part on, so that every metric the dashboard may show is exported: bandwidth
    # admission, upstream budgets, accounting.
    text = config(IGMP, candidates="[{interface: u1, max-bandwidth: 1G}]",
                  extra="policy: {bandwidth: {default-rate: 1M}}\n"
                        "accounting: {sample-interval: 100ms}\n")
    async with running(net, workdir, text, metrics=("127.0.0.1", 0)) as daemon:
        assert daemon.metrics_address is not None
        sock = net.sockets[IGMP.family]
        sock.inject("d1", ip(IGMP.host), IGMP.family.all_v3_routers, b"\x22")
        sock.inject_message("d1", IGMP.host, IGMP.join())
        await scraped(daemon.metrics_address, lambda s: dropped(s) == 1)
        exported = await exported_names(daemon.metrics_address)
    queries = dashboard_queries()
    assert len(queries) >= 12
    for query in queries:
        names = set(re.findall(r"\bmcastproxy_[a-z_]+\b", query))
        assert names, query
        assert names <= exported, (query, names - exported)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (prometheus)")
def test_every_query_of_the_dashboard_is_promql(tmp_path: Path) -> None:
    # promtool checks the expressions of recording rules: one rule per query.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"mcastproxy:dashboard_{i}", "expr": q}
        for i, q in enumerate(dashboard_queries()) if "label_values" not in q]}]}
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_handling_durations_are_a_prometheus_histogram_with_le_buckets() -> None:
    durations = Durations("mcastproxy_test_seconds", "durations", (1e-4, 1e-3, 1e-2))
    for seconds in (5e-5, 1e-4, 2e-4, 1e-3, 0.5):  # 1e-4 and 1e-3: on a bound, "le" it
        durations.observe(seconds)
    registry = CollectorRegistry()
    registry.register(durations)
    text = generate_latest(registry).decode()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}
    buckets = {dict(labels)["le"]: value for (name, labels), value in got.items()
               if name == "mcastproxy_test_seconds_bucket"}
    assert buckets == {"0.0001": 2.0, "0.001": 4.0, "0.01": 4.0, "+Inf": 5.0}
    assert got["mcastproxy_test_seconds_count", ()] == 5.0
    assert got["mcastproxy_test_seconds_sum", ()] == pytest.approx(0.50135)
