"""The daemon (``mcastproxy run``) in a lab of ``topologies.proxy_lab()``, for the e2e tests.

``Proxy`` starts it in the proxy's namespace with a configuration, captures IGMP/MLD on both
providers' links, and reads its state from the status socket. The ``proxy_with`` fixture
(``tests/e2e/conftest.py``) makes one for a test: ``proxy = proxy_with(CONFIG)``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from pathlib import Path
from typing import Any, Protocol

from mcastproxy.daemon import query_status
from mcastproxy.lab import Lab, wait_until
from mcastproxy.wire.messages import RecordType, Report

# The proxy's address on each upstream link, per family: its reports come from it.
PROXY_UP = {4: {"u1": "10.0.1.1", "u2": "10.0.2.1"},
            6: {"u1": "fe80::ff:fe00:a100", "u2": "fe80::ff:fe00:a200"}}


class Family(Protocol):
    v: int  # 4 or 6


class Proxy:
    """The lab with the daemon running in it."""

    def __init__(self, lab: Lab, config: str, tmp: Path) -> None:
        self.lab = lab
        self.config = path = tmp / "mcastproxy.yaml"
        path.write_text(config)
        self.status_socket = tmp / "status.sock"
        self.caps = {p: lab.capture(p, "eth0") for p in ("prov1", "prov2")}
        self.daemon = lab.python("proxy", "mcastproxy", "run", "-c", str(path),
                                 "--status-socket", str(self.status_socket))
        wait_until(self.status_socket.exists, 10, message="the daemon did not start")

    def reports(self, prov: str, fam: Family) -> list[Report]:
        """Reports the proxy sent toward ``prov``, less its own kernel's for the link-local and
        well-known groups its host stack joins (224.0.0.13, ff02::2, ff05::2, ...)."""
        src = PROXY_UP[fam.v]["u1" if prov == "prov1" else "u2"]
        return [
            m for p, m in self.caps[prov].messages()
            if p.src == src and isinstance(m, Report)
            and any(r.group[:3] != b"\xe0\x00\x00" if len(r.group) == 4 else r.group[1] & 0xF0
                    for r in m.records)
        ]

    def wait_report(self, prov: str, fam: Family, record: RecordType, group: str,
                    timeout: float = 10) -> None:
        g = ipaddress.ip_address(group).packed
        wait_until(lambda: any(r.type == record and r.group == g
                               for m in self.reports(prov, fam) for r in m.records),
                   timeout, message=f"no {record.name} {group} from the proxy toward {prov}")

    def reload(self, config: str) -> None:
        """Write a new configuration and SIGHUP the daemon; wait until it says it applied."""
        self.config.write_text(config)
        before = self.daemon.output().count("configuration reloaded")
        self.daemon.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: self.daemon.output().count("configuration reloaded") > before, 10,
                   message="the daemon did not reload")

    def send(self, prov: str, fam: Any, group: str, count: int = 40) -> None:
        """``count`` packets to ``group`` from ``prov``'s own address (``fam.prov_addr``)."""
        self.lab.send(prov, group, count=count, rate=400, iface="eth0",
                      source=fam.prov_addr[prov], sender_id=prov)

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status --json`` shows."""
        return asyncio.run(query_status(self.status_socket))

    def feeders(self, group: str, link: str = "d1") -> set[str]:
        """The upstreams whose route for ``group`` forwards to ``link`` now."""
        g = str(ipaddress.ip_address(group))
        return {r["upstream"] for r in self.status()["routes"]
                if r["group"] == g and link in r["downstream"]}

    def joined(self, group: str) -> set[str]:
        """The upstreams whose host side has joined ``group`` now."""
        g = str(ipaddress.ip_address(group))
        return {u for u, info in self.status()["upstreams"].items() if g in info["groups"]}
