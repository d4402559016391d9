"""The one error type of the wire codecs.

Bad bytes from the network are the remote peer's fault: every decoder turns them into a
``WireError`` at its boundary, never into ``IndexError`` or ``struct.error``. A caller that
hands a builder a message the wire cannot carry (an IGMPv1 report with two records, a
5-octet address) misused the API instead, and gets a plain ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

from mcastproxy.drops import Drop


class WireError(ValueError):
    """Malformed bytes: ``reason`` is the drop they make, one of the ``Drop`` members of the
    malformed stage (``Drop.BAD_CHECKSUM``, whose text is "bad checksum", ...), counted as it
    is from the codec to the socket; ``offset`` is the byte offset, within the bytes handed to
    the decoder, of the field or structure found wanting (for a truncation, where the
    structure that does not fit begins)."""

    def __init__(self, reason: Drop, offset: int) -> None:
        super().__init__(reason, offset)
        self.reason = reason
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.reason} at offset {self.offset}"
