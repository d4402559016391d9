"""The event stream (server-sent events): what the proxy logs, as it happens, to each client
that follows it; a client that does not keep up is dropped, and neither it nor a flood of
events holds up the proxy or the clients that keep up.

::

    controller, slow client --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1
                                                 ^ host on d1 joining thousands of groups
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
from api_harness import WRITE_TOKEN, WRITER, serving
from daemon_harness import IGMP, TO_EX, config, records, until
from fakes import FakeNetwork, ip

from mcastproxy.api.events import QUEUE
from mcastproxy.wire.messages import GroupRecord, Report

MANY = 2 * QUEUE
UNLIMITED = "policy: {subscriber: {max-groups: unlimited}}\n"


async def _follow(session: aiohttp.ClientSession, query: str, into: list[dict[str, Any]],
                  headers: dict[str, str] | None = None) -> None:
    """Read the stream into ``into`` (one dict per event) until cancelled."""
    async with session.get(f"http://proxy/restconf/streams/events{query}",
                           headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name = None
        async for line in response.content:
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                name = text[7:]
            elif text.startswith("data: "):
                event = json.loads(text[6:])
                assert event["event"] == name
                into.append(event)


async def test_events_are_streamed_with_who_made_a_change(net: FakeNetwork,
                                                          workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP), tokens=[WRITER],
                       token=WRITE_TOKEN) as (daemon, api):
        got: list[dict[str, Any]] = []
        follower = asyncio.create_task(_follow(api.session, "?event=upstream-join,reloaded",
                                               got, api.headers()))
        await until(lambda: daemon.api.hub.subscribers, what="the stream is followed")
        sock = net.sockets[IGMP.family]
        sock.inject_message("d1", IGMP.host, IGMP.join())
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, "*")
        assert status == 204
        await until(lambda: len(got) >= 2, what="two events")
        follower.cancel()
        assert [e["event"] for e in got] == ["upstream-join", "reloaded"]
        assert got[0]["fields"]["group"] == IGMP.group
        assert got[1]["fields"] == {"by": "token rw-controller"}
        # Without a token, no stream.
        api.token = None
        assert (await api.request("GET", "/restconf/streams/events"))[0] == 401


async def test_a_slow_client_is_dropped_and_holds_nothing_up(net: FakeNetwork,
                                                             workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP, extra=UNLIMITED)) as (daemon, api):
        # One client asks for the stream and never reads it (its buffers as small as can be).
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        slow.connect(str(workdir / "api.sock"))
        slow.sendall(b"GET /restconf/streams/events HTTP/1.1\r\nHost: x\r\n\r\n")
        fast: list[dict[str, Any]] = []
        follower = asyncio.create_task(_follow(api.session, "?event=upstream-join", fast))
        hub = daemon.api.hub
        await until(lambda: len(hub.subscribers) == 2, what="both streams are followed")
        # A host joins MANY groups: one upstream-join event each.
        groups = [f"239.20.{i // 250}.{i % 250 + 1}" for i in range(MANY)]
        sock = net.sockets[IGMP.family]
        for i in range(0, MANY, 256):
            report = Report(3, tuple(GroupRecord(TO_EX, ip(g)) for g in groups[i:i + 256]))
            sock.inject_message("d1", IGMP.host, report)
            # The fast client keeps up: it has each burst before the next.
            sent = min(MANY, i + 256)
            await until(lambda: len(fast) == sent, what="the burst, to the fast one")  # noqa: B023
        assert hub.dropped == 1
        assert len(hub.subscribers) == 1
        assert {e["fields"]["group"] for e in fast} == set(groups)
        # The proxy went on: every join was reported upstream.
        await until(lambda: {g for t, g in records(sock.messages("u1")) if t is TO_EX}
                    >= {ip(g) for g in groups}, timeout=15)
        # The slow client's connection was cut.
        slow.settimeout(5)
        with contextlib_suppress():
            while slow.recv(1 << 16):
                pass
        slow.close()
        follower.cancel()


class contextlib_suppress:  # noqa: N801 (reads as the stdlib's)
    """A reset connection is how a dropped client learns it was."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is ConnectionResetError
