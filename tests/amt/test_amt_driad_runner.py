"""An AMT upstream with DRIAD (``amt.upstream`` with ``driad: true``, RFC 8777) on fakes: the
TUN is a socket pair, the relays are the lab's ``RelayCore`` on loopback addresses (one UDP
port, as relays share 2268), and the resolver is a stand-in that answers as the test says.

::

    test (kernel side) <-- socketpair --> AmtUpstream --UDP--> relay A 127.0.0.1 (configured)
                                               |      --UDP--> relay B 127.0.0.2 (S1's record)
                                          FakeResolver --UDP--> 127.0.0.4: no relay (down)
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from amt_fakes import FakeTun, Relay, until

from mcastlab.amtrelay import udp_packet
from mcastproxy.amt.driad import Answer, Lookup, RelayTarget
from mcastproxy.amt.gateway import GatewayTimers
from mcastproxy.amt.upstream import AmtUpstream
from mcastproxy.config import AmtSettings
from mcastproxy.family import Family
from mcastproxy.wire.messages import GroupRecord, RecordType


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


S1, S2, S3 = ip("10.0.9.1"), ip("10.0.9.2"), ip("10.0.9.3")
G, G2, H = ip("232.1.1.1"), ip("232.1.1.2"), ip("239.1.1.1")
A, B, C = "127.0.0.1", "127.0.0.2", "127.0.0.3"
DOWN = "127.0.0.4"
"""No relay there: its Requests get the kernel's port unreachable, never a query."""
ALLOW, BLOCK = RecordType.ALLOW_NEW_SOURCES, RecordType.BLOCK_OLD_SOURCES


def relay_at(address: str) -> Answer:
    return Answer((RelayTarget(ip(address), discover=False),), 60.0, Lookup.FOUND)


class FakeResolver:
    """Answers from ``answers`` (source -> Answer; none: no record), after ``gate`` opens."""

    def __init__(self) -> None:
        self.answers: dict[bytes, Answer] = {}
        self.asked: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def lookup(self, source: bytes) -> Answer:
        self.asked.append(source)
        await self.gate.wait()
        return self.answers.get(source, Answer((), 60.0, Lookup.NO_RECORD))


Scenario = Callable[[AmtUpstream, FakeTun, dict[str, Relay], FakeResolver], Awaitable[None]]


def run(scenario: Scenario, **settings: Any) -> None:
    async def main() -> None:
        first = Relay(query_interval=125, address=A)
        relays = {A: first, **{a: Relay(address=a, port=first.port) for a in (B, C)}}
        tun = FakeTun()
        resolver = FakeResolver()
        amt = AmtSettings(relay=A, port=first.port, driad=True, **settings)
        up = AmtUpstream("amt1", amt, [Family.V4], tun_opener=tun.open,
                         timers=GatewayTimers(0.05, 0.2),
                         resolver_maker=lambda s: resolver)  # type: ignore[arg-type,return-value]
        up.open()
        up.start(asyncio.get_running_loop())
        try:
            await scenario(up, tun, relays, resolver)
        finally:
            up.stop()
            for relay in relays.values():
                relay.close()
            tun.close()

    asyncio.run(main())


def ssm(kind: RecordType, group: bytes, *sources: bytes) -> GroupRecord:
    return GroupRecord(kind, group, sources)


ASM_JOIN = GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, H, ())


def test_each_source_goes_to_its_relay_and_any_source_joins_to_the_configured_one() -> None:
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        resolver.answers[S1] = relay_at(B)
        tun.send_report(ssm(ALLOW, G, S1), ssm(ALLOW, G2, S2), ASM_JOIN)
        await until(lambda: relays[B].channels() == {(S1, G)}, "S1 not at its relay")
        await until(lambda: relays[A].channels() == {(S2, G2), (None, H)})
        assert relays[C].channels() == set()
        # S1's data comes from its relay into the TUN.
        data = udp_packet(S1, G, 5001, b"from B")
        relays[B].stream(data)
        await until(lambda: data in tun.written(), "no data from B")
        status = up.status()
        driad = status["driad"]
        assert driad["lookups"] == {"found": 1, "no-record": 1}
        assert driad["sources"]["10.0.9.1"]["relay"] == "127.0.0.2"
        assert driad["gateways"]["127.0.0.2 igmp"]["state"] == "established"
        assert driad["gateways"]["127.0.0.2 igmp"]["groups"] == 1
        assert status["gateways"]["igmp"]["groups"] == 2
        assert status["dropped"] == {}
        # S1 leaves: its relay's gateway says so, tears down and goes.
        tun.send_report(ssm(BLOCK, G, S1))
        await until(lambda: relays[B].events("teardown"), "no Teardown at B")
        assert relays[B].channels() == set()
        assert up.status()["driad"]["gateways"] == {}
        assert relays[A].channels() == {(S2, G2), (None, H)}

    run(scenario)


