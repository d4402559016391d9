"""The AMT codec's vectors (RFC 7450 §5.1): one table of (message, bytes), written out field
by field from the figures of §5.1, not by our builder. tshark's independent ``amt`` dissector
reads them as the table says (tests/wire/test_amt_tshark.py). The IP packets the messages
carry are opaque to the codec: they are real ones (the IGMPv3 / MLDv2 parts are those of
tests/wire/test_wire_vectors.py), so that the dissector can read them too.

Shared by the codec's tests (tests/wire) and the gateway's (tests/amt).
"""

from __future__ import annotations

from typing import NamedTuple

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

# IPv4 + Router Alert + IGMPv3 General Query (QRV 2, QQIC 125), 10.0.0.1 -> 224.0.0.1.
Q4 = "46c00024000040000102fa110a000001e0000001940400001164ec1e00000000027d0000"
# IPv6 + Hop-by-Hop Router Alert + MLDv2 General Query (QRV 2, QQIC 125), fe80::1 -> ff02::1.
Q6 = (
    "6000000000240001fe800000000000000000000000000001ff020000000000000000000000000001"
    "3a00050200000100820056962710000000000000000000000000000000000000027d0000"
)
# IPv4 + Router Alert + IGMPv3 report ALLOW(232.1.1.1, {10.0.9.1}), 10.30.1.2 -> 224.0.0.22.
R4 = "46c0002c000040000102f8d50a1e0102e0000016940400002200dcf90000000105000001e80101010a000901"
# IPv6 + Hop-by-Hop Router Alert + MLDv2 report ALLOW(ff3e::8000:1, {fd00:9::1}), fe80::2.
R6 = (
    "6000000000340001fe800000000000000000000000000002ff020000000000000000000000000016"
    "3a000502000001008f00f1af0000000105000001ff3e0000000000000000000080000001"
    "fd000009000000000000000000000001"
)
# UDP "MCPL" from 10.0.9.1 to 232.1.1.1:5001, and from fd00:9::1 to ff3e::8000:1.
D4 = "450000200000400010116eca0a000901e80101019c401389000cb6794d43504c"
D6 = (
    "60000000000c1110fd000009000000000000000000000001ff3e0000000000000000000080000001"
    "9c401389000c36324d43504c"
)
MAC = 0xA1B2C3D4E5F6
GW4 = bytes(12) + bytes.fromhex("c0000201")  # ::192.0.2.1, IPv4-compatible
GW6 = bytes.fromhex("20010db8000000000000000000000002")


class Vector(NamedTuple):
    name: str
    message: AmtMessage
    hex: str

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


VECTORS = [
    Vector("relay discovery", RelayDiscovery(0xDEADBEEF), "01" "000000" "deadbeef"),
    Vector("relay advertisement, IPv4 relay",
           RelayAdvertisement(0xDEADBEEF, bytes.fromhex("c0000201")),
           "02" "000000" "deadbeef" "c0000201"),
    Vector("relay advertisement, IPv6 relay",
           RelayAdvertisement(1, bytes.fromhex("20010db8000000000000000000000001")),
           "02" "000000" "00000001" "20010db8000000000000000000000001"),
    Vector("request, IGMPv3 (P 0)", Request(0x12345678, Family.V4), "03" "00" "0000" "12345678"),
    Vector("request, MLDv2 (P 1)", Request(0x12345678, Family.V6), "03" "01" "0000" "12345678"),
    Vector("membership query, IGMPv3, no G",
           MembershipQuery(MAC, 0x12345678, bytes.fromhex(Q4)),
           "04" "00" "a1b2c3d4e5f6" "12345678" + Q4),
    Vector("membership query, L and G, IPv4 gateway",
           MembershipQuery(MAC, 0x12345678, bytes.fromhex(Q4), True, 40000, GW4),
           "04" "03" "a1b2c3d4e5f6" "12345678" + Q4 + "9c40" + GW4.hex()),
    Vector("membership query, MLDv2, G, IPv6 gateway",
           MembershipQuery(MAC, 1, bytes.fromhex(Q6), False, 2268, GW6),
           "04" "01" "a1b2c3d4e5f6" "00000001" + Q6 + "08dc" + GW6.hex()),
    Vector("membership update, IGMPv3",
           MembershipUpdate(MAC, 0x12345678, bytes.fromhex(R4)),
           "05" "00" "a1b2c3d4e5f6" "12345678" + R4),
    Vector("membership update, MLDv2",
           MembershipUpdate(1, 0xFFFFFFFF, bytes.fromhex(R6)),
           "05" "00" "000000000001" "ffffffff" + R6),
    Vector("multicast data, IPv4", MulticastData(bytes.fromhex(D4)), "06" "00" + D4),
    Vector("multicast data, IPv6", MulticastData(bytes.fromhex(D6)), "06" "00" + D6),
    Vector("teardown, IPv4 gateway", Teardown(MAC, 0x12345678, 40000, GW4),
           "07" "00" "a1b2c3d4e5f6" "12345678" "9c40" + GW4.hex()),
    Vector("teardown, IPv6 gateway", Teardown(0xFFFFFFFFFFFF, 0, 65535, GW6),
           "07" "00" "ffffffffffff" "00000000" "ffff" + GW6.hex()),
]  # fmt: skip
IDS = [v.name for v in VECTORS]
