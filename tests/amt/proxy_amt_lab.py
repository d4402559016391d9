"""Helpers for the namespace tests of the proxy with an AMT upstream, on
``mcastlab.amt_topologies.amt_proxy_lab``: the lab relay, the proxy's configuration, what
the relay holds and what the proxy's status says of its AMT upstream.

The daemon runs with its routes recorded (``forwarding="recorded"``): this kernel has no
multicast routing, so what is checked is what the proxy says and hears (the relay's view of
its Membership Updates, the queries, the Teardown) and that the relay's data enters the TUN
(its counters), not forwarding to d1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mcastlab import Lab, wait_until
from mcastlab.amt_topologies import RELAY, RESOLVER
from mcastlab.procs import JsonProc
from mcastlab.proxy import Proxy

SSM = {4: ("10.0.9.1", "232.1.1.1"), 6: ("fd00:9::1", "ff3e::8000:1")}
ASM = {4: ("10.0.9.2", "239.1.1.1"), 6: ("fd00:9::2", "ff1e::1:1")}
RATE = 100.0


def amt_config(*, transport: int = 4, native: bool = False, extra: str = "",
               amt_liveness: str = "{queries: true}", u1_liveness: str = "{link: true}",
               amt: bool = True, amt_extra: str = "") -> str:
    """The proxy's configuration: d1 downstream; amt1 through the relay (over ``transport``;
    ``amt_extra``: more of its ``amt`` settings, e.g. ``", driad: true"``); with ``native``,
    u1 first (priority 10) and amt1 the takeover (priority 0); without ``amt``, no amt1."""
    u1 = (f"    - {{interface: u1, priority: 10, liveness: {u1_liveness}}}\n"
          if native else "")
    amt1 = (
        "    - interface: amt1\n"
        f"      liveness: {amt_liveness}\n"
        f"      amt: {{relay: \"{RELAY[transport]}\"{amt_extra}}}\n"
    ) if amt else ""
    return (
        "igmp: {version: 3}\n"
        "mld: {version: 2}\n"
        "downstream: [{interface: d1}]\n"
        "upstream:\n"
        "  hold-down: 1s\n"
        f"{extra}"
        "  candidates:\n"
        f"{u1}{amt1}"
    )


def start_relay(lab: Lab, transport: int = 4, *extra: str, sender: str = "relay-1",
                query_interval: int = 1, host: str = "relay", address: str | None = None,
                streams: Iterable[tuple[str, str]] | None = None) -> JsonProc:
    """The lab relay in ``host`` on ``address`` (default: the relay's address of
    ``transport``), streaming ``streams`` (default: the SSM and ASM channels); ``extra``:
    more of its options (``--mute``)."""
    args = ["--address", address or RELAY[transport], "--rate", str(RATE), "--id", sender,
            "--query-interval", str(query_interval), "--max-seconds", "120", *extra]
    for source, group in (streams if streams is not None else (*SSM.values(), *ASM.values())):
        args += ["--stream", f"{source},{group}"]
    relay = lab.python_json(host, "mcastlab.amtrelay", *args)
    ready = relay.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)
    assert ready["event"] == "ready", ready
    return relay


def start_dns(lab: Lab, records: Iterable[str], *extra: str) -> JsonProc:
    """The lab's DNS server on the router (``RESOLVER``), serving ``records``."""
    args = ["--address", RESOLVER[4], "--max-seconds", "120"]
    for record in records:
        args += ["--record", record]
    dns = lab.python_json("router", "mcastlab.dnsserver", *args, *extra)
    ready = dns.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)
    assert ready["event"] == "ready", ready
    return dns


def dns_queries(dns: JsonProc, name: str, kind: str = "AMTRELAY") -> int:
    """How many times ``name`` (with its final dot) was asked for ``kind``."""
    return sum(1 for e in dns.events("query") if e.get("name") == name and e.get("type") == kind)


def relay_channels(relay: JsonProc) -> set[tuple[str | None, str]]:
    """Every channel the relay holds for any tunnel now (its ``tunnels`` answer)."""
    answer = relay.command("tunnels")
    return {(s, g) for t in answer["tunnels"] for s, g in t["channels"]}


def amt_status(proxy: Proxy, name: str = "amt1") -> dict[str, Any]:
    return dict(proxy.status()["amt"][name])


def gateway(proxy: Proxy, protocol: str, name: str = "amt1") -> dict[str, Any]:
    return dict(amt_status(proxy, name)["gateways"][protocol])


def wait_relay_queries(proxy: Proxy, protocol: str, name: str = "amt1",
                       timeout: float = 10.0) -> None:
    """Until ``protocol``'s gateway has its tunnel (the relay answered its Request) and a
    relay query went into the TUN for the host side. Not ``usable``: the liveness of an
    upstream whose evidence is its queries presumes them for an active interval at start,
    so amt1 is usable before the relay has said anything."""
    wait_until(lambda: gateway(proxy, protocol, name)["state"] == "established"
               and amt_status(proxy, name)["tun"].get("queries-written", 0) >= 1,
               timeout=timeout, message=lambda: str(amt_status(proxy, name)))


def tun_rx_packets(lab: Lab, name: str = "amt1") -> int:
    """The kernel's count of packets received on the TUN (those the gateway wrote in)."""
    return int(lab.run("proxy", "cat", f"/sys/class/net/{name}/statistics/rx_packets"))
