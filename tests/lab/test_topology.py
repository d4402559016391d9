"""The topology model: what the builder records, and what validation refuses (no root needed)."""

from __future__ import annotations

import pytest

from mcastlab import Iface, Route, Topology, TopologyError, topologies


def test_builder_records_links_bridges_routes_and_sysctls() -> None:
    t = Topology()
    proxy, sub1, sub2 = t.hosts("proxy", "sub1", "sub2")
    proxy.forwarding().sysctl("net.ipv4.conf.all.force_igmp_version", 3)
    lan = t.bridge("lan1")
    lan.attach(proxy.iface("d1", "10.1.1.1/24"), sub1.iface("eth0", "10.1.1.11/24"))
    lan.attach(sub2.iface("eth0", "10.1.1.12/24", "fd01::12/64"), port="to-sub2")
    sub1.route("224.0.0.0/4", dev="eth0")
    t.validate()

    assert t.namespaces() == ["proxy", "sub1", "sub2", "lan1"]
    assert [(str(v.a), str(v.b)) for v in t.all_veths()] == [
        ("proxy:d1", "lan1:lan1p1"),
        ("sub1:eth0", "lan1:lan1p2"),
        ("sub2:eth0", "lan1:to-sub2"),
    ]
    assert t.bridge_ports() == {("lan1", "lan1p1"), ("lan1", "lan1p2"), ("lan1", "to-sub2")}
    assert t.find("sub2", "eth0").ipv6 == ["fd01::12"]
    assert t.find("sub2", "eth0").ipv4 == ["10.1.1.12"]
    assert proxy.sysctls == {
        "net.ipv4.ip_forward": "1",
        "net.ipv6.conf.all.forwarding": "1",
        "net.ipv4.conf.all.force_igmp_version": "3",
    }
    assert sub1.routes == [Route("224.0.0.0/4", dev="eth0")]


def test_bridge_inside_a_host_is_that_hosts_interface() -> None:
    t = Topology()
    router, a = t.hosts("router", "a")
    br = t.bridge("br0", host=router, addrs=["10.9.0.1/24"])
    br.attach(a.iface("eth0", "10.9.0.2/24"))
    t.validate()
    assert t.namespaces() == ["router", "a"]
    assert [i.name for i in t.interfaces("router")] == ["br0p1", "br0"]
    assert t.find("router", "br0").addrs == ("10.9.0.1/24",)


@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route("default", via="10.0.0.1"), ["0.0.0.0/0", "via", "10.0.0.1"]),
        (Route("default", via="fd00::1", dev="eth0"), ["::/0", "via", "fd00::1", "dev", "eth0"]),
        (Route("224.0.0.0/4", dev="eth0", table=10), ["224.0.0.0/4", "dev", "eth0", "table", "10"]),
        (
            Route("fd02::/64", via="fd00::2", extra=("metric", "5")),
            ["fd02::/64", "via", "fd00::2", "metric", "5"],
        ),
    ],
)
def test_route_words(route: Route, words: list[str]) -> None:
    assert route.words() == words


def _dup_iface() -> None:
    t = Topology()
    a, b = t.hosts("a", "b")
    t.veth(a.iface("eth0"), b.iface("eth0"))
    t.veth(a.iface("eth0"), b.iface("eth1"))
    t.validate()


def _unknown_host() -> None:
    t = Topology()
    a = t.host("a")
    t.veth(a.iface("eth0"), Iface("nowhere", "eth0"))
    t.validate()


def _route_dev() -> None:
    t = Topology()
    t.host("a").route("224.0.0.0/4", dev="eth9")
    t.validate()


def _bridge_host_clash() -> None:
    t = Topology()
    t.host("lan1")
    t.bridge("lan1")


def _bridge_iface_clash() -> None:
    t = Topology()
    a, b = t.hosts("a", "b")
    t.veth(a.iface("br0"), b.iface("eth0"))
    t.bridge("br0", host="a")
    t.validate()


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: Iface("a", "a-name-that-is-too-long"), "interface name"),
        (lambda: Iface("a", "lo"), "interface name"),
        (lambda: Iface("a", "eth0", ("10.0.0.300/24",)), "address"),
        (lambda: Iface("a", "eth0", ("10.0.0.1",)), "needs a /prefix"),
        (lambda: Iface("a", "eth0", mac="02:00:00"), "MAC"),
        (lambda: Iface("a", "eth0", index=1), "index"),
        (lambda: Topology().host("Bad Name"), "host or bridge name"),
        (_dup_iface, "used twice"),
        (_unknown_host, "no host 'nowhere'"),
        (_route_dev, "unknown device"),
        (_bridge_host_clash, "share a namespace"),
        (_bridge_iface_clash, "clashes"),
    ],
    ids=[
        "long",
        "lo",
        "bad-addr",
        "no-prefix",
        "mac",
        "index",
        "host-name",
        "dup",
        "unknown-host",
        "route-dev",
        "bridge-host",
        "bridge-iface",
    ],
)
def test_validation_refuses(build: object, text: str) -> None:
    with pytest.raises(TopologyError, match=text):
        build()  # type: ignore[operator]


def test_describe_lists_links_bridges_and_routes() -> None:
    text = topologies.proxy_lab().describe()
    assert "proxy:u1 10.0.1.1/24 fd00:1::1/64 <-> prov1:eth0 10.0.1.2/24 fd00:1::2/64" in text
    assert "bridge lan1 (own namespace)" in text
    assert "  lan1p2 <-> sub1:eth0 10.1.1.11/24 fd01:1::11/64" in text
    assert "prov1: route 224.0.0.0/4 dev eth0" in text
    assert "proxy: net.ipv4.ip_forward = 1" in text


@pytest.mark.parametrize(
    "make", [topologies.lan_pair, topologies.proxy_lab, lambda: topologies.proxy_lab(headend=True)]
)
def test_shared_topologies_validate(make: object) -> None:
    make().validate()  # type: ignore[operator]


def test_the_headend_variant_of_the_proxy_lab() -> None:
    t = topologies.proxy_lab(headend=True)
    for n in (1, 2):
        prov = t.find(f"prov{n}", "eth0")
        assert {"10.0.9.1/32", "fd00:9::1/128"} <= set(prov.addrs)
        # Indexes that differ from the peer's: the kernel handles carrier changes at once.
        assert (t.find("proxy", f"u{n}").index, prov.index) == (10 + n, 20 + n)
        assert t.hosts_by_name[f"prov{n}"].sysctls["net.ipv6.conf.eth0.keep_addr_on_down"] == "1"
    plain = topologies.proxy_lab()
    assert "10.0.9.1/32" not in plain.find("prov1", "eth0").addrs
    assert plain.find("proxy", "u1").index is None
