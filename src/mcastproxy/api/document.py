"""The configuration as a document: what a controller reads and writes.

The running configuration is shown as the file holds it (the file's keys and values, as
JSON), not as the parsed objects: a controller reads back what it wrote, and a PUT of what it
read changes nothing. Its ``ETag`` is a hash of that document (RFC 9110 §8.8.3), so that a
write names the version it was made from (``If-Match``) and a stale one is refused (412).

A request body is read strictly before anything of it is validated: UTF-8 JSON (RFC 8259),
no key given twice in an object (JSON keeps the last, silently), no ``NaN`` or
``Infinity``, nested no deeper than a configuration is (``MAX_DEPTH``). A PATCH is an RFC
7396 merge patch (what RFC 8040 §4.6.1 calls a plain patch): objects are merged member by
member, ``null`` removes a member, anything else (lists too) replaces.

A new document is written as YAML (``to_yaml``) to a file beside the configuration file,
validated there by ``load_config`` exactly as ``mcastproxy check`` validates the file, and,
once applied, renamed over it (``Staged``): the file is never seen half written, by a
restart or by ``check``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mcastproxy.api.errors import CONFIG, ApiError, Problem
from mcastproxy.config import MAX_NESTING

MAX_BODY = 4 << 20  # octets: a configuration of thousands of records is a few hundred KiB
MAX_DEPTH = MAX_NESTING + 2  # the body's wrapper object, and a margin
# Sections a controller may not change: they name files and listeners of the host (a log
# path is a file the proxy, as root, appends to), so they stay the operator's, in the file.
HOST_SECTIONS = ("api", "accounting", "metrics")


def etag(document: Any) -> str:
    """The strong entity tag of ``document`` (quoted, as the header carries it)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError(400, "malformed-message", f"the key {key!r} is given twice in one "
                           "object")
        out[key] = value
    return out


def _not_finite(name: str) -> Any:
    raise ApiError(400, "malformed-message", f"{name} is not a number JSON has")


def read_json(body: bytes) -> Any:
    """The JSON of ``body``; ApiError (400 malformed-message) saying why it is not usable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed-message", f"not UTF-8 text: octet "
                       f"0x{exc.object[exc.start]:02x} at offset {exc.start}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_not_finite)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed-message", f"not JSON: {exc.msg} at line {exc.lineno}, "
                       f"column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:  # nested beyond the parser's stack; 10**5000
        raise ApiError(400, "malformed-message", f"not usable JSON: {type(exc).__name__}"
                       ) from None
    if depth(data) > MAX_DEPTH:
        raise ApiError(400, "malformed-message", f"nested more than {MAX_DEPTH} deep")
    return data


def depth(data: Any) -> int:
    """How deep collections nest in ``data`` (without recursion)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(data, 0)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            todo += ((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            todo += ((v, level + 1) for v in value)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


def unwrap(data: Any, member: str = CONFIG) -> dict[str, Any]:
    """The configuration in a body ``{"mcastproxy:config": {...}}`` (RFC 8040 §4.5: the
    target resource's node, named with its module, RFC 7951 §4)."""
    if not isinstance(data, dict) or list(data) != [member]:
        keys = ", ".join(repr(k) for k in data) if isinstance(data, dict) else type(data).__name__
        raise ApiError(400, "malformed-message",
                       f"expected an object with one member, {member!r}; got {keys}")
    inner = data[member]
    if not isinstance(inner, dict):
        raise ApiError(400, "invalid-value", [Problem(f"{member} is an object of settings")],
                       error_type="application")
    return inner


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2: ``target`` with ``patch`` merged in (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def host_sections_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The host sections (``HOST_SECTIONS``) that ``new`` changes."""
    return [s for s in HOST_SECTIONS if old.get(s) != new.get(s)]


def to_yaml(document: dict[str, Any], who: str) -> str:
    """``document`` as the configuration file's text, headed by a comment saying who wrote
    it (comments of the file it replaces are not kept: the document holds none)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    head = (f"# Written by the mcastproxy controller API for {' '.join(who.split())} at "
            f"{stamp}.\n# Edit it as ever: a SIGHUP or a restart reads it; the API shows it.\n")
    body: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True,
                               default_flow_style=False, width=100)
    return head + body


def jsonable(data: Any) -> Any:
    """``data`` (YAML's) as JSON can hold it: dates and the like as text."""
    return json.loads(json.dumps(data, default=str))


class Staged:
    """A new configuration file beside ``path``, written whole and synced, not yet in place:
    ``commit()`` renames it over ``path`` (atomic, RFC-less but POSIX: rename(2)) and syncs
    the directory; leaving the block without a commit removes it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.temp = path.with_name(f".{path.name}.api-{os.getpid()}.tmp")
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = 0o600
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()  # one a crash left
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        self.done = False

    def commit(self) -> None:
        os.replace(self.temp, self.path)
        self.done = True
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self) -> None:
        if not self.done:
            self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged(path: Path, text: str) -> Iterator[Staged]:
    stage = Staged(path, text)
    try:
        yield stage
    finally:
        stage.discard()


def subtree(root: Any, segments: list[str]) -> tuple[str, Any]:
    """The node of ``root`` that RFC 8040 path ``segments`` (decoded) name, and its member
    name: ``name`` is a member of an object; ``name=key`` a member, then the entry ``key``
    of it (an object's member, or a list's entry whose ``interface`` or ``name`` is ``key``,
    or its position from 0). ApiError 404 where nothing is."""
    node = root
    name = ""
    for segment in segments:
        name, has_key, key = segment.partition("=")
        node = _member(node, name, segment)
        if has_key:
            node = _member(node, key, segment)
            name = key
    return name, node


def _member(node: Any, key: str, segment: str) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list):
        for entry in node:
            if isinstance(entry, dict) and key in (entry.get("interface"), entry.get("name")):
                return entry
        if key.isdigit() and int(key) < len(node):
            return node[int(key)]
    raise ApiError(404, "invalid-value", f"no such resource: {segment!r}")
