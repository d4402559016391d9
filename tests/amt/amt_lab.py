"""Helpers for the AMT namespace tests on ``mcastlab.amt_topologies.amt_lab``: the lab relay,
the gateway agent with its TUN device, and a receiver joined on that TUN.

Channels (one per inner family) are those of ``amt_harness.CHANNEL``; the relay generates them
as numbered streams (``--stream``), its sender id saying which relay process sent a packet.
"""

from __future__ import annotations

from typing import Any

from gateway_agent import GatewayAgent

from mcastlab import JoinMode, Lab, Receiver
from mcastlab.amt_topologies import RELAY
from mcastlab.procs import JsonProc

TUN = "amt0"
TUN_ADDRESS4 = "10.200.0.1/32"
"""The TUN's IPv4 address: an IPv4 source-specific join (ip_mreq_source) names the
interface by an address of its own."""
CHANNEL = {4: ("10.0.9.1", "232.1.1.1"), 6: ("fd00:9::1", "ff3e::8000:1")}
RATE = 200.0
"""Packets per second of each relay stream: one every 5 ms."""


def start_relay(lab: Lab, transport: int, *, sender: str = "relay-1",
                query_interval: int = 2, extra: tuple[str, ...] = ()) -> JsonProc:
    """The relay on its address of ``transport``, streaming both channels."""
    args = ["--address", RELAY[transport], "--rate", str(RATE), "--id", sender,
            "--query-interval", str(query_interval), "--max-seconds", "120"]
    for source, group in CHANNEL.values():
        args += ["--stream", f"{source},{group}"]
    relay = lab.python_json("relay", "mcastlab.amtrelay", *args, *extra)
    ready = relay.wait_event(lambda e: e.get("event") in ("ready", "error"), 10)
    assert ready["event"] == "ready", ready
    return relay


def start_gateway(lab: Lab, inner: int, transport: int, *extra: str) -> GatewayAgent:
    """The gateway agent in ``gw``: inner family ``inner``, discovering the relay by its
    unicast address over ``transport``, with short retransmission timers for a test."""
    return GatewayAgent(
        lab, "gw", "--tun", TUN, "--family", str(inner), "--discovery", RELAY[transport],
        "--initial-timeout", "0.2", "--max-timeout", "1", *extra,
    )  # fmt: skip


def tun_receiver(lab: Lab, inner: int) -> Receiver:
    """A kernel host socket joined to the channel of ``inner`` on the TUN device."""
    if inner == 4:
        lab.run("gw", "ip", "addr", "add", TUN_ADDRESS4, "dev", TUN)
    rx = lab.receiver("gw", TUN)
    source, group = CHANNEL[inner]
    rx.join(JoinMode.IGMPV3_SSM if inner == 4 else JoinMode.MLDV2_SSM, group, source)
    return rx


def join(gw: GatewayAgent, inner: int) -> dict[str, Any]:
    source, group = CHANNEL[inner]
    return gw.call("join", source=source, group=group)


def relay_events(relay: JsonProc, kind: str) -> list[dict[str, Any]]:
    return relay.events(kind)
