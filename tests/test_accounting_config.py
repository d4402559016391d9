"""The ``accounting`` section: its fields, and log paths refused at check time with the field
and the reason (a running daemon's reload of such a file is refused whole: tests/daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcastproxy import cli
from mcastproxy.config import ConfigError, load_config, parse_config

BASE = """igmp: {version: 3}
downstream: [{interface: d1}]
upstream: {candidates: [{interface: u1}]}
"""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def issues(text: str) -> list[str]:
    """The issues of a file of ``BASE`` and ``text``, loaded as ``check`` loads it."""
    path = Path("c.yaml").resolve()
    path.write_text(BASE + text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return [str(i).removeprefix(f"{path}: ") for i in err.value.issues]


def test_absent_is_off_and_present_is_on(tmp_path: Path) -> None:
    assert parse_config(BASE).accounting is None
    on = parse_config(BASE + "accounting: {}\n").accounting
    assert on is not None
    assert on.session_log is None
    assert on.sample_interval == 10.0
    cfg = parse_config(BASE + f"accounting: {{session-log: {tmp_path}/s.log, security-log: "
                              f"{tmp_path}/sec.log, max-size: 100M, keep: 3, "
                              "sample-interval: 500ms}\n").accounting
    assert cfg is not None
    assert cfg.session_log == tmp_path / "s.log"
    assert cfg.max_size == 100 << 20
    assert (cfg.keep, cfg.sample_interval) == (3, 0.5)


@pytest.mark.parametrize(("value", "reason"), [
    ("relative.log", "is not an absolute path"),
    ("/var/log/", "names a directory, not a file"),
    ("/var/log/..", "names a directory, not a file"),
    ('"/tmp/a\\nb.log"', "holds a control character"),
    ("''", "expected the absolute path of a file"),
    ("[/tmp/a]", "expected the absolute path of a file"),
    ("/nonexistent-dir-8313/s.log", "no directory /nonexistent-dir-8313"),
    ("/tmp", "is a directory"),
    ("/dev/null", "not a regular file"),
])
def test_bad_paths_are_refused_with_the_field_and_the_reason(value: str, reason: str) -> None:
    found = issues(f"accounting: {{session-log: {value}}}\n")
    assert len(found) == 1
    assert found[0].startswith("accounting.session-log: ")
    assert reason in found[0]


def test_a_dangling_link_and_a_file_under_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "link.log").symlink_to(tmp_path / "nowhere" / "x")
    (tmp_path / "file").write_text("")
    found = issues(f"accounting: {{session-log: {tmp_path}/link.log, "
                   f"security-log: {tmp_path}/file/x.log}}\n")
    assert found == [f"accounting.session-log: {tmp_path}/link.log: a dangling symbolic link",
                     f"accounting.security-log: {tmp_path}/file/x.log: {tmp_path}/file is "
                     "not a directory"]


def test_both_logs_in_one_file_is_refused(tmp_path: Path) -> None:
    found = issues(f"accounting: {{session-log: {tmp_path}/a, security-log: {tmp_path}/a}}\n")
    assert found == [f"accounting.security-log: {tmp_path}/a is also the session-log"]


@pytest.mark.parametrize(("text", "field"), [
    ("max-size: 12x", "accounting.max-size"),
    ("max-size: 1", "accounting.max-size"),
    ("max-size: true", "accounting.max-size"),
    ("max-size: 99999999999999999999G", "accounting.max-size"),
    ("keep: 0", "accounting.keep"),
    ("sample-interval: 1ms", "accounting.sample-interval"),
    ("sample-interval: 2h", "accounting.sample-interval"),
    ("session-logs: /tmp/x", "accounting.session-logs"),
])
def test_bad_fields_are_refused(text: str, field: str) -> None:
    found = issues(f"accounting: {{{text}}}\n")
    assert found
    assert found[0].startswith(field + ":")


def test_paths_are_a_host_s_question_not_the_text_s(tmp_path: Path) -> None:
    # The text alone (parse_config: what a test or a tool reads) names no host's paths.
    text = BASE + "accounting: {session-log: /nonexistent-dir-8313/s.log}\n"
    assert parse_config(text).accounting is not None


def test_check_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "accounting: {security-log: /nonexistent-dir-8313/sec.log}\n")
    assert cli.main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "accounting.security-log: /nonexistent-dir-8313/sec.log: no directory" in err
