"""The floating-point time codes of IGMPv3 and MLDv2, both ways.

- 8-bit form (IGMPv3 Max Resp Code, RFC 9776 §4.1.1; IGMPv3 QQIC, §4.1.7; MLDv2 QQIC,
  RFC 9777 §5.1.9): a code below 128 is the value; otherwise ``|1|exp(3)|mant(4)|`` means
  ``(mant | 0x10) << (exp + 3)``. Units are those of the field: tenths of a second for Max
  Resp Code, seconds for QQIC.
- 16-bit form (MLDv2 Maximum Response Code, RFC 9777 §5.1.3): a code below 32768 is the
  value; otherwise ``|1|exp(3)|mant(12)|`` means ``(mant | 0x1000) << (exp + 3)``,
  in milliseconds.

Every code decodes to a distinct value, so ``encode(decode(code)) == code``. Encoding a value
with no exact code gives the code of the largest representable value not above it, so a
querier never advertises a longer time than it means (a host may then answer a little early,
never late); values beyond the largest representable one clamp to it.
"""

from __future__ import annotations

from operator import index

IGMP_CODE_MAX = 31744
"""Largest value of the 8-bit form: (0x0F | 0x10) << (7 + 3)."""

MLD_CODE_MAX = 8387584
"""Largest value of the 16-bit form: (0x0FFF | 0x1000) << (7 + 3)."""


def _decode8(code: int) -> int:
    if code < 128:
        return code
    # RFC 9776 §4.1.1: Max Resp Time = (mant | 0x10) << (exp + 3)
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 0x07) + 3)


IGMP_CODE_TABLE: tuple[int, ...] = tuple(_decode8(code) for code in range(256))
"""Decoded value of every 8-bit code, for the decoders' hot path."""


def decode_igmp_code(code: int) -> int:
    """Value of an 8-bit Max Resp Code or QQIC (RFC 9776 §4.1.1, §4.1.7)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"8-bit code out of range: {code!r}")
    return IGMP_CODE_TABLE[code]


def encode_igmp_code(value: int) -> int:
    """8-bit code of the largest representable value not above ``value`` (clamped)."""
    value = index(value)
    if value < 0:
        raise ValueError(f"negative time: {value}")
    if value < 128:
        return value
    if value >= IGMP_CODE_MAX:
        return 0xFF
    # value has 8..15 bits: the top 5 bits are 1.mant, the bits below them are lost.
    exp = value.bit_length() - 8
    return 0x80 | (exp << 4) | ((value >> (exp + 3)) & 0x0F)


def decode_mld_code(code: int) -> int:
    """Milliseconds of a 16-bit MLDv2 Maximum Response Code (RFC 9777 §5.1.3)."""
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"16-bit code out of range: {code!r}")
    if code < 32768:
        return code
    # RFC 9777 §5.1.3: Maximum Response Delay = (mant | 0x1000) << (exp + 3)
    return ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 0x07) + 3)


def encode_mld_code(value: int) -> int:
    """16-bit code of the largest representable delay (ms) not above ``value`` (clamped)."""
    value = index(value)
    if value < 0:
        raise ValueError(f"negative time: {value}")
    if value < 32768:
        return value
    if value >= MLD_CODE_MAX:
        return 0xFFFF
    exp = value.bit_length() - 16
    return 0x8000 | (exp << 12) | ((value >> (exp + 3)) & 0x0FFF)
