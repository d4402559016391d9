"""The lab's test traffic: a UDP payload that lets a receiver count loss, duplicates and delay.

Layout, in network order::

    octets 0-3     magic "MCPL"
           4       version (1)
           5       length of the sender id
           6-7     reserved (0)
           8-11    sequence number (u32), 0 for the first packet
           12-19   send time: the sender's time.monotonic_ns() (u64)
           20-     sender id (UTF-8), then zero padding up to the size asked for

Every namespace shares the host's monotonic clock, so a receiver can subtract the send time
from its own ``time.monotonic_ns()`` to get the one-way delay.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MAGIC = b"MCPL"
VERSION = 1
_HEADER = struct.Struct("!4sBBHIQ")
HEADER_LEN = _HEADER.size  # 20

MAX_RATE = 10_000
"""Packets per second a lab sender refuses to exceed."""
MAX_COUNT = 1_000_000
"""Packets one lab sender refuses to exceed."""


class PayloadError(ValueError):
    """Not a lab payload (no magic, unknown version, cut short)."""


class Payload(NamedTuple):
    """What a lab sender puts in each packet."""

    sender: str
    seq: int
    sent_ns: int


def build_payload(p: Payload, size: int = 0) -> bytes:
    """The packet body for ``p``, zero-padded to ``size`` octets if that is longer."""
    sid = p.sender.encode()
    if len(sid) > 255:
        raise ValueError("sender id longer than 255 octets")
    body = _HEADER.pack(MAGIC, VERSION, len(sid), 0, p.seq, p.sent_ns) + sid
    return body.ljust(size, b"\0")


def parse_payload(data: bytes) -> Payload:
    """The ``Payload`` in a packet body; ``PayloadError`` if it is not one."""
    if len(data) < HEADER_LEN:
        raise PayloadError(f"{len(data)} octets, shorter than the {HEADER_LEN}-octet header")
    magic, version, idlen, _, seq, sent_ns = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PayloadError(f"magic {magic!r}")
    if version != VERSION:
        raise PayloadError(f"version {version}")
    if len(data) < HEADER_LEN + idlen:
        raise PayloadError("sender id cut short")
    sender = data[HEADER_LEN : HEADER_LEN + idlen].decode(errors="replace")
    return Payload(sender, seq, sent_ns)


def check_limits(count: int, rate: float) -> None:
    """Refuse a send that is unbounded or too heavy for a shared machine."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count {count}: must be 1..{MAX_COUNT}")
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate {rate}/s: must be > 0 and <= {MAX_RATE}")
