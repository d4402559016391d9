"""Namespace scenario: an attacker on the proxy's unicast path to the relay.

::

    sub1 ---- d1 proxy wan 10.30.1.2 ---- eth0 router 10.30.1.1 ---- relay 10.30.2.2
                   amt1 (TUN)             (the attacker: sends from its own address, and
                                           forges the relay's)

Sent to the gateway's UDP port while a channel flows: Multicast Data from a non-relay address
(a flood of it), and, forged with the relay's address and port, truncated AMT messages and a
Membership Query with a nonce the gateway never sent. Each is dropped and counted by reason
under the AMT upstream's status; the proxy goes on, and the channel with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from proxy_amt_lab import SSM, amt_config, amt_status, gateway, relay_channels, start_relay
from scapy.layers.inet import IP, UDP  # type: ignore[import-untyped]

from mcastlab import JoinMode, Lab, wait_until
from mcastlab.amt_topologies import PROXY_WAN, RELAY, amt_proxy_lab
from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.inner import query_packet
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.amt import AMT_PORT, MembershipQuery, build_amt
from mcastproxy.wire.messages import Query

pytestmark = pytest.mark.netns

FLOOD = 20_000


def _udp(source: str, sport: int, dport: int, payload: bytes) -> bytes:
    return bytes(IP(src=source, dst=PROXY_WAN[4], ttl=64) / UDP(sport=sport, dport=dport)
                 / payload)


def test_forged_truncated_and_flooded_datagrams_are_dropped_and_counted(
    make_lab: Callable[..., Lab]
) -> None:
    lab = make_lab(amt_proxy_lab())
    relay = start_relay(lab)
    proxy = lab.proxy(amt_config(), forwarding="recorded")
    source, group = SSM[4]
    rx = lab.receiver("sub1", "eth0")
    rx.join(JoinMode.IGMPV3_SSM, group, source)
    wait_until(lambda: (source, group) in relay_channels(relay), timeout=10)
    port = gateway(proxy, "igmp")["local-port"]
    to = lab.mac("proxy", "wan")
    inner = udp_packet(ipaddress.ip_address(source).packed, ipaddress.ip_address(group).packed,
                       5001, b"forged")
    query = query_packet(Family.V4, bytes(4), Query(3, bytes(4), 10.0, qrv=2, qqi=1))
    forged_relay = [
        b"\x04\x00\x00",  # a Membership Query cut short
        b"\x06",  # Multicast Data with nothing in it
        b"\x06\x00" + inner[:10],  # Multicast Data with half an IP header
        b"\x16\x00" + bytes(10),  # AMT version 1
        build_amt(MembershipQuery(0x1234, 0xDEADBEEF, query)),  # a nonce never sent
    ]
    sent = lab.inject("router", "eth0", [_udp(RELAY[4], AMT_PORT, port, p)
                                         for p in forged_relay], to=to)
    assert sent == len(forged_relay)
    flood = [_udp("10.30.1.1", AMT_PORT, port, b"\x06\x00" + inner)] * FLOOD
    assert lab.inject("router", "eth0", flood, to=to) == FLOOD

    def dropped() -> dict[str, int]:
        return dict(amt_status(proxy)["dropped"])

    # Each datagram of the flood is counted: dropped by the gateway as not the relay's, or
    # by the kernel, when it came faster than the loop read it, for a full socket queue.
    flooded = (str(Drop.AMT_NOT_FROM_RELAY), str(Drop.QUEUE_FULL))
    wait_until(lambda: sum(dropped().get(r, 0) for r in flooded) >= FLOOD, timeout=10,
               message=lambda: str(dropped()))
    d = dropped()
    assert d[str(Drop.AMT_WRONG_NONCE)] == 1
    assert d[str(Drop.AMT_BAD_VERSION)] == 1
    malformed = sum(n for r, n in d.items() if r not in (
        *flooded, Drop.AMT_WRONG_NONCE, Drop.AMT_BAD_VERSION))
    assert malformed == 3, d
    # The proxy goes on, and the channel with it: the forged query changed nothing.
    g = gateway(proxy, "igmp")
    assert g["state"] == "established"
    before = g["data-packets"]
    wait_until(lambda: gateway(proxy, "igmp")["data-packets"] > before + 20, timeout=10)
    assert (source, group) in relay_channels(relay)
    assert proxy.daemon.running
