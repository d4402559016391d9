"""DNS Reverse IP AMT Discovery (DRIAD, RFC 8777): which relay carries a source's channels.

Theory of operation
===================

A source's operator publishes, in the reverse zone of the source's address (``in-addr.arpa``
or ``ip6.arpa``), AMTRELAY records (RR type 260, RFC 8777 §4) naming the relays that can
forward its traffic. An AMT upstream with ``driad`` asks for them (``amt.resolver``, the I/O)
when a source is first joined, and carries that source's channels to the relay they name;
any-source joins, and sources with no record, go to the upstream's configured relay. This
module is what is decided from the answers, with no I/O and no clock (``now`` is given):

- The records (``AmtRelayRecord``, plain data from the resolver) are ordered by precedence,
  lowest first (§4.2.1: "relays ... with a lower value for precedence are to be attempted
  first"); records of equal precedence in a random order (``pick``), so that gateways spread
  over them. Each becomes a ``RelayTarget``: an IPv4 (type 1) or IPv6 (type 2) address, or a
  name's (type 3, resolved to A/AAAA by the resolver). The D bit (§4.2.2, "Discovery
  Optional") says whether the address is a relay's own: clear, the gateway MUST send Relay
  Discovery to it first (it may be a load balancer or a broker), so it is a discovery
  address (``discover=True``); set, the gateway sends its Request there at once. Type 0 says
  there is no relay (§4.2.3): the source falls back to the configured relay.
- An address that cannot be a relay (multicast, loopback, unspecified, broadcast,
  link-local: ``relay_problem``) is never used: the record is skipped and counted.
- The cache (``DriadCache``) keeps each answer for its TTL, bounded by ``min_ttl`` and
  ``max_ttl`` (a TTL of 0 would ask at every join; a week-long one would pin a moved relay):
  a positive answer for its records' TTL; no record (NXDOMAIN, NODATA, type 0) for the
  negative TTL the resolver gives (RFC 2308 §5: the SOA's minimum) or ``NEGATIVE_TTL``;
  a failed lookup (time-out, SERVFAIL, a forged or broken answer) for ``FAILURE_HOLD``,
  keeping the answer it had, if any, meanwhile (a resolver that fails does not move
  channels). An answer that expires while its source is joined is asked for again
  (``expired``), its old one used until the new comes; a changed answer moves the source.
- Failover (RFC 8777 §4.2.1, RFC 7450 §5.2.3.4): an answer keeps its usable relays in
  precedence order (``MAX_CHOICES`` at most), the source going through the first. A relay
  whose gateway gives up (no Relay Advertisement or Membership Query after its retries) is
  ``unanswered``: every source of that inner family going through it moves on to its next
  relay, after the last to the configured relay, and the relay is passed over by new answers
  for ``FAILURE_HOLD``. A source stays where it moved for as long as its answer names the
  same relays in the same order: asked again at its TTL, an unchanged answer does not send
  it back to the relay that failed (a changed one, or the same in another order, starts
  from its first relay not passed over).
- Bounds: ``size`` entries at most. An entry no joined source needs is evicted first (least
  recently used); when every entry is needed, a new source is not looked up and goes to the
  configured relay (``Lookup.CACHE_FULL``). A source being looked up for the first time is
  ``UNRESOLVED``: its channels wait (a lookup ends within the resolver's lifetime).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from mcastproxy.family import Family

DEFAULT_SIZE: Final = 4096
NEGATIVE_TTL: Final = 300.0
"""Seconds a source with no record keeps going to the configured relay, when the answer
carried no SOA to take the negative TTL from (RFC 2308 §5)."""
FAILURE_HOLD: Final = 30.0
"""Seconds before a failed lookup is tried again (within ``min_ttl`` and ``max_ttl``)."""
MAX_RECORDS: Final = 32
"""AMTRELAY records of one answer looked at; an answer with more is refused whole."""
MAX_CHOICES: Final = 4
"""Relays of one answer kept, in precedence order, to fail over to."""
MAX_UNANSWERED: Final = 256
"""Relays remembered as not answering; past that the oldest marks are forgotten."""


class RelayType(IntEnum):
    """The AMTRELAY record's relay type (RFC 8777 §4.2.3)."""

    NONE = 0
    IPV4 = 1
    IPV6 = 2
    NAME = 3


