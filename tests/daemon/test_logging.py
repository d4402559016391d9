"""Log lines keep the engine's event name and fields, as key=value pairs after the message;
and a flood of them is cut to a few lines and one that says how many were not written.

::

    501 forged hosts --- d1 ---[ daemon ]--- u1
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from daemon_harness import Proto, config, records, running, until
from fakes import FakeNetwork

from mcastproxy.family import Family
from mcastproxy.logs import FieldsFormatter, LogLimiter


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("mcastproxy", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_an_engine_event_keeps_its_name_and_fields() -> None:
    fmt = FieldsFormatter("%(levelname)s %(message)s")
    line = fmt.format(record("joined 239.1.1.1 on u1", event="upstream-join",
                             fields={"upstream": "u1", "group": "239.1.1.1"}))
    assert line == "INFO joined 239.1.1.1 on u1 event=upstream-join upstream=u1 group=239.1.1.1"


def test_values_that_would_break_the_pairs_are_quoted() -> None:
    fmt = FieldsFormatter("%(message)s")
    line = fmt.format(record("x", event="liveness", fields={
        "cause": "no query or hello for 250 s", "forged": 'a="b"\nevil=1', "empty": ""}))
    assert line == ('x event=liveness cause="no query or hello for 250 s" '
                    'forged="a=\\"b\\"\\nevil=1" empty=""')


def test_a_plain_record_is_left_alone() -> None:
    assert FieldsFormatter("%(message)s").format(record("stopping")) == "stopping"


# --- rate limits -------------------------------------------------------------------------------


def test_a_limit_lets_a_burst_through_then_one_line_a_refill() -> None:
    limit = LogLimiter(burst=3, period=3.0)  # a token a second
    assert [limit.allow("flood", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limit.allow("other", 0.0)  # each event its own bucket
    assert limit.next_deadline() == 3.0  # the first line not written, a period later
    assert limit.due(2.9) == []
    assert limit.allow("flood", 1.0)  # refilled by one
    assert not limit.allow("flood", 1.5)
    assert limit.due(3.0) == [("flood", 3, 0.0)]
    assert limit.due(10.0) == []
    assert limit.next_deadline() is None
    # Quiet for a period: the whole burst again.
    assert [limit.allow("flood", 20.0) for _ in range(4)] == [True, True, True, False]
    assert limit.due(float("inf")) == [("flood", 1, 20.0)]


def test_a_limit_needs_a_burst_and_a_period() -> None:
    with pytest.raises(ValueError, match="burst"):
        LogLimiter(burst=0)
    with pytest.raises(ValueError, match="period"):
        LogLimiter(period=0)


def group(proto: Proto, i: int) -> str:
    return f"239.2.{i // 256}.{i % 256}" if proto.family is Family.V4 else f"ff15::2:{i:x}"


def host(proto: Proto, i: int) -> str:
    return f"10.1.{i // 200}.{i % 200 + 10}" if proto.family is Family.V4 else f"fe80::1:{i:x}"


def event_lines(caplog: pytest.LogCaptureFixture, event: str) -> tuple[int, list[int]]:
    """The lines of ``event`` written, and the counts of those that say how many were not."""
    lines = [r for r in caplog.records if getattr(r, "event", None) == event]
    told = [r.fields["suppressed"] for r in lines  # type: ignore[attr-defined]
            if "suppressed" in r.fields]  # type: ignore[attr-defined]
    return len(lines) - len(told), told


async def test_501_spoofed_senders_give_ten_lines_and_one_that_counts_the_rest(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    senders = 501
    async with running(net, workdir, config(proto)):  # the default: 10 lines in 10 s
        sock = net.sockets[proto.family]
        for i in range(senders):  # each a forged host joining a group of its own
            sock.inject_message("d1", host(proto, i), proto.join(group(proto, i)))
        # Every join is proxied all the same: only the log is limited.
        await until(lambda: len(records(sock.messages("u1"))) >= senders)
        assert event_lines(caplog, "upstream-join") == (10, [])
    # The count is told a period after the first line not written, or at the stop.
    assert event_lines(caplog, "upstream-join") == (10, [senders - 10])
    (summary,) = [r for r in caplog.records if "not written" in r.getMessage()]
    assert summary.levelname == "WARNING"
    assert summary.getMessage().startswith(f"{senders - 10} more upstream-join lines not "
                                           "written in ")


async def test_the_count_is_told_a_period_after_the_first_line_not_written(
    net: FakeNetwork, workdir: Path, proto: Proto, caplog: pytest.LogCaptureFixture,
) -> None:
    limit = LogLimiter(burst=2, period=0.2)
    async with running(net, workdir, config(proto), log_limit=limit):
        sock = net.sockets[proto.family]
        for i in range(20):
            sock.inject_message("d1", host(proto, i), proto.join(group(proto, i)))
        await until(lambda: event_lines(caplog, "upstream-join")[1], what="the count told")
        written, told = event_lines(caplog, "upstream-join")
        assert written + sum(told) == 20
        assert written < 20
