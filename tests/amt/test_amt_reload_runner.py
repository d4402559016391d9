"""A reload's AMT part (``AmtUpstreams.stage`` / ``commit`` / ``abort``) on fakes: the TUN a
socket pair, the relays the lab's ``RelayCore`` on loopback UDP sockets.

``stage`` makes an added upstream's TUN before the kernel's VIFs; ``commit`` starts it, gives
a changed one new gateways on the same TUN (the old tunnel torn down) and stops a removed one
(Teardown, TUN closed); ``abort`` closes what ``stage`` made. Nothing of a refused reload is
left behind.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from amt_fakes import GROUP, LOOPBACK, SOURCE, FakeTun, Relay, run, until

from mcastproxy.amt.gateway import GatewayTimers
from mcastproxy.amt.upstream import AmtError, AmtUpstreams
from mcastproxy.config import Config, parse_config
from mcastproxy.wire.messages import GroupRecord, RecordType

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}]
upstream:
  candidates:
    - {interface: u1}
%s
"""
JOIN = GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, GROUP, (SOURCE,))


def amt(port: int, extra: str = "") -> Config:
    return parse_config(CONFIG % ("    - {interface: amt1, liveness: {queries: true}, "
                                  f"amt: {{relay: {LOOPBACK}, port: {port}}}{extra}}}"))


PLAIN = parse_config(CONFIG % "")


def upstreams(config: Config, tun: FakeTun) -> AmtUpstreams:
    return AmtUpstreams(config, tun_opener=tun.open, timers=GatewayTimers(0.05, 0.2))


def test_a_reload_adds_changes_and_removes_an_amt_upstream() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        loop = asyncio.get_running_loop()
        amts = upstreams(PLAIN, tun)
        amts.start(loop)
        assert not amts
        # Added: the TUN is made at stage, the gateway starts at commit.
        amts.stage(PLAIN, amt(relay.port))
        assert tun.opened == ["amt1"]
        assert not amts
        assert relay.events("request") == []
        amts.commit()
        assert list(amts.upstreams) == ["amt1"]
        await until(lambda: amts.status()["amt1"]["gateways"]["igmp"]["state"] == "established")
        tun.send_report(JOIN)
        await until(lambda: relay.channels() == {(SOURCE, GROUP)})
        # Changed: another relay (port); the old tunnel is torn down, the new one learns the
        # membership, on the same TUN.
        second = Relay(address=LOOPBACK)
        try:
            amts.stage(amt(relay.port), amt(second.port))
            amts.commit()
            await until(lambda: relay.events("teardown"), "the old relay got no Teardown")
            await until(lambda: second.channels() == {(SOURCE, GROUP)}, "not learnt")
            assert tun.opened == ["amt1"]
            assert not tun.runners_end_closed()
            # Removed: Teardown, and the TUN closed.
            amts.stage(amt(second.port), PLAIN)
            amts.commit()
            await until(lambda: second.events("teardown"), "the relay got no Teardown")
            assert tun.runners_end_closed()
            assert not amts
        finally:
            second.close()

    run(scenario)


def test_a_refused_reload_closes_what_stage_made() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        amts = upstreams(PLAIN, tun)
        amts.start(asyncio.get_running_loop())
        amts.stage(PLAIN, amt(relay.port))
        amts.abort()
        assert tun.runners_end_closed()
        assert not amts
        await asyncio.sleep(0.05)
        assert relay.events("request") == []
        amts.commit()  # nothing staged: nothing happens
        assert not amts

    run(scenario)


def test_a_tun_that_cannot_be_made_refuses_the_reload() -> None:
    def busy(name: str) -> int:
        raise OSError(16, "Device or resource busy")

    amts = AmtUpstreams(PLAIN, tun_opener=busy)
    with pytest.raises(AmtError, match="amt1: Device or resource busy") as info:
        amts.stage(PLAIN, amt(2268))
    assert info.value.fault == "system"
    amts.commit()
    assert not amts


def test_changing_an_amt_upstreams_address_needs_a_restart() -> None:
    tun = FakeTun()
    try:
        amts = upstreams(amt(2268), tun)
        with pytest.raises(AmtError, match="needs a restart") as info:
            amts.stage(amt(2268), amt(2268, ", address: 192.0.0.2"))
        assert info.value.fault == "config"
        assert tun.opened == []
    finally:
        tun.close()


def test_the_socket_of_a_changed_upstream_that_cannot_be_made_keeps_the_old_one() -> None:
    async def scenario(relay: Relay, tun: FakeTun) -> None:
        made: list[int] = []

        def sockets(family: object) -> socket.socket:
            if made:
                raise OSError(24, "Too many open files")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(("0.0.0.0", 0))
            made.append(sock.fileno())
            return sock

        amts = AmtUpstreams(amt(relay.port), tun_opener=tun.open, socket_maker=sockets,
                            timers=GatewayTimers(0.05, 0.2))
        amts.open()
        amts.start(asyncio.get_running_loop())
        await until(lambda: amts.status()["amt1"]["gateways"]["igmp"]["state"] == "established")
        amts.stage(amt(relay.port), amt(relay.port + 1))
        amts.commit()  # said in the log; the old gateway goes on
        assert amts.status()["amt1"]["port"] == relay.port
        assert amts.status()["amt1"]["gateways"]["igmp"]["state"] == "established"
        amts.stop()

    run(scenario)
