"""AMT codec: the seven messages of Automatic Multicast Tunneling (RFC 7450 §5.1).

AMT carries multicast to a gateway that has only unicast to a relay: every message is one UDP
datagram to or from the relay's port 2268 (§7.2). ``parse_amt`` takes the UDP payload and
returns one of the messages below; ``build_amt`` is its inverse. Layouts (octets; V is the
version, 0, in the high four bits of the first octet and the type in the low four):

    Relay Discovery (1, §5.1.1):      V|1 | Reserved(3) | Discovery Nonce(4)
    Relay Advertisement (2, §5.1.2):  V|2 | Reserved(3) | Discovery Nonce(4) | Relay Address
                                      (4 octets: IPv4, 16: IPv6; the length says which)
    Request (3, §5.1.3):              V|3 | Reserved(7 bits) P | Reserved(2) | Request Nonce(4)
    Membership Query (4, §5.1.4):     V|4 | Reserved(6 bits) L G | Response MAC(6) |
                                      Request Nonce(4) | Encapsulated General Query (an IP
                                      packet) | [G: Gateway Port Number(2) | Gateway IP
                                      Address(16)]
    Membership Update (5, §5.1.5):    V|5 | Reserved | Response MAC(6) | Request Nonce(4) |
                                      Encapsulated Group Membership Update (an IP packet)
    Multicast Data (6, §5.1.6):       V|6 | Reserved | IP Multicast Packet
    Teardown (7, §5.1.7):             V|7 | Reserved | Response MAC(6) | Request Nonce(4) |
                                      Gateway Port Number(2) | Gateway IP Address(16)

The P flag of a Request asks for an IGMPv3 (P = 0) or an MLDv2 (P = 1) General Query; the
model says which with a ``Family``. L (Limit) says the relay takes no new gateways; G says
the Gateway fields follow the query, the source address and port the relay saw the Request
come from (a NAT between the two changes them). The Gateway IP Address is 16 octets whatever
the family: an IPv4 address is written IPv4-compatible (``::a.b.c.d``, RFC 4291 §2.5.5.1)
and kept in the model as the 16 octets of the wire, which a Teardown echoes unchanged;
``gateway_address_field`` and ``gateway_address_of`` convert.

Decoding rules:
- Version 0 only (the "V" field of every message of §5.1); an unknown type is refused.
- Reserved fields are ignored on receipt and sent as zero.
- A message has exactly the length its type and contents give: fixed-size messages (Discovery,
  Request, Teardown) are refused with octets left over, and an Advertisement is 12 or 24
  octets. Where a message carries an IP packet, the packet's own header gives its length
  (IPv4 Total Length, IPv6 40 + Payload Length), which must match what the datagram holds:
  the rest of it for an Update and Multicast Data, the rest less the Gateway fields for a
  Query. Nothing else of the carried packet is checked here (see ``mcastproxy.amt.inner``).
- Nonces are 32-bit and the Response MAC 48-bit integers: opaque values, echoed as received.

Messages are NamedTuples, like ``wire.messages``: Multicast Data is the hot path of a gateway
(one per packet of every channel it receives), and a tuple is cheap to make.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.errors import WireError

AMT_PORT: Final = 2268
"""The UDP port of AMT relays, for Relay Discovery and everything after (RFC 7450 §7.2)."""

RELAY_DISCOVERY_PREFIX4: Final = "192.52.193.0/24"
"""IANA's IPv4 anycast prefix for Relay Discovery Addresses (RFC 7450 §7.1.1)."""


class AmtType(IntEnum):
    """AMT message types (RFC 7450 §5.1)."""

    RELAY_DISCOVERY = 1
    RELAY_ADVERTISEMENT = 2
    REQUEST = 3
    MEMBERSHIP_QUERY = 4
    MEMBERSHIP_UPDATE = 5
    MULTICAST_DATA = 6
    TEARDOWN = 7


class RelayDiscovery(NamedTuple):
    """A gateway looking for a relay (§5.1.1)."""

    nonce: int


class RelayAdvertisement(NamedTuple):
    """A relay's answer to a Relay Discovery (§5.1.2): ``relay`` is the unicast address (4 or
    16 octets) the gateway sends everything else to; ``nonce`` echoes the discovery's."""

    nonce: int
    relay: bytes