class Lookup(StrEnum):
    """How a source's relay was decided; the value is what status counts."""

    FOUND = "found"  # a relay from its AMTRELAY record
    NO_RECORD = "no-record"  # NXDOMAIN or NODATA: the configured relay
    NO_RELAY = "no-relay"  # only type-0 records (RFC 8777 §4.2.3): the configured relay
    FAILED = "failed"  # the lookup failed (its reason counted apart)
    CACHE_FULL = "cache-full"  # not looked up: the cache holds only joined sources


@dataclass(frozen=True, slots=True)
class RelayTarget:
    """Where a gateway goes: ``address`` (packed, 4 or 16 octets: the tunnel's family) and
    whether it is a discovery address (Relay Discovery first) or the relay's own."""

    address: bytes
    discover: bool

    def __str__(self) -> str:
        text = str(ipaddress.ip_address(self.address))
        return f"{text} (discovery)" if self.discover else text


@dataclass(frozen=True, slots=True)
class AmtRelayRecord:
    """One AMTRELAY record as plain data: ``relay`` is the packed address (types 1 and 2),
    the name (type 3, text) or None (type 0)."""

    precedence: int
    discovery_optional: bool
    relay_type: int
    relay: bytes | str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the resolver found for a source: ``relays`` in the order to use them (empty: the
    configured relay), for ``ttl`` seconds; ``lookup`` says how, ``why`` the failure."""

    relays: tuple[RelayTarget, ...]
    ttl: float
    lookup: Lookup
    why: str = ""


def relay_problem(address: bytes) -> str | None:
    """Why ``address`` (packed) cannot be a relay's, or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an address"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    return None


def by_precedence(records: Iterable[AmtRelayRecord],
                  pick: Callable[[int], int]) -> list[AmtRelayRecord]:
    """``records`` in the order RFC 8777 §4.2.1 tries them: lower precedence first, equal
    ones in the order ``pick`` draws (``pick(n)``: an index below ``n``)."""
    by: dict[int, list[AmtRelayRecord]] = {}
    for record in records:
        by.setdefault(record.precedence, []).append(record)
    ordered: list[AmtRelayRecord] = []
    for precedence in sorted(by):
        tier = list(by[precedence])
        while tier:
            ordered.append(tier.pop(pick(len(tier)) % len(tier)))
    return ordered


def target_of(record: AmtRelayRecord, address: bytes) -> RelayTarget:
    """The target ``address`` (the record's own, or its name's) stands for: a discovery
    address unless the record's D bit is set (RFC 8777 §4.2.2)."""
    return RelayTarget(address, discover=not record.discovery_optional)


def clamp(ttl: float, low: float, high: float) -> float:
    return min(max(ttl, low), high)


@dataclass(slots=True)
class _Entry:
    relays: tuple[RelayTarget, ...]  # the answer's, in the order to try them
    at: int  # the one in use; past the end: the configured relay
    expires: float
    lookup: Lookup

    @property
    def relay(self) -> RelayTarget | None:
        """The relay in use (None: the configured relay)."""
        return self.relays[self.at] if self.at < len(self.relays) else None


class _Unresolved:
    """The type of ``UNRESOLVED``."""

    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED: Final = _Unresolved()
"""``DriadCache.relay``: the source's first lookup has not ended."""


