"""Controller API latency, in network namespaces: from the API call that moves a channel to
the join report on the new upstream's wire, through the standard tree and through the
file's form, interleaved.

Run (as root): .venv/bin/python bench/bench_api.py [--moves N] [--family 4|6]

The lab is ``topologies.proxy_lab()``: the proxy (its routes in the kernel where it routes
multicast, else recorded: ``mcastlab.recorded``; the reports upstream are real either way)
with u1 holding the group record ``G/24`` and u2 ``G/16``; sub1 on d1 joins G (a kernel
host's join). Each move is one HTTP request over the API's UNIX socket, on one kept-alive
connection, with the ETag the previous answer gave (If-Match); both forms make the same
change, so the proxy's work after the parse is the same:

- tree: ``PATCH .../mcastproxy:proxy/upstream/candidate=u2/records=1`` with u2's record 1
  (RFC 8040 §4.6.1's plain patch of one list entry of the standard tree);
- file: ``PATCH /restconf/data/mcastproxy:config`` with the candidates (RFC 7396's merge
  patch: the list whole, as the file writes it).

u2's record narrowed to G/32 moves the channel to u2, widened back to G/16 moves it to u1:
no data flows, so nothing is bridged and the move is made at once (a join on the new
upstream, a leave on the old). The latency is from just before the request is written
(``CLOCK_REALTIME``) to the kernel's timestamp of the proxy's join report arriving at the
new upstream's provider (``SO_TIMESTAMPNS``, the same clock): the request read and parsed,
the change checked by the schema (tree) and read back into the file's document, validated
as the file is, applied (every subscription selected again), the report built and sent, and
the file written after (not in the latency: the report leaves before). Each form's moves
alternate direction, and the forms take turns, two moves each, so that the machine's noise
falls on both alike; the answer's time (the 204 read back) is printed too.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lab" / "src"))

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastlab.capture import Capture
from mcastlab.proxy import best_forwarding
from mcastproxy.wire.messages import RecordType, Report

YANG = "application/yang-data+json"
CONFIG_URL = "/restconf/data/mcastproxy:config"
UPSTREAM = ("/restconf/data/ietf-routing:routing/control-plane-protocols/"
            "control-plane-protocol=mcastproxy:multi-upstream-proxy,mcastproxy/"
            "mcastproxy:proxy/upstream")
RECORD_URL = UPSTREAM + "/candidate=u2/records=1"
# (group, u1's record, u2's wide record, u2's narrow record, how sub1 joins, the setting)
CHANNEL = {
    4: ("239.1.1.1", "239.1.1.0/24", "239.1.0.0/16", "239.1.1.1/32", JoinMode.IGMPV3_ASM,
        "igmp: {version: 3}"),
    6: ("ff1e::1:1", "ff1e::1:0/120", "ff1e::/16", "ff1e::1:1/128", JoinMode.MLDV2_ASM,
        "mld: {version: 2}"),
}
CONFIG = """
{setting}
downstream: [{{interface: d1, fast-leave: true}}]
upstream:
  candidates:
    - {{interface: u1, records: [{{group: "{on_u1}"}}]}}
    - {{interface: u2, records: [{{group: "{wide}"}}]}}
