"""Every IGMP and MLD message arriving on an interface reaches ``IgmpSocket`` / ``MldSocket``
exactly once on any kernel: this one has no multicast routing, so nothing to a routable group
reaches a raw socket, and the packet sockets (``netio.frames``) must take those while the raw
sockets keep link-scope messages (``netio.filters``). No kernel adapter runs (no ``mroute``).

Topology ``proxy_lab``; the sockets run in ``proxy`` (``socket_agent``), their interface map
holding d1, d2 and u1 only, listening on d1 and d2::

      prov1 eth0 ---------- u1 (in the map)
      prov2 eth0 ---------- u2 (not in the map)
                      proxy
      [lan1] ------------ d1 (listening)   d2 (listening) ---------- sub3 eth0
        |          |                                    (forges broken frames, and a flood)
      sub1 eth0  sub2 eth0 (forges frames: AF_PACKET, ``forge``)
      (a kernel host: joins and leaves, captured as it sends)

"Exactly once" is checked without waiting a fixed time: once every message is in, the agent
drains both sockets (``drain``); a copy of a packet is queued in the same kernel pass as the
packet, so any would have shown.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from forge import NEXT_FRAGMENT, NEXT_HOP_BY_HOP, NEXT_ICMPV6, forge, fragment, hop_by_hop
from forge import ipv4 as ipv4_packet
from forge import ipv6 as ipv6_packet
from socket_agent import SocketAgent

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastproxy.drops import Drop
from mcastproxy.wire import (
    GroupRecord,
    Leave,
    Query,
    RecordType,
    Report,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_mld,
)

pytestmark = pytest.mark.netns

Lab_ = tuple[Lab, SocketAgent]

SUB1 = {4: "10.1.1.11", 6: "fe80::ff:fe00:d111"}
SUB2 = {4: "10.1.1.12", 6: "fe80::ff:fe00:d112"}
SUB3 = {4: "10.1.2.13", 6: "fe80::ff:fe00:d213"}
PROV2 = {4: "10.0.2.2", 6: "fe80::ff:fe00:b202"}
PROXY = {4: {"10.0.1.1", "10.0.2.1", "10.1.1.1", "10.1.2.1"},
         6: {"fe80::ff:fe00:a100", "fe80::ff:fe00:a200", "fe80::ff:fe00:d100",
             "fe80::ff:fe00:d200"}}
LEAVES_TO = {4: "224.0.0.2", 6: "ff02::2"}
V3_REPORTS_TO = {4: "224.0.0.22", 6: "ff02::16"}
TO_IN = RecordType.CHANGE_TO_INCLUDE_MODE


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@pytest.fixture
def proxy_lab(make_lab: Callable[..., Lab], request: pytest.FixtureRequest) -> Iterator[Lab_]:
    """The lab, and the agent in it listening on d1 and d2, stopped however the test ends
    (its log printed if the test failed). ``receive()`` must never have raised."""
    topology = topologies.proxy_lab()
    # The kernels' own state-change reports (the forgers' for their solicited-node groups as
    # their links come up, the proxy's for the groups ``listen`` joins) and their
    # retransmissions are over in some 20 ms, before any test traffic: a flood then meets a
    # full queue alone (a raw socket counts what its filter would refuse as dropped, too,
    # while its queue is full).
    hosts = (("sub1", ["eth0"]), ("sub2", ["eth0"]), ("sub3", ["eth0"]), ("proxy", ["d1", "d2"]))
    for host, links in hosts:
        for link in links:
            topology.hosts_by_name[host].sysctl(
                f"net.ipv6.conf.{link}.mldv2_unsolicited_report_interval", 10)
            topology.hosts_by_name[host].sysctl(
                f"net.ipv4.conf.{link}.igmpv3_unsolicited_report_interval", 10)
    lab = make_lab(topology)
    rcvbuf = getattr(request, "param", None)  # a receive buffer other than the default
    agent = SocketAgent(lab, "proxy", ["d1", "d2", "u1"], rcvbuf=rcvbuf)
    try:
        agent.call("listen", interface="d1")
        agent.call("listen", interface="d2")
        yield lab, agent
        assert agent.crashes() == []
    finally:
        agent.stop()
        report = getattr(request.node, "lab_report_call", None)
        if report is not None and report.failed:
            print(f"--- socket agent log:\n{agent.output()[-3000:]}")


def from_(agent: SocketAgent, family: int, source: str) -> list[dict[str, Any]]:
    return [e for e in agent.received(family) if e["source"] == source]


def carrying(agent: SocketAgent, family: int, *messages: bytes) -> list[dict[str, Any]]:
    """What was received of ``messages`` (the hosts' kernels send MLD of their own, from the
    same addresses: their solicited-node groups' reports)."""
    wanted = {m.hex() for m in messages}
    return [e for e in agent.received(family) if e["payload"] in wanted]


def report(family: int, group: str, version: int | None = None, src: str | None = None) -> bytes:
    """An old-style report (IGMPv2 / MLDv1 unless ``version``) for ``group``, to ``group``."""
    record = GroupRecord(RecordType.MODE_IS_EXCLUDE, ip(group))
    if family == 4:
        return build_igmp(Report(version or 2, (record,)))
    return build_mld(Report(version or 1, (record,)), ip(src or SUB2[6]), ip(group))


def v3_report(family: int, group: str, src: str) -> bytes:
    """A version 3 (IGMP) / 2 (MLD) report joining ``group``, to the v3 routers' group."""
    record = GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ip(group))
    if family == 4:
        return build_igmp(Report(3, (record,)))
    return build_mld(Report(2, (record,)), ip(src), ip(V3_REPORTS_TO[6]))


