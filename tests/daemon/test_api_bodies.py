"""What a controller (or whoever reaches the API) sends is read strictly: a body too large,
not UTF-8, not JSON, JSON with a key twice, NaN, nested without end, of the wrong type or
shape; a request cut short or garbage on the socket. Each gets a clear RFC 8040 error (or
the connection is closed), nothing of it is applied, and the proxy keeps answering.

::

    attacker --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from api_harness import CONFIG_URL, YANG, serving
from daemon_harness import IGMP, TO_EX, config, records, status_of, until
from fakes import FakeNetwork, ip

from mcastproxy.api.document import MAX_BODY

GOOD = {"mcastproxy:config": {"igmp": {"version": 3}, "downstream": [{"interface": "d1"}],
                              "upstream": {"candidates": [{"interface": "u1"}]}}}


def _tag(body: object) -> tuple[str, str]:
    assert isinstance(body, dict), body
    [error] = body["ietf-restconf:errors"]["error"]
    return error["error-tag"], error["error-message"]


@pytest.mark.parametrize(("raw", "content_type", "code", "tag", "words"), [
    (b"\xff\xfe{}", YANG, 400, "malformed-message", "not UTF-8"),
    (b'{"mcastproxy:config": {', YANG, 400, "malformed-message", "not JSON"),
    (b"", YANG, 400, "malformed-message", "not JSON"),
    (b'{"mcastproxy:config": {"igmp": {}, "igmp": {}}}', YANG, 400, "malformed-message",
     "given twice"),
    (b'{"mcastproxy:config": {"timers": {"robustness": NaN}}}', YANG, 400,
     "malformed-message", "NaN"),
    (b'{"mcastproxy:config": {"x": 1' + b"0" * 5000 + b"}}", YANG, 400, "malformed-message",
     "not usable JSON"),
    (b"[" * 100_000 + b"]" * 100_000, YANG, 400, "malformed-message", ""),
    (b'{"a": ' * 30 + b"1" + b"}" * 30, YANG, 400, "malformed-message", "nested"),
    (b'{"igmp": {"version": 3}}', YANG, 400, "malformed-message", "mcastproxy:config"),
    (b'[1, 2]', YANG, 400, "malformed-message", "mcastproxy:config"),
    (b'{"mcastproxy:config": [1]}', YANG, 400, "invalid-value", "object of settings"),
    (b'{"mcastproxy:config": {}}', "text/plain", 415, "invalid-value", "Content-Type"),
    (b'{"mcastproxy:config": {}}', "application/xml", 415, "invalid-value", "Content-Type"),
    (b"a" * (MAX_BODY + 1), YANG, 413, "too-big", "larger than"),
])
async def test_a_bad_body_is_refused_clearly(
    net: FakeNetwork, workdir: Path, raw: bytes, content_type: str, code: int, tag: str,
    words: str,
) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        before, file = daemon.config, daemon.config_path.read_bytes()
        for method in ("PUT", "PATCH"):
            status, headers, body = await api.request(
                method, CONFIG_URL, raw=raw, headers={"Content-Type": content_type,
                                                      "If-Match": "*"})
            assert status == code, body
            assert headers["Content-Type"].startswith(YANG)
            assert _tag(body)[0] == tag
            assert words in _tag(body)[1]
        assert daemon.config is before
        assert daemon.config_path.read_bytes() == file
        assert (await api.request("GET", "/restconf"))[0] == 200


async def test_what_is_not_a_resource_or_a_method_is_refused(net: FakeNetwork,
                                                            workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (_, api):
        status, _, body = await api.request("GET", "/restconf/data/ietf-interfaces:x")
        assert status == 404
        assert _tag(body)[0] == "invalid-value"
        status, _, body = await api.request("GET", "/etc/passwd")
        assert status == 404
        assert _tag(body)[0] == "invalid-value"
        status, headers, body = await api.request("DELETE", "/restconf/data/mcastproxy:config")
        assert status == 405
        assert _tag(body)[0] == "operation-not-supported"
        assert "GET" in headers["Allow"]
        status, _, body = await api.request("GET", "/restconf", headers={"Accept": "text/html"})
        assert status == 406
        status, _, body = await api.request("GET", "/restconf/operations/x:y")
        assert status in (404, 405)


async def test_garbage_and_cut_requests_on_the_socket(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        path = str(workdir / "api.sock")
        garbage = [
            b"\x00\x01\x02\x03" * 100 + b"\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 100_000 + b"\r\n\r\n",
            b"PUT /restconf/data/mcastproxy:config HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/yang-data+json\r\nIf-Match: *\r\n"
            b"Content-Length: 1000\r\n\r\n{\"mcastproxy:config\"",  # cut short, then gone
            b"PATCH /restconf/data/mcastproxy:config HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET /restconf/data HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ]
        for _ in range(20):
            for data in garbage:
                _reader, writer = await asyncio.open_unix_connection(path)
                writer.write(data)
                await writer.drain()
                writer.close()
        # Meanwhile and after: the proxy proxies and the API answers.
        sock = net.sockets[IGMP.family]
        sock.inject_message("d1", IGMP.host, IGMP.join())
        await until(lambda: (TO_EX, ip(IGMP.group)) in records(sock.messages("u1")))
        status, _, body = await api.request("GET", "/restconf/data/mcastproxy:state")
        assert status == 200
        assert IGMP.group in body["mcastproxy:state"]["upstreams"]["u1"]["groups"]
        assert (await status_of(daemon))["errors"].get("api", 0) == 0


async def test_a_good_body_after_all_that(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        # Without the api section it would turn the API off: the operator's, refused.
        status, _, body = await api.request("PUT", CONFIG_URL, raw=json.dumps(GOOD).encode(),
                                            headers={"If-Match": "*"})
        assert status == 403, body
        doc, _ = await api.config()
        good = {"mcastproxy:config": {**GOOD["mcastproxy:config"], "api": doc["api"]}}
        status, _, body = await api.request("PUT", CONFIG_URL, raw=json.dumps(good).encode(),
                                            headers={"If-Match": "*"})
        assert status == 204, body
        # merge-patch+json is a PATCH's type too (RFC 7396).
        status, _, body = await api.request(
            "PATCH", CONFIG_URL, {"mcastproxy:config": {"upstream": {"takeover": False}}},
            headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"})
        assert status == 204, body
        assert daemon.config.upstream.takeover is False
