"""The network-namespace lab: test networks for mcastproxy, built and torn down in seconds.

A distribution of its own (``mcastproxy-lab``, in ``lab/`` of mcastproxy's repository), for
the tests, the benchmarks and the demo (``python -m mcastlab.demo``): a router installing
mcastproxy carries none of it.

A topology is data (``Topology``: hosts, veths, bridged LANs, addresses, routes, sysctls);
a ``Lab`` builds it in namespaces named ``mcp-<run id>-<host>`` and removes them again,
whatever happens. In it run the kernel's own multicast hosts (``Receiver``, joining in
every IGMP/MLD mode), bounded senders (``Headend``: one numbered stream into several hosts
at once, as a redundant headend feeds two providers), captures of IGMP/MLD decoded by
``mcastproxy.wire``, and mcastproxy itself (``Lab.proxy``, with a configuration of
``configs`` on the shared topologies of ``topologies``)::

    from mcastlab import JoinMode, Lab, topologies, wait_until

    with Lab(topologies.lan_pair()) as lab:
        with lab.capture("router", "eth0") as cap, lab.receiver("host", "eth0") as rx:
            rx.join(JoinMode.IGMPV3_SSM, "232.1.1.1", "10.0.0.1")
            pkt, report = cap.wait_for(lambda p, m: p.src == "10.0.0.2")
            lab.send("router", "232.1.1.1", count=50, rate=500, iface="eth0")
            wait_until(lambda: len(rx.packets()) == 50, timeout=5)

Needs root, ``ip`` from iproute2 and ``sysctl``. ``netns.sweep()`` removes what runs killed
outright left behind; the test suite calls it at the start of each session.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcastlab import configs, topologies
    from mcastlab.capture import Capture, Captured, Decoded
    from mcastlab.headend import Headend, HeadendOutput
    from mcastlab.lab import Lab, cleanup_all
    from mcastlab.netns import CommandError, LabError, sweep
    from mcastlab.payload import MAX_COUNT, MAX_RATE, Payload
    from mcastlab.poll import wait_until
    from mcastlab.procs import JsonProc, Proc
    from mcastlab.proxy import Proxy
    from mcastlab.receiver import JoinMode, Packet, Receiver
    from mcastlab.topology import Bridge, Host, Iface, Route, Topology, TopologyError, Veth

# Where each public name lives. They are imported on first use, so that the programs run in
# the namespaces (``python -m mcastlab.receiver`` ...) start without loading the rest.
_HOME = {
    "configs": "",
    "topologies": "",
    "Capture": "capture",
    "Captured": "capture",
    "Decoded": "capture",
    "Headend": "headend",
    "HeadendOutput": "headend",
    "Lab": "lab",
    "cleanup_all": "lab",
    "CommandError": "netns",
    "LabError": "netns",
    "sweep": "netns",
    "MAX_COUNT": "payload",
    "MAX_RATE": "payload",
    "Payload": "payload",
    "wait_until": "poll",
    "JsonProc": "procs",
    "Proc": "procs",
    "Proxy": "proxy",
    "JoinMode": "receiver",
    "Packet": "receiver",
    "Receiver": "receiver",
    "Bridge": "topology",
    "Host": "topology",
    "Iface": "topology",
    "Route": "topology",
    "Topology": "topology",
    "TopologyError": "topology",
    "Veth": "topology",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if home == "":
        return import_module(f"{__name__}.{name}")
    return getattr(import_module(f"{__name__}.{home}"), name)


__all__ = [
    "MAX_COUNT",
    "MAX_RATE",
    "Bridge",
    "Capture",
    "Captured",
    "CommandError",
    "Decoded",
    "Headend",
    "HeadendOutput",
    "Host",
    "Iface",
    "JoinMode",
    "JsonProc",
    "Lab",
    "LabError",
    "Packet",
    "Payload",
    "Proc",
    "Proxy",
    "Receiver",
    "Route",
    "Topology",
    "TopologyError",
    "Veth",
    "cleanup_all",
    "configs",
    "sweep",
    "topologies",
    "wait_until",
]


def __dir__() -> list[str]:
    return sorted(__all__)
