"""The configuration's operational sections: Prometheus metrics (``metrics``) and accounting
with its logs (``accounting``). They name the host's listeners and files, so a controller may
not change them (``api``), and their paths are checked on the host when the file is loaded
(``log_path_issues``), not when it is parsed.
"""

from __future__ import annotations

import ipaddress
import stat
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from mcastproxy.configtypes import Model
from mcastproxy.configyaml import ConfigIssue
from mcastproxy.membership.timers import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
_Model = Model


def listen_address(value: Any) -> tuple[str, int]:
    """``ADDRESS:PORT`` (``[ADDRESS]:PORT`` for IPv6): an IP address, never a name to look
    up, and a port 1-65535."""
    if not isinstance(value, str):
        raise ValueError("expected ADDRESS:PORT")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: expected ADDRESS:PORT with a port 1-65535")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (names are not looked up)") from None
    return str(address), int(port)


class MetricsSettings(_Model):
    """Prometheus metrics (``metrics``): served at http://LISTEN/metrics. Metrics name no
    subscriber, but they tell what the proxy carries: listen on loopback or a management
    address."""

    listen: Annotated[tuple[str, int], BeforeValidator(listen_address)]


# --- accounting ----------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MIN_LOG_SIZE = 1 << 12  # a rotated file holds at least a few lines


def _size(value: Any) -> int:
    """Octets: a bare number, or with k, M or G (powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 100M")
    if isinstance(value, int):
        number, unit = value, ""
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().removesuffix("b").removesuffix("i")
        unit = text[-1] if text[-1] in "kmg" else ""
        digits = text[:-1] if unit else text
        if not digits.isdigit() or len(digits) > 15:
            raise ValueError(f"{value!r} is not a size (a number of octets, or with k, M, G)")
        number = int(digits)
    else:
        raise ValueError("expected a size such as 100M")
    size = number * _SIZE_UNITS[unit]
    if not MIN_LOG_SIZE <= size <= 1 << 50:
        raise ValueError(f"{value!r}: between {MIN_LOG_SIZE} octets and 1P")
    return size


def _log_path(value: Any) -> Path:
    """An absolute path to a file: never a directory, no NUL, no control character."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected the absolute path of a file")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(f"{value!r} holds a control character")
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    if value.endswith("/") or Path(value).name in ("", ".", ".."):
        raise ValueError(f"{value!r} names a directory, not a file")
    if len(value.encode()) >= 4096:
        raise ValueError("longer than PATH_MAX")
    return Path(value)


LogPath = Annotated[Path, BeforeValidator(_log_path)]


class AccountingSettings(_Model):
    """Accounting (RFC 8313 §4.3.3, §4.6): the kernel's per-route counters read every
    ``sample-interval`` into bytes and packets per channel, upstream and downstream link
    (``status``' ``accounting``, the metrics); a session log and a security log of JSON lines
    where paths are given. Off when the section is absent."""

    session_log: LogPath | None = None
    security_log: LogPath | None = None
    max_size: Annotated[int | None, BeforeValidator(lambda v: None if v is None else _size(v))
                        ] = None
    keep: int = Field(10, ge=1, le=1000)
    sample_interval: Duration = Field(10.0, ge=0.1, le=3600)


def log_path_issues(settings: AccountingSettings | None) -> list[ConfigIssue]:
    """What this host says of the log paths: their directory must exist, and each must be a
    regular file or not exist yet (``load_config``: at ``check``, at the start and at each
    reload, so that a reload with a bad path is refused whole). A file or directory the proxy
    may not write is refused when it opens the log (``meter``), the reload as whole."""
    if settings is None:
        return []
    issues = []
    paths = [(f"accounting.{key}", p) for key, p in (("session-log", settings.session_log),
                                                       ("security-log", settings.security_log))
             if p is not None]
    if len(paths) == 2 and paths[0][1] == paths[1][1]:
        issues.append(ConfigIssue(paths[1][0], f"{paths[1][1]} is also the session-log"))
    for where, path in paths:
        try:
            why = _unwritable(path)
        except OSError as exc:
            why = exc.strerror or str(exc)
        if why:
            issues.append(ConfigIssue(where, f"{path}: {why}"))
    return issues


def _unwritable(path: Path) -> str | None:
    directory = path.parent
    if not directory.exists():
        return f"no directory {directory}"
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if path.exists() or path.is_symlink():
        info = path.stat() if path.exists() else None
        if info is None:
            return "a dangling symbolic link"
        if stat.S_ISDIR(info.st_mode):
            return "is a directory"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
    return None


