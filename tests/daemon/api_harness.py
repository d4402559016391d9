"""The controller API's tests: a daemon on the fakes serving its API on a UNIX socket in the
test's ``workdir``, and an aiohttp client of it.

``async with serving(net, workdir, config, tokens=...) as (daemon, api):`` runs the daemon
(``daemon_harness.running``) with ``api: {socket: WORKDIR/api.sock, ...}`` added to
``config`` and a tokens file written (0600) when ``tokens`` is given; ``api`` is a
``Client`` that sends its token (``api.token = ...`` to change it) and reads JSON answers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from daemon_harness import running
from fakes import FakeNetwork
from yarl import URL

from mcastproxy.daemon import Daemon

YANG = "application/yang-data+json"
CONFIG_URL = "/restconf/data/mcastproxy:config"
WRITER = "rw-controller write 0123456789abcdef0123456789abcdef"
READER = "ro-grafana read fedcba9876543210fedcba9876543210"
WRITE_TOKEN = WRITER.split()[2]
READ_TOKEN = READER.split()[2]


class Client:
    """HTTP over the API's UNIX socket, with a bearer token if ``token`` is set."""

    def __init__(self, session: aiohttp.ClientSession, token: str | None,
                 base: str = "http://proxy") -> None:
        self.session = session
        self.token = token
        self.base = base

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**out, **(extra or {})}

    async def request(self, method: str, path: str, body: Any = None, *,
                      raw: bytes | None = None, headers: dict[str, str] | None = None,
                      ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body or text or None)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        hdrs = {"Content-Type": YANG} if data is not None else {}
        # As written: yarl would decode what a test encodes on purpose (%2C, %27).
        url = URL(path if path.startswith("http") else f"{self.base}{path}", encoded=True)
        async with self.session.request(method, url, data=data,
                                        headers=self.headers({**hdrs, **(headers or {})})) as r:
            text = await r.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return r.status, r.headers.copy(), parsed  # type: ignore[return-value]

    async def config(self) -> tuple[dict[str, Any], str]:
        """The running configuration's document and its ETag."""
        status, headers, body = await self.request("GET", CONFIG_URL)
        assert status == 200, body
        return body["mcastproxy:config"], headers["ETag"]

    async def write(self, method: str, config: dict[str, Any], etag: str | None,
                    ) -> tuple[int, dict[str, str], Any]:
        extra = {"If-Match": etag} if etag is not None else {}
        return await self.request(method, CONFIG_URL, {"mcastproxy:config": config},
                                  headers=extra)


def api_section(workdir: Path, tokens: list[str] | None, extra: str = "") -> str:
    lines = f"api:\n  socket: {workdir / 'api.sock'}\n"
    if tokens is not None:
        path = workdir / "tokens"
        path.write_text("# name access token\n" + "\n".join(tokens) + "\n")
        path.chmod(0o600)
        lines += f"  tokens: {path}\n"
    return lines + extra


@contextlib.asynccontextmanager
async def client(path: Path, token: str | None = None) -> AsyncIterator[Client]:
    connector = aiohttp.UnixConnector(path=str(path))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Client(session, token)


@contextlib.asynccontextmanager
async def serving(net: FakeNetwork, workdir: Path, config: str, *,
                  tokens: list[str] | None = None, token: str | None = None,
                  ) -> AsyncIterator[tuple[Daemon, Client]]:
    text = config + api_section(workdir, tokens)
    async with running(net, workdir, text) as daemon, client(workdir / "api.sock",
                                                             token) as api:
        yield daemon, api


def make_pki(directory: Path) -> Path:
    """In ``directory``: a CA (``ca.pem``), a server certificate for 127.0.0.1 and a client
    certificate of it (``server``, ``client``), and a client certificate of another CA
    (``rogue``); each with its ``.key``."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    for ca in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN=test {ca}", "-keyout", f"{directory}/{ca}.key",
                "-out", f"{directory}/{ca}.pem")
    for name, ca, extra in (("server", "ca", "subjectAltName=IP:127.0.0.1"),
                            ("client", "ca", "extendedKeyUsage=clientAuth"),
                            ("rogue", "other", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}/O=NOC",
                "-keyout", f"{directory}/{name}.key", "-out", f"{directory}/{name}.csr")
        (directory / f"{name}.ext").write_text(extra + "\n")
        openssl("x509", "-req", "-in", f"{directory}/{name}.csr", "-CA",
                f"{directory}/{ca}.pem", "-CAkey", f"{directory}/{ca}.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{directory}/{name}.ext",
                "-out", f"{directory}/{name}.pem")
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
