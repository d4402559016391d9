"""A controller steers the proxy through its API (draft §6.2, RFC 8040): curl reads the
state, the example client (``examples/controller.py``) moves a channel's group record from
u1 to u2, and the proxy's upstream reports follow; then the channel is moved back and forth
by taking its upstream out, and the time from the API call to the join report on the new
upstream's wire is measured.

Then, with the channel's data flowing (``test_a_record_moved_in_the_tree_moves_the_route_
make_before_break``), a PATCH of one record of the standard tree moves it while the
subscriber holds it: the proxy joins on u2 and keeps u1 feeding d1 until u2 delivers, then
leaves u1. This kernel routes no multicast: the proxy runs with its routes recorded, the
data that "arrived" on an upstream is what the test writes beside the configuration
(``mcastlab.recorded.DataFeed``), and which upstream feeds d1 is read from the routes the
daemon set, sampled all along by a thread of the test.

::

      prov1 eth0 10.0.1.2/24 (capture)            prov2 eth0 10.0.2.2/24 (capture)
              |                                            |
      u1 10.0.1.1/24 --------------- proxy --------------- u2 10.0.2.1/24
      239.1.1.0/24 at first            |  api.sock <-- controller (curl, controller.py),
                                       |               in the host's namespace
      d1 10.1.1.1/24 -- [ lan1 ] -- sub1 10.1.1.11 (joins 239.1.1.1)
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.capture import Capture
from mcastlab.proxy import Proxy
from mcastlab.recorded import DataFeed
from mcastproxy.wire.messages import RecordType, Report

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[3]
GROUP = "239.1.1.1"
PREFIX = "239.1.1.0/24"
CONFIG = """
igmp: {{version: 3}}
downstream: [{{interface: d1, fast-leave: true}}]
upstream:
  candidates:
    - {{interface: u1, records: [{{group: {prefix}}}]}}
    - {{interface: u2}}
api: {{socket: {socket}}}
"""
MOVES = 40  # each way


def joins(cap: Capture, source: str, start: int) -> list[int]:
    """When (monotonic ns) the proxy's reports from ``source`` joining GROUP were seen."""
    group = bytes(int(x) for x in GROUP.split("."))
    return [p.time_ns for p, m in cap.messages(start)
            if p.src == source and isinstance(m, Report)
            and any(r.group == group and r.type == 4 for r in m.records)]


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("controller_example",
                                                  ROOT / "examples" / "controller.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def patch(socket: Path, change: dict[str, object]) -> int:
    """PATCH ``change`` with If-Match over the socket, in this process (the example's
    connection class); the status."""
    conn = _example().UnixConnection(str(socket), 10.0)
    try:
        conn.request("GET", "/restconf/data/mcastproxy:config")
        response = conn.getresponse()
        response.read()
        tag = response.getheader("ETag")
        conn.request("PATCH", "/restconf/data/mcastproxy:config",
                     body=json.dumps({"mcastproxy:config": change}),
                     headers={"Content-Type": "application/yang-data+json", "If-Match": tag})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def controller(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / "controller.py"),
                           "--socket", str(socket), *args],
                          capture_output=True, text=True, timeout=30, check=False)


def curl(socket: Path, *args: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-s", "--unix-socket", str(socket), "-w", "\n%{http_code}",
                          *args], capture_output=True, text=True, timeout=30, check=True)
    body, _, code = out.stdout.rpartition("\n")
    return int(code), body


