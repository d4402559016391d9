"""Log lines keep the engine's event name and fields, as key=value pairs after the message."""

from __future__ import annotations

import logging

from mcastproxy.daemon import FieldsFormatter


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
