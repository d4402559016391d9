"""tshark's ``amt`` dissector as an independent oracle for the AMT codec (RFC 7450 §5.1).

The vectors of test_amt_vectors.py, and a few hundred messages built from random fields
(a fixed seed), are written to one pcap as UDP datagrams to or from port 2268 (raw IP frames,
over IPv4 and IPv6); one tshark run decodes them all (``-T json`` with ``-e`` fields), and
every field it reads must be what our model says. The packets the messages carry are made by
``mcastproxy.amt.inner`` (queries and reports) and by the lab relay (data), so tshark also
checks their IP, IGMP, ICMPv6 and UDP checksums.

Skipped, saying so, where tshark is not installed (Debian: ``apt-get install tshark``).
"""

from __future__ import annotations

import ipaddress
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from amt_vectors import VECTORS

from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.inner import query_packet, report_packet
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    AmtMessage,
    MembershipQuery,
    MembershipUpdate,
    MulticastData,
    RelayAdvertisement,
    RelayDiscovery,
    Request,
    Teardown,
    build_amt,
    gateway_address_field,
)
from mcastproxy.wire.checksum import inet_checksum
from mcastproxy.wire.ipv4 import build_ipv4
from mcastproxy.wire.messages import GroupRecord, Query, RecordType, Report

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="needs tshark (Debian package tshark) for its amt dissector"
)

FIELDS = [
    "amt.version", "amt.type", "amt.discovery_nonce", "amt.relay_address.ipv4",
    "amt.relay_address.ipv6", "amt.request_nonce", "amt.request.p", "amt.membership_query.l",
    "amt.membership_query.g", "amt.response_mac", "amt.gateway.port_number",
    "amt.gateway.ip_address", "amt.multicast_data", "ip.dst", "ipv6.dst", "igmp.type",
    "icmpv6.type", "ip.checksum.status", "igmp.checksum.status", "icmpv6.checksum.status",
    "udp.checksum.status", "_ws.malformed",
]  # fmt: skip
LINKTYPE_RAW = 101  # each frame an IPv4 or IPv6 packet


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _outer(message: bytes, v6: bool, to_relay: bool) -> bytes:
    """``message`` in a UDP datagram from a gateway to a relay, or back."""
    ports = (40000, AMT_PORT) if to_relay else (AMT_PORT, 40000)
    if v6:
        src, dst = _addr("2001:db8::1"), _addr("2001:db8::2")
        length = 8 + len(message)
        head = struct.pack("!HHHH", *ports, length, 0)
        pseudo = src + dst + struct.pack("!I3xB", length, 17)  # RFC 8200 §8.1: mandatory
        checksum = inet_checksum(pseudo + head + message) or 0xFFFF
        udp = head[:6] + struct.pack("!H", checksum) + message
        return struct.pack("!IHBB16s16s", 6 << 28, length, 17, 64, src, dst) + udp
    udp = struct.pack("!HHHH", *ports, 8 + len(message), 0) + message  # no checksum: IPv4
    return build_ipv4(_addr("10.0.0.1"), _addr("10.0.0.2"), udp, ttl=64, router_alert=False,
                      tos=0, protocol=17)


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame)


def _dissect(path: Path) -> list[dict[str, list[str]]]:
    assert TSHARK is not None
    argv = [TSHARK, "-r", str(path), "-T", "json", "-o", "ip.check_checksum:TRUE",
            "-o", "udp.check_checksum:TRUE"]
    for name in FIELDS:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return [frame["_source"]["layers"] for frame in json.loads(out.stdout)]


def _one(layers: dict[str, list[str]], name: str) -> str:
    values = layers.get(name)
    assert values is not None, (name, layers)
    assert len(values) == 1, (name, layers)
    return values[0]


def _same_address(text: str, packed: bytes) -> bool:
    return ipaddress.ip_address(text).packed == packed