def test_a_controller_moves_a_channel(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(topologies.proxy_lab())
    assert lab.logdir is not None
    socket = lab.logdir / "api.sock"
    proxy = lab.proxy(CONFIG.format(prefix=PREFIX, socket=socket), forwarding="recorded")
    wait_until(socket.exists, 10)
    cap1, cap2 = lab.capture("prov1", "eth0"), lab.capture("prov2", "eth0")
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_ASM, GROUP)
    wait_until(lambda: proxy.joined(GROUP) == {"u1"}, 10)

    # curl reads the state and the configuration, as any RESTCONF client would.
    code, body = curl(socket, "http://proxy/restconf/data/mcastproxy:state/upstreams=u1")
    assert code == 200
    assert GROUP in json.loads(body)["mcastproxy:u1"]["groups"]
    code, body = curl(socket, "-X", "PATCH", "-H", "Content-Type: application/yang-data+json",
                      "-d", '{"mcastproxy:config": {"upstream": {"takeover": false}}}',
                      "http://proxy/restconf/data/mcastproxy:config")
    assert code == 428  # no If-Match: refused, nothing changed
    assert "If-Match" in body

    # The example client gives the record to u2: what runs moves with it, make before
    # break (unlike a SIGHUP's, a controller's change selects running subscriptions again).
    mark2 = cap2.mark()
    done = controller(socket, "move", PREFIX, "u2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("204")
    wait_until(lambda: joins(cap2, "10.0.2.1", mark2), 10)
    # Bridged on u1 until u2 delivers (recorded routes carry no data here: at most the
    # bridge's timeout), then left there.
    wait_until(lambda: proxy.joined(GROUP) == {"u2"}, 15)
    # A restart would read the same: the file holds it.
    assert "u2" in proxy.config.read_text().split("239.1.1.0/24")[0].rsplit("interface", 1)[1]

    # Moves by taking the carrying upstream out: the subscription moves at once. From the
    # API call (its GET for the ETag, then the PATCH) to the join report on the new
    # upstream's wire; every other move by the example client, its start included.
    latencies: list[float] = []
    with_start: list[float] = []
    where = {"u1": (cap1, "10.0.1.1"), "u2": (cap2, "10.0.2.1")}
    for i in range(2 * MOVES):
        to = "u1" if i % 2 == 0 else "u2"
        cap, address = where[to]
        mark = cap.mark()
        change = {"upstream": {"candidates": [{"interface": to,
                                               "records": [{"group": PREFIX}]}]}}
        started = time.monotonic_ns()
        if i % 4 == 3:
            done = controller(socket, "patch", json.dumps(change))
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            assert patch(socket, change) == 204
        wait_until(lambda cap=cap, address=address, mark=mark: joins(cap, address, mark), 10)
        took = (joins(cap, address, mark)[0] - started) / 1e6
        (with_start if i % 4 == 3 else latencies).append(took)
        assert proxy.joined(GROUP) == {to}
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"\nAPI call to the join report on the new upstream, {len(latencies)} moves: "
          f"median {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms; with the example "
          f"client's start ({len(with_start)}): median {statistics.median(with_start):.1f} ms")
    assert proxy.running


# --- make before break, with the channel's data ---------------------------------------------


@dataclass(frozen=True)
class Channel:
    """A channel of one family: any-source group G (its /24 or /120 on u1 at first, a
    shorter prefix on u2), the source its data comes from, how the subscriber joins."""

    group: str
    source: str
    on_u1: str
    on_u2: str
    exact: str
    mode: JoinMode
    setting: str


CHANNELS = {
    4: Channel("239.1.1.1", "10.0.9.1", "239.1.1.0/24", "239.1.0.0/16", "239.1.1.1/32",
               JoinMode.IGMPV3_ASM, "igmp: {version: 3}"),
    6: Channel("ff1e::1:1", "fd00:9::1", "ff1e::1:0/120", "ff1e::/16", "ff1e::1:1/128",
               JoinMode.MLDV2_ASM, "mld: {version: 2}"),
}
TREE_CONFIG = """
{setting}
downstream: [{{interface: d1, fast-leave: true}}]
upstream:
  candidates:
    - {{interface: u1, records: [{{group: "{on_u1}"}}]}}
    - {{interface: u2, records: [{{group: "{on_u2}"}}]}}
api: {{socket: {socket}}}
"""


def reports(cap: Capture, group: str, kind: RecordType, start: int) -> list[int]:
    """When (monotonic ns) the proxy's reports with a ``kind`` record (no sources) for
    ``group`` came in at the provider's end."""
    wanted = ipaddress.ip_address(group).packed
    return [p.time_ns for p, m in cap.messages(start)
            if not p.outgoing and isinstance(m, Report)
            and any(r.group == wanted and r.type == kind and not r.sources for r in m.records)]


class Routes:
    """The daemon's routes for one group, sampled by a thread until ``close``: each sample
    is (monotonic ns, the upstreams whose route sends to d1, the upstreams joined)."""

    def __init__(self, proxy: Proxy, group: str) -> None:
        self.proxy = proxy
        self.group = group
        self.samples: list[tuple[int, frozenset[str], frozenset[str]]] = []
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="routes")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                status = self.proxy.status()
                feeders = frozenset(r["upstream"] for r in status["routes"]
                                    if r["group"] == self.group and "d1" in r["downstream"])
                joined = frozenset(u for u, info in status["upstreams"].items()
                                   if self.group in info["groups"])
                self.samples.append((time.monotonic_ns(), feeders, joined))
        except BaseException as exc:  # the test reads it: a sampler that died saw nothing
            self.failure = exc

    def since(self, t_ns: int) -> list[tuple[int, frozenset[str], frozenset[str]]]:
        return [s for s in list(self.samples) if s[0] >= t_ns]

    def stop(self) -> None:
        """No more samples; the sampler's failure, if it had one, raised."""
        self.close()
        assert self.failure is None, self.failure

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def api_call(socket: Path, method: str, path: str, body: object = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
    """One request over the API's socket (the example's connection class)."""
    conn = _example().UnixConnection(str(socket), 10.0)
    try:
        hdrs = {"Content-Type": "application/yang-data+json"} if body is not None else {}
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={**hdrs, **(headers or {})})
        response = conn.getresponse()
        text = response.read().decode()
        return response.status, dict(response.getheaders()), json.loads(text) if text else None
    finally:
        conn.close()