class DriadCache:
    """Answers by source (module comment). ``want`` says which sources are joined and hands
    back those to look up; the resolver's answers come back through ``complete``."""

    def __init__(self, *, min_ttl: float, max_ttl: float, size: int = DEFAULT_SIZE) -> None:
        if not 0 <= min_ttl <= max_ttl or size < 1:
            raise ValueError("needs 0 <= min_ttl <= max_ttl and size >= 1")
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.size = size
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._wanted: frozenset[bytes] = frozenset()
        self._asking: set[bytes] = set()
        # (relay, the inner family of the gateway that gave up) -> passed over until.
        self._unanswered: OrderedDict[tuple[RelayTarget, Family], float] = OrderedDict()
        self.failovers = 0
        """Sources moved on from a relay that did not answer."""

    def __len__(self) -> int:
        return len(self._entries)

    def relay(self, source: bytes) -> RelayTarget | _Unresolved | None:
        """The relay for ``source`` (None: the configured one), or ``UNRESOLVED``."""
        entry = self._entries.get(source)
        if entry is not None:
            return entry.relay
        return UNRESOLVED if source in self._asking else None

    def asking(self) -> int:
        return len(self._asking)

    def want(self, sources: Iterable[bytes], now: float) -> list[bytes]:
        """The joined sources are ``sources``; those to look up now (each marked as being
        asked, until ``complete``)."""
        self._wanted = frozenset(sources)
        due: list[bytes] = []
        for source in self._wanted:
            if source in self._asking:
                continue
            entry = self._entries.get(source)
            if entry is None:
                if not self._make_room():
                    continue  # CACHE_FULL: the configured relay, not asked
            elif entry.expires > now:
                self._entries.move_to_end(source)
                continue
            self._asking.add(source)
            due.append(source)
        return due

    def _make_room(self) -> bool:
        if len(self._entries) + len(self._asking) < self.size:
            return True
        for source in self._entries:  # least recently used first
            if source not in self._wanted:
                del self._entries[source]
                return True
        return False

    def complete(self, source: bytes, answer: Answer, now: float) -> bool:
        """The lookup of ``source`` ended with ``answer``; whether its relay changed (its
        channels move)."""
        self._asking.discard(source)
        before = self._entries.get(source)
        old = before.relay if before is not None else UNRESOLVED
        if answer.lookup is Lookup.FAILED:
            # Keep what it had (nothing: the configured relay).
            relays, at = (before.relays, before.at) if before is not None else ((), 0)
            ttl = FAILURE_HOLD
        else:
            relays, ttl = answer.relays[:MAX_CHOICES], answer.ttl
            if before is not None and before.relays == relays:
                at = before.at  # where a failover left it: not back to a silent relay
            else:
                at = self._first_answering(source, relays, 0, now)
        expires = now + clamp(ttl, self.min_ttl, self.max_ttl)
        entry = _Entry(relays, at, expires, answer.lookup)
        if source in self._wanted or before is not None:
            self._entries[source] = entry
            self._entries.move_to_end(source)
        return entry.relay != old

    def _first_answering(self, source: bytes, relays: tuple[RelayTarget, ...], start: int,
                         now: float) -> int:
        """The index of the first of ``relays`` from ``start`` on not marked unanswered for
        ``source``'s family (``len(relays)``: none, the configured relay)."""
        family = Family.of(source)
        at = start
        while at < len(relays):
            until = self._unanswered.get((relays[at], family))
            if until is None or until <= now:
                break
            at += 1
        return at

    def unanswered(self, relay: RelayTarget, family: Family, now: float) -> list[bytes]:
        """``relay``'s gateway of inner ``family`` gave up: mark it, and move each source of
        that family going through it on to its next relay. The sources moved (their
        channels are told again)."""
        key = (relay, family)
        self._unanswered.pop(key, None)
        for old in [k for k, until in self._unanswered.items() if until <= now]:
            del self._unanswered[old]
        while len(self._unanswered) >= MAX_UNANSWERED:
            self._unanswered.popitem(last=False)
        self._unanswered[key] = now + FAILURE_HOLD
        moved = []
        for source, entry in self._entries.items():
            if entry.relay == relay and Family.of(source) is family:
                entry.at = self._first_answering(source, entry.relays, entry.at + 1, now)
                moved.append(source)
        self.failovers += len(moved)
        return moved

    def passed_over(self, now: float) -> dict[str, float]:
        """The relays marked unanswered (text, with its family's protocol) -> until when."""
        return {f"{relay} {family.protocol}": until
                for (relay, family), until in self._unanswered.items() if until > now}

    def next_deadline(self) -> float | None:
        """When the first joined source's answer expires (not being asked already)."""
        times = [e.expires for s, e in self._entries.items()
                 if s in self._wanted and s not in self._asking]
        return min(times) if times else None

    def expired(self, now: float) -> list[bytes]:
        """The joined sources whose answers have expired: to look up again (marked as being
        asked; their old answers stand meanwhile)."""
        due = [s for s, e in self._entries.items()
               if e.expires <= now and s in self._wanted and s not in self._asking]
        self._asking.update(due)
        return due

    def snapshot(self, limit: int | None = None) -> dict[str, dict[str, object]]:
        """Source text -> its relay, how it was found, when the answer expires, and the
        relays it failed over from; the ``limit`` most recently used at most."""
        items = list(self._entries.items())
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return {str(ipaddress.ip_address(s)): {
            "relay": str(e.relay) if e.relay else None, "lookup": str(e.lookup),
            "expires": e.expires, "passed-over": [str(r) for r in e.relays[:e.at]]}
            for s, e in items}