# -- a kernel host's reports and leaves --------------------------------------------------------

# What sub1's kernel sends for a join and then a leave (its default Robustness Variable, 2; the
# Unsolicited Report Interval cut to 100 ms): IGMPv2 / MLDv1 report twice to G and leave once
# to all-routers; IGMPv3 / MLDv2 send each state change twice, to the v3 routers' group.
SENT = {
    JoinMode.IGMPV2: ("239.3.0.1", 2, 1),
    JoinMode.MLDV1: ("ff1e::3:1", 2, 1),
    JoinMode.IGMPV3_ASM: ("239.3.0.2", 2, 2),
    JoinMode.MLDV2_ASM: ("ff1e::3:2", 2, 2),
}


@pytest.mark.parametrize("mode", list(SENT), ids=[m.value for m in SENT])
def test_a_kernel_hosts_reports_and_leaves_arrive_once(proxy_lab: Lab_, mode: JoinMode) -> None:
    lab, agent = proxy_lab
    family = mode.family
    group, joins, leaves = SENT[mode]
    for key in ("igmpv2", "igmpv3"):
        lab.sysctl("sub1", f"net.ipv4.conf.eth0.{key}_unsolicited_report_interval", 100)
    for key in ("mldv1", "mldv2"):
        lab.sysctl("sub1", f"net.ipv6.conf.eth0.{key}_unsolicited_report_interval", 100)
    cap = lab.capture("sub1", "eth0")
    rx = lab.receiver("sub1", "eth0")  # the join forces IGMPv2 / MLDv1 where the mode says
    about = ip(group).hex()

    def sent() -> Counter[tuple[str, str]]:
        return Counter((p.dst, p.payload.hex()) for p in cap.packets()
                       if p.outgoing and p.src == SUB1[family] and about in p.payload.hex())

    def received() -> Counter[tuple[str, str]]:
        return Counter((e["destination"], e["payload"]) for e in from_(agent, family, SUB1[family])
                       if about in e["payload"])

    rx.join(mode, group)
    wait_until(lambda: sum(sent().values()) >= joins, timeout=5, message=lambda: f"{sent()}")
    rx.leave(group)
    wait_until(lambda: sum(sent().values()) == joins + leaves and received() == sent(),
               timeout=8, message=lambda: f"sent {sent()}\nreceived {received()}")
    agent.call("drain")
    assert received() == sent()

    mine = [e for e in from_(agent, family, SUB1[family]) if about in e["payload"]]
    assert {(e["interface"], e["ttl"], e["router_alert"]) for e in mine} == {("d1", 1, True)}
    messages = [parse_igmp(bytes.fromhex(e["payload"])) if family == 4 else
                parse_mld(bytes.fromhex(e["payload"]), ip(e["source"]), ip(e["destination"]))
                for e in mine]
    kinds = ["leave" if isinstance(m, Leave) or m.records[0].type is TO_IN else "join"
             for m in messages]
    assert kinds == ["join"] * joins + ["leave"] * leaves  # in the order they were sent
    if mode in (JoinMode.IGMPV2, JoinMode.MLDV1):
        # The report goes to the group itself (the packet socket), the leave to all-routers
        # (the raw socket).
        assert [e["destination"] for e in mine] == [group] * joins + [LEAVES_TO[family]]
    else:
        assert {e["destination"] for e in mine} == {V3_REPORTS_TO[family]}
    assert agent.call("stats")["dropped"] == {"4": {}, "6": {}}