class Request(NamedTuple):
    """A gateway asking the relay for a Membership Query (§5.1.3): an IGMPv3 General Query
    (``Family.V4``, P flag 0) or an MLDv2 one (``Family.V6``, P flag 1)."""

    nonce: int
    family: Family = Family.V4


class MembershipQuery(NamedTuple):
    """The relay's answer to a Request (§5.1.4).

    ``mac`` is the Response MAC the gateway echoes in its Updates and Teardown, ``nonce`` the
    Request's. ``query`` is the encapsulated General Query, a whole IP packet. ``limit`` is
    the L flag. ``gateway_port`` and ``gateway_address`` (16 octets) are present together or
    not at all: the G flag.
    """

    mac: int
    nonce: int
    query: bytes
    limit: bool = False
    gateway_port: int | None = None
    gateway_address: bytes | None = None


class MembershipUpdate(NamedTuple):
    """A gateway's IGMP or MLD report for the relay (§5.1.5): ``report`` is a whole IP packet
    carrying an IGMPv3 or MLDv2 report; ``mac`` and ``nonce`` those of a Membership Query."""

    mac: int
    nonce: int
    report: bytes


class MulticastData(NamedTuple):
    """A multicast IP packet the relay forwards to a gateway (§5.1.6)."""

    packet: bytes


class Teardown(NamedTuple):
    """A gateway asking the relay to forget the tunnel a Membership Query set up (§5.1.7):
    the query's ``mac``, its ``nonce``, and its Gateway fields."""

    mac: int
    nonce: int
    gateway_port: int
    gateway_address: bytes


AmtMessage = (
    RelayDiscovery | RelayAdvertisement | Request | MembershipQuery | MembershipUpdate
    | MulticastData | Teardown
)

DISCOVERY_SIZE: Final = 8
ADVERTISEMENT_SIZES: Final = (12, 24)
REQUEST_SIZE: Final = 8
QUERY_HEADER_SIZE: Final = 12
"""Membership Query and Update: the octets before the encapsulated packet."""
UPDATE_HEADER_SIZE: Final = 12
DATA_HEADER_SIZE: Final = 2
GATEWAY_FIELDS_SIZE: Final = 18
"""Gateway Port Number and Gateway IP Address, after a query with the G flag."""
TEARDOWN_SIZE: Final = 30

_P_FLAG: Final = 0x01  # Request, second octet, the lowest bit (§5.1.3)
_L_FLAG: Final = 0x02  # Membership Query, second octet (§5.1.4)
_G_FLAG: Final = 0x01  # Membership Query, second octet, the lowest bit (§5.1.4)
_NONCE_MAX: Final = 0xFFFF_FFFF
_MAC_MAX: Final = 0xFFFF_FFFF_FFFF
_IPV4_COMPATIBLE: Final = bytes(12)
_IPV4_MAPPED: Final = bytes(10) + b"\xff\xff"

_new = tuple.__new__
_unpack_nonce = struct.Struct("!I").unpack_from
_unpack_mac_nonce = struct.Struct("!IHI").unpack_from  # MAC high 32, MAC low 16, nonce
_unpack_gateway = struct.Struct("!H16s").unpack_from
_pack_nonce_message = struct.Struct("!BxxxI").pack  # Discovery, Advertisement
_pack_request = struct.Struct("!BBxxI").pack
_pack_mac_nonce = struct.Struct("!BBIHI").pack  # type, flags, MAC high, MAC low, nonce
_pack_gateway = struct.Struct("!H16s").pack
_V4 = Family.V4
_V6 = Family.V6


