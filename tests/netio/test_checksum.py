"""The kernel verifies the ICMPv6 checksum of what a raw ICMPv6 socket receives: an MLD
report with a bad checksum never reaches ``MldSocket``, the same report with a good one does.

Topology ``proxy_lab``::

    proxy d1 (MldSocket listening) --[lan1]-- sub1 eth0: two MLDv2 reports written as whole
                                              frames on an AF_PACKET socket (the kernel's
                                              own ICMPv6 sockets would fix the checksum)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest
from proxy_agent import Agent

from mcastlab import topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]
MARKS = (b"\x0b\xad", b"\x90\x0d")  # the last octets of the two groups

_INJECT = """
import ipaddress, socket, struct
from mcastproxy.wire import GroupRecord, RecordType, Report, build_mld
src = ipaddress.ip_address("fe80::ff:fe00:d111").packed
dst = ipaddress.ip_address("ff02::16").packed
def frame(group, good):
    rec = GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ipaddress.ip_address(group).packed)
    mld = bytearray(build_mld(Report(2, (rec,)), src, dst))
    if not good:
        mld[2] ^= 0xFF
    hop_by_hop = bytes([58, 0, 5, 2, 0, 0, 1, 0])  # Router Alert: MLD
    head = struct.pack("!IHBB", 6 << 28, len(hop_by_hop) + len(mld), 0, 1) + src + dst
    return head + hop_by_hop + bytes(mld)
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86DD))
to = ("eth0", 0x86DD, 0, 0, bytes.fromhex("333300000016"))
s.sendto(frame("ff1e::bad", False), to)
s.sendto(frame("ff1e::900d", True), to)
"""


def test_a_bad_checksum_is_discarded_by_the_kernel(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    agent = Agent(lab, "proxy", ["u1", "u2", "d1", "d2"], sockets=True)
    agent.call("start", family=6, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
    agent.call("listen", interface="d1")
    cap = lab.capture("proxy", "d1")  # both reach the interface
    start = len(agent.events())
    lab.run("sub1", sys.executable, "-c", _INJECT)
    wait_until(lambda: len([p for p in cap.packets() if p.payload[-2:] in MARKS]) == 2)

    def injected() -> list[str]:
        return [
            e["payload"]
            for e in agent.received(start)
            if e["source"] == "fe80::ff:fe00:d111" and e["payload"].endswith(("0bad", "900d"))
        ]

    wait_until(injected, timeout=5)
    time.sleep(0.2)
    (good,) = injected()
    assert good.endswith("900d")
    assert agent.call("stats")["dropped"]["6"] == {}  # dropped by the kernel, not by us