def test_a_channel_waits_for_its_sources_answer() -> None:
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        resolver.gate.clear()
        resolver.answers[S1] = relay_at(B)
        tun.send_report(ssm(ALLOW, G, S1))
        await until(lambda: resolver.asked == [S1])
        assert up.status()["driad"]["asking"] == 1
        await asyncio.sleep(0.1)  # nothing may reach a relay meanwhile
        assert relays[A].channels() == relays[B].channels() == set()
        resolver.gate.set()
        await until(lambda: relays[B].channels() == {(S1, G)})
        assert relays[A].channels() == set()

    run(scenario)


def test_an_expired_answer_is_asked_again_and_a_changed_one_moves_the_source() -> None:
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        resolver.answers[S1] = Answer(relay_at(B).relays, 0.3, Lookup.FOUND)
        tun.send_report(ssm(ALLOW, G, S1))
        await until(lambda: relays[B].channels() == {(S1, G)})
        await until(lambda: len(resolver.asked) >= 2, "not asked again at the TTL")
        assert relays[B].channels() == {(S1, G)}  # the same answer moves nothing
        resolver.answers[S1] = relay_at(C)
        await until(lambda: relays[C].channels() == {(S1, G)}, "S1 did not move to C")
        await until(lambda: relays[B].events("teardown"), "B was not torn down")
        assert relays[B].channels() == set()
        assert relays[A].channels() == set()

    run(scenario, min_ttl=0.0)


def test_failures_and_a_full_set_of_relays_fall_back_to_the_configured_relay() -> None:
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        resolver.answers[S1] = relay_at(B)
        resolver.answers[S2] = Answer((), 0.0, Lookup.FAILED, "timeout")
        resolver.answers[S3] = relay_at(C)  # a second relay: over max-relays (1)
        tun.send_report(ssm(ALLOW, G, S1))
        await until(lambda: relays[B].channels() == {(S1, G)})
        tun.send_report(ssm(ALLOW, G, S2, S3))
        await until(lambda: relays[A].channels() == {(S2, G), (S3, G)})
        assert relays[B].channels() == {(S1, G)}
        assert relays[C].channels() == set()
        driad = up.status()["driad"]
        assert driad["failures"] == {"timeout": 1}
        assert driad["lookups"]["relays-full"] >= 1
        assert list(driad["gateways"]) == ["127.0.0.2 igmp"]

    run(scenario, max_relays=1)


def test_stop_tears_down_every_relays_tunnel() -> None:
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        resolver.answers[S1] = relay_at(B)
        tun.send_report(ssm(ALLOW, G, S1), ssm(ALLOW, G2, S2))
        await until(lambda: relays[B].channels() == {(S1, G)})
        await until(lambda: relays[A].channels() == {(S2, G2)})
        up.stop()
        await until(lambda: relays[A].events("teardown") and relays[B].events("teardown"))

    run(scenario)


def test_a_relay_that_does_not_answer_fails_over_to_the_next_record_then_the_configured() -> None:
    # RFC 8777 §4.2.1: S1's first relay is down, its next record's is B; S2 has only the
    # relay that is down, so it ends on the configured relay A. One gateway to the relay
    # that is down serves both, and gives up once (0.05 + 0.1 + 0.2 s of silence here).
    async def scenario(up: AmtUpstream, tun: FakeTun, relays: dict[str, Relay],
                       resolver: FakeResolver) -> None:
        down = RelayTarget(ip(DOWN), discover=False)
        resolver.answers[S1] = Answer((down, *relay_at(B).relays), 60.0, Lookup.FOUND)
        resolver.answers[S2] = Answer((down,), 60.0, Lookup.FOUND)
        tun.send_report(ssm(ALLOW, G, S1), ssm(ALLOW, G2, S2))
        await until(lambda: f"{DOWN} igmp" in up.status()["driad"]["gateways"],
                    "no gateway to the relay that is down")
        await until(lambda: relays[B].channels() == {(S1, G)}, "S1 did not fail over to B")
        await until(lambda: relays[A].channels() == {(S2, G2)}, "S2 not on the configured relay")
        driad = up.status()["driad"]
        assert driad["failovers"] == 2
        assert list(driad["passed-over"]) == [f"{DOWN} igmp"]
        assert driad["sources"]["10.0.9.1"] | {"expires": 0} == {
            "relay": B, "lookup": "found", "expires": 0, "passed-over": [DOWN]}
        assert driad["sources"]["10.0.9.2"]["relay"] is None
        assert list(driad["gateways"]) == [f"{B} igmp"]  # the silent one's is gone
        assert relays[C].channels() == set()
        # S1 leaves and joins again: its answer still cached, it goes to B at once.
        tun.send_report(ssm(BLOCK, G, S1))
        await until(lambda: relays[B].channels() == set())
        tun.send_report(ssm(ALLOW, G, S1))
        await until(lambda: relays[B].channels() == {(S1, G)})
        assert up.status()["driad"]["failovers"] == 2
        assert up.status()["dropped"] == {}

    run(scenario)

