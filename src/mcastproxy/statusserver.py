"""The daemon's status server: ``mcastproxy status``'s answer over a UNIX socket, made and
written a slice at a time so that a large answer never holds the proxy up, and the client
side (``query_status``).

``StatusServer`` is a part of ``daemon.Daemon`` (its base class): it reads the daemon's engine,
sockets, meter and AMT upstreams, and owns the socket, its lock and the pause of automatic
garbage collection while answers are made. The socket is claimed before the kernel is
touched (one proxy per path: a lock on ``PATH.lock``), created 0600, and removed at stop if
it is still the one made here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import itertools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mcastproxy.drops import Drop
from mcastproxy.snapshot import release, whole
from mcastproxy.status import document_slices, encode
from mcastproxy.statussocket import (
    StatusSocketError,
    bind_status_socket,
    remove_stale_socket,
    why,
)

# A status socket's missing directory is made (0755) where its parent is one of these;
# anywhere else, a missing directory is more likely a mistake, and refused.
RUNTIME_DIRECTORIES = (Path("/run"), Path("/var/run"))
# While status is answered, the loop gets a turn once this long has gone into it (and one
# slice more: about a millisecond at the most, with 50,000 groups).
STATUS_SLICE = 0.001
STATUS_TIMEOUT = 60.0  # an answer not taken by then is dropped
STATUS_WRITE = 1 << 16  # octets of the answer handed to the socket at once
T = TypeVar("T")
log = logging.getLogger("mcastproxy")


class StatusServer:
    """The status socket's side of the daemon (see the module's comment)."""

    # Set by the daemon: what the answer is made of, and the socket's state.
    engine: Any
    sockets: Any
    meter: Any
    amt: Any
    config: Any
    config_path: Path
    errors: Counter[str]
    metrics: Any
    status_socket: Path | None
    _status: asyncio.AbstractServer | None
    _status_listener: Any
    _status_inode: int | None
    _status_lock_file: int | None
    _status_lock: asyncio.Lock
    _collection_paused: int
    _collection_was_on: bool

    def _now(self) -> float:
        raise NotImplementedError  # the daemon's loop clock

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status`` shows: the engine's snapshot (``status.document``),
        the sockets' drops, and the daemon's own errors; made in one go."""
        return whole(self._status_slices())

    def _status_slices(self) -> Generator[None, None, dict[str, Any]]:
        """``status()`` a slice at a time (the engine may handle events in between)."""
        links = [d.interface for d in self.config.downstream]
        socket_drops: Counter[Drop] = Counter()
        for sock in self.sockets.values():
            socket_drops.update(sock.dropped)
        now = self._now()  # relative times (expire, up-time) count from the snapshot's start
        snap = yield from self.engine.snapshot_slices(now)
        doc = yield from document_slices(snap, links, socket_drops, now)
        parts = release(snap)  # the snapshot is let go of in slices too
        del snap
        yield from parts
        accounting = yield from self.meter.document_slices()
        amt = {"amt": self.amt.status()} if self.amt else {}
        return {"pid": os.getpid(), "config": str(self.config_path), **doc,
                "errors": dict(self.errors), "accounting": accounting, **amt}


    @contextlib.asynccontextmanager
    async def status_held(self) -> AsyncIterator[dict[str, Any]]:
        """The status document made a slice at a time as the socket's answer is (the loop
        handling reports in between), for the API: held for the block (garbage collection
        waiting, as for the socket's answers), then let go of in slices."""
        with self._collection_waiting():
            async with self._status_lock:
                doc = await self._paced(self._status_slices(), lambda: False)
            assert doc is not None  # never abandoned: nobody is asked whether it is gone
            try:
                yield doc
            finally:
                parts = release(doc)
                del doc
                await self._paced(parts, lambda: False)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One ``mcastproxy status``: the document made and written a slice at a time, the
        loop handling reports in between; dropped if the client hangs up."""
        hangup = asyncio.ensure_future(reader.read(1))  # b"" (or an error) when it hangs up

        def gone() -> bool:
            return hangup.done() and (hangup.cancelled() or hangup.exception() is not None
                                      or not hangup.result())

        started = time.perf_counter()
        try:
            with self._collection_waiting():
                async with asyncio.timeout(STATUS_TIMEOUT):
                    async with self._status_lock:
                        doc = await self._paced(self._status_slices(), gone)
                    if doc is not None:
                        await self._write_paced(writer, encode(doc), gone)
                        parts = release(doc)
                        del doc
                        await self._paced(parts, lambda: False)
                        self.metrics.status.observe(time.perf_counter() - started)
        except (OSError, TimeoutError) as exc:
            log.debug("status answer abandoned: %s", why(exc))
        except Exception:  # status must never take the daemon down
            self.errors["status"] += 1
            log.exception("status answer failed")
        finally:
            hangup.cancel()
            writer.close()

    async def _paced(self, slices: Generator[None, None, T], gone: Callable[[], bool],
                     ) -> T | None:
        """Run ``slices`` to its end, giving the loop a turn every ``STATUS_SLICE`` seconds;
        its value, or None if ``gone()`` said to stop."""
        turn = time.perf_counter() + STATUS_SLICE
        while True:
            try:
                next(slices)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if time.perf_counter() >= turn:
                await asyncio.sleep(0)
                if gone():
                    slices.close()
                    return None
                turn = time.perf_counter() + STATUS_SLICE

    async def _write_paced(self, writer: asyncio.StreamWriter, pieces: Iterator[str],
                           gone: Callable[[], bool]) -> None:
        """Write the text of ``pieces`` and a newline, ``STATUS_WRITE`` octets at a time,
        as the client takes them, giving the loop a turn every ``STATUS_SLICE`` seconds."""
        buffered: list[bytes] = []
        size = 0
        turn = time.perf_counter() + STATUS_SLICE
        for piece in itertools.chain(pieces, ["\n"]):
            data = piece.encode()
            buffered.append(data)
            size += len(data)
            if size >= STATUS_WRITE:
                writer.write(b"".join(buffered))
                buffered, size = [], 0
                await writer.drain()
            if time.perf_counter() >= turn:
                await asyncio.sleep(0)
                if gone():
                    return
                turn = time.perf_counter() + STATUS_SLICE
        writer.write(b"".join(buffered))
        await writer.drain()

    @contextlib.contextmanager
    def _collection_waiting(self) -> Iterator[None]:
        """Automatic garbage collection waits while status answers are made: one full
        collection of a large engine's heap would hold the loop for most of a second, and
        the answer's own objects, freed by their counts at the end, would bring one on."""
        if self._collection_paused == 0:
            self._collection_was_on = gc.isenabled()
            gc.disable()
        self._collection_paused += 1
        try:
            yield
        finally:
            self._collection_paused -= 1
            if self._collection_paused == 0 and self._collection_was_on:
                gc.enable()

    def _claim_status_socket(self, path: Path) -> None:
        """Make the status socket's ``path`` this proxy's, before the kernel is touched:
        refused (``StatusSocketError``) if another proxy holds it or a live process answers
        there; a stale socket file left by a crash is removed. Proxies hold a lock on
        ``PATH.lock`` while they run (the kernel lets go of it when they end, however they
        end), so that two started at once do not both take the path. The directory is made
        where it belongs in /run (``RUNTIME_DIRECTORIES``)."""
        directory = path.parent
        if not directory.is_dir():
            if directory.exists() or directory.parent not in RUNTIME_DIRECTORIES:
                raise StatusSocketError(f"cannot serve status at {path}: no directory "
                                        f"{directory}")
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o755)
                directory.chmod(0o755)  # whatever the umask
        lock_path = path.with_name(path.name + ".lock")
        lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise StatusSocketError(f"another mcastproxy is running: it holds {lock_path}"
                                    ) from None
        except BaseException:
            os.close(lock)
            raise
        self._status_lock_file = lock
        remove_stale_socket(path)

    async def _serve_status(self, path: Path) -> None:
        """Listen at ``path`` (claimed), the socket created 0600."""
        self._status_listener = bind_status_socket(path)
        self._status_inode = os.lstat(path).st_ino
        self._status = await asyncio.start_unix_server(self._answer, sock=self._status_listener)

    def _close_status(self) -> None:
        """Stop serving status; remove the socket file if it is still the one made here,
        and let go of the path."""
        if self._status is not None:
            self._status.close()
            self._status = None
        if self._status_listener is not None:
            path = self.status_socket
            assert path is not None
            with contextlib.suppress(OSError):
                if os.lstat(path).st_ino == self._status_inode:
                    path.unlink()
            self._status_listener.close()
            self._status_listener = None
            self._status_inode = None
        if self._status_lock_file is not None:
            # The lock file stays: removing it would let a proxy that opened it a moment
            # ago lock a file nobody else sees.
            os.close(self._status_lock_file)
            self._status_lock_file = None


async def query_status(path: Path) -> dict[str, Any]:
    """The status of the proxy serving at ``path``; OSError if none answers whole."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        data = await reader.read()
    finally:
        writer.close()
    try:
        state = json.loads(data)
    except ValueError:
        raise OSError(errno.EPROTO, "the proxy's answer was cut short" if data else
                      "the proxy closed without answering") from None
    if not isinstance(state, dict):
        raise OSError(errno.EPROTO, "the proxy's answer is not a status")
    return state
