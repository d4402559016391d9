"""The test-traffic payload codec and the sender's limits (no root needed)."""

from __future__ import annotations

import pytest

from mcastlab import sender
from mcastlab.payload import (
    HEADER_LEN,
    MAX_COUNT,
    MAX_RATE,
    Payload,
    PayloadError,
    build_payload,
    check_limits,
    parse_payload,
)


def test_round_trip_with_padding() -> None:
    p = Payload("prov1", 7, 123_456_789_012)
    data = build_payload(p, size=64)
    assert len(data) == 64
    assert data[:4] == b"MCPL"
    assert parse_payload(data) == p


def test_layout() -> None:
    data = build_payload(Payload("x", 0x01020304, 0x1122334455667788))
    assert data == b"MCPL\x01\x01\x00\x00\x01\x02\x03\x04\x11\x22\x33\x44\x55\x66\x77\x88x"
    assert HEADER_LEN == 20


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"MCPL", "shorter"),
        (b"XXXX" + bytes(16), "magic"),
        (b"MCPL\x02" + bytes(15), "version"),
        (b"MCPL\x01\x05" + bytes(14) + b"ab", "cut short"),
    ],
)
def test_not_a_payload(data: bytes, text: str) -> None:
    with pytest.raises(PayloadError, match=text):
        parse_payload(data)


@pytest.mark.parametrize(
    ("count", "rate"), [(0, 10), (MAX_COUNT + 1, 10), (10, 0), (10, MAX_RATE + 1), (10, -1)]
)
def test_limits_refuse(count: int, rate: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        check_limits(count, rate)
    with pytest.raises(ValueError, match="must be"):
        sender.sender_args("239.1.1.1", port=5001, count=count, rate=rate)


def test_limits_allow_the_extremes() -> None:
    check_limits(1, 0.5)
    check_limits(MAX_COUNT, MAX_RATE)


def test_sender_program_refuses_too_fast(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        sender.main(["--group", "239.1.1.1", "--port", "5001", "--count", "5", "--rate", "20000"])
    assert e.value.code == 2
    assert "rate" in capsys.readouterr().err
