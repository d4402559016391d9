"""The status socket's file (and the API's): claimed, bound with its rights from its creation,
never taken over.

A UNIX socket at a path: one a live process answers on is refused (another proxy runs), a
stale one left by a crash is removed, and the file is created with the rights of its owner
only, not chmod-ed a moment later.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from pathlib import Path

log = logging.getLogger("mcastproxy")


class StatusSocketError(Exception):
    """The status socket's path cannot be this proxy's (another answers there, say)."""


def why(exc: BaseException) -> str:
    """An error as one line: its message, or its type when it has none."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def remove_stale_socket(path: Path) -> None:
    """Remove a socket file at ``path`` that nobody listens on; refuse
    (``StatusSocketError``) one a process answers on, or a file that is not a socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StatusSocketError(f"cannot serve status at {path}: it exists and is not a socket")
    if answers(path):
        raise StatusSocketError(f"another process answers on {path}: is another mcastproxy "
                                "running?")
    log.info("removing the stale status socket %s (nobody answers there)", path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def bind_status_socket(path: Path, mode: int = 0o600, backlog: int = 16) -> socket.socket:
    """A UNIX stream socket listening at ``path``, non-blocking, its file created with the
    rights ``mode`` (0600: its owner only; the controller API's may be 0660).

    The file appears at ``path`` only once the socket listens: bound under a name of its own
    beside it, then renamed (atomically, over a stale one). Whoever waits for the file to
    exist (a script, the service manager) never finds a socket that refuses connections."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        # Created with its rights, not chmod-ed a moment later. The umask is the process's,
        # but this one only takes rights away, for the moment bind() takes.
        umask = os.umask(0o777 & ~mode)
        try:
            listener.bind(str(staging))
        finally:
            os.umask(umask)
        listener.listen(backlog)
        listener.setblocking(False)
        os.rename(staging, path)
    except BaseException:
        listener.close()
        with contextlib.suppress(OSError):
            staging.unlink()
        raise
    return listener


def answers(path: Path) -> bool:
    """Whether a process listens on the UNIX socket at ``path`` (one that cannot be asked,
    for want of rights, counts as listening)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except BlockingIOError:  # listening, its backlog full
        return True
    except OSError as exc:
        return exc.errno != errno.ECONNREFUSED
    finally:
        probe.close()
    return True