def parse_amt(data: bytes) -> AmtMessage:
    """Decode an AMT message (the UDP payload); ``WireError`` on malformed bytes."""
    n = len(data)
    if n < DATA_HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    first = data[0]
    if first == 0x06:  # Multicast Data first: it is almost all a gateway receives
        return _new(MulticastData, (parse_multicast_data(data),))
    if first >> 4:
        raise WireError(Drop.AMT_BAD_VERSION, 0)
    if first == 0x04:
        return _parse_query(data, n)
    if first == 0x05:
        if n < UPDATE_HEADER_SIZE:
            raise WireError(Drop.TRUNCATED_MESSAGE, 0)
        _check_packet(data, UPDATE_HEADER_SIZE, n)
        high, low, nonce = _unpack_mac_nonce(data, 2)
        return _new(MembershipUpdate, ((high << 16) | low, nonce, data[UPDATE_HEADER_SIZE:]))
    if first in (0x01, 0x03):
        _fixed_size(data, n, DISCOVERY_SIZE)
        (nonce,) = _unpack_nonce(data, 4)
        if first == 0x01:
            return _new(RelayDiscovery, (nonce,))
        # §5.1.3: P clear asks for an IGMPv3 General Query, set for an MLDv2 one.
        return _new(Request, (nonce, _V6 if data[1] & _P_FLAG else _V4))
    if first == 0x02:
        if n < ADVERTISEMENT_SIZES[0]:
            raise WireError(Drop.TRUNCATED_MESSAGE, 0)
        if n not in ADVERTISEMENT_SIZES:
            # §5.1.2: the relay address is 4 (IPv4) or 16 (IPv6) octets, nothing else.
            raise WireError(Drop.AMT_BAD_LENGTH, 8)
        (nonce,) = _unpack_nonce(data, 4)
        return _new(RelayAdvertisement, (nonce, data[8:]))
    if first == 0x07:
        _fixed_size(data, n, TEARDOWN_SIZE)
        high, low, nonce = _unpack_mac_nonce(data, 2)
        port, address = _unpack_gateway(data, 12)
        return _new(Teardown, ((high << 16) | low, nonce, port, address))
    raise WireError(Drop.UNKNOWN_TYPE, 0)


def parse_multicast_data(data: bytes) -> bytes:
    """The IP packet of a Multicast Data message: what ``parse_amt`` returns wrapped in a
    ``MulticastData``, without the wrapping (a gateway's hot path); ``WireError`` on malformed
    bytes, or bytes of another message type."""
    n = len(data)
    if n > 21 and data[0] == 0x06:  # the usual case, in a few octet tests
        first = data[2]
        if first >> 4 == 4:
            total = (data[4] << 8) | data[5]
            if total == n - 2 and 5 <= (first & 0x0F) <= total >> 2:
                return data[2:]
        elif first >> 4 == 6 and n >= 42 and 40 + ((data[6] << 8) | data[7]) == n - 2:
            return data[2:]
    # Something is wrong: say what.
    if n < DATA_HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    if data[0] != 0x06:
        raise WireError(Drop.AMT_BAD_VERSION if data[0] >> 4 else Drop.UNKNOWN_TYPE, 0)
    _check_packet(data, DATA_HEADER_SIZE, n)
    return data[2:]  # not reached: _check_packet found what the fast path refused


def _fixed_size(data: bytes, n: int, size: int) -> None:
    if n < size:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    if n > size:
        raise WireError(Drop.AMT_BAD_LENGTH, size)


def _parse_query(data: bytes, n: int) -> MembershipQuery:
    if n < QUERY_HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    flags = data[1]
    g_flag = flags & _G_FLAG
    # §5.1.4: with G set, the Gateway fields are the last 18 octets; the query is the rest.
    end = n - GATEWAY_FIELDS_SIZE if g_flag else n
    if end < QUERY_HEADER_SIZE:
        raise WireError(Drop.TRUNCATED_MESSAGE, 0)
    _check_packet(data, QUERY_HEADER_SIZE, end)
    high, low, nonce = _unpack_mac_nonce(data, 2)
    limit = bool(flags & _L_FLAG)
    if g_flag:
        port, address = _unpack_gateway(data, end)
        fields = ((high << 16) | low, nonce, data[QUERY_HEADER_SIZE:end], limit, port, address)
    else:
        fields = ((high << 16) | low, nonce, data[QUERY_HEADER_SIZE:], limit, None, None)
    return _new(MembershipQuery, fields)


def _check_packet(data: bytes, start: int, end: int) -> None:
    """The IP packet from ``start`` must end exactly at ``end``, by its own header."""
    size = end - start
    if size < 1:
        raise WireError(Drop.TRUNCATED_MESSAGE, start)
    version = data[start] >> 4
    if version == 4:
        if size < 4:
            raise WireError(Drop.TRUNCATED_HEADER, start)
        if (data[start] & 0x0F) < 5:
            raise WireError(Drop.BAD_HEADER_LENGTH, start)
        total = (data[start + 2] << 8) | data[start + 3]
        if total < (data[start] & 0x0F) << 2 or total > size:
            raise WireError(Drop.BAD_TOTAL_LENGTH, start + 2)
    elif version == 6:
        if size < 6:
            raise WireError(Drop.TRUNCATED_HEADER, start)
        total = 40 + ((data[start + 4] << 8) | data[start + 5])
        if total > size:
            raise WireError(Drop.BAD_PAYLOAD_LENGTH, start + 4)
    else:
        raise WireError(Drop.NOT_IP, start)
    if total != size:
        # Octets after the packet: in a datagram there is no link-layer padding to excuse them.
        raise WireError(Drop.AMT_BAD_LENGTH, start + total)


