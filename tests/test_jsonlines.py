"""The JSON-lines writer: what a crash loses, reopening after logrotate, rotation by size
without a lost or split line, a disk that refuses writes."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from mcastproxy import jsonlines
from mcastproxy.jsonlines import LineWriter


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_lines_wait_for_the_flush_so_a_crash_loses_only_those(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path)
    w.write({"n": 1})
    w.write({"n": 2})
    assert path.read_text() == ""  # still in memory: what a crash now would lose
    w.flush()
    w.write({"n": 3})
    # The process dies here (no close): what was flushed is whole in the file.
    assert lines(path) == [{"n": 1}, {"n": 2}]
    assert path.read_text().endswith("\n")
    w.close()
    assert lines(path) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert (path.stat().st_mode & 0o777) == 0o640


def test_much_waiting_is_written_without_waiting_for_the_second(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path)
    for i in range(jsonlines.FLUSH_SIZE // 10):
        w.write({"n": i})
    assert path.stat().st_size > 0
    w.close()


def test_reopen_follows_logrotate_moving_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path)
    w.write({"n": 1})
    w.flush()
    path.rename(tmp_path / "s.log.1")  # logrotate, no copytruncate
    w.write({"n": 2})  # waits; written to the old file at the reopen, as it was queued
    w.reopen()
    w.write({"n": 3})
    w.close()
    assert lines(tmp_path / "s.log.1") == [{"n": 1}, {"n": 2}]
    assert lines(path) == [{"n": 3}]


def test_reopen_of_a_path_that_cannot_be_opened_keeps_the_old_file(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / "s.log"
    w = LineWriter(path)
    path.rename(tmp_path / "moved.log")
    directory.rmdir()
    with pytest.raises(FileNotFoundError):
        w.reopen()
    w.write({"n": 1})
    w.close()
    assert lines(tmp_path / "moved.log") == [{"n": 1}]


def test_rotation_by_size_loses_and_splits_no_line(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path, max_size=4096, keep=3)
    written = []
    for i in range(400):
        line = {"n": i, "pad": "x" * (i % 50)}
        written.append(line)
        w.write(line)
        if i % 7 == 0:
            w.flush()
    w.close()
    files = [Path(f"{path}.{n}") for n in (3, 2, 1)] + [path]
    for f in files:
        assert f.stat().st_size <= 4096
        assert f.read_text().endswith("\n")
    assert not Path(f"{path}.4").exists()
    got = [x for f in files for x in lines(f)]
    # The oldest files beyond keep are gone; what is kept is whole and in order.
    assert got == written[-len(got):]
    assert w.rotations > 3
    assert w.lines == 400


def test_a_line_longer_than_max_size_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path, max_size=4096, keep=5)
    w.write({"n": 0})
    w.write({"big": "y" * 5000})
    w.write({"n": 2})
    w.close()
    assert lines(Path(f"{path}.2")) == [{"n": 0}]
    assert lines(Path(f"{path}.1")) == [{"big": "y" * 5000}]
    assert lines(path) == [{"n": 2}]


def test_a_full_disk_keeps_lines_waiting_within_bounds(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonlines.os, "write", full)
    monkeypatch.setattr(jsonlines, "MAX_PENDING", 10_000)
    monkeypatch.setattr(jsonlines, "FLUSH_SIZE", 1 << 30)
    for i in range(5000):
        w.write({"n": i})
    w.flush()
    assert w.errors >= 1
    assert w.last_error == "No space left on device"
    assert w.dropped > 0
    assert w.waiting * len(b'{"n":4999}\n') <= 10_000 + 20
    monkeypatch.setattr(jsonlines.os, "write", real_write)
    w.close()
    got = lines(path)
    assert got[-1] == {"n": 4999}
    assert len(got) + w.dropped == 5000


def test_a_short_write_leaves_no_two_lines_run_together(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.log"
    w = LineWriter(path)
    real_write = os.write
    calls = []

    def short(fd: int, data: bytes) -> int:
        calls.append(data)
        if len(calls) == 1:
            return real_write(fd, data[:25])  # one line and a half
        return real_write(fd, data)

    monkeypatch.setattr(jsonlines.os, "write", short)
    for i in range(3):
        w.write({"n": i, "p": "ab"})
    w.flush()
    w.flush()
    w.close()
    text = path.read_text().splitlines()
    assert json.loads(text[0]) == {"n": 0, "p": "ab"}
    assert [json.loads(t) for t in text[-2:]] == [{"n": 1, "p": "ab"}, {"n": 2, "p": "ab"}]
    assert len(text) == 4  # the cut line stands alone, as garbage
