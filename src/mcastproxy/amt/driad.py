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

DEFAULT_SIZE: Final = 4096
NEGATIVE_TTL: Final = 300.0
"""Seconds a source with no record keeps going to the configured relay, when the answer
carried no SOA to take the negative TTL from (RFC 2308 §5)."""
FAILURE_HOLD: Final = 30.0
"""Seconds before a failed lookup is tried again (within ``min_ttl`` and ``max_ttl``)."""
MAX_RECORDS: Final = 32
"""AMTRELAY records of one answer looked at; an answer with more is refused whole."""


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
    relay: RelayTarget | None  # None: the configured relay
    expires: float
    lookup: Lookup


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
            relay = before.relay if before is not None else None  # keep what it had
            ttl = FAILURE_HOLD
        else:
            relay = answer.relays[0] if answer.relays else None
            ttl = answer.ttl
        expires = now + clamp(ttl, self.min_ttl, self.max_ttl)
        if source in self._wanted or before is not None:
            self._entries[source] = _Entry(relay, expires, answer.lookup)
            self._entries.move_to_end(source)
        return relay != old

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
        """Source text -> its relay, how it was found, and when the answer expires; the
        ``limit`` most recently used at most."""
        items = list(self._entries.items())
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return {str(ipaddress.ip_address(s)): {"relay": str(e.relay) if e.relay else None,
                                               "lookup": str(e.lookup), "expires": e.expires}
                for s, e in items}
