"""The status socket: created 0600, one proxy's at a time, its directory made or refused.

::

    mcastproxy status ---[ workdir/status.sock ]--- daemon on a FakeNetwork
    a second daemon   ---/  (refused before it touches its kernel)
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from daemon_harness import IGMP, config, running, status_of, until
from fakes import FakeNetwork

from mcastproxy import statusserver
from mcastproxy.config import parse_config
from mcastproxy.daemon import Daemon, query_status


def second(net: FakeNetwork, workdir: Path, path: Path) -> Daemon:
    conf = workdir / "second.yaml"
    conf.write_text(config(IGMP))
    return Daemon(conf, parse_config(config(IGMP)), status_socket=path,
                  platform=net.platform())


async def test_a_second_proxy_on_a_live_socket_is_refused_before_its_kernel(
    net: FakeNetwork, workdir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(net, workdir, config(IGMP)) as first:
        path = first.status_socket
        assert path is not None
        other = FakeNetwork()
        assert await second(other, workdir, path).run() == 1
        assert "cannot start: another mcastproxy is running" in caplog.text
        assert other.routers == {}  # its kernel never asked: the running one's tables stay
        # The first still answers, at the same path.
        assert (await status_of(first))["pid"] == os.getpid()
    assert not path.exists()


async def test_a_live_socket_of_another_program_refuses_the_start(
    net: FakeNetwork, workdir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = workdir / "status.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        assert await second(net, workdir, path).run() == 1
        assert "another process answers on" in caplog.text
        assert path.exists()  # left alone
    assert net.routers == {}


async def test_a_stale_socket_is_replaced(
    net: FakeNetwork, workdir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = workdir / "status.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(str(path))  # its process gone: nobody listens
    async with running(net, workdir, config(IGMP), status_socket=path) as daemon:
        assert "removing the stale status socket" in caplog.text
        assert (await status_of(daemon))["pid"] == os.getpid()


async def test_a_file_that_is_not_a_socket_is_not_removed(
    net: FakeNetwork, workdir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = workdir / "status.sock"
    path.write_text("precious")
    assert await second(net, workdir, path).run() == 1
    assert "it exists and is not a socket" in caplog.text
    assert path.read_text() == "precious"
    assert net.routers == {}


async def test_a_missing_directory_is_one_clear_line(
    net: FakeNetwork, workdir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = workdir / "nowhere" / "status.sock"
    assert await second(net, workdir, path).run() == 1
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line == f"cannot start: cannot serve status at {path}: no directory {path.parent}"
    assert net.routers == {}
    assert not path.parent.exists()


async def test_a_missing_directory_in_a_runtime_directory_is_made(
    net: FakeNetwork, workdir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(statusserver, "RUNTIME_DIRECTORIES", (workdir,))
    old = os.umask(0o077)
    try:
        path = workdir / "mcastproxy" / "mcastproxy.sock"
        async with running(net, workdir, config(IGMP), status_socket=path) as daemon:
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
            assert (await status_of(daemon))["config"] == str(daemon.config_path)
    finally:
        os.umask(old)


@contextmanager
def modes_seen(path: Path) -> Iterator[set[int]]:
    """The permissions ``path`` is seen with, looked at as often as a thread can."""
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with suppress(FileNotFoundError):
                seen.add(stat.S_IMODE(os.lstat(path).st_mode))

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


async def test_the_socket_is_0600_from_its_creation_whatever_the_umask(
    net: FakeNetwork, workdir: Path,
) -> None:
    path = workdir / "status.sock"
    old = os.umask(0)
    try:
        with modes_seen(path) as seen:
            async with running(net, workdir, config(IGMP), status_socket=path):
                await until(lambda: seen)
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert os.umask(0) == 0  # the process's umask given back
    finally:
        os.umask(old)
    assert seen == {0o600}


async def test_a_socket_replaced_under_the_proxy_is_not_removed_at_its_stop(
    net: FakeNetwork, workdir: Path,
) -> None:
    path = workdir / "status.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        async with running(net, workdir, config(IGMP), status_socket=path):
            path.unlink()
            other.bind(str(path))
        assert path.exists()


async def test_a_client_that_hangs_up_costs_nothing_and_the_next_is_answered(
    net: FakeNetwork, workdir: Path,
) -> None:
    async with running(net, workdir, config(IGMP)) as daemon:
        path = daemon.status_socket
        assert path is not None
        for _ in range(20):
            _, writer = await asyncio.open_unix_connection(str(path))
            writer.close()
        state = await query_status(path)
        assert state["errors"] == {}


def test_the_socket_file_appears_only_once_it_listens(tmp_path: Path) -> None:
    """Whoever waits for the file to exist finds a socket that answers: it is bound under a
    name of its own and renamed once it listens, over a stale file, leaving nothing else."""
    from mcastproxy.statussocket import answers, bind_status_socket  # noqa: PLC0415

    path = tmp_path / "status.sock"
    path.write_bytes(b"stale")
    listener = bind_status_socket(path, 0o660)
    try:
        assert answers(path)
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        assert sorted(p.name for p in tmp_path.iterdir()) == ["status.sock"]
    finally:
        listener.close()


def test_a_socket_that_cannot_be_made_leaves_no_file(tmp_path: Path) -> None:
    from mcastproxy.statussocket import bind_status_socket  # noqa: PLC0415

    path = tmp_path / "status.sock"
    path.mkdir()  # a directory where the socket should go: the rename fails
    with pytest.raises(IsADirectoryError):
        bind_status_socket(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.sock"]
    assert path.is_dir()
