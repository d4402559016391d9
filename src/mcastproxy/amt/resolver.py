"""DRIAD's DNS side (RFC 8777 §2.3): a source's AMTRELAY records, asked without blocking.

``DriadResolver.lookup(source)`` is a coroutine on the daemon's loop (dnspython's
``dns.asyncresolver``: a UDP socket the loop reads, never a blocking call): it asks for the
AMTRELAY records (RR type 260) of the source's reverse name (``in-addr.arpa`` /
``ip6.arpa``, ``dns.reversename``) and turns the answer into a ``driad.Answer``: the usable
relays in precedence order (``driad.by_precedence``; ``driad.MAX_CHOICES`` of them, the
first to use and the others to fail over to), a type-3 relay's name resolved to its AAAA and
A records (the tunnel's family first), with the TTL the cache keeps it for. Once a first
relay is found, the names of the others are resolved within ``FALLBACK_TIME`` in all: a
slow name delays the first join that little at most, and is left out.

What is believed is what dnspython accepts: a response whose ID, source or question is not
the query's is ignored (the lookup waits on, then times out), a truncated one is asked
again over TCP, a CNAME chain longer than dnspython's bound is an error. On top of that an
answer with more than ``MAX_RECORDS`` records is refused, and a relay address that cannot be
one (``driad.relay_problem``) is skipped. Every failure is an ``Answer`` with
``Lookup.FAILED`` and a short reason from a fixed set (``REASONS``), never an exception:
the cache then keeps the source on the relay it had, or the configured one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Final

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from mcastproxy.amt.driad import (
    MAX_CHOICES,
    MAX_RECORDS,
    NEGATIVE_TTL,
    AmtRelayRecord,
    Answer,
    Lookup,
    RelayTarget,
    RelayType,
    by_precedence,
    relay_problem,
    target_of,
)
from mcastproxy.family import Family

LIFETIME: Final = 3.0
"""Seconds a lookup may take in all (its retries included) before it has failed."""
TIMEOUT: Final = 1.0
"""Seconds one query waits for its answer before it is sent again."""
FALLBACK_TIME: Final = 1.0
"""Seconds, in all, for resolving the names of the relays after the first one found."""

REASONS: Final = ("timeout", "truncated", "servfail", "cname-chain", "no-nameserver-answered",
                  "too-many-records", "bad-relay", "relay-name-unresolved", "no-resolver",
                  "error")
"""Why a lookup failed, as status counts it."""


def _resolver(server: tuple[Any, int] | None, lifetime: float) -> dns.asyncresolver.Resolver:
    if server is None:
        try:
            resolver = dns.asyncresolver.Resolver()  # the system's (resolv.conf)
        except dns.exception.DNSException:  # no resolv.conf: every lookup fails, counted
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = []
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [str(server[0])]
        resolver.port = server[1]
    resolver.lifetime = lifetime
    resolver.timeout = min(TIMEOUT, lifetime)
    resolver.cache = None  # ``driad.DriadCache`` is the cache, with its own bounds
    return resolver


def _negative_ttl(response: Any) -> float:
    """RFC 2308 §5: the SOA's TTL bounded by its minimum, if the answer carried one."""
    if response is None:
        return NEGATIVE_TTL
    try:
        ttl = response.resolve_chaining().minimum_ttl
    except dns.exception.DNSException:
        return NEGATIVE_TTL
    return float(ttl) if ttl < 2**31 else NEGATIVE_TTL


