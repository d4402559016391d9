"""Lab topologies for AMT (RFC 7450): a gateway and a relay with only unicast between them.

Beside ``topologies`` (shared by the proxy's tests), drawn the same way.
"""

from __future__ import annotations

from mcastlab.topology import Topology

GATEWAY = {4: "10.30.1.2", 6: "fd30:1::2"}
"""The gateway host's address on its link (the AMT transport's source)."""
RELAY = {4: "10.30.2.2", 6: "fd30:2::2"}
"""The relay's address: where it listens (UDP 2268) and what it advertises."""
FEED_SOURCE = {4: "10.30.3.2", 6: "fd30:3::2"}
"""The multicast source behind the relay, with ``amt_lab(feed=True)``."""


def amt_lab(*, feed: bool = False) -> Topology:
    """A gateway and a relay two routed hops apart, no multicast routing anywhere.

    ::

        gw                          router                              relay
        eth0 10.30.1.2/24 ------- eth0 10.30.1.1/24   eth1 10.30.2.1/24 ------- eth0 10.30.2.2/24
             fd30:1::2/64              fd30:1::1/64        fd30:2::1/64              fd30:2::2/64
        (the gateway's TUN device
         is made by the test)                                  [feed=True]  feed 10.30.3.1/24
                                                                                 fd30:3::1/64
                                                                                  |
                                                                             src eth0 10.30.3.2/24
                                                                                      fd30:3::2/64

    The router forwards unicast (IPv4 and IPv6) and nothing else: this kernel has no multicast
    routing, and the router runs none, so multicast reaches the gateway only through AMT. The
    gateway and the relay route everything through it. With ``feed=True`` a host ``src``
    sends multicast into the relay's ``feed`` link, which the relay forwards (``--feed``).
    """
    t = Topology()
    router = t.host("router").forwarding()
    gw, relay = t.hosts("gw", "relay")
    t.veth(gw.iface("eth0", "10.30.1.2/24", "fd30:1::2/64"),
           router.iface("eth0", "10.30.1.1/24", "fd30:1::1/64"))
    t.veth(router.iface("eth1", "10.30.2.1/24", "fd30:2::1/64"),
           relay.iface("eth0", "10.30.2.2/24", "fd30:2::2/64"))
    gw.route("default", via="10.30.1.1").route("default", via="fd30:1::1")
    relay.route("default", via="10.30.2.1").route("default", via="fd30:2::1")
    if feed:
        src = t.host("src")
        t.veth(relay.iface("feed", "10.30.3.1/24", "fd30:3::1/64"),
               src.iface("eth0", "10.30.3.2/24", "fd30:3::2/64"))
        src.route("224.0.0.0/4", dev="eth0")
    return t
