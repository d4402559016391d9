"""What the proxy sends goes out of the interface asked for, from its address, with TTL / hop
limit 1 and Router Alert, and decodes with ``mcastproxy.wire``.

Topology ``proxy_lab``; the sockets run in ``proxy``, captures on the far ends::

    proxy d1 10.1.1.1 fe80::ff:fe00:d100 --[lan1]-- sub1 eth0  (capture)
    proxy d2 10.1.2.1 fe80::ff:fe00:d200 ---------- sub3 eth0  (capture)

A report goes out of d1 and a general query out of d2; each capture sees its own only.
The MLD report is handed over with its checksum zeroed: the kernel computes it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

import pytest
from proxy_agent import Agent
from raw_capture import RawCapture

from mcastlab import topologies, wait_until
from mcastproxy.wire import (
    GroupRecord,
    Query,
    RecordType,
    Report,
    WireError,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_ipv4,
    parse_mld,
)

pytestmark = [pytest.mark.netns, pytest.mark.mroute]


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@pytest.mark.parametrize("family", [4, 6], ids=["igmp", "mld"])
def test_sends_leave_the_chosen_interface_with_ttl_1_and_router_alert(
    make_lab: Callable, family: int
) -> None:
    lab = make_lab(topologies.proxy_lab())
    agent = Agent(lab, "proxy", ["u1", "u2", "d1", "d2"], sockets=True)
    agent.call("start", family=family, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    agent.call("listen", interface="d1")  # joined: a looped-back send would be delivered
    agent.call("listen", interface="d2")
    cap1, cap3 = RawCapture(lab, "sub1", "eth0"), RawCapture(lab, "sub3", "eth0")
    if family == 4:
        group, reports_to, everyone = "239.2.0.1", "224.0.0.22", "224.0.0.1"
        src1, src2 = "10.1.1.1", "10.1.2.1"
        report = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, _ip(group)),))
        query = Query(3, bytes(4), 10.0, qrv=2, qqi=125)
        report_bytes, query_bytes = build_igmp(report), build_igmp(query)
    else:
        group, reports_to, everyone = "ff1e::2:1", "ff02::16", "ff02::1"
        src1, src2 = "fe80::ff:fe00:d100", "fe80::ff:fe00:d200"
        report = Report(2, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, _ip(group)),))
        query = Query(2, bytes(16), 10.0, qrv=2, qqi=125)
        built = build_mld(report, _ip(src1), _ip(reports_to))
        report_bytes = built[:2] + b"\0\0" + built[4:]  # no checksum: the kernel's job
        query_bytes = build_mld(query, _ip(src2), _ip(everyone))
    for iface, dst, payload in (("d1", reports_to, report_bytes), ("d2", everyone, query_bytes)):
        assert agent.call(
            "send", family=family, interface=iface, destination=dst, payload=payload.hex()
        )["sent"]

    def ours(cap: RawCapture, src: str) -> list[bytes]:
        """Packets from ``src`` carrying what we sent (listen() has the kernel send its own
        reports, for ff02::16 / 224.0.0.22, from the same address)."""
        at, sent = (12, 16) if family == 4 else (8, 24), (report, query)
        return [p for p in cap.packets() if p[at[0] : at[1]] == _ip(src) and decode(p) in sent]

    def decode(packet: bytes) -> object:
        try:
            if family == 4:
                return parse_igmp(parse_ipv4(packet).payload)
            return parse_mld(packet[48:], packet[8:24], packet[24:40])
        except WireError:
            return None

    wait_until(lambda: ours(cap1, src1) and ours(cap3, src2), timeout=5)
    (at_sub1,), (at_sub3,) = ours(cap1, src1), ours(cap3, src2)
    time.sleep(0.1)
    assert [e for e in agent.received() if e["source"] in (src1, src2)] == []  # no loopback
    assert (ours(cap1, src2), ours(cap3, src1)) == ([], [])  # each out of its interface only
    for packet, src, dst, message in (
        (at_sub1, src1, reports_to, report),
        (at_sub3, src2, everyone, query),
    ):
        if family == 4:
            ip = parse_ipv4(packet)
            assert (ip.src, ip.dst, ip.ttl, ip.router_alert, ip.protocol, packet[1]) == (
                _ip(src),
                _ip(dst),
                1,
                True,
                2,
                0xC0,
            )
            assert parse_igmp(ip.payload) == message
        else:
            hop_limit, next_header = packet[7], packet[6]
            hop_by_hop = packet[40:48]
            assert (packet[8:24], packet[24:40], hop_limit, next_header) == (
                _ip(src),
                _ip(dst),
                1,
                0,
            )
            assert (hop_by_hop[0], hop_by_hop[2:6]) == (socket.IPPROTO_ICMPV6, b"\x05\x02\x00\x00")
            assert parse_mld(packet[48:], _ip(src), _ip(dst)) == message  # checksum verified
