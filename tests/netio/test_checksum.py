"""The kernel verifies the ICMPv6 checksum of what a raw ICMPv6 socket receives: an MLD report
with a bad checksum never reaches ``MldSocket``, the same report with a good one does, and the
kernel's discard is counted (with the next message the socket takes, as the kernel tells).

Topology ``proxy_lab``; the sockets run in ``proxy`` (``socket_agent``), no kernel adapter::

    proxy d1 (MldSocket listening) --[lan1]-- sub1 eth0: two MLDv2 reports to ff02::16 written
                                              as whole frames (``forge``: the kernel's own
                                              ICMPv6 sockets would fix the checksum)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from forge import forge, ipv6
from socket_agent import SocketAgent

from mcastlab import Lab, topologies, wait_until
from mcastproxy.drops import Drop
from mcastproxy.wire import GroupRecord, RecordType, Report, build_mld

pytestmark = pytest.mark.netns
SUB1 = "fe80::ff:fe00:d111"
V3_ROUTERS = "ff02::16"


def report(group: str, *, good: bool) -> bytes:
    record = GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ipaddress.ip_address(group).packed)
    message = bytearray(build_mld(Report(2, (record,)), _ip(SUB1), _ip(V3_ROUTERS)))
    if not good:
        message[2] ^= 0xFF
    return bytes(message)


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def test_a_bad_checksum_is_discarded_by_the_kernel(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(topologies.proxy_lab())
    agent = SocketAgent(lab, "proxy", ["d1", "d2", "u1"])
    try:
        agent.call("listen", interface="d1")
        bad, good = report("ff1e::bad", good=False), report("ff1e::900d", good=True)
        forge(lab, "sub1", [ipv6(_ip(SUB1), _ip(V3_ROUTERS), m) for m in (bad, good)])

        def injected() -> list[str]:
            return [e["payload"] for e in agent.received(6)
                    if e["payload"] in (bad.hex(), good.hex())]

        wait_until(injected, timeout=5)
        agent.call("drain")
        assert injected() == [good.hex()]
        assert agent.call("stats")["dropped"]["6"] == {str(Drop.QUEUE_FULL_OR_BAD_CHECKSUM): 1}
    finally:
        agent.stop()
