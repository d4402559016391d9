"""``amt.upstream.AmtUpstream``, the daemon's runner of an AMT upstream, on fakes: the TUN device
is one end of a datagram socket pair (the test holds the kernel's end), and the relay is the
lab's ``RelayCore`` on a UDP socket on the loopback (``port``: its own). Each test runs an
asyncio loop and waits on conditions with a timeout, no fixed sleeps.

::

    test (the kernel's side of the TUN) <-- socketpair --> AmtUpstream --UDP 127.0.0.1--> RelayCore
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mcastlab.amtrelay import RelayCore, udp_packet
from mcastproxy.amt.gateway import GatewayTimers
from mcastproxy.amt.inner import read_query, report_packet
from mcastproxy.amt.upstream import AmtError, AmtUpstream, AmtUpstreams
from mcastproxy.config import AmtSettings, parse_config
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

LOOPBACK = "127.0.0.1"
SOURCE, GROUP = ipaddress.ip_address("10.0.9.1").packed, ipaddress.ip_address("232.1.1.1").packed
TIMEOUT = 5.0


async def until(predicate: Callable[[], object], what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(what or repr(predicate))
        await asyncio.sleep(0.005)


class Relay:
    """``RelayCore`` on a loopback UDP socket, answering as datagrams arrive."""

    def __init__(self, query_interval: int = 125) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.core = RelayCore(socket.inet_aton(LOOPBACK), secret=os.urandom(16),
                              query_interval=query_interval)
        self.gateways: set[tuple[str, int]] = set()
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data, (host, port) = self.sock.recvfrom(65535)
                self.gateways.add((host, port))
                for dst, dport, out in self.core.receive(socket.inet_aton(host), port, data,
                                                         loop.time()):
                    self.sock.sendto(out, (socket.inet_ntoa(dst), dport))
        except BlockingIOError:
            pass

    def channels(self) -> set[tuple[bytes | None, bytes]]:
        return {c for t in self.core.tunnels.values() for c in t.channels()}

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.core.events if e["event"] == kind]

    def stream(self, packet: bytes) -> None:
        for dst, dport, out in self.core.forward(packet):
            self.sock.sendto(out, (socket.inet_ntoa(dst), dport))

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


class FakeTun:
    """The TUN device: the runner gets one end, the test is the kernel at the other."""

    def __init__(self) -> None:
        self.kernel, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.kernel.setblocking(False)
        self.opened: list[str] = []
        self.fds: list[int] = []

    def open(self, name: str) -> int:
        self.opened.append(name)
        fd = os.dup(self._theirs.fileno())
        os.set_blocking(fd, False)
        self.fds.append(fd)
        return fd

    def runners_end_closed(self) -> bool:
        """Whether the descriptor the runner was given is closed (checked at once, before
        anything could take its number again)."""
        try:
            fcntl.fcntl(self.fds[-1], fcntl.F_GETFD)
        except OSError as e:
            return e.errno == errno.EBADF
        return False

    def send_report(self, *records: GroupRecord) -> None:
        self.kernel.send(report_packet(Family.V4, bytes(4), Report(3, records)))

    def written(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.kernel.recv(65535))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.kernel.close()
        self._theirs.close()


def run(scenario: Callable[[Relay, FakeTun], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        relay = Relay(settings.pop("query_interval", 125))
        tun = FakeTun()
        try:
            await scenario(relay, tun)
        finally:
            relay.close()
            tun.close()

    asyncio.run(main())


def upstream(relay: Relay, tun: FakeTun, **options: Any) -> AmtUpstream:
    settings = AmtSettings(relay=LOOPBACK, port=relay.port)
    return AmtUpstream("amt1", settings, [Family.V4], tun_opener=tun.open,
                       timers=GatewayTimers(0.05, 0.2), **options)


JOIN = GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, GROUP, (SOURCE,))
LEAVE = GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, GROUP, ())


def test_reports_out_of_the_tun_reach_the_relay_and_its_data_comes_in() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun)
        up.open()
        up.start(asyncio.get_running_loop())
        assert tun.opened == ["amt1"]
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)}, "no channel at the relay")
        # The relay's query was written into the TUN, from the default querier (0.0.0.0).
        written = tun.written()
        queries = [p for p in written if p[9] == 2]  # IGMP
        assert queries
        assert queries[0][12:16] == bytes(4)
        assert read_query(queries[0])[0] is Family.V4
        # Data: decapsulated into the TUN unchanged.
        data = udp_packet(SOURCE, GROUP, 5001, b"payload")
        for _ in range(5):
            relay.stream(data)
        got: list[bytes] = []
        await until(lambda: got.extend(p for p in tun.written() if p == data) or len(got) == 5)
        status = up.status()
        assert status["gateways"]["igmp"]["data-packets"] == 5
        assert status["gateways"]["igmp"]["state"] == "established"
        assert status["tun"]["reports-carried"] == 1
        assert status["dropped"] == {}
        # The leave: carried, and the tunnel torn down (no keep_querier).
        tun.send_report(LEAVE)
        await until(lambda: relay.events("teardown"), "no Teardown")
        assert relay.channels() == set()
        up.stop()

    run(scenario)


def test_stop_sends_the_last_reports_then_the_teardown_and_closes_the_tun() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun)
        up.open()
        up.start(asyncio.get_running_loop())
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)})
        # The host side's leave on a graceful stop is in the TUN when the runner stops.
        tun.send_report(LEAVE)
        up.stop()
        await until(lambda: relay.events("teardown"), "no Teardown")
        assert relay.channels() == set()
        assert [e["channels"] for e in relay.events("update")][-1] == []
        assert tun.runners_end_closed()

    run(scenario)


def test_keep_querier_runs_the_query_exchange_with_nothing_joined() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun, keep_querier=True)
        up.open()
        up.start(asyncio.get_running_loop())
        await until(lambda: any(p[9] == 2 for p in tun.written()), "no query in the TUN")
        assert relay.channels() == set()
        assert up.status()["gateways"]["igmp"]["state"] == "established"
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)})
        requests = len(relay.events("request"))
        tun.send_report(LEAVE)
        await until(lambda: relay.events("teardown"))
        # ... and asks for the querier again at once, with a fresh nonce.
        await until(lambda: len(relay.events("request")) > requests)
        await until(lambda: up.status()["gateways"]["igmp"]["state"] == "established")
        up.stop()

    run(scenario)


def test_the_relays_query_interval_brings_requests_and_a_restarted_relay_learns_again() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun)
        up.open()
        up.start(asyncio.get_running_loop())
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)})
        relay.core.tunnels.clear()  # the relay restarted: it knows nothing
        relay.core.secret = os.urandom(16)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)}, "not learnt again")
        assert up.status()["gateways"]["igmp"]["messages"]["queries-accepted"] >= 2
        up.stop()

    run(scenario, query_interval=1)


def test_forged_truncated_and_flooded_datagrams_are_dropped_and_counted() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun)
        up.open()
        up.start(asyncio.get_running_loop())
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)})
        port = up.status()["gateways"]["igmp"]["local-port"]
        data = b"\x06\x00" + udp_packet(SOURCE, GROUP, 5001, b"forged")

        def dropped() -> dict[str, int]:
            return dict(up.status()["dropped"])

        # From the relay's own address and port: truncated, of the wrong version, of a type a
        # gateway does not take.
        for junk in (b"\x04\x00\x00", b"\x06", b"\x16" + bytes(11), b"\x03" + bytes(7)):
            relay.sock.sendto(junk, (LOOPBACK, port))
        await until(lambda: sum(dropped().values()) == 4, "drops not counted")
        assert dropped()[str(Drop.AMT_BAD_VERSION)] == 1
        assert dropped()[str(Drop.AMT_NOT_FOR_GATEWAY)] == 1
        # A flood from elsewhere: each datagram counted, by the gateway or by the kernel.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind(("127.0.0.2", 0))  # not the relay's address
            for _ in range(2000):
                attacker.sendto(data, (LOOPBACK, port))
        flooded = (str(Drop.AMT_NOT_FROM_RELAY), str(Drop.QUEUE_FULL))
        await until(lambda: sum(dropped().get(r, 0) for r in flooded) >= 2000, "flood")
        assert not [p for p in tun.written() if p.endswith(b"forged")]
        assert up.status()["gateways"]["igmp"]["state"] == "established"
        up.stop()

    run(scenario)


def test_what_the_kernel_sends_out_of_the_tun_that_is_no_report_is_counted() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        up = upstream(relay, tun)
        up.open()
        up.start(asyncio.get_running_loop())
        ipv6 = bytes([0x60]) + bytes(39)
        for junk in (b"\x00junk", ipv6, report_packet(Family.V4, bytes(4),
                                                      Report(3, (JOIN,)))[:-2]):
            tun.kernel.send(junk)
        await until(lambda: sum(up.status()["tun"]["dropped"].values()) == 3)
        d = up.status()["tun"]["dropped"]
        assert d[str(Drop.NOT_IP)] == 1
        assert d[str(Drop.NOT_PROXIED)] == 1  # IPv6, and the proxy speaks no MLD here
        assert relay.channels() == set()
        up.stop()

    run(scenario)


def test_a_tun_that_cannot_be_made_refuses_and_leaves_nothing() -> None:
    def refuse(name: str) -> int:
        raise OSError(16, "Device or resource busy")

    made: list[socket.socket] = []

    def sockets(family: Family) -> socket.socket:
        made.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        return made[-1]

    up = AmtUpstream("amt1", AmtSettings(relay="10.30.2.2"), [Family.V4], tun_opener=refuse,
                     socket_maker=sockets)
    with pytest.raises(AmtError, match="amt1: Device or resource busy"):
        up.open()
    assert made == []

    tun = FakeTun()

    def no_socket(family: Family) -> socket.socket:
        raise OSError(97, "Address family not supported by protocol")

    up = AmtUpstream("amt1", AmtSettings(relay="fd30::2"), [Family.V4], tun_opener=tun.open,
                     socket_maker=no_socket)
    with pytest.raises(AmtError, match="Address family not supported"):
        up.open()
    assert tun.runners_end_closed()  # the TUN it opened is closed again
    tun.close()


CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}]
upstream:
  candidates:
    - {interface: u1}
%s
"""


def test_a_reload_that_adds_removes_or_changes_an_amt_upstream_is_refused() -> None:
    plain = parse_config(CONFIG % "")
    amt = parse_config(CONFIG % "    - {interface: amt1, amt: {relay: 10.30.2.2}}")
    moved = parse_config(CONFIG % "    - {interface: amt1, amt: {relay: 10.30.2.3}}")
    same = parse_config(CONFIG % "    - {interface: amt1, priority: 5, amt: {relay: 10.30.2.2}}")
    assert AmtUpstreams.reload_refusal(plain, plain) is None
    assert AmtUpstreams.reload_refusal(amt, same) is None  # its selection is the engine's
    for old, new in ((plain, amt), (amt, plain), (amt, moved)):
        refusal = AmtUpstreams.reload_refusal(old, new)
        assert refusal is not None
        assert "amt1" in refusal
        assert "restart" in refusal
    assert not AmtUpstreams(plain)
    assert list(AmtUpstreams(amt).upstreams) == ["amt1"]
