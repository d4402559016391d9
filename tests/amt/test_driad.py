"""DRIAD's decisions (``amt.driad``, RFC 8777): the records' order, the D bit, the addresses
that cannot be a relay's, and the cache of answers on a virtual clock (``now`` given)."""

from __future__ import annotations

import ipaddress

import pytest

from mcastproxy.amt.driad import (
    FAILURE_HOLD,
    MAX_CHOICES,
    MAX_UNANSWERED,
    UNRESOLVED,
    AmtRelayRecord,
    Answer,
    DriadCache,
    Lookup,
    RelayTarget,
    by_precedence,
    relay_problem,
    target_of,
)
from mcastproxy.family import Family


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


S1, S2, S3 = ip("10.0.9.1"), ip("10.0.9.2"), ip("10.0.9.3")
R1 = RelayTarget(ip("10.30.2.2"), discover=False)
R2 = RelayTarget(ip("10.30.4.2"), discover=True)
R3 = RelayTarget(ip("10.30.5.2"), discover=False)
S6 = ip("fd00:9::1")


def found(relay: RelayTarget, ttl: float = 60.0) -> Answer:
    return Answer((relay,), ttl, Lookup.FOUND)


def record(precedence: int, relay: str, d: bool = True) -> AmtRelayRecord:
    return AmtRelayRecord(precedence, d, 1, ip(relay))


def test_lower_precedence_first_and_ties_in_the_drawn_order() -> None:
    records = [record(20, "10.0.0.3"), record(10, "10.0.0.1"), record(10, "10.0.0.2")]
    first = by_precedence(records, lambda n: 0)
    assert [r.relay for r in first] == [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]
    last = by_precedence(records, lambda n: n - 1)
    assert [r.relay for r in last] == [ip("10.0.0.2"), ip("10.0.0.1"), ip("10.0.0.3")]
    # A pick out of range (a broken source of randomness) still picks within the tier.
    assert len(by_precedence(records, lambda n: 99)) == 3


def test_the_d_bit_says_whether_the_address_is_a_relays_or_one_to_discover_at() -> None:
    # RFC 8777 §4.2.2: D clear -> Relay Discovery first; D set -> the relay's own address.
    assert target_of(record(0, "10.0.0.1", d=False), ip("10.0.0.1")).discover is True
    assert target_of(record(0, "10.0.0.1", d=True), ip("10.0.0.1")).discover is False


