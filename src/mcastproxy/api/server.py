"""The controller API's server: RESTCONF-style resources (RFC 8040) in the daemon's loop.

Resources (RFC 8040 §3; JSON as RFC 7951 has it, ``application/yang-data+json``):

- ``GET /restconf``: the root (§3.3); ``GET /.well-known/host-meta`` points at it (§3.1).
- ``GET /restconf/data``: the whole datastore (``standard``): the standard tree with its
  state, the yang-library, and the project's own resources, ``mcastproxy:state`` (what
  ``mcastproxy status --json`` shows, made from the engine's snapshot a slice at a time, as
  the status socket makes it: the loop handles reports in between) and
  ``mcastproxy:config`` (the running configuration as the file holds it). Below the last
  two, subtrees: ``/restconf/data/mcastproxy:state/upstreams=u1``. Every GET of data takes
  RFC 8040's ``content`` and ``depth`` (``query``).
- ``PUT`` and ``PATCH`` (RFC 7396 merge) of ``/restconf/data/mcastproxy:config``: validated
  exactly as the file is (written beside it and read by ``load_config``, the loader of
  ``check``, SIGHUP and the start), applied by the daemon's reload path (``apply_config``:
  the same steps, make-before-break, wholly or not at all), then renamed over the file, so
  that a restart and ``mcastproxy check`` see it. The file, not a state file beside it:
  one truth, which an operator can read, diff and edit, and which a restart cannot disagree
  with (a state file would have to win over the file, or lose to it, at every start). If
  the rename fails, the old configuration is applied again: the file stays the truth.
  ``If-Match`` is required (428 without; ``*`` is an explicit "whatever is there") and a
  stale one is refused 412, so that two controllers cannot overwrite each other blindly;
  a file edited by hand and not yet applied is not written over (409; ``*`` does); the
  sections that name the host's files and listeners (``api``, ``accounting``,
  ``metrics``) are the operator's and a change of them is refused 403.
- The same configuration and state in the standard tree, ``/restconf/data/ietf-routing:
  routing/...`` as RFC 8652 and RFC 9398 place them with the ``mcastproxy`` module's
  augmentation, RFC 8652's ``clear-groups`` action on its node, and the YANG library with
  the modules' texts (``standard``). A change there is made into the file's document
  (``yangdata``) and applied as a PUT of ``mcastproxy:config`` is: one ETag for both.
- ``POST /restconf/operations/ietf-igmp-mld:clear-groups``: RFC 8652's clear-groups as an
  operation (every protocol's groups at once, its input's leaves each optional).
- ``GET /restconf/streams/events``: server-sent events (``events``).
- ``GET /openapi.json``: the OpenAPI description (``openapi``).

Every request is authenticated first (``auth``); every write is logged with who made it.
A request the API refuses gets RFC 8040's error body (``errors``); none takes the daemon
down: a fault in a handler is a 500 with the error logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import json
import logging
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from mcastproxy.api import document
from mcastproxy.api.auth import IDENTITY, Authenticator, Identity
from mcastproxy.api.document import MAX_BODY, etag, merge_patch, read_json, staged, unwrap
from mcastproxy.api.errors import CONFIG, YANG_JSON, ApiError, Problem
from mcastproxy.api.events import KEEPALIVE, EventHub
from mcastproxy.api.openapi import description
from mcastproxy.api.query import pruned, read_query
from mcastproxy.api.standard import (
    LIBRARY,
    STATE,
    YANG_TEXT,
    StandardTree,
    path_segments,
    raw_segments,
)
from mcastproxy.api.yangdata import ROUTING
from mcastproxy.apiconfig import Access, ApiSettings, Token, read_tokens
from mcastproxy.config import MAX_FILE_SIZE, Config, ConfigError, load_config, parse_config
from mcastproxy.logs import LogLimiter
from mcastproxy.status import encode
from mcastproxy.statussocket import (
    StatusSocketError,
    bind_status_socket,
    remove_stale_socket,
    why,
)

if TYPE_CHECKING:
    from mcastproxy.daemon import Daemon

log = logging.getLogger("mcastproxy")
CLEAR_GROUPS = "ietf-igmp-mld:clear-groups"  # RFC 8652's action, as a RESTCONF operation
STATUS_TIMEOUT = 60.0  # seconds a state answer may take, as the status socket's
SLICE = 0.001  # seconds of encoding before the loop gets a turn (as the status socket's)
WRITE = 1 << 16  # octets handed to the client at once
_ACCEPTABLE = ("*/*", "application/*", "application/json", YANG_JSON, YANG_TEXT)
_PUT_TYPES = (YANG_JSON, "application/json")
_PATCH_TYPES = (YANG_JSON, "application/merge-patch+json", "application/json")


class ApiServer:
    """The API of ``daemon``, served where its configuration's ``api`` says."""

    def __init__(self, daemon: Daemon) -> None:
        settings = daemon.config.api
        assert settings is not None
        self.daemon = daemon
        self.settings = settings
        self.hub = EventHub()
        self.refusals = LogLimiter()  # lines of refused requests: 10 in 10 s
        self.document: dict[str, Any] | None = None
        """The running configuration as the file holds it; None if the file was changed
        after it was applied (until a reload or a PUT)."""
        self.etag = ""
        self._stamp: tuple[int, int, int] | None = None  # the file as last read or written
        self.auth = Authenticator(self._tokens(settings, keep=None), _client_access(settings))
        self.writing = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._socket_inode: int | None = None
        self.address: tuple[str, int] | None = None
        """Where the TCP listener is bound (its port, when 0 was asked)."""
        self.app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        self.standard = StandardTree(self)
        self.app.add_routes([
            web.get("/.well-known/host-meta", self._host_meta),
            web.get("/restconf", self._root),
            web.get("/restconf/data", self._data),
            # Any character, a decoded newline too: a forged key is the handler's to refuse.
            web.get("/restconf/data/{tail:[\\s\\S]+}", self._data),
            web.put("/restconf/data/" + CONFIG, self._put),
            web.patch("/restconf/data/" + CONFIG, self._patch),
            web.get("/restconf/streams/events", self._events),
            web.post("/restconf/operations/" + CLEAR_GROUPS, self._clear_groups),
            web.get("/openapi.json", self._openapi),
            *self.standard.routes(),
        ])
        self._load_document(daemon.config)

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; OSError (or ValueError: a TLS file) if it cannot."""
        # aiohttp answers a request it cannot parse 400 and logs its traceback: anyone who
        # reaches the socket could fill the log with them. Its logger here says nothing;
        # what the API refuses is logged by the middleware, rate-limited.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0,
                                     logger=_QUIET)
        await self._runner.setup()
        try:
            if self.settings.socket is not None:
                sock = self._bind_unix(self.settings.socket, self.settings.socket_mode)
                await web.SockSite(self._runner, sock).start()
            if self.settings.listen is not None:
                assert self.settings.tls is not None  # apiconfig: never TCP without TLS
                host, port = self.settings.listen
                site = web.TCPSite(self._runner, host, port, ssl_context=_tls(self.settings))
                await site.start()
                # aiohttp tells the bound port (0 asked) no other way
                server: Any = site._server
                bound = server.sockets[0].getsockname() if server and server.sockets else None
                self.address = (bound[0], bound[1]) if bound else (host, port)
        except BaseException:
            await self.close()
            raise
        self.daemon.event_sinks.append(self.hub.publish)
        where = [str(s) for s in (self.settings.socket,) if s is not None]
        if self.address is not None:
            where.append(f"https://{self.address[0]}:{self.address[1]}")
        log.info("controller API at %s", " and ".join(where))

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.daemon.event_sinks.remove(self.hub.publish)
        for sub in list(self.hub.subscribers):  # streams never end by themselves
            sub.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(b"")  # wakes it
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        path = self.settings.socket
        if path is not None and self._socket_inode is not None:
            with contextlib.suppress(OSError):
                if os.lstat(path).st_ino == self._socket_inode:
                    path.unlink()
            self._socket_inode = None

    def _bind_unix(self, path: Path, mode: int) -> socket.socket:
        try:
            remove_stale_socket(path)
        except StatusSocketError as exc:
            raise OSError(errno.EADDRINUSE, str(exc)) from None
        sock = bind_status_socket(path, mode, backlog=64)
        try:
            self._socket_inode = os.lstat(path).st_ino
        except BaseException:
            sock.close()
            raise
        return sock

    def reloaded(self) -> None:
        """SIGHUP applied a file: its tokens read again, its document shown."""
        self.auth.tokens = self._tokens(self.daemon.config.api, keep=self.auth.tokens)
        self._load_document(self.daemon.config)

    def settings_changed(self, new: ApiSettings | None) -> None:
        """The file's ``api`` changed: the tokens follow (``reloaded``), the listeners not."""
        old = self.settings
        if new is None or (new.socket, new.socket_mode, new.listen, new.tls) != (
                old.socket, old.socket_mode, old.listen, old.tls):
            log.warning("api: its listeners keep their settings until a restart")

    def _tokens(self, settings: ApiSettings | None, keep: tuple[Token, ...] | None,
                ) -> tuple[Token, ...] | None:
        if settings is None or settings.tokens is None:
            return keep if settings is None else None
        try:
            return read_tokens(settings.tokens)
        except (OSError, ValueError) as exc:
            if keep is None and self._runner is None:
                raise ValueError(f"tokens {settings.tokens}: {why(exc)}") from None
            log.error("api: tokens %s: %s; the tokens read before stay", settings.tokens,
                      why(exc))
            return keep

    def _load_document(self, running: Config) -> None:
        """The file's document, if the file still holds what runs (it may have been edited
        since it was read): else None, and a warning."""
        path = self.daemon.config_path
        try:
            data = path.read_bytes()[:MAX_FILE_SIZE + 1]
            same = parse_config(data, str(path)) == running
        except (OSError, ConfigError) as exc:
            same, data = False, b""
            log.debug("api: reading %s: %s", path, why(exc))
        if not same:
            log.warning("api: %s no longer holds the running configuration: the API shows "
                        "none until a reload or a PUT", path)
            self.document, self.etag = None, ""
            return
        doc = document.jsonable(yaml.load(data, Loader=_LOADER))
        self.document, self.etag = doc, etag(doc)
        self._stamp = _stamp(self.daemon.config_path)

    # --- the boundary -------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            request[IDENTITY] = self.auth.identify(request)
            accept = request.headers.get("Accept", "*/*")
            if not any(a in accept for a in (*_ACCEPTABLE, "text/event-stream")):
                raise ApiError(406, "invalid-value", f"the answer is {YANG_JSON}; Accept "
                               f"says {accept!r}")
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return self._refused(request, exc)
        except web.HTTPException as exc:  # aiohttp's own: no route, method, body too large
            tag = {404: "invalid-value", 405: "operation-not-supported",
                   413: "too-big"}.get(exc.status, "malformed-message")
            text = {404: f"no such resource: {request.path}",
                    405: f"{request.method} is not offered on {request.path}",
                    413: f"the body is larger than {MAX_BODY} octets"}.get(exc.status,
                                                                           exc.reason)
            allow = self.standard.allowed(request.path) or exc.headers.get("Allow")
            headers = {"Allow": allow} if allow else None
            return self._refused(request, ApiError(exc.status, tag, text, headers=headers))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # never the daemon's end
            self.daemon.errors["api"] += 1
            log.exception("api: %s %s failed", request.method, request.path)
            return self._refused(request, ApiError(500, "operation-failed",
                                                   f"internal error: {why(exc)}"))

    def _refused(self, request: web.Request, exc: ApiError) -> web.Response:
        identity = request.get(IDENTITY)
        who = identity.who if identity is not None else "an unauthenticated client"
        if self.refusals.allow("api-refused", asyncio.get_running_loop().time()):
            log.warning("api: %s %s by %s refused (%d): %s", request.method, request.path,
                        who, exc.status, exc, extra={"event": "api-refused", "fields": {
                            "who": who, "status": exc.status}})
        return web.Response(status=exc.status, text=exc.text(), content_type=YANG_JSON,
                            headers=exc.headers)

    # --- reading ------------------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.StreamResponse:
        return _json({"ietf-restconf:restconf": {"data": {}, "operations": {},
                                                 "yang-library-version": "2019-01-04"}})

    async def _host_meta(self, request: web.Request) -> web.StreamResponse:
        xrd = ('<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
               '  <Link rel="restconf" href="/restconf"/>\n</XRD>\n')
        return web.Response(text=xrd, content_type="application/xrd+xml")

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(description())

    async def _data(self, request: web.Request) -> web.StreamResponse:
        segments = path_segments(request)
        if not segments:
            return await self.standard.datastore(request)
        if segments[0] == CONFIG:
            return await self._config(request, segments[1:])
        if segments[0] == ROUTING:
            return await self.standard.get(request, raw_segments(request))
        if segments[0] == LIBRARY:
            return await self.standard.library(request, segments[1:])
        if segments[0] != STATE:
            raise ApiError(404, "invalid-value", f"no such resource: {segments[0][:64]!r} "
                           f"(there are {STATE}, {CONFIG}, {ROUTING} and {LIBRARY})")
        query = read_query(request.query)
        if not query.state:
            raise ApiError(404, "invalid-value", f"no such data: {STATE} is state")
        async with self.state_held(request) as state:
            name, node = document.subtree(state, segments[1:])
            tree = {f"mcastproxy:{name}" if name else STATE: node}
            return await self.stream(request, await pruned(tree, query.depth))

    @contextlib.asynccontextmanager
    async def state_held(self, request: web.Request) -> AsyncIterator[dict[str, Any]]:
        """The status document for the block, as the status socket's answers have it:
        garbage collection waits while it is held, so a client that does not take its answer
        is not waited for beyond ``STATUS_TIMEOUT`` (its connection is cut)."""
        try:
            async with asyncio.timeout(STATUS_TIMEOUT), self.daemon.status_held() as state:
                yield state
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("the state was not taken in time") from None

    async def _config(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        query = read_query(request.query)
        if not query.config:
            raise ApiError(404, "invalid-value", f"no such data: {CONFIG} is configuration")
        doc = self._document()
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        name, node = document.subtree(doc, segments)
        body = {f"mcastproxy:{name}" if segments else CONFIG: node}
        return _json(await pruned(body, query.depth), headers={"ETag": self.etag})

    def _document(self) -> dict[str, Any]:
        if self.document is None:
            raise ApiError(409, "resource-denied", f"{self.daemon.config_path} was changed "
                           "after it was applied: reload it (SIGHUP), or PUT a configuration "
                           "with If-Match: *")
        return self.document

    async def stream(self, request: web.Request, tree: Any,
                     headers: dict[str, str] | None = None) -> web.StreamResponse:
        """``tree`` as JSON, encoded and written a piece at a time, the loop getting a turn
        every ``SLICE`` seconds (a state of 50,000 groups is tens of MB)."""
        response = web.StreamResponse(headers={"Content-Type": YANG_JSON, **(headers or {})})
        await response.prepare(request)
        buffered: list[bytes] = []
        size = 0
        turn = time.perf_counter() + SLICE
        for piece in encode(tree):
            data = piece.encode()
            buffered.append(data)
            size += len(data)
            if size >= WRITE:
                await response.write(b"".join(buffered))
                buffered, size = [], 0
            if time.perf_counter() >= turn:
                await asyncio.sleep(0)
                turn = time.perf_counter() + SLICE
        await response.write(b"".join(buffered) + b"\n")
        await response.write_eof()
        return response

    # --- writing ------------------------------------------------------------------------------

    async def _clear_groups(self, request: web.Request) -> web.StreamResponse:
        """RFC 8652's clear-groups: forget the membership state of a link, a group, or the
        groups holding a source (each optional; none: everything); re-learned from the
        subscribers' next reports. 204, or 400 naming the bad input."""
        identity: Identity = request[IDENTITY]
        if not identity.may_write():
            raise ApiError(403, "access-denied", f"{identity.who} may read, not write")
        body = await request.read()
        given = read_json(body) if body.strip() else {}
        if not isinstance(given, dict):
            raise ApiError(400, "malformed-message", "the body is not a JSON object")
        given = given.get("ietf-igmp-mld:input", given.get("input", given))
        if not isinstance(given, dict) or set(given) - {"interface-name", "group",
                                                         "source-address"}:
            raise ApiError(400, "invalid-value", "the input takes interface-name, group and "
                           "source-address, each optional")
        links = {d.interface for d in self.daemon.config.downstream}
        interface = given.get("interface-name")
        if interface is not None and interface not in links:
            raise ApiError(400, "invalid-value", f"interface-name {interface!r} is not a "
                           f"downstream link ({', '.join(sorted(links))})")
        group = _address_of(given.get("group"), "group", multicast=True)
        source = _address_of(given.get("source-address"), "source-address", multicast=False)
        if group is not None and source is not None and len(group) != len(source):
            raise ApiError(400, "invalid-value", "group and source-address are of different "
                           "families")
        self.daemon.clear_groups(interface, group, source, identity.who)
        return web.Response(status=204)

    async def _put(self, request: web.Request) -> web.StreamResponse:
        return await self._write(request, merge=False)

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        return await self._write(request, merge=True)

    async def _write(self, request: web.Request, *, merge: bool) -> web.StreamResponse:
        identity, tags = self.writer(request, _PATCH_TYPES if merge else _PUT_TYPES)
        body = await request.read()  # at most MAX_BODY: aiohttp answers 413 beyond
        change = unwrap(read_json(body))
        async with self.writing:  # one change at a time; no await inside but this one
            self.check_match(tags)
            current = self.document
            if merge and current is None:
                raise ApiError(409, "resource-denied", "no running document to merge into: "
                               "PUT a whole configuration")
            new = merge_patch(current, change) if merge else change
            if current is not None:
                host = document.host_sections_changed(current, new)
                if host:
                    raise ApiError(403, "access-denied", [
                        Problem(f"{s} names the host's files and listeners: it is changed in "
                                "the file, by its operator", s) for s in host])
            self.apply(new, identity.who, request)
        return web.Response(status=204, headers={"ETag": self.etag})

    def writer(self, request: web.Request, types: tuple[str, ...],
               ) -> tuple[Identity, list[str]]:
        """Who writes, and the entity tags of its If-Match; ApiError if it may not write,
        its body is not of ``types``, or it has no If-Match (428)."""
        identity: Identity = request[IDENTITY]
        if not identity.may_write():
            raise ApiError(403, "access-denied", f"{identity.who} may read, not write")
        if request.content_type not in types:
            raise ApiError(415, "invalid-value", f"the body's Content-Type is "
                           f"{request.content_type!r}; expected {' or '.join(types)}")
        if_match = request.headers.get("If-Match")
        if if_match is None:
            raise ApiError(428, "operation-failed", "If-Match is needed: the ETag of the "
                           "configuration this change was made from (GET it), or *")
        return identity, [t.strip() for t in if_match.split(",")]

    def check_match(self, tags: list[str]) -> None:
        """412 if ``tags`` (If-Match) do not name the running configuration; 409 if its file
        was edited since it was applied (``*`` takes either)."""
        if "*" not in tags and (self.document is None or self.etag not in tags):
            raise ApiError(412, "operation-failed", "the configuration changed since "
                           "this change was made from it (If-Match is stale): GET it "
                           "again", headers={"ETag": self.etag} if self.etag else None)
        if "*" not in tags and _stamp(self.daemon.config_path) != self._stamp:
            raise ApiError(409, "resource-denied", f"{self.daemon.config_path} was edited "
                           "since it was applied: reload it (SIGHUP) first, or write "
                           "over the edit with If-Match: *")

    def apply(self, new: dict[str, Any], who: str, request: web.Request,
              where: Callable[[str], str] | None = None) -> None:
        """Validate ``new`` as the file, apply it, put it in the file; ApiError if not, each
        problem naming the file's field, and the node ``where`` says it came from."""
        path = self.daemon.config_path
        text = document.to_yaml(new, who)
        if len(text.encode()) > MAX_FILE_SIZE:
            raise ApiError(413, "too-big", "larger than a configuration file may be")
        try:
            with staged(path, text) as stage:
                try:
                    config = load_config(stage.temp)
                except ConfigError as exc:
                    raise ApiError(400, "invalid-value", [
                        Problem(i.reason, i.path, path=where(i.path) if where else "")
                        for i in exc.issues], error_type="application") from None
                old = self.daemon.config
                try:
                    _apply_config(self.daemon, config, who)
                except ApiError as exc:  # refused by the daemon: named in the tree too
                    if where is not None:
                        exc.problems = [dataclasses.replace(p, path=where(p.field))
                                        for p in exc.problems]
                    raise
                try:
                    stage.commit()
                except OSError as exc:
                    # Applied but not written: the old one back, so that the file stays
                    # the truth a restart reads.
                    _undo(self.daemon, old, who)
                    raise ApiError(500, "operation-failed", f"cannot write {path}: "
                                   f"{exc.strerror or exc}; the change was undone") from None
        except OSError as exc:  # the file beside it could not be written
            raise ApiError(500, "operation-failed", f"cannot write beside {path}: "
                           f"{exc.strerror or exc}") from None
        doc = document.jsonable(yaml.load(text, Loader=_LOADER))
        self.document, self.etag = doc, etag(doc)
        self._stamp = _stamp(self.daemon.config_path)
        log.info("api: %s %s by %s: applied and written to %s", request.method, request.path,
                 who, path, extra={"event": "api-write", "fields": {"who": who}})

    # --- events -------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        names = frozenset(n for n in request.query.get("event", "").split(",") if n) or None
        transport = request.transport

        def abort() -> None:
            if transport is not None:
                transport.abort()

        sub = self.hub.subscribe(names, abort)
        if sub is None:
            raise ApiError(503, "resource-denied", "too many event streams at once")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            await response.write(b": mcastproxy events\n\n")
            while not sub.dropped:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), KEEPALIVE)
                except TimeoutError:
                    frame = b": keepalive\n\n"
                if frame:
                    await response.write(frame)
        except (ConnectionError, RuntimeError):  # gone, or aborted for being slow
            pass
        finally:
            self.hub.unsubscribe(sub)
        if sub.dropped and transport is not None:
            transport.abort()
        return response


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_QUIET = logging.getLogger("mcastproxy.api.http")
_QUIET.setLevel(logging.CRITICAL + 1)
_QUIET.propagate = False


