from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mcastproxy import __version__, build
from mcastproxy.cli import main
from mcastproxy.daemon import DEFAULT_STATUS_SOCKET


def test_version_from_console_entry_point() -> None:
    cmd = [sys.executable, "-m", "mcastproxy", "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"mcastproxy {__version__} ({build()})"


ROOT = Path(__file__).resolve().parents[1]


def test_the_systemd_unit_and_the_default_status_socket_are_one_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    unit = (ROOT / "contrib" / "mcastproxy.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if "=" in line and not line.startswith("#"))
    # systemd makes /run/RuntimeDirectory; the daemon's socket is in it, unless told otherwise.
    assert Path("/run", settings["RuntimeDirectory"]) == DEFAULT_STATUS_SOCKET.parent
    run = settings["ExecStart"].split()
    if "--status-socket" in run:
        assert Path(run[run.index("--status-socket") + 1]) == DEFAULT_STATUS_SOCKET
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert str(DEFAULT_STATUS_SOCKET) in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(("answer", "why"), [
    (b"", "no answer from the proxy at {}: the proxy closed without answering"),
    (b'{"upstreams": {', "no answer from the proxy at {}: the proxy's answer was cut short"),
    (b"[]", "no answer from the proxy at {}: the proxy's answer is not a status"),
])
def test_status_with_no_whole_answer_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: bytes, why: str,
) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()

        def answer_once() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(answer)

        thread = threading.Thread(target=answer_once)
        thread.start()
        code = main(["status", "--socket", str(path)])
        thread.join()
    assert code == 1
    assert capsys.readouterr().err == f"mcastproxy status: {why.format(path)}\n"


def test_status_with_no_proxy_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "none.sock"
    assert main(["status", "--socket", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"mcastproxy status: no running proxy at {path}: No such file or directory\n")