def _failure(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timeout"
    if isinstance(exc, dns.message.ChainTooLong):
        return "cname-chain"
    if isinstance(exc, dns.resolver.NoNameservers):
        # Every server failed; the first reason dnspython kept for each says how.
        errors = [e[3] for e in exc.kwargs.get("errors") or () if len(e) > 3]
        for kind, why in ((dns.message.ChainTooLong, "cname-chain"),
                          (dns.message.Truncated, "truncated")):
            if any(isinstance(e, kind) for e in errors):
                return why
        if any(isinstance(e, str) for e in errors):  # an rcode: SERVFAIL, REFUSED ...
            return "servfail"
        return "no-nameserver-answered"
    return "error"


def _records(rrset: Iterable[Any]) -> list[AmtRelayRecord]:
    out = []
    for rdata in rrset:
        relay: bytes | str | None = None
        if rdata.relay_type in (RelayType.IPV4, RelayType.IPV6):
            relay = ipaddress.ip_address(str(rdata.relay)).packed
        elif rdata.relay_type == RelayType.NAME:
            relay = str(rdata.relay)
        out.append(AmtRelayRecord(int(rdata.precedence), bool(rdata.discovery_optional),
                                  int(rdata.relay_type), relay))
    return out


class DriadResolver:
    """AMTRELAY lookups through ``server`` (address, port; None: the system's resolver).
    ``prefer``: the tunnel family tried first for a relay given by name; ``pick``: draws
    among records of equal precedence; ``lifetime``: seconds a lookup may take."""

    def __init__(self, server: tuple[Any, int] | None, *, prefer: Family = Family.V4,
                 pick: Callable[[int], int] = secrets.randbelow,
                 lifetime: float = LIFETIME) -> None:
        self.server = server
        self.prefer = Family(prefer)
        self._pick = pick
        self._resolver = _resolver(server, lifetime)

    async def lookup(self, source: bytes) -> Answer:
        """The relay for ``source`` (packed) from its AMTRELAY records (module comment)."""
        if not self._resolver.nameservers:
            return Answer((), 0.0, Lookup.FAILED, "no-resolver")
        name = dns.reversename.from_address(str(ipaddress.ip_address(source)))
        try:
            answer = await self._resolver.resolve(name, dns.rdatatype.AMTRELAY)
        except dns.resolver.NXDOMAIN as exc:
            responses = exc.kwargs.get("responses") or {}
            return Answer((), _negative_ttl(responses.get(name)), Lookup.NO_RECORD)
        except dns.resolver.NoAnswer as exc:
            return Answer((), _negative_ttl(exc.kwargs.get("response")), Lookup.NO_RECORD)
        except Exception as exc:  # whatever dnspython refused, or the socket: a failure
            return Answer((), 0.0, Lookup.FAILED, _failure(exc))
        rrset = answer.rrset
        if rrset is None:
            return Answer((), NEGATIVE_TTL, Lookup.NO_RECORD)
        if len(rrset) > MAX_RECORDS:
            return Answer((), 0.0, Lookup.FAILED, "too-many-records")
        ttl = float(answer.chaining_result.minimum_ttl)
        try:
            records = _records(rrset)
        except ValueError:
            return Answer((), 0.0, Lookup.FAILED, "error")
        return await self._choose(records, ttl)

    async def _choose(self, records: list[AmtRelayRecord], ttl: float) -> Answer:
        why = ""
        usable = [r for r in records if r.relay_type != RelayType.NONE]
        targets: list[RelayTarget] = []
        loop = asyncio.get_running_loop()
        budget_ends: float | None = None  # set once the first relay is found
        for record in by_precedence(usable, self._pick):
            if len(targets) >= MAX_CHOICES:
                break
            address: bytes | None = None
            if isinstance(record.relay, bytes):
                if relay_problem(record.relay) is None:
                    address = record.relay
                else:
                    why = "bad-relay"
            elif isinstance(record.relay, str):
                name = record.relay
                if budget_ends is None:
                    found, name_ttl, problem = await self._address_of(name)
                else:  # a relay to fail over to: within what is left of the budget
                    left = budget_ends - loop.time()
                    try:
                        found, name_ttl, problem = await asyncio.wait_for(
                            self._address_of(name), max(left, 0.0))
                    except TimeoutError:
                        continue
                if found is not None:
                    address, ttl = found, min(ttl, name_ttl)
                else:
                    why = why or problem
            if address is not None:
                target = target_of(record, address)
                if target not in targets:
                    targets.append(target)
                if budget_ends is None:
                    budget_ends = loop.time() + FALLBACK_TIME
        if targets:
            return Answer(tuple(targets), ttl, Lookup.FOUND)
        if not usable:  # RFC 8777 §4.2.3: type 0, no relay
            return Answer((), ttl, Lookup.NO_RELAY)
        return Answer((), 0.0, Lookup.FAILED, why or "error")

    async def _address_of(self, name: str) -> tuple[bytes | None, float, str]:
        """A usable address of relay ``name`` (AAAA and A, ``prefer``'s first), its TTL, or
        why there is none."""
        kinds = [dns.rdatatype.A, dns.rdatatype.AAAA]
        if self.prefer is Family.V6:
            kinds.reverse()
        why = "relay-name-unresolved"
        for kind in kinds:
            try:
                answer = await self._resolver.resolve(dns.name.from_text(name), kind)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except Exception as exc:
                why = _failure(exc)
                continue
            if answer.rrset is None or len(answer.rrset) > MAX_RECORDS:
                continue
            for rdata in answer.rrset:
                packed = ipaddress.ip_address(rdata.address).packed
                if relay_problem(packed) is None:
                    return packed, float(answer.chaining_result.minimum_ttl), ""
                why = "bad-relay"
        return None, 0.0, why


def default_target(address: Any, discover: bool) -> RelayTarget:
    """The configured relay (or discovery address) as a ``RelayTarget``."""
    return RelayTarget(ipaddress.ip_address(address).packed, discover)