def build_amt(msg: AmtMessage) -> bytes:
    """Encode ``msg`` as the UDP payload of an AMT message.

    ``ValueError`` when a field does not fit the wire (a nonce past 32 bits, a relay address
    of 5 octets, a Gateway Port without its address); the packets a message carries are
    taken as they are (``parse_amt`` checks their lengths).
    """
    if isinstance(msg, MulticastData):
        return b"\x06\x00" + msg.packet
    if isinstance(msg, MembershipUpdate):
        mac, nonce, report = msg
        return _pack_mac_nonce(5, 0, *_mac_parts(mac), _checked_nonce(nonce)) + report
    if isinstance(msg, MembershipQuery):
        return _build_query(msg)
    if isinstance(msg, Request):
        p_flag = _P_FLAG if Family(msg.family) is _V6 else 0
        return _pack_request(3, p_flag, _checked_nonce(msg.nonce))
    if isinstance(msg, RelayDiscovery):
        return _pack_nonce_message(1, _checked_nonce(msg.nonce))
    if isinstance(msg, RelayAdvertisement):
        if len(msg.relay) not in (4, 16):
            raise ValueError("a relay address is 4 (IPv4) or 16 (IPv6) octets")
        return _pack_nonce_message(2, _checked_nonce(msg.nonce)) + msg.relay
    if isinstance(msg, Teardown):
        mac, nonce, port, address = msg
        head = _pack_mac_nonce(7, 0, *_mac_parts(mac), _checked_nonce(nonce))
        return head + _gateway_fields(port, address)
    raise TypeError(f"not an AMT message: {msg!r}")


def _build_query(msg: MembershipQuery) -> bytes:
    mac, nonce, query, limit, port, address = msg
    flags = _L_FLAG if limit else 0
    tail = b""
    if port is not None or address is not None:
        if port is None or address is None:
            raise ValueError("the Gateway Port Number and IP Address go together (G flag)")
        flags |= _G_FLAG
        tail = _gateway_fields(port, address)
    return _pack_mac_nonce(4, flags, *_mac_parts(mac), _checked_nonce(nonce)) + query + tail


def _checked_nonce(nonce: int) -> int:
    if not 0 <= nonce <= _NONCE_MAX:
        raise ValueError(f"a nonce is 32 bits: {nonce!r}")
    return nonce


def _mac_parts(mac: int) -> tuple[int, int]:
    if not 0 <= mac <= _MAC_MAX:
        raise ValueError(f"a Response MAC is 48 bits: {mac!r}")
    return mac >> 16, mac & 0xFFFF


def _gateway_fields(port: int, address: bytes) -> bytes:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"a port is 16 bits: {port!r}")
    if len(address) != 16:
        raise ValueError("the Gateway IP Address field is 16 octets (see gateway_address_field)")
    return _pack_gateway(port, address)


def gateway_address_field(address: bytes) -> bytes:
    """The 16-octet Gateway IP Address field for a packed IPv4 or IPv6 address: an IPv4
    address is written IPv4-compatible, ``::a.b.c.d`` (RFC 7450 §5.1.4, §5.1.7)."""
    family = Family.of(address)  # ValueError if neither 4 nor 16 octets
    return _IPV4_COMPATIBLE + address if family is _V4 else address


def gateway_address_of(field: bytes) -> bytes:
    """The address in a Gateway IP Address field: 4 octets when it holds an IPv4-compatible
    (``::a.b.c.d``) or IPv4-mapped (``::ffff:a.b.c.d``) address other than ``::`` and
    ``::1``, else the 16 octets."""
    if len(field) != 16:
        raise ValueError("the Gateway IP Address field is 16 octets")
    head = field[:12]
    if head == _IPV4_MAPPED or (head == _IPV4_COMPATIBLE and field[12:] not in _NOT_IPV4):
        return field[12:]
    return field


_NOT_IPV4: Final = (bytes(4), b"\0\0\0\x01")  # ::, ::1
