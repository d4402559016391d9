"""The lab's helpers: commands in a namespace, processes, sysctls, links, and the shared
proxy topology with its bridged LAN.

Topology ``proxy_lab`` (see ``mcastlab.topologies``)::

          prov1                          prov2
            | u1                           | u2
            +----------- proxy ------------+
            | d1                           | d2
      [ lan1 bridge ]                      |
        |         |                        |
      sub1       sub2                     sub3
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcastlab import CommandError, JoinMode, LabError, Topology, topologies, wait_until

pytestmark = pytest.mark.netns


def test_run_returns_stdout_and_raises_with_stderr(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    assert "10.0.0.2/24" in lab.run("host", "ip", "-br", "address", "show", "eth0")
    with pytest.raises(CommandError, match="nope") as e:
        lab.run("host", "ip", "link", "show", "nope")
    assert e.value.returncode != 0
    assert lab.run("host", "sh", "-c", "exit 3", check=False) == ""


def test_a_program_that_cannot_start_says_why(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with pytest.raises(LabError, match="no interface with this name"):
        lab.receiver("host", "nope")
    with pytest.raises(LabError, match="No such device"):
        lab.capture("host", "nope")
    with pytest.raises(KeyError, match="nowhere"):
        lab.run("nowhere", "true")


def test_popen_output_and_stop(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    p = lab.popen("router", "sh", "-c", "echo hello; echo oops >&2; exec sleep 60")
    wait_until(lambda: "oops" in p.output(), timeout=5)
    assert "hello" in p.output()
    assert p.running
    assert p.stop() == -15  # SIGTERM
    py = lab.python("host", "mcastproxy", "--version")  # this interpreter and this mcastproxy
    assert py.wait(10) == 0
    assert "mcastproxy" in py.output()


def test_sysctls_links_and_addresses(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    assert lab.sysctl("proxy", "net.ipv4.ip_forward") == "1"
    assert lab.sysctl("sub1", "net.ipv4.ip_forward") == "0"
    assert lab.sysctl("sub1", "net.ipv4.conf.eth0.force_igmp_version", 2) == "2"
    assert lab.sysctl("proxy", "net.ipv6.conf.d1.accept_dad") == "0"
    assert lab.link_local("proxy", "d1") == "fe80::ff:fe00:d100"
    assert lab.link_local("sub3", "eth0") == "fe80::ff:fe00:d213"
    assert lab.addresses("proxy", "u2", family=4) == ["10.0.2.1"]
    assert lab.addresses("proxy", "u2", family=6, scope="global") == ["fd00:2::1"]
    assert "224.0.0.0/4 dev eth0" in lab.run("prov1", "ip", "route")
    # Bridge ports carry no addresses of their own: a switch is not a host.
    assert lab.addresses("lan1", "lan1p1") == []
    lab.set_link("prov2", "eth0", up=False)
    assert "NO-CARRIER" in lab.run("proxy", "ip", "link", "show", "u2")
    assert lab.ifindex("proxy", "lo") == 1


def test_the_bridged_lan_carries_multicast_to_both_subscribers(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    rx1, rx2 = lab.receiver("sub1", "eth0"), lab.receiver("sub2", "eth0")
    rx3 = lab.receiver("sub3", "eth0")
    for rx in (rx1, rx2, rx3):
        rx.join(JoinMode.MLDV2_ASM, "ff1e::9")
    lab.send("proxy", "ff1e::9", count=10, rate=1000, iface="d1")
    for rx in (rx1, rx2):
        got = rx.wait_packets(10, timeout=5)
        assert {p.source for p in got} == {"fd01:1::1"}
    assert rx3.packets() == []  # another LAN


def test_a_bridge_inside_a_host(make_lab: Callable) -> None:
    """A router whose LAN interface is a bridge with two hosts on it::

    a eth0 --- br0p1 [br0 in router: 10.9.0.1/24 fd09::1/64] br0p2 --- eth0 b
    """
    t = Topology()
    router, a, b = t.hosts("router", "a", "b")
    br = t.bridge("br0", host=router, addrs=["10.9.0.1/24", "fd09::1/64"])
    br.attach(a.iface("eth0", "10.9.0.2/24"), b.iface("eth0", "10.9.0.3/24"))
    lab = make_lab(t)
    assert lab.link_local("router", "br0").startswith("fe80::")
    rxa, rxb = lab.receiver("a", "eth0"), lab.receiver("b", "eth0")
    with lab.capture("router", "br0") as cap:
        rxa.join(JoinMode.IGMPV3_ASM, "239.9.9.9")
        rxb.join(JoinMode.IGMPV3_ASM, "239.9.9.9")
        wait_until(lambda: {p.src for p in cap.packets()} >= {"10.9.0.2", "10.9.0.3"}, 5)
    lab.send("router", "239.9.9.9", count=5, rate=1000, iface="br0")
    assert len(rxa.wait_packets(5)) == len(rxb.wait_packets(5)) == 5
