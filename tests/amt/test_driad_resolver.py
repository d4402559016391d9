"""DRIAD's lookups (``amt.resolver``) against the lab's DNS server (``mcastlab.dnsserver``) on
the loopback, in process: what an AMTRELAY answer becomes, and what a forged, broken or
hostile answer becomes (a counted failure, never an exception).

::

    DriadResolver --UDP 127.0.0.1--> DnsCore (one per scenario, honest or forging)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import dns.resolver
import pytest

from mcastlab.dnsserver import DnsCore
from mcastproxy.amt import resolver as resolver_module
from mcastproxy.amt.driad import MAX_CHOICES, Answer, Lookup, RelayTarget
from mcastproxy.amt.resolver import REASONS, DriadResolver
from mcastproxy.family import Family

T = TypeVar("T")
LIFETIME = 0.6


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def rev(source: str) -> str:
    return ipaddress.ip_address(source).reverse_pointer + "."


class Server:
    """``DnsCore`` on a loopback UDP socket in the running loop."""

    def __init__(self, records: Iterable[str], forge: str | None = None) -> None:
        self.core = DnsCore(records, forge)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.queries: list[dict[str, object]] = []
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        data, peer = self.sock.recvfrom(65535)
        out, info = self.core.answer(data)
        self.queries.append(info)
        if out is not None:
            self.sock.sendto(out, peer)

    def resolver(self, prefer: Family = Family.V4) -> DriadResolver:
        server = (ipaddress.ip_address("127.0.0.1"), self.sock.getsockname()[1])
        return DriadResolver(server, prefer=prefer, pick=lambda n: 0, lifetime=LIFETIME)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


async def lookup(records: Iterable[str], source: str, *, forge: str | None = None,
                 prefer: Family = Family.V4) -> Answer:
    server = Server(records, forge)
    try:
        return await server.resolver(prefer).lookup(ip(source))
    finally:
        server.close()


S = "10.0.9.1"
S6 = "fd00:9::1"


@pytest.mark.parametrize(("records", "source", "relay", "ttl"), [
    # D bit set: the relay's own address; clear: an address to discover one at.
    ([f"{rev(S)} 60 AMTRELAY 10 1 1 10.30.2.2"], S, RelayTarget(ip("10.30.2.2"), False), 60),
    ([f"{rev(S)} 60 AMTRELAY 10 0 1 10.30.2.2"], S, RelayTarget(ip("10.30.2.2"), True), 60),
    ([f"{rev(S6)} 30 AMTRELAY 10 1 2 fd30:2::2"], S6, RelayTarget(ip("fd30:2::2"), False), 30),
    # Precedence: the lower first, whatever the order in the answer (the other is the next
    # to fail over to, test_every_relay_of_the_answer_is_kept_to_fail_over_to).
    ([f"{rev(S)} 60 AMTRELAY 20 1 1 10.30.2.2", f"{rev(S)} 60 AMTRELAY 5 1 1 10.30.4.2"], S,
     RelayTarget(ip("10.30.4.2"), False), 60),
    # A relay by name: its A record, the TTL the shorter of the two.
    ([f"{rev(S)} 60 AMTRELAY 10 1 3 relay.lab.", "relay.lab. 20 A 10.30.4.2"], S,
     RelayTarget(ip("10.30.4.2"), False), 20),
    # A record whose relay cannot be one is skipped for the next.
    ([f"{rev(S)} 60 AMTRELAY 1 1 1 127.0.0.1", f"{rev(S)} 60 AMTRELAY 2 1 1 10.30.2.2"], S,
     RelayTarget(ip("10.30.2.2"), False), 60),
    # Through a CNAME (RFC 2317 classless delegation does this).
    ([f"{rev(S)} 60 CNAME 1.0/9.0.10.in-addr.arpa.",
      "1.0/9.0.10.in-addr.arpa. 40 AMTRELAY 0 1 1 10.30.2.2"], S,
     RelayTarget(ip("10.30.2.2"), False), 40),
])  # fmt: skip
def test_an_amtrelay_answer_names_the_relay(
    records: list[str], source: str, relay: RelayTarget, ttl: float
) -> None:
    answer = run(lambda: lookup(records, source))
    assert answer.relays[0] == relay
    assert (answer.ttl, answer.lookup, answer.why) == (ttl, Lookup.FOUND, "")


def test_every_relay_of_the_answer_is_kept_to_fail_over_to() -> None:
    records = [f"{rev(S)} 60 AMTRELAY 30 0 3 relay.lab.", "relay.lab. 20 A 10.30.5.2",
               f"{rev(S)} 60 AMTRELAY 20 1 1 10.30.2.2",
               f"{rev(S)} 60 AMTRELAY 5 1 1 10.30.4.2",
               f"{rev(S)} 60 AMTRELAY 25 1 1 127.0.0.1",  # cannot be a relay: left out
               f"{rev(S)} 60 AMTRELAY 40 1 1 10.30.4.2",  # the same again: once
               f"{rev(S)} 60 AMTRELAY 50 1 1 10.30.6.2",
               f"{rev(S)} 60 AMTRELAY 60 1 1 10.30.7.2"]  # past MAX_CHOICES
    answer = run(lambda: lookup(records, S))
    assert answer.relays == (RelayTarget(ip("10.30.4.2"), False),
                             RelayTarget(ip("10.30.2.2"), False),
                             RelayTarget(ip("10.30.5.2"), True),
                             RelayTarget(ip("10.30.6.2"), False))
    assert len(answer.relays) == MAX_CHOICES
    assert answer.ttl == 20  # a name's TTL bounds the answer's


def test_a_slow_name_to_fail_over_to_is_left_out_within_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fallback's name is never answered (a server that only knows the first relay):
    # the answer comes with the first relay once the fallback budget is spent, not after
    # the name's whole lifetime.
    monkeypatch.setattr(resolver_module, "FALLBACK_TIME", 0.1)
    records = [f"{rev(S)} 60 AMTRELAY 10 1 1 10.30.4.2",
               f"{rev(S)} 60 AMTRELAY 20 1 3 slow.lab."]

    async def scenario() -> tuple[Answer, float]:
        server = Server(records)
        real = server.core.answer

        def answer(data: bytes) -> tuple[bytes | None, dict[str, object]]:
            out, info = real(data)
            return (None if "slow.lab" in str(info.get("name")) else out), info

        server.core.answer = answer  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            result = await server.resolver().lookup(ip(S))
        finally:
            server.close()
        return result, loop.time() - start

    answer, took = run(scenario)
    assert answer.relays == (RelayTarget(ip("10.30.4.2"), False),)
    assert took < LIFETIME


def test_a_relay_by_name_takes_the_tunnels_family_first() -> None:
    records = [f"{rev(S)} 60 AMTRELAY 10 1 3 relay.lab.", "relay.lab. 60 A 10.30.4.2",
               "relay.lab. 60 AAAA fd30:4::2"]
    v4 = run(lambda: lookup(records, S))
    v6 = run(lambda: lookup(records, S, prefer=Family.V6))
    assert v4.relays == (RelayTarget(ip("10.30.4.2"), False),)
    assert v6.relays == (RelayTarget(ip("fd30:4::2"), False),)


@pytest.mark.parametrize(("records", "lookup_", "ttl"), [
    ([], Lookup.NO_RECORD, 1.0),  # NXDOMAIN: the SOA's minimum (RFC 2308 §5)
    ([f"{rev(S)} 60 TXT hello"], Lookup.NO_RECORD, 1.0),  # NODATA
    ([f"{rev(S)} 90 AMTRELAY 10 0 0 ."], Lookup.NO_RELAY, 90.0),  # type 0 (RFC 8777 §4.2.3)
])  # fmt: skip
def test_no_relay_for_the_source(records: list[str], lookup_: Lookup, ttl: float) -> None:
    answer = run(lambda: lookup(records, S))
    assert (answer.relays, answer.lookup, answer.ttl) == ((), lookup_, ttl)


GOOD = [f"{rev(S)} 60 AMTRELAY 10 1 1 10.30.2.2"]


@pytest.mark.parametrize(("forge", "records", "why"), [
    ("wrong-id", GOOD, "timeout"),  # dnspython ignores it and waits for the real answer
    ("wrong-question", GOOD, "timeout"),
    ("garbage", GOOD, "timeout"),
    ("silent", GOOD, "timeout"),
    ("truncated", GOOD, "truncated"),  # TC: asked again over TCP, which is not served
    ("huge", GOOD, "too-many-records"),
    ("cname-loop", GOOD, "cname-chain"),
    ("servfail", GOOD, "servfail"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 1 224.0.0.1"], "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 1 127.0.0.1"], "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 1 0.0.0.0"], "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 2 ::"], "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 2 ff02::1"], "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 3 relay.lab.", "relay.lab. 60 A 127.0.0.1"],
     "bad-relay"),
    (None, [f"{rev(S)} 60 AMTRELAY 10 1 3 gone.lab."], "relay-name-unresolved"),
])  # fmt: skip
def test_forged_broken_and_hostile_answers_are_failures_with_a_reason(
    forge: str | None, records: list[str], why: str
) -> None:
    answer = run(lambda: lookup(records, S, forge=forge))
    assert answer == Answer((), 0.0, Lookup.FAILED, why)
    assert why in REASONS


def test_a_host_with_no_resolver_fails_every_lookup_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_resolv_conf(self: object, f: object) -> None:
        raise dns.resolver.NoResolverConfiguration(f"cannot open {f}")

    monkeypatch.setattr(dns.resolver.BaseResolver, "read_resolv_conf", no_resolv_conf)

    async def scenario() -> Answer:
        return await DriadResolver(None, lifetime=LIFETIME).lookup(ip(S))

    assert run(scenario) == Answer((), 0.0, Lookup.FAILED, "no-resolver")


def test_lookups_run_on_the_loop_without_blocking_it() -> None:
    async def scenario() -> tuple[list[Answer], int]:
        server = Server(GOOD, "silent")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        resolver = server.resolver()
        answers = await asyncio.gather(*(resolver.lookup(ip(f"10.0.9.{i}"))
                                         for i in range(1, 9)))
        ticker.cancel()
        server.close()
        return list(answers), ticks

    answers, ticks = run(scenario)
    assert {a.why for a in answers} == {"timeout"}
    assert ticks >= 10  # the loop ran all along (8 lookups waited out one lifetime together)
