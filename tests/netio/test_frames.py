"""What the packet socket hands on and what it drops, without a network: the checks the IP
stack would have made (``netio.ipv6.parse_ipv6``, ``wire.parse_ipv4``) on frames, one table
of packets each; and the receive time and queue drops read beside each packet."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Iterator

import pytest
from forge import NEXT_FRAGMENT, NEXT_HOP_BY_HOP, NEXT_ICMPV6, fragment, hop_by_hop, ipv4, ipv6

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import InterfaceMap, Received, sockopts
from mcastproxy.netio.common import NO_STAMP, QueueDrops, stamp_of
from mcastproxy.netio.frames import FrameReceiver
from mcastproxy.netio.ipv6 import IPv6Packet, hop_by_hop_options, parse_ipv6
from mcastproxy.wire import WireError

SRC6 = ipaddress.ip_address("fe80::ff:fe00:d111").packed
GROUP6 = ipaddress.ip_address("ff1e::2:1").packed
MLD = bytes([131, 0, 0x12, 0x34, 0, 0, 0, 0]) + GROUP6  # checksum not checked here
SRC4, GROUP4 = bytes([10, 1, 1, 11]), bytes([239, 2, 0, 1])
IGMP = bytes([0x16, 0, 0x12, 0x34]) + GROUP4


def packet6(**kw: object) -> bytes:
    return ipv6(SRC6, GROUP6, MLD, **kw)  # type: ignore[arg-type]


GOOD = [
    (packet6(), IPv6Packet(SRC6, GROUP6, 1, True, MLD)),
    (packet6(hop_limit=255), IPv6Packet(SRC6, GROUP6, 255, True, MLD)),  # for the engine
    (packet6(chain=(NEXT_ICMPV6, b"")), IPv6Packet(SRC6, GROUP6, 1, False, MLD)),
    (packet6() + bytes(6), IPv6Packet(SRC6, GROUP6, 1, True, MLD)),  # link-layer padding
    # RFC 2711: value 1 is RSVP, not MLD; an unknown option to skip (00) is skipped.
    (packet6(chain=(0, hop_by_hop(bytes([5, 2, 0, 1])))), IPv6Packet(SRC6, GROUP6, 1, False, MLD)),
    (packet6(chain=(0, hop_by_hop(bytes([0x3E, 2, 0, 0, 5, 2, 0, 0])))),
     IPv6Packet(SRC6, GROUP6, 1, True, MLD)),
    (packet6(chain=(0, hop_by_hop(bytes([0, 0, 1, 1, 0, 5, 2, 0, 0])))),  # Pad1, PadN first
     IPv6Packet(SRC6, GROUP6, 1, True, MLD)),
]

BAD = [
    (packet6()[:39], Drop.TRUNCATED_HEADER),
    (b"\x40" + packet6()[1:], Drop.NOT_IPV6),
    (packet6()[:-1], Drop.BAD_PAYLOAD_LENGTH),  # a truncated packet
    (packet6(payload_length=0), Drop.BAD_PAYLOAD_LENGTH),  # a Jumbo Payload
    (packet6(payload_length=1), Drop.TRUNCATED_HEADER),  # Hop-by-Hop header cut off
    (packet6(payload_length=7), Drop.TRUNCATED_HEADER),
    (packet6(chain=(NEXT_HOP_BY_HOP, bytes([58, 5]) + bytes(6))), Drop.TRUNCATED_HEADER),
    (packet6(chain=(NEXT_FRAGMENT, fragment())), Drop.FRAGMENT),
    (packet6(chain=(NEXT_FRAGMENT, fragment(offset=3, more=False))), Drop.FRAGMENT),
    (packet6(chain=(0, hop_by_hop(next_header=NEXT_FRAGMENT) + fragment())), Drop.FRAGMENT),
    (packet6(chain=(0, hop_by_hop(bytes([5, 3, 0, 0, 0])))), Drop.BAD_ROUTER_ALERT),
    (packet6(chain=(0, bytes([58, 0, 1, 9, 0, 0, 0, 0]))), Drop.BAD_OPTION_LENGTH),
    (packet6(chain=(0, bytes([58, 0, 0, 0, 0, 0, 0, 7]))), Drop.TRUNCATED_OPTION),
    # RFC 8200 §4.2: an unrecognised option whose high-order bits are 01, 10 or 11.
    (packet6(chain=(0, hop_by_hop(bytes([0x7E, 2, 0, 0, 5, 2, 0, 0])))),
     Drop.UNRECOGNIZED_OPTION),
    (packet6(chain=(0, hop_by_hop(bytes([0xC2, 4, 0, 0, 0, 0])))), Drop.UNRECOGNIZED_OPTION),
    (packet6(chain=(17, b"")), Drop.NOT_MLD),
    (packet6(chain=(0, hop_by_hop(next_header=60) + bytes([58, 0, 1, 4, 0, 0, 0, 0]))),
     Drop.NOT_MLD),
    (ipv6(SRC6, GROUP6, bytes([128, 0, 0, 0, 0, 1, 0, 1])), Drop.NOT_MLD),  # echo request
    (ipv6(SRC6, GROUP6, bytes([131, 0, 0])), Drop.NOT_MLD),  # no whole ICMPv6 header
]


@pytest.mark.parametrize(("data", "expected"), GOOD)
def test_an_mld_packet_is_read(data: bytes, expected: IPv6Packet) -> None:
    assert parse_ipv6(data) == expected


@pytest.mark.parametrize(("data", "reason"), BAD)
def test_a_bad_packet_is_refused_with_its_reason(data: bytes, reason: Drop) -> None:
    with pytest.raises(WireError) as e:
        parse_ipv6(data)
    assert e.value.reason is reason


@pytest.mark.parametrize("cut", range(40 + 8 + len(MLD)))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(WireError):
        parse_ipv6(packet6()[:cut])


def test_option_offsets_are_from_the_ipv6_header() -> None:
    with pytest.raises(WireError) as e:
        parse_ipv6(packet6(chain=(0, hop_by_hop(bytes([1, 0, 5, 3, 0, 0, 0])))))
    assert (e.value.reason, e.value.offset) == (Drop.BAD_ROUTER_ALERT, 44)
    with pytest.raises(WireError) as e:
        hop_by_hop_options(bytes([58, 0, 5, 3, 0, 0, 0, 0]))
    assert e.value.offset == 2


# -- the receiver's decoding ------------------------------------------------------------------

@pytest.fixture
def receivers() -> Iterator[tuple[FrameReceiver, FrameReceiver]]:
    m = InterfaceMap()
    m.set("d1", 7)
    dropped: tuple[Counter[Drop], Counter[Drop]] = (Counter(), Counter())
    try:
        v4 = FrameReceiver(Family.V4, m, dropped[0])
    except PermissionError:
        pytest.skip("packet sockets need root")
    v6 = FrameReceiver(Family.V6, m, dropped[1])
    yield v4, v6
    v4.close()
    v6.close()


def test_frames_are_handed_on_as_the_raw_path_does(
    receivers: tuple[FrameReceiver, FrameReceiver],
) -> None:
    v4, v6 = receivers
    assert v4.decode(ipv4(SRC4, GROUP4, IGMP), "d1", 7) == Received(
        "d1", 7, SRC4, GROUP4, IGMP, 1, True)
    assert v4.decode(ipv4(SRC4, GROUP4, IGMP, router_alert=False), "d1", 7) == Received(
        "d1", 7, SRC4, GROUP4, IGMP, 1, False)  # IGMPv1 (RFC 1112): no Router Alert
    assert v6.decode(packet6(), "d1", 7) == Received("d1", 7, SRC6, GROUP6, MLD, 1, True)
    assert not v4.dropped
    assert not v6.dropped


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (ipv4(SRC4, GROUP4, IGMP, fragment=0x2000), Drop.FRAGMENT),  # More Fragments
        (ipv4(SRC4, GROUP4, IGMP, fragment=0x0001), Drop.FRAGMENT),  # an offset
        (ipv4(SRC4, GROUP4, IGMP)[:-2], Drop.BAD_TOTAL_LENGTH),  # truncated
        (ipv4(SRC4, GROUP4, IGMP)[:10] + b"\0\0" + ipv4(SRC4, GROUP4, IGMP)[12:],
         Drop.BAD_HEADER_CHECKSUM),
        (ipv4(SRC4, GROUP4, IGMP)[:9] + b"\x11" + ipv4(SRC4, GROUP4, IGMP)[10:],
         Drop.BAD_HEADER_CHECKSUM),  # not IGMP, and the checksum says so first
    ],
)
def test_bad_ipv4_frames_are_counted(
    receivers: tuple[FrameReceiver, FrameReceiver], data: bytes, reason: Drop
) -> None:
    v4, _ = receivers
    assert v4.decode(data, "d1", 7) is None
    assert v4.dropped == {reason: 1}


@pytest.mark.parametrize(("data", "reason"), BAD[:6])
def test_bad_ipv6_frames_are_counted(
    receivers: tuple[FrameReceiver, FrameReceiver], data: bytes, reason: Drop
) -> None:
    _, v6 = receivers
    assert v6.decode(data, "d1", 7) is None
    assert v6.dropped == {reason: 1}


def test_listening_on_an_interface_that_is_gone_raises(
    receivers: tuple[FrameReceiver, FrameReceiver],
) -> None:
    v4, _ = receivers
    with pytest.raises(OSError, match="No such device"):
        v4.listen("d1", 0x7FFF_FFF0)


# -- beside each packet ---------------------------------------------------------------------------

def _timestamp(sec: int, nsec: int) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, sockopts.SO_TIMESTAMPNS, struct.pack("@qq", sec, nsec))


def _overflow(total: int) -> tuple[int, int, bytes]:
    return (socket.SOL_SOCKET, sockopts.SO_RXQ_OVFL, struct.pack("@I", total))


def test_the_receive_time_is_read() -> None:
    assert stamp_of([_timestamp(5, 7)]) == (5, 7)
    assert stamp_of([]) == NO_STAMP
    assert stamp_of([(socket.IPPROTO_IP, sockopts.SO_TIMESTAMPNS, bytes(16))]) == NO_STAMP
    assert stamp_of([(socket.SOL_SOCKET, sockopts.SO_TIMESTAMPNS, bytes(8))]) == NO_STAMP


def test_queue_drops_are_counted_once_each_as_the_running_total_grows() -> None:
    dropped: Counter[Drop] = Counter()
    queue = QueueDrops(dropped)
    stamp_of([_timestamp(1, 0), _overflow(3)], queue)
    stamp_of([_overflow(3)], queue)  # no new drop since
    assert dropped == {Drop.QUEUE_FULL: 3}
    stamp_of([_overflow(5)], queue)
    assert dropped == {Drop.QUEUE_FULL: 5}
    queue.saw(struct.pack("@I", 0xFFFF_FFFF))
    queue.saw(struct.pack("@I", 1))  # the 32-bit total wrapped
    assert dropped == {Drop.QUEUE_FULL: 0xFFFF_FFFF + 2}
