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


RELAY2 = {4: "10.30.4.2", 6: "fd30:4::2"}
"""A second relay, with ``amt_proxy_lab(driad=True)``."""
RESOLVER = {4: "10.30.1.1", 6: "fd30:1::1"}
"""Where the lab's DNS server (``mcastlab.dnsserver``, run on the router) answers."""
PROXY_WAN = {4: "10.30.1.2", 6: "fd30:1::2"}
"""The proxy's address on its unicast-only path to the relay (the AMT transport's source)."""
SUBSCRIBER = {4: "10.1.1.11", 6: "fd01:1::11"}


def amt_proxy_lab(*, native: bool = False, driad: bool = False) -> Topology:
    """The proxy with an AMT upstream: a relay two routed unicast hops away, a subscriber on
    d1, and with ``native=True`` a native provider on u1 as well; with ``driad=True`` a
    second relay (``relay2``, behind the router's eth2), for sources whose AMTRELAY records
    name it (the lab's DNS server runs on the router, ``RESOLVER``).

    ::

        [native=True]
        prov1 eth0 10.0.1.2/24, fd00:1::2/64
              |
              u1 10.0.1.1/24, fd00:1::1/64
              |
            proxy  wan 10.30.1.2/24 --- eth0 10.30.1.1/24 router eth1 10.30.2.1/24 --- relay
              |        fd30:1::2/64          fd30:1::1/64          fd30:2::1/64    eth0 10.30.2.2/24
              |    (amt1: the TUN the proxy makes)                                 fd30:2::2/64
              d1 10.1.1.1/24, fd01:1::1/64                          [driad=True] eth2 10.30.4.1/24
              |                                                                fd30:4::1/64
        sub1 eth0 10.1.1.11/24, fd01:1::11/64                                      |
                                                                    relay2 eth0 10.30.4.2/24
                                                                                fd30:4::2/64

    No multicast routing anywhere on the way to the relay: the router forwards unicast only.
    """
    t = Topology()
    router = t.host("router").forwarding()
    proxy = t.host("proxy").forwarding()
    relay, sub1 = t.hosts("relay", "sub1")
    t.veth(proxy.iface("wan", "10.30.1.2/24", "fd30:1::2/64"),
           router.iface("eth0", "10.30.1.1/24", "fd30:1::1/64"))
    t.veth(router.iface("eth1", "10.30.2.1/24", "fd30:2::1/64"),
           relay.iface("eth0", "10.30.2.2/24", "fd30:2::2/64"))
    proxy.route("10.30.2.0/24", via="10.30.1.1").route("fd30:2::/64", via="fd30:1::1")
    relay.route("default", via="10.30.2.1").route("default", via="fd30:2::1")
    t.veth(proxy.iface("d1", "10.1.1.1/24", "fd01:1::1/64"),
           sub1.iface("eth0", "10.1.1.11/24", "fd01:1::11/64"))
    sub1.route("default", via="10.1.1.1").route("default", via="fd01:1::1")
    if driad:
        relay2 = t.host("relay2")
        t.veth(router.iface("eth2", "10.30.4.1/24", "fd30:4::1/64"),
               relay2.iface("eth0", "10.30.4.2/24", "fd30:4::2/64"))
        relay2.route("default", via="10.30.4.1").route("default", via="fd30:4::1")
        proxy.route("10.30.4.0/24", via="10.30.1.1").route("fd30:4::/64", via="fd30:1::1")
    if native:
        prov1 = t.host("prov1")
        t.veth(proxy.iface("u1", "10.0.1.1/24", "fd00:1::1/64"),
               prov1.iface("eth0", "10.0.1.2/24", "fd00:1::2/64"))
        prov1.route("224.0.0.0/4", dev="eth0")
        prov1.route("10.1.0.0/16", via="10.0.1.1").route("fd01::/16", via="fd00:1::1")
    return t
