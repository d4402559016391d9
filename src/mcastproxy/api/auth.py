"""Who is asking, and what they may do: bearer tokens, client certificates, peer credentials.

A request is identified once, before its handler runs (``Authenticator.identify``):

- ``Authorization: Bearer TOKEN`` (RFC 6750 §2.1), when the section names a ``tokens`` file:
  the token is hashed and compared with every known token's hash in constant time
  (``hmac.compare_digest``, all of them, whichever matches), so that neither its content nor
  its length shows in the answer's timing. A bad token is refused whatever else the client
  has: 401 (RFC 8040 §7: ``access-denied``), with ``WWW-Authenticate: Bearer``.
- Else, on TCP with ``tls.client-ca``, the client's certificate (checked by the TLS
  handshake, which refuses a connection without a good one): who is its subject, with the
  section's ``client-access``.
- Else, on the UNIX socket without ``tokens``: the socket file's rights decided who could
  connect (0600 or 0660); who is the peer's user id (SO_PEERCRED), with write access.
- Nothing else: 401. A TCP listener is never without one of the first two (``apiconfig``).

A read token asking to write is refused 403 (``access-denied``). The tokens are read again at
each reload; the listener's settings (socket, listen, TLS) take effect at a restart.
"""

from __future__ import annotations

import hmac
import pwd
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mcastproxy.api.errors import ApiError
from mcastproxy.apiconfig import Access, Token, token_digest

BEARER = "bearer "
MAX_AUTHORIZATION = 1024  # octets of an Authorization header worth hashing
_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="mcastproxy"'}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who made a request (a token's name, a certificate's subject, a local user) and what
    they may do."""

    who: str
    access: Access

    def may_write(self) -> bool:
        return self.access is Access.WRITE


IDENTITY = web.RequestKey("identity", Identity)  # who made the request, set by the server


class Authenticator:
    """Tells who a request is from (``identify``), with the tokens of the last reading."""

    def __init__(self, tokens: tuple[Token, ...] | None, client_access: Access | None) -> None:
        self.tokens = tokens
        self.client_access = client_access

    def identify(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization")
        if header is not None:
            return self._bearer(header)
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if isinstance(ssl_object, ssl.SSLObject) and self.client_access is not None:
            subject = _subject(ssl_object.getpeercert())
            if subject is not None:
                return Identity(f"certificate {subject}", self.client_access)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if self.tokens is None and sock is not None and sock.family == socket.AF_UNIX:
            return Identity(_peer(sock), Access.WRITE)
        raise ApiError(401, "access-denied", "authentication needed: a bearer token "
                       "(Authorization: Bearer TOKEN)", headers=_UNAUTHORIZED)

    def _bearer(self, header: str) -> Identity:
        if self.tokens is None:
            raise ApiError(401, "access-denied", "no tokens are configured here: this "
                           "listener does not take bearer tokens", headers=_UNAUTHORIZED)
        if len(header) > MAX_AUTHORIZATION or not header[:len(BEARER)].lower() == BEARER:
            raise ApiError(401, "access-denied", "the Authorization header is not "
                           "'Bearer TOKEN'", headers=_UNAUTHORIZED)
        digest = token_digest(header[len(BEARER):].strip().encode("utf-8", "replace"))
        found: Token | None = None
        for token in self.tokens:  # every one, whichever matches: the same time for all
            if hmac.compare_digest(digest, token.digest):
                found = token
        if found is None:
            raise ApiError(401, "access-denied", "the token is not known", headers=_UNAUTHORIZED)
        return Identity(f"token {found.name}", found.access)


def _subject(cert: dict[str, Any] | None) -> str | None:
    """A certificate's subject as ``CN=...,O=...`` (``getpeercert``'s nested tuples)."""
    if not cert or "subject" not in cert:
        return None
    parts = [f"{k}={v}" for rdn in cert["subject"] for k, v in rdn]
    names = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C"}
    for long, short in names.items():
        parts = [p.replace(f"{long}=", f"{short}=", 1) if p.startswith(long + "=") else p
                 for p in parts]
    return ",".join(parts) or None


def _peer(sock: socket.socket) -> str:
    """``uid 0 (root)``: the user of the process at the other end of a UNIX socket."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
    except OSError:
        return "a local user"
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"
