"""The Internet checksum (RFC 1071), without a Python loop over the data.

RFC 1071 §2: the checksum is the ones'-complement of the ones'-complement sum of the 16-bit
words. Since 2**16 = 1 (mod 0xFFFF), a byte string read as one integer N is congruent modulo
0xFFFF to the plain sum of its 16-bit words, and the ones'-complement sum (end-around carry)
of words that are not all zero is N mod 0xFFFF, except that a multiple of 0xFFFF sums to
0xFFFF ("negative zero"), not 0. ``int.from_bytes`` and one modulo run in C.

Two more facts keep it cheap:
- Reading the bytes little-endian sums byte-swapped words, and RFC 1071 §2(B) says the sum
  of swapped words is the swapped sum; little-endian ``int.from_bytes`` is the faster one.
  A sum computed that way is written back little-endian, which puts the octets in network
  order. It also pads an odd length correctly: the last octet lands in the low half of a
  swapped word, as the high octet of a zero-padded one (RFC 1071 §4.1).
- Only congruence matters, so the sums of independently read, even-length parts (an IPv6
  pseudo-header, a message header, the rest of a message) simply add.
"""

from __future__ import annotations

from typing import Final

_from_bytes = int.from_bytes


def fold(total: int) -> int:
    """The checksum for ``total``, an integer congruent (mod 0xFFFF) to the ones'-complement
    sum of the covered words, in the same byte order; ``total`` is 0 only if every word is."""
    rest = total % 0xFFFF
    if rest:
        return 0xFFFF - rest
    # A non-zero multiple of 0xFFFF sums to 0xFFFF, whose complement is 0; all-zero data
    # sums to 0, whose complement is 0xFFFF (RFC 1071 §2, ones'-complement zero).
    return 0 if total else 0xFFFF


LONG: Final = 1024
"""Messages longer than this (in octets) get their sum ``shrink`` -ed before the modulo."""


def shrink(total: int, size: int) -> int:
    """A smaller integer congruent to ``total`` (mod 0xFFFF), zero only if it is.

    ``total`` is a little-endian reading of ``size`` octets. CPython divides one 30-bit digit
    at a time, so for long messages it pays to first add the high half to the low half
    (congruent, as the cut falls on a 16-bit word boundary: 2**(16 k) = 1 mod 0xFFFF), twice
    or more, down to a couple of thousand bits.
    """
    bits = (size >> 2) << 4  # half the octets, in whole 16-bit words, as bits
    while bits >= 2048:
        total = (total >> bits) + (total & ((1 << bits) - 1))
        bits = (bits >> 5) << 4
    return total


def _swap(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


def inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of ``data``, as the 16-bit value of the field in network order.

    Over data that includes a correct checksum field, the result is 0. An odd length is
    padded with one zero octet at the end (RFC 1071 §4.1).
    """
    total = _from_bytes(data, "little")
    if len(data) > LONG:
        total = shrink(total, len(data))
    return _swap(fold(total))


def pseudo_header_sum(src: bytes, dst: bytes, length: int) -> int:
    """Little-endian sum of the IPv6 pseudo-header for ICMPv6 (RFC 8200 §8.1): source,
    destination, 32-bit upper-layer packet length, three zero octets, next header 58.

    The length's two words, byte-swapped, are congruent to ``((length & 0xFF) << 8) +
    (length >> 8)`` for any 32-bit length (the high word's high octet lands 2**16 up, = 1).
    ``parse_mld`` has this inlined.
    """
    return (
        _from_bytes(src, "little")
        + _from_bytes(dst, "little")
        + ((length & 0xFF) << 8)
        + (length >> 8)
        + 0x3A00  # next header 58 as a byte-swapped word
    )


def icmpv6_checksum(src: bytes, dst: bytes, data: bytes) -> int:
    """ICMPv6 checksum (RFC 4443 §2.3) of ``data`` from ``src`` to ``dst`` (16-octet packed
    addresses), as the 16-bit field value; 0 over a message with a correct checksum."""
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("IPv6 addresses are 16 octets")
    n = len(data)
    body = _from_bytes(data, "little")
    if n > LONG:
        body = shrink(body, n)
    return _swap(fold(pseudo_header_sum(src, dst, n) + body))


def finish(head: bytes, rest: bytes, extra: int = 0) -> bytes:
    """``head`` + ``rest`` with the checksum written into octets 2-3 of ``head`` (zero on
    entry). ``head`` has an even length; ``extra`` is a little-endian pseudo-header sum."""
    total = extra + _from_bytes(head, "little")
    if rest:
        # ``rest`` starts at an even offset, so its sum adds (see the module docstring).
        body = _from_bytes(rest, "little")
        if len(rest) > LONG:
            body = shrink(body, len(rest))
        total += body
    return b"".join((head[:2], fold(total).to_bytes(2, "little"), head[4:], rest))
