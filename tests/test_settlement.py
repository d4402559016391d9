"""``mcastproxy accounting``: the session log and its rotated files summed, garbage and a
line cut short skipped and counted, never a crash."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from mcastproxy import cli, settlement


def end(link: str = "d1", subscriber: str = "10.1.0.7", source: str = "*",
        group: str = "239.1.1.1", upstream: tuple[str, ...] = ("u1",),
        at: str = "2026-12-03T10:00:00.000Z", duration: float = 60.0, packets: int = 10,
        octets: int = 13_160) -> str:
    return json.dumps({"event": "end", "time": at, "link": link, "family": 4,
                       "subscriber": subscriber, "source": source, "group": group,
                       "upstream": list(upstream), "start": at, "end": at,
                       "duration": duration, "zap-ms": None, "packets": packets,
                       "bytes": octets, "ended-by": "leave"}) + "\n"


def start() -> str:
    return json.dumps({"event": "start", "link": "d1"}) + "\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "sessions.log"
    Path(f"{path}.2").write_text(end(at="2026-12-01T00:00:00Z", octets=1) + start())
    with gzip.open(f"{path}.3.gz", "wt") as f:
        f.write(end(at="2026-11-30T00:00:00Z", octets=1000))
    Path(f"{path}.1").write_text(end(link="d2", subscriber="fe80::7", upstream=("u2",),
                                     octets=200))
    path.write_text(end(octets=30, source="10.0.1.2", upstream=("u1", "u2"))
                    + "this is not json\n" + '{"event": "end", "bytes": -5}\n'
                    + end(octets=4000)[:40])  # the crash's last line, cut short
    return path


def test_the_rotated_files_are_read_oldest_first(log: Path) -> None:
    assert [p.name for p in settlement.log_files(log)] == [
        "sessions.log.3.gz", "sessions.log.2", "sessions.log.1", "sessions.log"]


def test_sums_by_each_key_skipping_garbage(log: Path) -> None:
    files = settlement.log_files(log)
    s = settlement.summarize(files, by="upstream")
    assert s.total.as_dict() == {"sessions": 4, "duration": 240.0, "packets": 40,
                                 "bytes": 1231}
    assert s.skipped == 3
    assert {k: t.bytes for k, t in s.rows.items()} == {"u1": 1001, "u2": 200, "u1+u2": 30}
    by_sub = settlement.summarize(files, by="subscriber").rows
    assert {k: t.sessions for k, t in by_sub.items()} == {"10.1.0.7": 3, "fe80::7%d2": 1}
    by_channel = settlement.summarize(files, by="channel").rows
    assert set(by_channel) == {"(*, 239.1.1.1)", "(10.0.1.2, 239.1.1.1)"}
    assert set(settlement.summarize(files, by="link").rows) == {"d1", "d2"}


def test_the_period_counts_sessions_by_their_end(log: Path) -> None:
    files = settlement.log_files(log)
    s = settlement.summarize(files, since=settlement.parse_time("2026-12-01"),
                             until=settlement.parse_time("2026-12-03T10:00:00+00:00"))
    assert s.total.sessions == 1
    assert s.total.bytes == 1
    assert s.outside == 3


def test_the_command_prints_a_table_and_json(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["accounting", "--log", str(log), "--by", "link"]) == 0
    out = capsys.readouterr().out
    assert "d2" in out
    assert "total" in out
    assert "3 skipped" in out
    assert cli.main(["accounting", "--log", str(log), "--json", "--since",
                     "2026-12-02T00:00:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["sessions"] == 2
    assert doc["skipped"] == 3
    assert "rows" not in doc


def test_the_command_refuses_a_bad_time_and_a_missing_log(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          ) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["accounting", "--log", str(tmp_path / "x"), "--since", "yesterday"])
    assert exit_.value.code == 2
    assert cli.main(["accounting", "--log", str(tmp_path / "none.log")]) == 1
    assert "no log at" in capsys.readouterr().err


def test_random_garbage_and_a_cut_gzip_never_crash(tmp_path: Path) -> None:
    rng = random.Random(8313)
    path = tmp_path / "s.log"
    good = end()
    blob = bytearray()
    for _ in range(300):
        blob += good.encode()
        blob += bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        if rng.random() < 0.1:
            blob += b"\n"
    blob += b"x" * (settlement.MAX_LINE * 3) + b"\n"  # one line far too long
    blob += good.encode()
    path.write_bytes(bytes(blob))
    packed = gzip.compress(good.encode() * 100)
    Path(f"{path}.1.gz").write_bytes(packed[: len(packed) // 2])
    s = settlement.summarize(settlement.log_files(path), by="channel")
    assert s.total.sessions >= 1
    assert s.skipped >= 1
    assert s.total.bytes == 13_160 * s.total.sessions


@pytest.mark.parametrize("line", [
    '{"event":"end","link":"d1","subscriber":"a","source":"*","group":"g","end":"x",'
    '"upstream":[],"packets":1,"bytes":1,"duration":1}\n',
    '{"event":"end","link":"d1","subscriber":"a","source":"*","group":"g",'
    '"end":"2026-12-03T00:00:00Z","upstream":"u1","packets":1,"bytes":1,"duration":1}\n',
    '{"event":"end","link":"d1","subscriber":"a","source":"*","group":"g",'
    '"end":"2026-12-03T00:00:00Z","upstream":[],"packets":true,"bytes":1,"duration":1}\n',
    '{"event":"end","link":"d1","subscriber":"a","source":"*","group":"g",'
    '"end":"2026-12-03T00:00:00Z","upstream":[],"packets":1,"bytes":1,"duration":NaN}\n',
    "[" * 100_000 + "\n",
    "[1,2]\n",
])
def test_lines_with_wrong_fields_are_skipped(tmp_path: Path, line: str) -> None:
    path = tmp_path / "s.log"
    path.write_text(line + end())
    s = settlement.summarize([path])
    assert (s.total.sessions, s.skipped) == (1, 1)