api: {{socket: {socket}}}
"""


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a UNIX socket, kept alive between requests."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def call(conn: UnixConnection, method: str, path: str, body: Any = None,
         etag: str | None = None) -> tuple[int, str, int]:
    """(status, ETag, when the answer was read: CLOCK_REALTIME ns)."""
    headers = {"Accept": YANG}
    if body is not None:
        headers["Content-Type"] = YANG
    if etag is not None:
        headers["If-Match"] = etag
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers=headers)
    response = conn.getresponse()
    text = response.read()
    done = time.time_ns()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {text.decode()[:2000]}")
    return response.status, response.getheader("ETag") or "", done


def joins(cap: Capture, group: str, start: int) -> list[int]:
    """The kernel's timestamps (CLOCK_REALTIME ns) of the proxy's join reports for
    ``group`` arriving at the provider."""
    wanted = ipaddress.ip_address(group).packed
    return [p.kernel_ns or 0 for p, m in cap.messages(start)
            if not p.outgoing and isinstance(m, Report) and any(
                r.group == wanted and r.type == RecordType.CHANGE_TO_EXCLUDE_MODE
                and not r.sources for r in m.records)]


def leaves(cap: Capture, group: str, start: int) -> bool:
    wanted = ipaddress.ip_address(group).packed
    return any(not p.outgoing and isinstance(m, Report) and any(
        r.group == wanted and r.type == RecordType.CHANGE_TO_INCLUDE_MODE and not r.sources
        for r in m.records) for p, m in cap.messages(start))


def figures(name: str, values_ms: list[float]) -> str:
    values = sorted(values_ms)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (f"{name:>24}: median {statistics.median(values):6.2f} ms   p99 {p99:6.2f} ms   "
            f"min {values[0]:6.2f} ms   ({len(values)} moves)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=40, help="moves per form (at least 30)")
    parser.add_argument("--family", type=int, choices=(4, 6), default=4)
    args = parser.parse_args()
    group, on_u1, wide, narrow, mode, setting = CHANNEL[args.family]
    forwarding = best_forwarding()
    latency: dict[str, list[float]] = {"tree": [], "file": []}
    answer: dict[str, list[float]] = {"tree": [], "file": []}
    with Lab(topologies.proxy_lab()) as lab:
        assert lab.logdir is not None
        api = lab.logdir / "api.sock"
        proxy = lab.proxy(CONFIG.format(setting=setting, on_u1=on_u1, wide=wide, socket=api),
                          forwarding=forwarding)
        wait_until(api.exists, 10)
        caps = {"u1": lab.capture("prov1", "eth0"), "u2": lab.capture("prov2", "eth0")}
        lab.receiver("sub1", "eth0").join(mode, group)
        wait_until(lambda: proxy.joined(group) == {"u1"}, 10)
        conn = UnixConnection(api)
        _, etag, _ = call(conn, "GET", CONFIG_URL)
        for i in range(2 * args.moves):
            form = "tree" if (i // 2) % 2 == 0 else "file"
            to, other = ("u2", "u1") if i % 2 == 0 else ("u1", "u2")
            u2_record = narrow if to == "u2" else wide
            if form == "tree":
                path, body = RECORD_URL, {"mcastproxy:records": [{"id": 1, "group": u2_record}]}
            else:
                path, body = CONFIG_URL, {"mcastproxy:config": {"upstream": {"candidates": [
                    {"interface": "u1", "records": [{"group": on_u1}]},
                    {"interface": "u2", "records": [{"group": u2_record}]}]}}}
            marks = {name: cap.mark() for name, cap in caps.items()}
            started = time.time_ns()
            _, etag, answered = call(conn, "PATCH", path, body, etag)
            arrived = wait_until(
                lambda to=to, m=marks, t0=started: [t for t in joins(caps[to], group, m[to])
                                                    if t >= t0], 10)[0]
            # The old upstream left too, and the proxy's state is the new one, before the
            # next move (its reports there are leaves from now on).
            wait_until(lambda other=other, m=marks: leaves(caps[other], group, m[other]), 10)
            wait_until(lambda to=to: proxy.joined(group) == {to}, 10)
            latency[form].append((arrived - started) / 1e6)
            answer[form].append((answered - started) / 1e6)
        conn.close()
    print(f"Controller API: the call moving a channel (IPv{args.family}, routes "
          f"{forwarding}) to the proxy's join report on the new upstream's wire")
    for form in ("tree", "file"):
        what = ("standard tree, a record" if form == "tree" else "file's form, merge patch")
        print(figures(what, latency[form]))
        print(figures("  its answer (204) read", answer[form]))
    ratio = statistics.median(latency["tree"]) / statistics.median(latency["file"])
    print(f"{'tree / file':>24}: {ratio:.2f} (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
