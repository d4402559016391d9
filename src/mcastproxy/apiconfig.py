"""The controller API's settings (``api:``) and its tokens file.

The API (``mcastproxy.api``; RFC 8040's RESTCONF resources) is off unless the section is
there. It is served on a UNIX socket (``socket``: its file's rights, ``socket-mode`` 0600 or
0660, decide who may connect), on TCP (``listen``), or both. A TCP listener is never
unauthenticated: it needs ``tls`` (a bearer token or a client's certificate must never cross
a network in clear) and a way to tell who the client is, ``tokens`` or ``tls.client-ca``;
a section that asks for less is refused at ``check``, naming the field and the reason.

The tokens file holds one token a line: ``NAME ACCESS TOKEN``, ACCESS ``read`` or ``write``
(``ro-grafana read 3q2+7w...``); ``#`` starts a comment. NAME is who made a change, in the
log. A token is 16 to 256 printable characters without white space; two lines may share
neither a name nor a token. The file may be read by its owner and group only (as ssh keeps
its keys), since a write token can change what the proxy does. It is read at ``check``, at
the start and at each reload (SIGHUP), with the rest of the file: a bad one refuses the
start or the reload whole. Its problems name a line, never its content (a wrong path, such
as /etc/shadow, must not be shown through an error).
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from mcastproxy.configtypes import Model
from mcastproxy.opsconfig import listen_address

MIN_TOKEN = 16
MAX_TOKEN = 256
MAX_TOKENS_FILE = 1 << 20  # octets: thousands of tokens
SOCKET_MODES = {"0600": 0o600, "0660": 0o660}


class Access(Enum):
    """What a token (or a client certificate) may do."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    access: Access
    digest: bytes  # SHA-256 of the token: compared in constant time, same length always

    def __repr__(self) -> str:  # never the secret, even hashed
        return f"Token({self.name!r}, {self.access.value})"


class TokensError(ValueError):
    """A tokens file that cannot be used; the message names a line, not its content."""


def token_digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


def parse_tokens(text: str) -> tuple[Token, ...]:
    """The tokens of a tokens file's ``text``; TokensError naming the first bad line."""
    tokens: list[Token] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3:
            raise TokensError(f"line {number}: expected NAME ACCESS TOKEN, {len(words)} "
                              "words found")
        name, access, secret = words
        if not name.isprintable() or len(name) > 64:
            raise TokensError(f"line {number}: the name is not printable text of at most 64 "
                              "characters")
        try:
            level = Access(access)
        except ValueError:
            raise TokensError(f"line {number}: the access is read or write") from None
        if not MIN_TOKEN <= len(secret) <= MAX_TOKEN or not secret.isprintable():
            raise TokensError(f"line {number}: a token is {MIN_TOKEN} to {MAX_TOKEN} "
                              "printable characters")
        digest = token_digest(secret)
        if name in names:
            raise TokensError(f"line {number}: the name {name!r} is given twice")
        if digest in digests:
            raise TokensError(f"line {number}: the token of an earlier line is given again")
        names.add(name)
        digests.add(digest)
        tokens.append(Token(name, level, digest))
    if not tokens:
        raise TokensError("no token in the file")
    return tuple(tokens)


def read_tokens(path: Path) -> tuple[Token, ...]:
    """The tokens of the file at ``path``; TokensError (or OSError) saying why not."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise TokensError("not a regular file")
    if info.st_mode & 0o007:
        raise TokensError(f"others may read or write it (mode {stat.S_IMODE(info.st_mode):04o}"
                          "): chmod o= it")
    if info.st_size > MAX_TOKENS_FILE:
        raise TokensError(f"larger than {MAX_TOKENS_FILE // 1024} KiB")
    data = path.read_bytes()[:MAX_TOKENS_FILE + 1]
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise TokensError("not UTF-8 text") from None
    return parse_tokens(text)


# --- the section ---------------------------------------------------------------------------


def _absolute(value: Any) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
        raise ValueError("expected the absolute path of a file")
    if not value.isprintable() or "\0" in value or len(value.encode()) >= 4096:
        raise ValueError(f"{value!r} is not a usable path")
    return Path(value)


FilePath = Annotated[Path, BeforeValidator(_absolute)]


def _socket_path(value: Any) -> Path:
    path = _absolute(value)
    if len(str(path).encode()) > 107:  # struct sockaddr_un's sun_path, with its NUL
        raise ValueError(f"{path}: longer than a UNIX socket's path may be (107 octets)")
    return path


def _listen(value: Any) -> tuple[str, int]:
    # The same ADDRESS:PORT as metrics.listen (config._listen_address), without importing it.

    return listen_address(value)


def _mode(value: Any) -> int:
    text = f"{value:04o}" if isinstance(value, int) and not isinstance(value, bool) else value
    if text not in SOCKET_MODES:
        raise ValueError("0600 (the daemon's user only) or 0660 (and its group)")
    return SOCKET_MODES[text]


class TlsSettings(Model):
    """TLS of the TCP listener: the server's ``certificate`` chain and ``key`` (PEM);
    ``client-ca``: when given, every client must show a certificate it signed (who the
    client is: its subject), which may do ``client-access``."""

    certificate: FilePath
    key: FilePath
    client_ca: FilePath | None = None
    client_access: Literal["read", "write"] = "read"


class ApiSettings(Model):
    """The controller API (``mcastproxy.api``): off when the section is absent."""

    socket: Annotated[Path, BeforeValidator(_socket_path)] | None = None
    socket_mode: Annotated[int, BeforeValidator(_mode)] = Field(0o600)
    listen: Annotated[tuple[str, int], BeforeValidator(_listen)] | None = None
    tls: TlsSettings | None = None
    tokens: FilePath | None = None

    @model_validator(mode="after")
    def _authenticated(self) -> ApiSettings:
        # Never an unauthenticated listener on TCP, nor a token in clear on a network.
        if self.socket is None and self.listen is None:
            raise ValueError("give socket (a UNIX socket), listen (TCP with TLS), or both")
        if self.listen is not None:
            if self.tls is None:
                raise ValueError("listen: a TCP listener needs tls (bearer tokens and "
                                 "configuration would cross the network in clear)")
            if self.tokens is None and self.tls.client_ca is None:
                raise ValueError("listen: a TCP listener needs tokens or tls.client-ca: "
                                 "no client would be authenticated")
        elif self.tls is not None:
            raise ValueError("tls: only for a TCP listener (listen)")
        return self


def api_issues(settings: ApiSettings | None) -> list[tuple[str, str]]:
    """What this host says of the section's files, as (field, reason): the tokens file
    (read and checked whole) and the TLS files (readable). At ``check``, at the start and
    at each reload, like the accounting logs' paths."""
    if settings is None:
        return []
    issues: list[tuple[str, str]] = []
    if settings.tokens is not None:
        try:
            read_tokens(settings.tokens)
        except TokensError as exc:
            issues.append(("api.tokens", f"{settings.tokens}: {exc}"))
        except OSError as exc:
            issues.append(("api.tokens", f"{settings.tokens}: {exc.strerror or exc}"))
    if settings.tls is not None:
        for key in ("certificate", "key", "client_ca"):
            path = getattr(settings.tls, key)
            if path is None:
                continue
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                issues.append((f"api.tls.{key.replace('_', '-')}",
                               f"{path}: {exc.strerror or exc}"))
    if settings.socket is not None and not settings.socket.parent.is_dir():
        issues.append(("api.socket", f"no directory {settings.socket.parent}"))
    return issues