def _check(message: AmtMessage, layers: dict[str, list[str]]) -> None:
    """Every field tshark read is what ``message`` says."""
    assert "_ws.malformed" not in layers, layers
    assert _one(layers, "amt.version") == "0"
    kind = {RelayDiscovery: 1, RelayAdvertisement: 2, Request: 3, MembershipQuery: 4,
            MembershipUpdate: 5, MulticastData: 6, Teardown: 7}[type(message)]
    assert _one(layers, "amt.type") == str(kind)
    for status in ("ip.checksum.status", "igmp.checksum.status", "icmpv6.checksum.status",
                   "udp.checksum.status"):
        # 1 good, 2 not verified, 3 not present (an IPv4 UDP checksum of 0); 0 bad, 4 illegal
        assert set(layers.get(status, [])) <= {"1", "2", "3"}, (status, layers)
    if isinstance(message, RelayDiscovery | RelayAdvertisement):
        assert int(_one(layers, "amt.discovery_nonce"), 16) == message.nonce
    if isinstance(message, RelayAdvertisement):
        name = "amt.relay_address.ipv4" if len(message.relay) == 4 else "amt.relay_address.ipv6"
        assert _same_address(_one(layers, name), message.relay)
    if isinstance(message, Request):
        assert int(_one(layers, "amt.request_nonce"), 16) == message.nonce
        assert _one(layers, "amt.request.p") == ("1" if message.family is Family.V6 else "0")
    if isinstance(message, MembershipQuery | MembershipUpdate | Teardown):
        assert int(_one(layers, "amt.request_nonce"), 16) == message.nonce
        assert int(_one(layers, "amt.response_mac"), 16) == message.mac
    if isinstance(message, MembershipQuery):
        assert _one(layers, "amt.membership_query.l") == str(int(message.limit))
        assert _one(layers, "amt.membership_query.g") == str(int(message.gateway_port is not None))
    if isinstance(message, MembershipQuery | Teardown) and message.gateway_address is not None:
        assert int(_one(layers, "amt.gateway.port_number")) == message.gateway_port
        assert _same_address(_one(layers, "amt.gateway.ip_address"), message.gateway_address)
    if isinstance(message, MulticastData):
        assert bytes.fromhex(_one(layers, "amt.multicast_data").replace(":", "")) == message.packet
    carried = {MembershipQuery: "query", MembershipUpdate: "report", MulticastData: "packet"}
    if type(message) in carried:
        packet: bytes = getattr(message, carried[type(message)])
        inner_dst = packet[16:20] if packet[0] >> 4 == 4 else packet[24:40]
        field = "ip.dst" if len(inner_dst) == 4 else "ipv6.dst"
        assert _same_address(layers[field][-1], inner_dst)  # the last: the carried packet's
    if isinstance(message, MembershipQuery | MembershipUpdate):
        if message[2][0] >> 4 == 4:
            assert _one(layers, "igmp.type") == ("0x11" if kind == 4 else "0x22")
        else:
            assert _one(layers, "icmpv6.type") == ("130" if kind == 4 else "143")


def _corpus(seed: int = 7450, per_kind: int = 40) -> list[AmtMessage]:
    """Messages with random fields, each kind ``per_kind`` times, carrying real packets."""
    rng = random.Random(seed)

    def nonce() -> int:
        return rng.getrandbits(32)

    def mac() -> int:
        return rng.getrandbits(48)

    def address(length: int) -> bytes:
        return rng.getrandbits(8 * length).to_bytes(length, "big")

    def gateway() -> bytes:
        return gateway_address_field(address(rng.choice((4, 16))))

    out: list[AmtMessage] = []
    for _ in range(per_kind):
        family = rng.choice((Family.V4, Family.V6))
        source = address(family.length)
        group = (b"\xe8" + address(3)) if family is Family.V4 else (b"\xff\x3e" + address(14))
        query = Query(family.newest_version, family.unspecified, rng.choice((1.0, 10.0, 25.5)),
                      qrv=rng.randint(0, 7), qqi=rng.choice((0, 2, 60, 125)))
        records = tuple(
            GroupRecord(rng.choice(list(RecordType)), group, tuple(address(family.length)
                                                                   for _ in range(k)))
            for k in range(rng.randint(1, 4))
        )
        q_packet = query_packet(family, source, query)
        r_packet = report_packet(family, source, Report(family.newest_version, records))
        d_packet = udp_packet(source, group, 5001, address(rng.randint(0, 200)))
        out += [
            RelayDiscovery(nonce()),
            RelayAdvertisement(nonce(), address(rng.choice((4, 16)))),
            Request(nonce(), family),
            MembershipQuery(mac(), nonce(), q_packet, rng.random() < 0.5),
            MembershipQuery(mac(), nonce(), q_packet, rng.random() < 0.5,
                            rng.randint(0, 65535), gateway()),
            MembershipUpdate(mac(), nonce(), r_packet),
            MulticastData(d_packet),
            Teardown(mac(), nonce(), rng.randint(0, 65535), gateway()),
        ]
    return out


def test_tshark_reads_every_vector_and_message_as_we_do(tmp_path: Path) -> None:
    messages: list[AmtMessage] = [v.message for v in VECTORS] + _corpus()
    frames: list[tuple[AmtMessage, bytes]] = []
    for i, message in enumerate(messages):
        to_relay = isinstance(message, RelayDiscovery | Request | MembershipUpdate | Teardown)
        frames.append((message, _outer(build_amt(message), v6=i % 2 == 1, to_relay=to_relay)))
    pcap = tmp_path / "amt.pcap"
    _write_pcap(pcap, [frame for _, frame in frames])
    dissected = _dissect(pcap)
    assert len(dissected) == len(frames)
    for (message, _), layers in zip(frames, dissected, strict=True):
        _check(message, layers)


def test_the_vectors_bytes_are_what_tshark_reads(tmp_path: Path) -> None:
    """The vectors' hex (written by hand), not our builder's output, through the dissector."""
    pcap = tmp_path / "vectors.pcap"
    _write_pcap(pcap, [_outer(v.data, v6=False, to_relay=True) for v in VECTORS])
    for v, layers in zip(VECTORS, _dissect(pcap), strict=True):
        _check(v.message, layers)