# -- forged messages --------------------------------------------------------------------------

def test_an_igmpv1_report_without_router_alert_arrives_once(proxy_lab: Lab_) -> None:
    """RFC 1112 reports carry no Router Alert; RFC 9776 §9: old hosts must still be heard."""
    lab, agent = proxy_lab
    v1 = report(4, "239.3.1.1", version=1)
    assert v1[0] == 0x12  # IGMPv1 Host Membership Report
    forge(lab, "sub2", [ipv4_packet(ip(SUB2[4]), ip("239.3.1.1"), v1, router_alert=False)])
    wait_until(lambda: carrying(agent, 4, v1), timeout=5)
    agent.call("drain")
    (got,) = carrying(agent, 4, v1)
    assert (got["interface"], got["source"], got["destination"], got["ttl"],
            got["router_alert"]) == ("d1", SUB2[4], "239.3.1.1", 1, False)


def test_an_mld_report_without_router_alert_arrives_once(proxy_lab: Lab_) -> None:
    """The same for MLD: handed on with ``router_alert`` False, for the engine to judge."""
    lab, agent = proxy_lab
    v1 = report(6, "ff1e::3:1:1")
    forge(lab, "sub2", [ipv6_packet(ip(SUB2[6]), ip("ff1e::3:1:1"), v1, chain=(NEXT_ICMPV6, b""))])
    wait_until(lambda: carrying(agent, 6, v1), timeout=5)
    agent.call("drain")
    (got,) = carrying(agent, 6, v1)
    assert (got["interface"], got["source"], got["destination"], got["ttl"],
            got["router_alert"]) == ("d1", SUB2[6], "ff1e::3:1:1", 1, False)


def _malformed(family: int) -> tuple[list[bytes], bytes, Counter[str]]:
    """Frames the packet socket must drop and count, one good one, and the counts expected."""
    if family == 4:
        src, group = ip(SUB3[4]), ip("239.3.2.1")
        good = ipv4_packet(src, group, report(4, "239.3.2.1"))
        bad_checksum = bytearray(good)
        bad_checksum[10] ^= 0xFF
        truncated = good[:-3]  # Total Length says 3 octets more than the frame holds
        frames = [
            ipv4_packet(src, group, report(4, "239.3.2.1"), fragment=0x2000),  # More Fragments
            ipv4_packet(src, group, report(4, "239.3.2.1"), fragment=0x0003),  # an offset
            bytes(bad_checksum),
            truncated,
        ]
        return frames, good, Counter({Drop.FRAGMENT: 2, Drop.BAD_HEADER_CHECKSUM: 1,
                                      Drop.BAD_TOTAL_LENGTH: 1})
    src, group = ip(SUB3[6]), ip("ff1e::3:2:1")
    message = report(6, "ff1e::3:2:1")
    good = ipv6_packet(src, group, message)
    frames = [
        ipv6_packet(src, group, message, chain=(NEXT_FRAGMENT, fragment())),
        ipv6_packet(src, group, message,
                    chain=(NEXT_HOP_BY_HOP, hop_by_hop(next_header=NEXT_FRAGMENT) + fragment())),
        good[:-3],  # Payload Length says 3 octets more than the frame holds
        ipv6_packet(src, group, message,  # a Router Alert 3 octets long
                    chain=(NEXT_HOP_BY_HOP, hop_by_hop(bytes([5, 3, 0, 0, 0])))),
        ipv6_packet(src, group, message,  # RFC 8200 §4.2: an unknown option marked "discard"
                    chain=(NEXT_HOP_BY_HOP, hop_by_hop(bytes([0x7E, 2, 0, 0, 5, 2, 0, 0])))),
    ]
    return frames, good, Counter({Drop.FRAGMENT: 2, Drop.BAD_PAYLOAD_LENGTH: 1,
                                  Drop.BAD_ROUTER_ALERT: 1, Drop.UNRECOGNIZED_OPTION: 1})


