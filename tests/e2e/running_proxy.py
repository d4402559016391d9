"""The daemon (``mcastproxy run``) in a lab of ``topologies.proxy_lab()``, for the e2e tests.

``Proxy`` starts it with ``Lab.proxy`` after starting captures of IGMP/MLD on both providers'
links (so they see its first reports), and reads what it sent there and its state. The
``proxy_with`` fixture (``tests/e2e/conftest.py``) makes one for a test:
``proxy = proxy_with(CONFIG)``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Protocol

from mcastlab import Lab, wait_until
from mcastlab.proxy import Forwarding
from mcastproxy.wire.messages import RecordType, Report

# The proxy's address on each upstream link, per family: its reports come from it.
PROXY_UP = {4: {"u1": "10.0.1.1", "u2": "10.0.2.1"},
            6: {"u1": "fe80::ff:fe00:a100", "u2": "fe80::ff:fe00:a200"}}


class Family(Protocol):
    v: int  # 4 or 6


class Proxy:
    """The lab with the daemon running in it, watched from both providers."""

    def __init__(self, lab: Lab, config: str, workdir: Path,
                 forwarding: Forwarding = "kernel") -> None:
        self.lab = lab
        self.caps = {p: lab.capture(p, "eth0") for p in ("prov1", "prov2")}
        self.running = lab.proxy(config, workdir=workdir, forwarding=forwarding)
        self.daemon = self.running.daemon
        self.config = self.running.config
        self.status_socket = self.running.status_socket

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
        self.running.reload(config)

    def send(self, prov: str, fam: Any, group: str, count: int = 40) -> None:
        """``count`` packets to ``group`` from ``prov``'s own address (``fam.prov_addr``)."""
        self.lab.send(prov, group, count=count, rate=400, iface="eth0",
                      source=fam.prov_addr[prov], sender_id=prov)

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status --json`` shows."""
        return self.running.status()

    def feeders(self, group: str, link: str = "d1") -> set[str]:
        """The upstreams whose route for ``group`` forwards to ``link`` now."""
        return self.running.feeders(group, link)

    def joined(self, group: str) -> set[str]:
        """The upstreams whose host side has joined ``group`` now."""
        return self.running.joined(group)
