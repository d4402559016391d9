"""AMT codec properties: parse(build(m)) == m for every kind of message, and bytes from the
network raise WireError or parse, never anything else."""

from __future__ import annotations

from amt_strategies import amt_messages, ip_packets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcastproxy.drops import Stage
from mcastproxy.wire.amt import (
    AmtMessage,
    MulticastData,
    build_amt,
    parse_amt,
    parse_multicast_data,
)
from mcastproxy.wire.errors import WireError

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=400, deadline=None)
@given(amt_messages)
def test_round_trip(message: AmtMessage) -> None:
    data = build_amt(message)
    assert parse_amt(data) == message
    assert build_amt(parse_amt(data)) == data


def _parses_or_wire_error(data: bytes) -> AmtMessage | None:
    error: WireError | None = None
    try:
        message = parse_amt(data)
    except WireError as caught:
        error = caught
    if error is not None:
        assert error.reason.stage is Stage.MALFORMED
        assert 0 <= error.offset <= len(data)
        return None
    # What parses is what the bytes say: it builds back to them, reserved octets aside.
    assert len(build_amt(message)) == len(data)
    return message


@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    _parses_or_wire_error(data)


@FUZZ
@given(st.integers(0, 9), st.binary(max_size=120))
def test_random_bytes_of_each_type(kind: int, rest: bytes) -> None:
    _parses_or_wire_error(bytes([kind]) + rest)


@FUZZ
@given(st.integers(1, 7), st.integers(0, 255), st.binary(max_size=16), ip_packets,
       st.binary(max_size=20))
def test_messages_around_a_packet(kind: int, flags: int, head: bytes, packet: bytes,
                                  tail: bytes) -> None:
    """A well-formed packet inside random framing: the length rules decide."""
    _parses_or_wire_error(bytes([kind, flags]) + head + packet + tail)


mutations = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                     max_size=6)


@FUZZ
@given(amt_messages, mutations, st.none() | st.integers(0, 1000))
def test_mutated_messages(message: AmtMessage, changes: list[tuple[int, int]],
                          cut: int | None) -> None:
    data = bytearray(build_amt(message))
    for position, value in changes:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % (len(data) + 1):]
    _parses_or_wire_error(bytes(data))


@FUZZ
@given(st.binary(max_size=80) | ip_packets.map(lambda p: b"\x06\x00" + p))
def test_parse_multicast_data_agrees_with_parse_amt(data: bytes) -> None:
    """The hot path's decoder and the general one accept the same Multicast Data and refuse
    the same bytes for the same reason."""
    try:
        expected: object = parse_amt(data)
    except WireError as e:
        expected = (e.reason, e.offset)
    try:
        got: object = MulticastData(parse_multicast_data(data))
    except WireError as e:
        got = (e.reason, e.offset)
    if data[:1] == b"\x06" or isinstance(got, MulticastData):
        assert got == expected
