"""``amt.upstream.AmtUpstream``, the daemon's runner of an AMT upstream, on fakes: the TUN device
is one end of a datagram socket pair (the test holds the kernel's end), and the relay is the
lab's ``RelayCore`` on a UDP socket on the loopback (``port``: its own). Each test runs an
asyncio loop and waits on conditions with a timeout, no fixed sleeps.

::

    test (the kernel's side of the TUN) <-- socketpair --> AmtUpstream --UDP 127.0.0.1--> RelayCore
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
from amt_fakes import GROUP, LOOPBACK, SOURCE, FakeTun, Relay, run, until

from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.gateway import GatewayTimers
from mcastproxy.amt.inner import read_query, report_packet
from mcastproxy.amt.upstream import AmtError, AmtUpstream
from mcastproxy.config import AmtSettings
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType, Report


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
