"""The daemon's log under systemd: native journal fields, the syslog priority, and the way
back to stderr when the journal does not answer (``mcastproxy.logs``)."""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcastproxy.logs import (
    FieldsFormatter,
    JournalHandler,
    PriorityFormatter,
    configure,
    priority,
    under_journal,
)


def parse(datagram: bytes) -> dict[str, str]:
    """The journal's native protocol, both forms (systemd's own reader, in short)."""
    fields: dict[str, str] = {}
    rest = datagram
    while rest:
        line, _, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            rest = after
        else:
            (n,) = struct.unpack("<Q", after[:8])
            fields[line.decode()] = after[8:8 + n].decode()
            assert after[8 + n:9 + n] == b"\n"
            rest = after[9 + n:]
    return fields


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "journal.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def record(level: int, msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("mcastproxy", level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_a_line_reaches_the_journal_with_its_fields(journal: tuple[socket.socket, str]) -> None:
    sock, path = journal
    handler = JournalHandler(path)
    handler.emit(record(logging.WARNING, "query on d1 from 10.0.0.5 dropped",
                        event="query-refused",
                        fields={"interface": "d1", "source": "10.0.0.5", "reason": "x y"}))
    got = parse(sock.recv(65536))
    handler.close()
    assert got["MESSAGE"] == "query on d1 from 10.0.0.5 dropped"
    assert got["PRIORITY"] == "4"
    assert got["SYSLOG_IDENTIFIER"] == "mcastproxy"
    assert got["EVENT"] == "query-refused"
    assert (got["INTERFACE"], got["SOURCE"], got["REASON"]) == ("d1", "10.0.0.5", "x y")


def test_what_a_field_holds_cannot_forge_another(journal: tuple[socket.socket, str]) -> None:
    sock, path = journal
    handler = JournalHandler(path)
    # A value with newlines (an exception, or text that came from the network) is sent in the
    # length-prefixed form, so "PRIORITY=0" inside it stays inside it; odd keys are made
    # into field names, never the journal's own (leading underscore).
    handler.emit(record(logging.INFO, "line one\nPRIORITY=0\nMESSAGE=forged", event="e",
                        fields={"_SYSTEMD_UNIT": "x", "ssm-map": "a\nb"}))
    got = parse(sock.recv(65536))
    handler.close()
    assert got["MESSAGE"] == "line one\nPRIORITY=0\nMESSAGE=forged"
    assert got["PRIORITY"] == "6"
    assert got["SYSTEMD_UNIT"] == "x"
    assert "_SYSTEMD_UNIT" not in got
    assert got["SSM_MAP"] == "a\nb"


def test_without_a_journal_the_line_goes_to_stderr_with_its_priority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    handler = JournalHandler(str(tmp_path / "none.sock"))
    handler.emit(record(logging.ERROR, "cannot start", event="start", fields={"why": "x"}))
    handler.close()
    assert capsys.readouterr().err == "<3>cannot start event=start why=x\n"


def test_priorities_follow_syslog() -> None:
    assert [priority(n) for n in (5, 10, 15, 20, 30, 40, 50, 60)] == [7, 7, 6, 6, 4, 3, 2, 2]
    line = PriorityFormatter("%(message)s").format(record(logging.INFO, "ok"))
    assert line == "<6>ok"


def test_stderr_is_the_journals_only_when_its_device_and_inode_match() -> None:
    st = os.fstat(2)
    assert under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not under_journal({"JOURNAL_STREAM": "garbage"})
    assert not under_journal({})


def test_configure_chooses_the_journal_or_a_terminal() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert isinstance(configure("info", journal=True), JournalHandler)
        handler = configure("debug", journal=False)
        assert isinstance(handler.formatter, FieldsFormatter)
        assert not isinstance(handler.formatter, PriorityFormatter)
        assert root.level == logging.DEBUG
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:] = handlers
        root.setLevel(level)
