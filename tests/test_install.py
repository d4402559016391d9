"""What an operator installs beside the program: the systemd unit and the man page hold
together with what the program does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcastproxy.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "mcastproxy.service"
MAN = ROOT / "man"
INSTALLED = "/usr/local/bin/mcastproxy"  # where the README's install puts the command


def unit_setting(name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
            if line.startswith(f"{name}=")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_unit_verifies_clean(tmp_path: Path) -> None:
    # The unit as installed: its command where this test's mcastproxy is, its man page found.
    command = Path(sys.executable).with_name("mcastproxy")
    assert command.exists(), command
    unit = tmp_path / "mcastproxy.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(command)))
    env = dict(os.environ, MANPATH=str(MAN), SYSTEMD_LOG_LEVEL="notice")
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_unit_allows_every_socket_family_the_program_opens() -> None:
    opened = {m for path in (ROOT / "src" / "mcastproxy").rglob("*.py")
              for m in re.findall(r"socket\.(AF_[A-Z0-9]+)", path.read_text())}
    (allowed,) = unit_setting("RestrictAddressFamilies")
    assert opened <= set(allowed.split()), opened - set(allowed.split())
    assert {"AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"} <= opened  # the scan sees them


def test_the_unit_runs_the_file_it_checked() -> None:
    (run,) = unit_setting("ExecStart")
    (check,) = unit_setting("ExecStartPre")
    assert run.split()[:2] == [INSTALLED, "run"]
    assert check.split()[:2] == [INSTALLED, "check"]
    assert run.split()[2:] == check.split()[2:]
    # (its status socket is the default: tests/test_cli.py)


def test_the_man_page_names_every_command_and_option() -> None:
    page = (MAN / "man8" / "mcastproxy.8").read_text().replace("\\-", "-")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands
    for name, sub in commands.items():
        assert f".B {name}" in page or f"mcastproxy {name}" in page, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in page, f"{name} {flag}"