@pytest.mark.parametrize("family", [4, 6], ids=["igmp", "mld"])
def test_fragments_bad_headers_and_truncated_packets_are_counted(
    proxy_lab: Lab_, family: int
) -> None:
    lab, agent = proxy_lab
    # From sub3, on a veth of its own: lan1's bridge, like any Linux bridge with br_netfilter
    # calling iptables, drops IPv4 and IPv6 headers it finds broken before they reach d1.
    frames, good, expected = _malformed(family)
    forge(lab, "sub3", [*frames, good])

    def dropped() -> dict[str, int]:
        return agent.call("stats")["dropped"][str(family)]

    wait_until(lambda: dropped() == {str(k): v for k, v in expected.items()}, timeout=5,
               message=lambda: f"dropped {dropped()}")
    message = good[24:] if family == 4 else good[48:]  # after the Router Alert's header
    wait_until(lambda: carrying(agent, family, message), timeout=5)
    agent.call("drain")
    assert [e["source"] for e in carrying(agent, family, message)] == [SUB3[family]]
    assert dropped() == {str(k): v for k, v in expected.items()}


@pytest.mark.parametrize("family", [4, 6], ids=["igmp", "mld"])
def test_what_the_socket_sends_is_not_received_back(proxy_lab: Lab_, family: int) -> None:
    """The proxy reports to G upstream and asks about G downstream: both go to a routable group,
    which the packet socket would take if it saw what this host sends."""
    lab, agent = proxy_lab
    group = "239.3.3.1" if family == 4 else "ff1e::3:3:1"
    up, down = lab.capture("prov1", "eth0"), lab.capture("sub1", "eth0")
    if family == 4:
        upstream = report(4, group)
        query = build_igmp(Query(3, ip(group), 1.0, qrv=2, qqi=125))
    else:
        upstream = report(6, group, src="fe80::ff:fe00:a100")
        query = build_mld(Query(2, ip(group), 1.0, qrv=2, qqi=125), ip("fe80::ff:fe00:d100"),
                          ip(group))
    for interface, payload in (("u1", upstream), ("d1", query)):
        assert agent.call("send", family=family, interface=interface, destination=group,
                          payload=payload.hex())["sent"]

    def heard(cap: Any) -> bool:
        return any(not p.outgoing and p.dst == group and p.src in PROXY[family]
                   for p in cap.packets())

    wait_until(lambda: heard(up) and heard(down), timeout=5)
    agent.call("drain")
    assert [e for e in agent.received(family) if e["source"] in PROXY[family]] == []
    assert agent.call("stats")["dropped"][str(family)] == {}


def test_a_host_on_an_interface_not_in_the_map_is_ignored_uncounted(proxy_lab: Lab_) -> None:
    """prov2 reports on u2, which the map does not hold: its reports to routable groups reach
    the packet socket (bound to every interface), which hands nothing on and counts no drop;
    ``unmanaged`` says how many it ignored."""
    lab, agent = proxy_lab
    rx = lab.receiver("prov2", "eth0")
    rx.join(JoinMode.IGMPV2, "239.3.4.1")
    rx.join(JoinMode.MLDV1, "ff1e::3:4:1")
    v1 = report(4, "239.3.4.2", version=1)
    forge(lab, "prov2", [ipv4_packet(ip(PROV2[4]), ip("239.3.4.2"), v1, router_alert=False)])

    def unmanaged() -> dict[str, int]:
        return agent.call("stats")["unmanaged"]

    wait_until(lambda: unmanaged()["4"] >= 2 and unmanaged()["6"] >= 1, timeout=5,
               message=lambda: f"unmanaged {unmanaged()}")
    agent.call("drain")
    assert [e for e in agent.received() if e["source"] in PROV2.values()] == []
    assert agent.call("stats")["dropped"] == {"4": {}, "6": {}}
    # A general query there (to 224.0.0.1, which every interface has joined) reaches the raw
    # socket, which counts it as it always has: the raw path sees only this host's groups.
    query = build_igmp(Query(3, bytes(4), 10.0, qrv=2, qqi=125))
    forge(lab, "prov2", [ipv4_packet(ip(PROV2[4]), ip("224.0.0.1"), query)])
    wait_until(lambda: agent.call("stats")["dropped"]["4"] == {str(Drop.UNKNOWN_INTERFACE): 1},
               timeout=5)