@pytest.mark.parametrize(("address", "why"), [
    ("224.0.0.1", "multicast"), ("ff0e::1", "multicast"), ("127.0.0.1", "loopback"),
    ("::1", "loopback"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("255.255.255.255", "broadcast"), ("::ffff:10.0.0.1", "IPv4-mapped"),
])  # fmt: skip
def test_addresses_that_cannot_be_a_relays_are_refused(address: str, why: str) -> None:
    assert relay_problem(ip(address)) == why


def test_good_relay_addresses_and_garbage() -> None:
    assert relay_problem(ip("10.30.2.2")) is None
    assert relay_problem(ip("2001:db8::2")) is None
    assert relay_problem(b"\x01\x02\x03") == "not an address"


def cache(**kw: float) -> DriadCache:
    return DriadCache(min_ttl=kw.get("min_ttl", 5.0), max_ttl=kw.get("max_ttl", 3600.0),
                      size=int(kw.get("size", 16)))


def test_a_joined_source_is_asked_once_waits_and_is_kept_for_its_ttl() -> None:
    c = cache()
    assert c.want({S1}, 0.0) == [S1]
    assert c.relay(S1) is UNRESOLVED
    assert c.want({S1}, 0.1) == []  # being asked: not asked twice
    assert c.complete(S1, found(R1, 60), 0.5) is True
    assert c.relay(S1) == R1
    assert c.next_deadline() == 60.5
    assert c.want({S1}, 30.0) == []
    assert c.expired(60.0) == []
    # Expired: asked again, the old answer used meanwhile; the same answer moves nothing.
    assert c.expired(60.5) == [S1]
    assert c.next_deadline() is None  # being asked
    assert c.relay(S1) == R1
    assert c.complete(S1, found(R1, 60), 61.0) is False
    # A changed answer moves the source.
    assert c.expired(121.0) == [S1]
    assert c.complete(S1, found(R2, 60), 121.1) is True
    assert c.relay(S1) == R2


@pytest.mark.parametrize(("ttl", "kept"), [(0, 5.0), (2, 5.0), (60, 60.0), (10**9, 3600.0)])
def test_ttls_are_bounded_by_min_and_max(ttl: float, kept: float) -> None:
    c = cache()
    c.want({S1}, 0.0)
    c.complete(S1, found(R1, ttl), 0.0)
    assert c.next_deadline() == kept


def test_no_record_is_cached_for_its_negative_ttl_and_means_the_configured_relay() -> None:
    c = cache()
    c.want({S1}, 0.0)
    assert c.complete(S1, Answer((), 30.0, Lookup.NO_RECORD), 1.0) is True
    assert c.relay(S1) is None
    assert c.next_deadline() == 31.0
    assert c.want({S1}, 20.0) == []  # not asked again before then


def test_a_failure_keeps_the_relay_it_had_and_is_retried_after_the_hold() -> None:
    c = cache(max_ttl=10.0)
    c.want({S1, S2}, 0.0)
    c.complete(S1, found(R1), 0.0)
    failed = Answer((), 0.0, Lookup.FAILED, "timeout")
    # A source with no answer yet goes to the configured relay ...
    assert c.complete(S2, failed, 0.0) is True
    assert c.relay(S2) is None
    assert c.next_deadline() == min(10.0, FAILURE_HOLD)  # its retry, within max-ttl
    # ... one with an answer keeps its relay through a resolver outage.
    assert sorted(c.expired(10.0)) == [S1, S2]
    assert c.complete(S1, failed, 10.0) is False
    assert c.relay(S1) == R1


def test_sources_no_longer_joined_are_not_asked_again_and_are_evicted_first() -> None:
    c = cache(size=2)
    c.want({S1, S2}, 0.0)
    c.complete(S1, found(R1), 0.0)
    c.complete(S2, found(R2), 0.0)
    c.want({S2}, 1.0)  # S1 left
    assert c.expired(100.0) == [S2]  # S1's answer expired too: nobody needs it
    c.complete(S2, found(R2), 100.0)
    # S3 joins: the cache is full, S1 (not joined) makes room.
    assert c.want({S2, S3}, 101.0) == [S3]
    assert len(c) == 1  # S2; S3 is being asked
    c.complete(S3, found(R1), 101.0)
    assert c.relay(S1) is None  # forgotten: as if never asked
    assert len(c) == 2


def test_a_full_cache_of_joined_sources_sends_new_ones_to_the_configured_relay() -> None:
    c = cache(size=2)
    assert sorted(c.want({S1, S2}, 0.0)) == sorted([S1, S2])
    assert c.want({S1, S2, S3}, 0.0) == []  # no room: S3 is not asked
    assert c.relay(S3) is None
    c.complete(S1, found(R1), 0.0)
    c.complete(S2, found(R1), 0.0)
    assert c.want({S1, S2, S3}, 1.0) == []
    assert c.relay(S3) is None
    assert len(c) == 2


def test_an_answer_for_a_source_that_left_meanwhile_is_not_kept() -> None:
    c = cache()
    c.want({S1}, 0.0)
    c.want(set(), 0.1)
    c.complete(S1, found(R1), 0.2)
    assert len(c) == 0
    assert c.relay(S1) is None


def test_bad_bounds_are_caller_misuse() -> None:
    with pytest.raises(ValueError, match="min_ttl"):
        DriadCache(min_ttl=10, max_ttl=5)


def test_the_snapshot_is_plain_data() -> None:
    c = cache()
    c.want({S1}, 0.0)
    c.complete(S1, found(R2, 60), 0.0)
    assert c.snapshot() == {"10.0.9.1": {"relay": "10.30.4.2 (discovery)", "lookup": "found",
                                         "expires": 60.0, "passed-over": []}}


# --- failover (RFC 8777 §4.2.1) ---------------------------------------------------------------


def choices(*relays: RelayTarget, ttl: float = 60.0) -> Answer:
    return Answer(relays, ttl, Lookup.FOUND)


def test_a_relay_that_does_not_answer_sends_its_sources_to_their_next_relay() -> None:
    c = cache()
    c.want({S1, S2, S3}, 0.0)
    c.complete(S1, choices(R1, R2), 0.0)
    c.complete(S2, choices(R1), 0.0)
    c.complete(S3, choices(R2, R1), 0.0)
    assert sorted(c.unanswered(R1, Family.V4, 7.0)) == [S1, S2]
    assert c.relay(S1) == R2  # the next record's relay
    assert c.relay(S2) is None  # none left: the configured relay
    assert c.relay(S3) == R2  # R1 was only its fallback: untouched
    assert c.failovers == 2
    assert c.snapshot()["10.0.9.1"]["passed-over"] == [str(R1)]
    assert c.passed_over(7.0) == {f"{R1} igmp": 7.0 + FAILURE_HOLD}
    # Its next relay silent too: on to the configured relay, and S3 past both.
    assert sorted(c.unanswered(R2, Family.V4, 14.0)) == [S1, S3]
    assert c.relay(S1) is None
    assert c.relay(S3) is None
    assert c.failovers == 4


def test_the_relays_of_an_answer_are_kept_up_to_a_bound() -> None:
    relays = [RelayTarget(ip(f"10.30.9.{i}"), discover=False) for i in range(1, 10)]
    c = cache()
    c.want({S1}, 0.0)
    c.complete(S1, choices(*relays), 0.0)
    for i in range(MAX_CHOICES):
        assert c.relay(S1) == relays[i]
        c.unanswered(relays[i], Family.V4, float(i))
    assert c.relay(S1) is None  # past the kept ones: the configured relay


def test_a_failure_is_per_inner_family() -> None:
    # The relay's MLD gateway gave up: its IPv4 sources (an IGMP gateway) stay.
    c = cache()
    c.want({S1, S6}, 0.0)
    c.complete(S1, choices(R1, R2), 0.0)
    c.complete(S6, choices(R1, R2), 0.0)
    assert c.unanswered(R1, Family.V6, 1.0) == [S6]
    assert (c.relay(S1), c.relay(S6)) == (R1, R2)


def test_a_relay_that_did_not_answer_is_passed_over_for_a_while_by_new_answers() -> None:
    c = cache()
    c.want({S1}, 0.0)
    c.complete(S1, choices(R1), 0.0)
    c.unanswered(R1, Family.V4, 10.0)
    c.want({S1, S2}, 11.0)
    assert c.complete(S2, choices(R1, R2), 11.0) is True
    assert c.relay(S2) == R2
    assert c.snapshot()["10.0.9.2"]["passed-over"] == [str(R1)]
    # The hold over, a new source goes to it first again.
    c.want({S1, S2, S3}, 10.0 + FAILURE_HOLD)
    c.complete(S3, choices(R1, R2), 10.0 + FAILURE_HOLD)
    assert c.relay(S3) == R1
    assert c.passed_over(10.0 + FAILURE_HOLD) == {}


def test_an_unchanged_answer_leaves_a_source_where_it_failed_over_to() -> None:
    c = cache(max_ttl=10.0)
    c.want({S1}, 0.0)
    c.complete(S1, choices(R1, R2), 0.0)
    c.unanswered(R1, Family.V4, 1.0)
    # Asked again after the hold: the same relays, so it stays on R2 (no outage at R1 again).
    assert c.expired(FAILURE_HOLD + 2.0) == [S1]
    assert c.complete(S1, choices(R1, R2), FAILURE_HOLD + 2.0) is False
    assert c.relay(S1) == R2
    # A failed lookup keeps it there too.
    c.expired(FAILURE_HOLD + 20.0)
    c.complete(S1, Answer((), 0.0, Lookup.FAILED, "timeout"), FAILURE_HOLD + 20.0)
    assert c.relay(S1) == R2
    # A changed answer starts from its first relay again.
    c.expired(2 * FAILURE_HOLD + 40.0)
    assert c.complete(S1, choices(R1, R3), 2 * FAILURE_HOLD + 40.0) is True
    assert c.relay(S1) == R1


def test_a_flood_of_silent_relays_keeps_a_bounded_memory() -> None:
    c = cache()
    for i in range(MAX_UNANSWERED + 50):
        relay = RelayTarget(ip(f"10.{i // 256}.{i % 256}.1"), discover=False)
        assert c.unanswered(relay, Family.V4, 0.0) == []  # no source goes through it
    assert len(c.passed_over(0.0)) == MAX_UNANSWERED
    # The oldest marks went first.
    assert f"{RelayTarget(ip('10.0.0.1'), discover=False)} igmp" not in c.passed_over(0.0)