def _apply_config(daemon: Daemon, config: Config, who: str) -> None:
    from mcastproxy.daemon import ConfigRefusedError  # noqa: PLC0415 (daemon imports this)

    try:
        daemon.apply_config(config, who)
    except ConfigRefusedError as exc:
        if exc.fault == "config":
            raise ApiError(400, "invalid-value", [Problem(str(exc))],
                           error_type="application") from None
        raise ApiError(500, "operation-failed", [Problem(f"applying it failed and was undone: "
                                                         f"{exc}")],
                       error_type="application") from None


def _undo(daemon: Daemon, old: Config, who: str) -> None:
    from mcastproxy.daemon import ConfigRefusedError  # noqa: PLC0415

    try:
        daemon.apply_config(old, f"{who} (undone: the file could not be written)")
    except ConfigRefusedError as exc:
        log.error("api: the change could not be undone: %s", exc)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells that a file was replaced or written: inode, size, modification time."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _json(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body) + "\n", content_type=YANG_JSON, headers=headers)


def _client_access(settings: ApiSettings) -> Access | None:
    tls = settings.tls
    if tls is None or tls.client_ca is None:
        return None
    return Access(tls.client_access)


def _tls(settings: ApiSettings) -> ssl.SSLContext:
    """The TCP listener's TLS: 1.2 at least; a client certificate required where
    ``client-ca`` is given."""
    tls = settings.tls
    assert tls is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.certificate, tls.key)
        if tls.client_ca is not None:
            context.load_verify_locations(tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except ssl.SSLError as exc:
        raise ValueError(f"tls: {why(exc)}") from None
    return context


def _address_of(value: object, name: str, *, multicast: bool) -> bytes | None:
    """An address of the clear-groups input, packed; 400 naming ``name`` if it is not one."""
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        raise ApiError(400, "invalid-value", f"{name} {value!r} is not an address") from None
    if address.is_multicast != multicast:
        kind = "a multicast group" if multicast else "a unicast source"
        raise ApiError(400, "invalid-value", f"{name} {address} is not {kind}")
    return address.packed
