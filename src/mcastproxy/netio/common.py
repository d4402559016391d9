"""What the IGMP and MLD sockets share: the received record and the receive loop's limits."""

from __future__ import annotations

from dataclasses import dataclass

from mcastproxy.netio import sockopts

RCVBUF = 4 << 20
"""Receive buffer of a socket: a zap of 10,000 subscribers queues ~10,000 small reports."""

MAX_PER_RECEIVE = 10_000
"""Packets one ``receive()`` takes at most, so one busy socket cannot starve the loop."""

ANCILLARY_SIZE = 128

# Drop what this host sent itself (skb->pkt_type PACKET_LOOPBACK): the kernel's own IGMP/MLD
# reports for the groups the sockets join (224.0.0.22, ff02::16 ...) come back as input on
# that interface, and so would our sends if IP(V6)_MULTICAST_LOOP were on.
NOT_LOOPED_BACK = (
    sockopts.bpf(sockopts.BPF_LD_W_ABS, 0, 0, sockopts.SKF_AD_PKTTYPE),
    sockopts.bpf(sockopts.BPF_JEQ_K, 0, 1, sockopts.PACKET_LOOPBACK),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0xFFFF),
)


@dataclass(frozen=True, slots=True)
class Received:
    """An IGMP message (the IPv4 payload) or an MLD message (the ICMPv6 message) received on
    ``interface`` (index ``ifindex``), with the packet's addresses (packed) and its TTL /
    hop limit (None when the kernel did not say)."""

    interface: str
    ifindex: int
    source: bytes
    destination: bytes
    payload: bytes
    ttl: int | None = None
