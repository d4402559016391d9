"""Who may use the controller API: a bearer token from the tokens file (read or write), a
client certificate on TLS, or, on the UNIX socket without tokens, whoever its file's rights
let connect. A missing or wrong token is refused 401, a read token writing 403; a TCP
listener is never without TLS and authentication; tokens are read again at a reload.

::

    controller --(UNIX socket, or TCP + TLS)--> [ daemon on the fakes ] d1 --- u1
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
from api_harness import (
    CONFIG_URL,
    READ_TOKEN,
    READER,
    WRITE_TOKEN,
    WRITER,
    Client,
    api_section,
    client,
    free_port,
    make_pki,
    serving,
)
from daemon_harness import IGMP, config, running
from fakes import FakeNetwork

from mcastproxy.apiconfig import TokensError, parse_tokens
from mcastproxy.config import ConfigError, load_config, parse_config


async def test_tokens_are_required_and_checked(net: FakeNetwork, workdir: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    async with serving(net, workdir, config(IGMP), tokens=[WRITER, READER]) as (daemon, api):
        for token in (None, "0123456789abcdef0123456789abcdeX", WRITE_TOKEN[:-1], "x" * 5000):
            api.token = token
            status, headers, body = await api.request("GET", "/restconf/data")
            assert status == 401, token
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert body["ietf-restconf:errors"]["error"][0]["error-tag"] == "access-denied"
        status, _, body = await api.request("GET", "/restconf/data",
                                            headers={"Authorization": "Basic cm9vdDpyb290"})
        assert status == 401
        # A read token reads, and may not write.
        api.token = READ_TOKEN
        _doc, tag = await api.config()
        status, _, body = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 403
        assert "ro-grafana may read, not write" in body["ietf-restconf:errors"]["error"][0][
            "error-message"]
        assert daemon.config.upstream.takeover is True
        # A write token writes, and the log says who.
        api.token = WRITE_TOKEN
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 204
        assert "configuration changed by token rw-controller" in caplog.text
        assert "by token rw-controller: applied and written" in caplog.text
        assert "for token rw-controller" in daemon.config_path.read_text()  # the file's head
        assert WRITE_TOKEN not in caplog.text
        assert READ_TOKEN not in caplog.text


async def test_tokens_are_read_again_at_a_reload(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP), tokens=[WRITER],
                       token=WRITE_TOKEN) as (daemon, api):
        assert (await api.request("GET", "/restconf"))[0] == 200
        fresh = "new-controller write " + "n" * 32
        (workdir / "tokens").write_text(fresh + "\n")
        daemon.reload()
        assert (await api.request("GET", "/restconf"))[0] == 401
        api.token = "n" * 32
        assert (await api.request("GET", "/restconf"))[0] == 200
        # A tokens file broken since refuses the reload whole; the tokens read stay.
        (workdir / "tokens").write_text("oops\n")
        daemon.reload()
        assert (await api.request("GET", "/restconf"))[0] == 200


async def test_the_socket_alone_is_guarded_by_its_rights(net: FakeNetwork,
                                                         workdir: Path) -> None:
    extra = "  socket-mode: 0660\n"
    text = config(IGMP) + api_section(workdir, None, extra)
    async with running(net, workdir, text) as daemon, client(workdir / "api.sock") as api:
        assert stat.S_IMODE((workdir / "api.sock").stat().st_mode) == 0o660
        _doc, tag = await api.config()
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 204
        assert daemon.config.upstream.takeover is False
    async with serving(net, workdir, config(IGMP)):
        assert stat.S_IMODE((workdir / "api.sock").stat().st_mode) == 0o600
    assert not (workdir / "api.sock").exists()  # removed at the stop


@pytest.mark.parametrize(("section", "field", "words"), [
    ("api: {listen: '127.0.0.1:8443'}", "api", "needs tls"),
    ("api: {listen: '127.0.0.1:8443', tokens: /etc/t}", "api", "needs tls"),
    ("api: {listen: '127.0.0.1:8443', tls: {certificate: /c, key: /k}}", "api",
     "needs tokens or tls.client-ca"),
    ("api: {socket: /run/a.sock, tls: {certificate: /c, key: /k}}", "api", "only for a TCP"),
    ("api: {socket: relative.sock}", "api.socket", "absolute path"),
    ("api: {socket: /run/a.sock, socket-mode: 0666}", "api.socket-mode", "0600"),
    ("api: {}", "api", "give socket"),
    ("api: {socket: /run/a.sock, colour: red}", "api.colour", "unknown key"),
])
def test_a_section_that_would_listen_unauthenticated_is_refused(
    section: str, field: str, words: str,
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config(IGMP) + section)
    [issue] = refused.value.issues
    assert issue.path == field
    assert words in issue.reason


@pytest.mark.parametrize(("text", "words"), [
    ("", "no token"),
    ("a read", "expected NAME ACCESS TOKEN"),
    ("a admin 0123456789abcdef", "read or write"),
    ("a read short", "16 to 256"),
    ("a read 0123456789abcdef\na write 0123456789abcdeg", "given twice"),
    ("a read 0123456789abcdef\nb write 0123456789abcdef", "token of an earlier line"),
])
def test_a_bad_tokens_file_is_refused_naming_the_line(text: str, words: str) -> None:
    with pytest.raises(TokensError, match=words) as refused:
        parse_tokens(text)
    assert "0123456789abcde" not in str(refused.value)  # never the secret


def test_check_reads_the_tokens_file(workdir: Path) -> None:
    path = workdir / "c.yaml"
    tokens = workdir / "tokens"
    path.write_text(config(IGMP) + f"api: {{socket: {workdir}/a.sock, tokens: {tokens}}}\n")
    for content, mode, words in [
        (None, 0o600, "No such file"),
        ("root:$6$secret:19000:0:99999:7:::\n", 0o600, "line 1: expected NAME ACCESS TOKEN"),
        (WRITER, 0o644, "others may read"),
    ]:
        tokens.unlink(missing_ok=True)
        if content is not None:
            tokens.write_text(content)
            tokens.chmod(mode)
        with pytest.raises(ConfigError) as refused:
            load_config(path)
        [issue] = refused.value.issues
        assert issue.path == "api.tokens"
        assert words in issue.reason
        assert "secret" not in issue.reason
    tokens.write_text(WRITER)
    tokens.chmod(0o640)
    assert load_config(path).api is not None


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def pki(workdir: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    return make_pki(workdir)


def _context(pki: Path, cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert is not None:
        context.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
    return context


async def test_tls_with_tokens_and_client_certificates(net: FakeNetwork, workdir: Path,
                                                       pki: Path) -> None:
    port = free_port()
    tokens = workdir / "tokens"
    tokens.write_text(WRITER + "\n")
    tokens.chmod(0o600)
    text = config(IGMP) + (
        f"api:\n  listen: 127.0.0.1:{port}\n  tokens: {tokens}\n"
        f"  tls: {{certificate: {pki}/server.pem, key: {pki}/server.key, "
        f"client-ca: {pki}/ca.pem, client-access: read}}\n")
    url = f"https://127.0.0.1:{port}"
    async with running(net, workdir, text) as daemon:
        assert daemon.api.address == ("127.0.0.1", port)

        async def get(cert: str | None, token: str | None, method: str = "GET",
                      path: str = "/restconf/data/mcastproxy:config") -> int:
            connector = aiohttp.TCPConnector(ssl=_context(pki, cert))
            async with aiohttp.ClientSession(connector=connector) as session:
                api = Client(session, token, base=url)
                if method == "GET":
                    return (await api.request("GET", path))[0]
                return (await api.write(method, {"upstream": {"takeover": False}}, "*"))[0]

        # A client certificate of the CA: who is its subject, with read access.
        assert await get("client", None) == 200
        assert await get("client", None, "PATCH") == 403
        # With a write token as well: the token's access.
        assert await get("client", WRITE_TOKEN, "PATCH") == 204
        assert await get("client", "w" * 32) == 401
        # No certificate, or one of another CA: the handshake refuses it.
        for cert in (None, "rogue"):
            with pytest.raises(aiohttp.ClientError):
                await get(cert, WRITE_TOKEN)
        # Plain HTTP to the TLS port: nothing answers it as HTTP.
        with pytest.raises((aiohttp.ClientError, asyncio.TimeoutError)):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as plain:
                await plain.get(f"http://127.0.0.1:{port}{CONFIG_URL}")
        assert daemon.config.upstream.takeover is False
