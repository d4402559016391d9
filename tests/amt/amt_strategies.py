"""Hypothesis strategies for AMT messages (``mcastproxy.wire.amt``) and the IP packets they
carry, shared by the codec's and the gateway's property tests.

A carried packet is random but for what the codec reads of it: its version and its length
field (IPv4 IHL and Total Length, IPv6 Payload Length) agree with its octets.
"""

from __future__ import annotations

from hypothesis import strategies as st

from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AmtMessage,
    MembershipQuery,
    MembershipUpdate,
    MulticastData,
    RelayAdvertisement,
    RelayDiscovery,
    Request,
    Teardown,
)

nonces = st.integers(0, 2**32 - 1)
macs = st.integers(0, 2**48 - 1)
ports = st.integers(0, 0xFFFF)
addresses16 = st.binary(min_size=16, max_size=16)


@st.composite
def ipv4_packets(draw: st.DrawFn, max_payload: int = 64) -> bytes:
    ihl = draw(st.integers(5, 15))
    rest = draw(st.binary(min_size=ihl * 4 - 4, max_size=ihl * 4 - 4))
    payload = draw(st.binary(max_size=max_payload))
    total = ihl * 4 + len(payload)
    tos = draw(st.integers(0, 255))
    return bytes([0x40 | ihl, tos]) + total.to_bytes(2, "big") + rest + payload


@st.composite
def ipv6_packets(draw: st.DrawFn, max_payload: int = 64) -> bytes:
    head = draw(st.binary(min_size=4, max_size=4))
    rest = draw(st.binary(min_size=34, max_size=34))
    payload = draw(st.binary(max_size=max_payload))
    first = bytes([0x60 | (head[0] & 0x0F)]) + head[1:]
    return first + len(payload).to_bytes(2, "big") + rest + payload


ip_packets = st.one_of(ipv4_packets(), ipv6_packets())

amt_messages: st.SearchStrategy[AmtMessage] = st.one_of(
    st.builds(RelayDiscovery, nonces),
    st.builds(RelayAdvertisement, nonces,
              st.one_of(st.binary(min_size=4, max_size=4), addresses16)),
    st.builds(Request, nonces, st.sampled_from(Family)),
    st.builds(MembershipQuery, macs, nonces, ip_packets, st.booleans(), st.none(), st.none()),
    st.builds(MembershipQuery, macs, nonces, ip_packets, st.booleans(), ports, addresses16),
    st.builds(MembershipUpdate, macs, nonces, ip_packets),
    st.builds(MulticastData, ip_packets),
    st.builds(Teardown, macs, nonces, ports, addresses16),
)  # fmt: skip