@pytest.mark.parametrize("family", [4, 6], ids=["igmp", "mld"])
def test_a_record_moved_in_the_tree_moves_the_route_make_before_break(
    make_lab: Callable[..., Lab], family: int,
) -> None:
    ch = CHANNELS[family]
    lab = make_lab(topologies.proxy_lab())
    assert lab.logdir is not None
    socket = lab.logdir / "api.sock"
    proxy = lab.proxy(TREE_CONFIG.format(setting=ch.setting, on_u1=ch.on_u1, on_u2=ch.on_u2,
                                         socket=socket), forwarding="recorded")
    wait_until(socket.exists, 10)
    cap1, cap2 = lab.capture("prov1", "eth0"), lab.capture("prov2", "eth0")
    feed = DataFeed(proxy.config)
    routes: Routes | None = None
    try:
        feed.start("u1", ch.source, ch.group)  # u1's provider sends the channel
        lab.receiver("sub1", "eth0").join(ch.mode, ch.group)
        wait_until(lambda: proxy.feeders(ch.group) == {"u1"}, 10,
                   message=lambda: f"routes: {proxy.routes(ch.group)}")
        # The subscriber's group, by its path in RFC 8652's tree (its key percent-encoded).
        example = _example()
        status, _, body = api_call(socket, "GET", example.group_path("d1", ch.group))
        assert status == 200, body
        assert body["ietf-igmp-mld:group"][0]["group-address"] == ch.group  # type: ignore[index]
        code, text = curl(socket, "http://proxy" + example.group_path("d1", ch.group))
        assert (code, json.loads(text)) == (200, body)

        routes = Routes(proxy, ch.group)
        wait_until(lambda: len(routes.samples) >= 5, 10)
        mark1, mark2 = cap1.mark(), cap2.mark()
        # The controller: u2's record narrowed to the channel alone, a PATCH of that one node
        # of the standard tree (the example client's ``record``).
        started = time.monotonic_ns()
        done = controller(socket, "record", "u2", "1", ch.exact)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("204")
        joined_u2 = wait_until(lambda: reports(cap2, ch.group, RecordType.CHANGE_TO_EXCLUDE_MODE,
                                               mark2), 10)[0]
        # Make before break: u2 delivers nothing yet, so u1 keeps feeding d1 and stays joined.
        wait_until(lambda: len(routes.since(joined_u2)) >= 10, 10)
        bridged = routes.since(started)
        assert all(f == {"u1"} for _, f, _ in bridged), bridged
        assert any(j == {"u1", "u2"} for _, _, j in routes.since(joined_u2))
        assert not reports(cap1, ch.group, RecordType.CHANGE_TO_INCLUDE_MODE, mark1)
        # u2's provider answers the join: the data arrives there, d1 is fed from u2 and u1 is
        # left (the provider then stops sending there).
        delivers = time.monotonic_ns()
        feed.start("u2", ch.source, ch.group)
        wait_until(lambda: proxy.feeders(ch.group) == {"u2"}, 10,
                   message=lambda: f"routes: {proxy.routes(ch.group)}")
        left = wait_until(lambda: reports(cap1, ch.group, RecordType.CHANGE_TO_INCLUDE_MODE,
                                          mark1), 10)[0]
        feed.stop("u1")
        wait_until(lambda: proxy.joined(ch.group) == {"u2"}, 10)
        wait_until(lambda: len(routes.since(left)) >= 5, 10)
        routes.stop()
        # Every sample, from before the PATCH to after the leave: d1 fed by one upstream,
        # never by none (no gap) and never by both (no duplicate); u1, then u2, once.
        samples = routes.since(0)
        assert all(len(f) == 1 for _, f, _ in samples), [f for _, f, _ in samples]
        order = [next(iter(f)) for _, f, _ in samples]
        switch = order.index("u2")
        assert set(order[:switch]) == {"u1"}, order
        assert set(order[switch:]) == {"u2"}, order
        # Neither the switch nor the leave of u1 came before u2 delivered.
        assert samples[switch][0] > delivers
        assert left > delivers
        assert proxy.running
    finally:
        if routes is not None:
            routes.close()
        feed.close()