# -- a flood ------------------------------------------------------------------------------------

FLOOD = 10_000
KERNEL_DROPS = (Drop.QUEUE_FULL, Drop.QUEUE_FULL_OR_BAD_CHECKSUM)
SMALL_BUFFER = 64 << 10  # some hundreds of packets: most of the flood overflows


def _flood(family: int, src: str, count: int) -> list[bytes]:
    """``count`` reports from ``src``, alternating: to a routable group (an IGMPv2 / MLDv1
    report, for the packet socket) and to the v3 routers' group (for the raw socket)."""
    packets = []
    for i in range(count):
        n = i // 2
        if family == 4:
            group = f"239.{40 + i % 2}.{n >> 8}.{n & 0xFF}"
            message = report(4, group) if i % 2 == 0 else v3_report(4, group, src)
            packets.append(ipv4_packet(ip(src), ip(group if i % 2 == 0 else V3_REPORTS_TO[4]),
                                       message))
        else:
            group = f"ff1e::{40 + i % 2}:{n:x}"
            message = report(6, group, src=src) if i % 2 == 0 else v3_report(6, group, src)
            packets.append(ipv6_packet(ip(src), ip(group if i % 2 == 0 else V3_REPORTS_TO[6]),
                                       message))
    return packets


@pytest.mark.parametrize(
    ("proxy_lab", "family"),
    [(None, 4), (None, 6), (SMALL_BUFFER, 4), (SMALL_BUFFER, 6)],
    ids=["igmp", "mld", "igmp-overflowing", "mld-overflowing"],
    indirect=["proxy_lab"],
)
def test_a_flood_is_received_or_counted_once_each_in_order(proxy_lab: Lab_, family: int) -> None:
    """10,000 forged reports queue up while the agent does not read, alternating between the
    two sockets. Each is then received once or counted as the kernel's drop (a full queue),
    and each ``receive()`` hands on what it read in the order it was sent: the two sockets'
    messages are merged by receive time."""
    lab, agent = proxy_lab
    src = SUB3[family]
    *packets, last_raw, last_packet = _flood(family, src, FLOOD + 2)
    header = 24 if family == 4 else 48  # IPv4 with Router Alert; IPv6 with Hop-by-Hop
    index = {p[header:].hex(): i for i, p in enumerate(packets)}
    tail = {p[header:].hex() for p in (last_raw, last_packet)}
    agent.call("pause")
    assert forge(lab, "sub3", packets) == FLOOD
    agent.call("resume")
    agent.call("drain", timeout=30)
    # A queue's drops show with the next packet it takes: one more for each socket, now that
    # both are empty.
    forge(lab, "sub3", [last_raw, last_packet])

    def flood() -> list[str]:
        return [e["payload"] for e in from_(agent, family, src) if e["payload"] in index]

    def counted() -> int:
        dropped = agent.call("stats")["dropped"][str(family)]
        return sum(dropped.get(str(reason), 0) for reason in KERNEL_DROPS)

    wait_until(lambda: len(carrying(agent, family, *map(bytes.fromhex, tail))) == 2, timeout=30)
    agent.call("drain")
    got = flood()
    assert len(set(got)) == len(got)  # none twice
    if agent.rcvbuf is None:  # the default buffer holds the whole flood
        assert (len(got), counted()) == (FLOOD, 0)
    else:
        # While a raw socket's queue is full the kernel counts whatever reaches it, before its
        # filter: a stray message of a host's own (a retransmitted report) may add one.
        assert FLOOD <= len(got) + counted() <= FLOOD + 2
    for batch in agent.batches(family):
        order = [index[e["payload"]] for e in batch if e["payload"] in index]
        assert order == sorted(order)
    assert set(agent.call("stats")["dropped"][str(family)]) <= {str(r) for r in KERNEL_DROPS}
    print(f"flood of {FLOOD}: {len(got)} received, {counted()} dropped, "
          f"in {len(agent.batches(family))} receive() calls")
