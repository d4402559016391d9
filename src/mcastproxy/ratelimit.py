"""Report rate limits on a downstream link: a flooding host's excess is dropped before it costs
the router side any work (RFC 8313 §6.1: the last replication point defends its state).

Each report or leave a link receives takes a token from two buckets: its sender's (the
subscriber, by source address) and the link's. A bucket holds up to ``burst`` tokens and
refills at ``rate`` a second; a message finding either empty is dropped and counted
(``Drop.SUBSCRIBER_RATE``, ``Drop.LINK_RATE``). The subscriber's bucket keeps one host from
taking the link's whole budget; the link's bounds what spoofed sources can do, since each new
address starts with a full bucket of its own.

The subscribers' buckets are bounded in number (``max_tracked``): when a new sender comes to a
full table, the oldest entry goes, a sender that ran dry being renewed in place so that a
flooding host is the last to go (a forgotten sender's bucket is full again anyway for most
hosts; the link's bucket still bounds the total). Each message costs a dictionary lookup and a
few float operations; the clock is the caller's.

Queries are not limited here (they are refused or taken by the querier policy), nor are
messages from the unspecified address, which have no subscriber: only the link's bucket
applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastproxy.drops import Drop

# Built in: a set-top box sends a few reports a second at most (a zap, its retransmissions);
# a link of a thousand hosts answering a General Query, a hundred. Bursts: two seconds' worth.
SUBSCRIBER_RATE = 100.0
LINK_RATE = 10_000.0
BURST_SECONDS = 2.0


def from_setting(value: float | str | None, default: float) -> Rate | None:
    """A bucket from the file's setting: a rate a second, ``unlimited`` (None), or left out
    (``default``)."""
    if value == "unlimited":
        return None
    rate = default if value is None else float(value)
    return Rate(rate, max(1.0, rate * BURST_SECONDS))


NOT_YET = float("-inf")  # a bucket not used yet: full at its first message, whatever the clock


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's settings: ``rate`` tokens a second, at most ``burst`` held."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"a rate limit needs a rate > 0 and a burst >= 1, not {self}")


class _Bucket:
    __slots__ = ("tokens", "when")

    def __init__(self, tokens: float, when: float) -> None:
        self.tokens = tokens
        self.when = when


class ReportLimiter:
    """The report rate limits of one link: ``subscriber`` per sender, ``link`` for all of
    them (either None: not limited)."""

    def __init__(self, subscriber: Rate | None, link: Rate | None,
                 max_tracked: int = 65_536) -> None:
        if max_tracked < 1:
            raise ValueError("max_tracked must be at least 1")
        self.subscriber = subscriber
        self.link = link
        self.max_tracked = max_tracked
        self._link_bucket = _Bucket(link.burst, NOT_YET) if link is not None else None
        # Insertion order: the first is the sender least recently *new*; a sender heard again
        # is moved to the end only once its bucket ran dry (a sender that floods stays, a
        # quiet one goes first), which spares a move on every message.
        self._senders: dict[bytes, _Bucket] = {}

    def admit(self, sender: bytes | None, now: float) -> Drop | None:
        """Take a token for a message from ``sender`` (None: the unspecified address) at
        ``now``; the reason it must be dropped, or None. Inlined: it runs for every report."""
        limit = self.subscriber
        bucket = None
        if limit is not None and sender is not None:
            senders = self._senders
            bucket = senders.get(sender)
            if bucket is None:
                if len(senders) >= self.max_tracked:
                    del senders[next(iter(senders))]
                bucket = senders[sender] = _Bucket(limit.burst, now)
            tokens = bucket.tokens + (now - bucket.when) * limit.rate
            if tokens > limit.burst:  # noqa: PLR1730 - an if costs less than min() here
                tokens = limit.burst
            bucket.when = now
            if tokens < 1.0:
                bucket.tokens = tokens
                del senders[sender]  # to the end: it floods, so it is kept longest
                senders[sender] = bucket
                return Drop.SUBSCRIBER_RATE
            bucket.tokens = tokens - 1.0
        link = self._link_bucket
        if link is not None:
            rate = self.link
            assert rate is not None
            when = link.when if link.when != NOT_YET else now  # full at the first message
            tokens = link.tokens + (now - when) * rate.rate
            if tokens > rate.burst:  # noqa: PLR1730
                tokens = rate.burst
            link.when = now
            if tokens < 1.0:
                link.tokens = tokens
                if bucket is not None and limit is not None:
                    # Not the sender's fault alone: give its token back.
                    bucket.tokens = min(limit.burst, bucket.tokens + 1.0)
                return Drop.LINK_RATE
            link.tokens = tokens - 1.0
        return None

    @property
    def tracked(self) -> int:
        """Senders with a bucket now."""
        return len(self._senders)
