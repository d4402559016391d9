"""Shared lab topologies, each drawn in its docstring.

Tests and the demo build on these rather than drawing their own, so that a scenario reads as
"on the proxy topology, sub1 joins ..." (STYLE.md: one scenario per test file over shared
topologies).
"""

from __future__ import annotations

from mcastlab.topology import Topology

HEADEND_SOURCE = {4: "10.0.9.1", 6: "fd00:9::1"}
"""The redundant headend's address, held by both providers of ``proxy_lab(headend=True)``."""


def lan_pair() -> Topology:
    """Two hosts on one link: a router that listens and a host that joins.

    ::

        router                          host
        eth0 10.0.0.1/24 ----------- eth0 10.0.0.2/24
             fd00::1/64                   fd00::2/64
             02:00:00:00:00:01            02:00:00:00:00:02  (link-locals fe80::ff:fe00:1, :2)

    Both have a multicast route out of eth0, so either can send without IP_MULTICAST_IF.
    """
    t = Topology()
    router, host = t.hosts("router", "host")
    t.veth(
        router.iface("eth0", "10.0.0.1/24", "fd00::1/64", mac="02:00:00:00:00:01"),
        host.iface("eth0", "10.0.0.2/24", "fd00::2/64", mac="02:00:00:00:00:02"),
    )
    for h in (router, host):
        h.route("224.0.0.0/4", dev="eth0")
    return t


def proxy_lab(*, headend: bool = False) -> Topology:
    """The proxy between two upstream providers and two downstream LANs.

    ::

          prov1 (sends 232.1.0.0/16)               prov2 (sends 232.2.0.0/16)
          eth0 10.0.1.2/24 fd00:1::2/64            eth0 10.0.2.2/24 fd00:2::2/64
                 |                                        |
                 u1 10.0.1.1/24 fd00:1::1/64              u2 10.0.2.1/24 fd00:2::1/64
                 +------------------ proxy -------------------+
                 d1 10.1.1.1/24 fd01:1::1/64              d2 10.1.2.1/24 fd01:2::1/64
                 |                                        |
           [ lan1: a bridge in a namespace of its own ]   |
              |                     |                     |
          sub1 eth0             sub2 eth0             sub3 eth0
          10.1.1.11/24          10.1.1.12/24          10.1.2.13/24
          fd01:1::11/64         fd01:1::12/64         fd01:2::13/64

    Every interface has a fixed MAC ``02:00:00:00:XX:YY`` so its EUI-64 link-local address is
    ``fe80::ff:fe00:XXYY``: d1 ``..:d1:00``, d2 ``..:d2:00``, u1 ``..:a1:00``, u2 ``..:a2:00``,
    sub1/2/3 ``..:d1:11``, ``..:d1:12``, ``..:d2:13`` (so a subscriber prefix like
    ``fe80::ff:fe00:d100/120`` matches sub1 and sub2), provider N ``..:b<N>:02``.
    The proxy forwards (IPv4 and IPv6); the providers' multicast route points at their eth0,
    and the subscribers' default routes at the proxy.

    With ``headend=True`` both providers' eth0 also hold the address of a redundant headend
    behind them, ``HEADEND_SOURCE`` (10.0.9.1/32, fd00:9::1/128): a stream sent from it into
    both (``Lab.headend``) reaches the proxy as the same (source, group) on u1 and on u2,
    which is what the proxy's hot standby and robust reception take as one channel. Their
    eth0 then keeps its IPv6 addresses when taken down (``keep_addr_on_down``), so that a
    carrier loss made there can be undone; and u1, u2 and the providers' eth0 get interface
    indexes 11, 12, 21 and 22. A veth whose index differs from its peer's has its carrier
    changes handled by the kernel's link watch as urgent, at once; were they equal (both 2,
    each the first veth of its namespace) they would wait, like a physical NIC's, for the
    link watch's once-a-second run whenever any link on the machine changed in the last
    second (other labs being built or removed, say), and a failover would measure that.
    """
    t = Topology()
    proxy = t.host("proxy").forwarding()
    prov1, prov2, sub1, sub2, sub3 = t.hosts("prov1", "prov2", "sub1", "sub2", "sub3")
    shared = [f"{HEADEND_SOURCE[4]}/32", f"{HEADEND_SOURCE[6]}/128"] if headend else []
    for n, prov in ((1, prov1), (2, prov2)):
        up_index, prov_index = (10 + n, 20 + n) if headend else (None, None)
        t.veth(
            proxy.iface(f"u{n}", f"10.0.{n}.1/24", f"fd00:{n}::1/64", mac=f"02:00:00:00:a{n}:00",
                        index=up_index),
            prov.iface("eth0", f"10.0.{n}.2/24", f"fd00:{n}::2/64", *shared,
                       mac=f"02:00:00:00:b{n}:02", index=prov_index),
        )
        prov.route("224.0.0.0/4", dev="eth0")
        if headend:  # a link taken down and up again keeps the headend's address
            prov.sysctl("net.ipv6.conf.eth0.keep_addr_on_down", 1)
        prov.route("10.1.0.0/16", via=f"10.0.{n}.1")
        prov.route("fd01::/16", via=f"fd00:{n}::1")
    lan1 = t.bridge("lan1")
    lan1.attach(
        proxy.iface("d1", "10.1.1.1/24", "fd01:1::1/64", mac="02:00:00:00:d1:00"),
        sub1.iface("eth0", "10.1.1.11/24", "fd01:1::11/64", mac="02:00:00:00:d1:11"),
        sub2.iface("eth0", "10.1.1.12/24", "fd01:1::12/64", mac="02:00:00:00:d1:12"),
    )
    t.veth(
        proxy.iface("d2", "10.1.2.1/24", "fd01:2::1/64", mac="02:00:00:00:d2:00"),
        sub3.iface("eth0", "10.1.2.13/24", "fd01:2::13/64", mac="02:00:00:00:d2:13"),
    )
    for sub, net in ((sub1, 1), (sub2, 1), (sub3, 2)):
        sub.route("default", via=f"10.1.{net}.1")
        sub.route("default", via=f"fd01:{net}::1")
    return t
