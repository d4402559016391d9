"""Every IGMP/MLD message a host or a querier sends reaches the proxy exactly once, with the
interface it arrived on, while the kernel adapter's tables (and their mroute sockets) are
active.

Topology ``proxy_lab``; the adapters run in ``proxy`` (``proxy_agent``, with the sockets)::

      prov1 eth0  (a querier: general and group-specific queries)
         |
         u1 [table 4600]  proxy  [table 4601] u2 -- prov2
         d1 (listening: 224.0.0.22, 224.0.0.2, ff02::16, ff02::2)      d2
         |
      [lan1] -- sub1 eth0 (a kernel host: joins and leaves, captured as it sends)

"Exactly once" is checked against what sub1 sent: the multiset of messages the proxy
received from sub1 equals the multiset a capture on sub1's eth0 saw go out, once both are
quiet (sub1's unsolicited report intervals are cut to 100 ms, so retransmissions end soon).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from proxy_agent import Agent

from mcastlab import JoinMode, Lab, topologies, wait_until
from mcastproxy.wire import Leave, Query, Report, build_igmp, build_mld, parse_igmp, parse_mld

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

GROUPS = {
    JoinMode.IGMPV2: ("239.2.0.1", ()),
    JoinMode.IGMPV3_ASM: ("239.2.0.2", ()),
    JoinMode.IGMPV3_SSM: ("232.2.0.3", ("10.0.1.2",)),
    JoinMode.MLDV1: ("ff1e::2:1", ()),
    JoinMode.MLDV2_ASM: ("ff1e::2:2", ()),
    JoinMode.MLDV2_SSM: ("ff3e::2:3", ("fd00:1::2",)),
}
PROXY_ADDRESSES = {"10.1.1.1", "10.1.2.1", "fe80::ff:fe00:d100", "fe80::ff:fe00:d200"}


def proxy_with_sockets(lab: Lab, family: int) -> Agent:
    agent = Agent(lab, "proxy", ["u1", "u2", "d1", "d2"], sockets=True)
    agent.call("start", family=family, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    agent.call("listen", interface="d1")
    agent.call("listen", interface="d2")
    return agent


@pytest.mark.parametrize("mode", list(GROUPS), ids=[m.value for m in GROUPS])
def test_each_report_and_leave_arrives_once(make_lab: Callable, mode: JoinMode) -> None:
    group, sources = GROUPS[mode]
    lab = make_lab(topologies.proxy_lab())
    for key in ("igmpv2", "igmpv3"):
        lab.sysctl("sub1", f"net.ipv4.conf.eth0.{key}_unsolicited_report_interval", 100)
    for key in ("mldv1", "mldv2"):
        lab.sysctl("sub1", f"net.ipv6.conf.eth0.{key}_unsolicited_report_interval", 100)
    agent = proxy_with_sockets(lab, mode.family)
    me = (
        lab.addresses("sub1", "eth0", family=4)[0]
        if mode.family == 4
        else lab.link_local("sub1", "eth0")
    )
    cap = lab.capture("sub1", "eth0")
    rx = lab.receiver("sub1", "eth0")
    start = len(agent.events())
    rx.join(mode, group, *sources)
    time.sleep(0.3)
    rx.leave(group)

    # Only messages about this group: sub1 also reports its solicited-node groups now and
    # then, and one of those may straddle the start of the capture.
    about = _packed(group).hex()

    def sent() -> Counter[tuple[str, str]]:
        return Counter(
            (p.dst, p.payload.hex())
            for p in cap.packets()
            if p.outgoing and p.src == me and p.family == mode.family and about in p.payload.hex()
        )

    def received() -> Counter[tuple[str, str]]:
        return Counter(
            (e["destination"], e["payload"])
            for e in agent.received(start)
            if e["source"] == me and about in e["payload"]
        )

    def quiet_and_equal() -> bool:
        before = (sent(), received())
        time.sleep(0.3)
        return before == (sent(), received()) and before[0] == before[1] and bool(before[0])

    wait_until(
        quiet_and_equal,
        timeout=8,
        interval=0.05,
        message=lambda: f"sent {sent()}\nreceived {received()}",
    )
    mine = [e for e in agent.received(start) if e["source"] == me and about in e["payload"]]
    assert {(e["interface"], e["ttl"], e["family"]) for e in mine} == {("d1", 1, mode.family)}
    messages = [
        parse_igmp(bytes.fromhex(e["payload"]))
        if mode.family == 4
        else parse_mld(bytes.fromhex(e["payload"]), _packed(e["source"]), _packed(e["destination"]))
        for e in mine
    ]
    assert any(isinstance(m, Report) for m in messages)
    if mode in (JoinMode.IGMPV2, JoinMode.MLDV1):
        dst = "224.0.0.2" if mode.family == 4 else "ff02::2"
        assert [
            e["destination"] for e, m in zip(mine, messages, strict=True) if isinstance(m, Leave)
        ] == [dst]
    else:
        assert {e["destination"] for e in mine} == {
            "224.0.0.22" if mode.family == 4 else "ff02::16"
        }
    # The proxy's own reports (for the groups listen() joined) are not handed on.
    assert not [e for e in agent.received(start) if e["source"] in PROXY_ADDRESSES]
    stats = agent.call("stats")
    assert stats["dropped"] == {"4": {}, "6": {}}
    assert stats["ignored"][str(mode.family)] == 0


def _packed(text: str) -> bytes:
    import ipaddress  # noqa: PLC0415

    return ipaddress.ip_address(text).packed


@pytest.mark.parametrize("family", [4, 6], ids=["igmp", "mld"])
def test_queries_on_an_upstream_arrive_once_on_it(make_lab: Callable, family: int) -> None:
    lab = make_lab(topologies.proxy_lab())
    agent = proxy_with_sockets(lab, family)
    querier = Agent(lab, "prov1", ["eth0"], sockets=True)
    if family == 4:
        me, everyone, group = "10.0.1.2", "224.0.0.1", "239.2.0.7"
        general = build_igmp(Query(3, bytes(4), 10.0, qrv=2, qqi=125))
        specific = build_igmp(Query(3, _packed(group), 1.0, qrv=2, qqi=125))
    else:
        me, everyone, group = lab.link_local("prov1", "eth0"), "ff02::1", "ff1e::2:7"
        general = build_mld(
            Query(2, bytes(16), 10.0, qrv=2, qqi=125), _packed(me), _packed(everyone)
        )
        specific = build_mld(
            Query(2, _packed(group), 1.0, qrv=2, qqi=125), _packed(me), _packed(group)
        )
    start = len(agent.events())
    for dst, payload in ((everyone, general), (group, specific)):
        assert querier.call(
            "send", family=family, interface="eth0", destination=dst, payload=payload.hex()
        )["sent"]

    def got() -> list[tuple[str, str, str, str, int]]:
        return [
            (e["interface"], e["source"], e["destination"], e["payload"], e["ttl"])
            for e in agent.received(start)
            if e["source"] == me
        ]

    wait_until(lambda: len(got()) >= 2, timeout=5)
    time.sleep(0.3)  # room for a duplicate
    assert got() == [("u1", me, everyone, general.hex(), 1), ("u1", me, group, specific.hex(), 1)]
