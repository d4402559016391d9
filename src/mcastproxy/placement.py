"""Upstream admission: which of several upstreams that could carry a channel does, by its room
(RFC 8313 §6.1 budgets; the paper's load balancing; draft §3.3 ties).

Theory of operation
===================

Selection (``selection``) answers with several upstreams when candidates tie: they hold the
same best record at the same priority, or none of them has records. The draft (§3.3) joins
all of them, for robust reception: ``upstream.ties: robust``, the default. Over an aggregation
ring where the ties are there to share the load, that doubles it; ``ties: share`` instead
places each channel on one of them, the one with the most room, so channels spread over the
tied upstreams by their capacity (the paper's load-balancing use case, done by the proxy
rather than by hand-written records).

Words:
- *channel*: (S,G), or (*,G) for an any-source join.
- *budget*: a candidate's ``max-bandwidth`` (the rates of the channels it carries, from the
  channel bandwidth table, ``bandwidth``) and ``max-groups`` (the groups it is asked for,
  RFC 8652's word); unset: unlimited.
- *room*: what is left of a candidate's budgets. With budgets, the most room is the most
  bandwidth left (then the fewest groups); without, the fewest channels: an even spread.
- *placed*: a channel is placed on an upstream while some subscription asks that upstream
  for it. The ledger says when (``hold``, ``release``, from its ``share`` and ``unshare``),
  so the counts follow what is asked, never what was planned.

Choosing (``choose``, called by ``subscriptions.split`` for every selection of a channel):
a channel already placed on one of the tied upstreams stays there, so every subscriber of a
channel is served by one upstream and a new subscriber costs no second copy. Otherwise the
tied upstreams with room for the channel's rate are kept (``robust``: all of them; ``share``:
the one with the most room, the first in configuration order among equals); when none has
room, the choice is what it would be without budgets. Takeover needs nothing of its own: an
unusable upstream leaves the ties, so its channels are placed afresh on the others.

Refusing (``refuses``, asked by ``admission`` before a join creates state): a join of an
optional channel that no upstream selection would give it can carry, neither placed there nor
with room, is refused with the budget that is full (``UPSTREAM_MAX_BANDWIDTH``,
``UPSTREAM_MAX_GROUPS``). A mandatory channel is never refused, and counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from mcastproxy.bandwidth import ChannelRates, format_rate
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.policy import limit_value, rates_of
from mcastproxy.rules import UNLIMITED

if TYPE_CHECKING:
    from mcastproxy.candidates import Candidates
    from mcastproxy.config import Config
    from mcastproxy.subscriptions import Choice

Channel = tuple[bytes | None, bytes]


class Load(NamedTuple):
    """What an upstream carries against its budgets, for status."""

    bandwidth: int
    max_bandwidth: int
    groups: int
    max_groups: int
    channels: int


class _Upstream:
    __slots__ = ("bandwidth", "channels", "groups", "max_bandwidth", "max_groups")

    def __init__(self) -> None:
        self.max_bandwidth = UNLIMITED
        self.max_groups = UNLIMITED
        self.bandwidth = 0
        self.channels = 0
        self.groups: dict[bytes, int] = {}  # group -> its channels placed here

    def fits(self, rate: int, group: bytes) -> Drop | None:
        if self.bandwidth + rate > self.max_bandwidth:
            return Drop.UPSTREAM_MAX_BANDWIDTH
        if group not in self.groups and len(self.groups) >= self.max_groups:
            return Drop.UPSTREAM_MAX_GROUPS
        return None


class Placement:
    """Channels placed on upstreams, and the upstreams' budgets (see the module's comment)."""

    def __init__(self, candidates: Candidates, config: Config) -> None:
        self._candidates = candidates
        self._upstreams: dict[str, _Upstream] = {}
        # (group, choice) -> the subscriptions holding that choice. Equal choices are one
        # object (``Ledger._shared``), so a subscriber joining or leaving a channel others
        # watch costs one count here, and only a choice's first and last holders reach the
        # channels' counts.
        self._asks: dict[tuple[bytes, Choice], int] = {}
        # channel -> upstream -> [choices asking it (``_asks`` keys), rate counted]
        self._on: dict[Channel, dict[str, list[int]]] = {}
        # Channels found empty (``learning``), refused until then.
        self.empty: dict[Channel, float] = {}
        self.configure(config)

    def configure(self, config: Config) -> None:
        """New ties, budgets and rates; what is placed stays, counted at its old rate.
        ``activated`` says whether the ledger must count what it holds (``Ledger.
        recount_placement``): placement was off and is on now."""
        was = getattr(self, "active", False)
        self.share = config.upstream.ties == "share"
        self.budgets = False
        names = set()
        for c in config.upstream.candidates:
            up = self._upstreams.get(c.interface) or _Upstream()
            self._upstreams[c.interface] = up
            bandwidth, groups = limit_value(c.max_bandwidth), limit_value(c.max_groups)
            up.max_bandwidth = UNLIMITED if bandwidth is None else bandwidth
            up.max_groups = UNLIMITED if groups is None else groups
            self.budgets |= up.max_bandwidth < UNLIMITED or up.max_groups < UNLIMITED
            names.add(c.interface)
        for name in [n for n in self._upstreams if n not in names and not self._carries(n)]:
            del self._upstreams[name]
        self._rates = {f: rates_of(config.policy, f) for f in Family}
        # Whether selection asks ``choose`` at all: the common configuration pays nothing.
        self.active = self.share or self.budgets
        self.activated = self.active and not was
        if was and not self.active:  # nothing counts any more: nothing is kept
            self._asks.clear()
            self._on.clear()
            self._upstreams = {n: up for n, up in self._upstreams.items() if n in names}
            for up in self._upstreams.values():
                up.bandwidth = up.channels = 0
                up.groups.clear()

    def _carries(self, upstream: str) -> bool:
        return any(upstream in on for on in self._on.values())

    def _rate(self, source: bytes | None, group: bytes) -> tuple[int, bool]:
        rates: ChannelRates | None = self._rates[Family.of(group)]
        if rates is None:
            return 0, False
        cost = rates.of(source, group)
        return cost.rate, cost.mandatory

    # ==== choosing =============================================================================

    def choose(self, source: bytes | None, group: bytes,
               tied: tuple[str, ...]) -> tuple[str, ...]:
        """Which of the ``tied`` upstreams carry the channel (the module's comment)."""
        if not tied:
            return tied
        on = self._on.get((source, group))
        if on:
            current = tuple(u for u in tied if u in on)
            if current:
                return current[:1] if self.share else current
        if len(tied) == 1:
            return tied
        rate, _ = self._rate(source, group)
        room = [u for u in tied if self._fits(u, rate, group) is None]
        if not self.share:
            return tuple(room) if room else tied
        return (max(room or tied, key=lambda u: self._room(u, tied)),)

    def _fits(self, upstream: str, rate: int, group: bytes) -> Drop | None:
        up = self._upstreams.get(upstream)
        return None if up is None else up.fits(rate, group)

    def _room(self, upstream: str, tied: tuple[str, ...]) -> tuple[int, int, int]:
        up = self._upstreams.get(upstream)
        if up is None:
            return (0, 0, -tied.index(upstream))
        left = up.max_bandwidth - up.bandwidth if up.max_bandwidth < UNLIMITED else 0
        return (left, -up.channels - len(up.groups), -tied.index(upstream))

    @property
    def checks(self) -> bool:
        """Whether ``admission`` must ask ``refuses``."""
        return self.budgets or bool(self.empty)

    def refuses(self, host: bytes | None, source: bytes | None,
                group: bytes) -> tuple[Drop, str] | None:
        """Why a new channel for ``host`` cannot be carried by any upstream selection gives
        it, with the budget that is full, or because it was found empty; None if it can."""
        if (source, group) in self.empty:
            return Drop.EMPTY_CHANNEL, ("asked upstream with no traffic for "
                                        "policy.bandwidth.empty-after; refused for "
                                        "policy.bandwidth.refuse-empty-for")
        if not self.budgets:
            return None
        c = self._candidates
        on = self._on.get((source, group), {})
        if on and c.ignore_subscribers(group):
            return None  # placed already, where every subscriber's selection puts it
        rate, mandatory = self._rate(source, group)
        if mandatory:
            return None
        ups = c.selector.select(host, source, group, c.unusable).upstreams
        reasons = []
        for u in ups:
            if u in on:
                return None
            why = self._fits(u, rate, group)
            if why is None:
                return None
            reasons.append((u, why))
        if not reasons:
            return None
        u, why = reasons[0]
        up = self._upstreams[u]
        if why is Drop.UPSTREAM_MAX_BANDWIDTH:
            said = (f"upstream {u} max-bandwidth {format_rate(up.max_bandwidth)}, "
                    f"{format_rate(up.bandwidth)} in use; channel {format_rate(rate)}")
        else:
            said = f"upstream {u} max-groups {up.max_groups:,}, {len(up.groups):,} asked"
        return why, said

    # ==== the counts: the ledger says what is asked ==============================================

    def hold(self, group: bytes, choice: Choice) -> None:
        key = (group, choice)
        n = self._asks.get(key, 0)
        self._asks[key] = n + 1
        if n == 0:
            for source, ups in _channels(choice):
                self._add((source, group), ups)

    def release(self, group: bytes, choice: Choice) -> None:
        key = (group, choice)
        n = self._asks.get(key, 0)
        if n > 1:
            self._asks[key] = n - 1
            return
        if n == 0:
            return
        del self._asks[key]
        for source, ups in _channels(choice):
            self._remove((source, group), ups)

    def _add(self, channel: Channel, ups: Iterable[str]) -> None:
        on = self._on.get(channel)
        if on is None:
            on = self._on[channel] = {}
        for u in ups:
            held = on.get(u)
            if held is None:
                rate, _ = self._rate(*channel)
                held = on[u] = [0, rate]
                up = self._upstreams.get(u)
                if up is None:
                    up = self._upstreams[u] = _Upstream()
                up.bandwidth += rate
                up.channels += 1
                up.groups[channel[1]] = up.groups.get(channel[1], 0) + 1
            held[0] += 1

    def _remove(self, channel: Channel, ups: Iterable[str]) -> None:
        on = self._on.get(channel)
        if on is None:
            return
        for u in ups:
            held = on.get(u)
            if held is None:
                continue
            held[0] -= 1
            if held[0] > 0:
                continue
            del on[u]
            up = self._upstreams[u]
            up.bandwidth -= held[1]
            up.channels -= 1
            group = channel[1]
            n = up.groups[group] - 1
            if n:
                up.groups[group] = n
            else:
                del up.groups[group]
        if not on:
            del self._on[channel]

    def rates(self, family: Family) -> ChannelRates | None:
        return self._rates[family]

    def rerate(self, channel: Channel) -> None:
        """Count a placed channel at its rate now (one was learned)."""
        rate, _ = self._rate(*channel)
        for u, held in self._on.get(channel, {}).items():
            if held[1] != rate:
                self._upstreams[u].bandwidth += rate - held[1]
                held[1] = rate

    def load(self) -> dict[str, Load]:
        """Each upstream's load against its budgets (status)."""
        return {u: Load(up.bandwidth, up.max_bandwidth, len(up.groups), up.max_groups,
                        up.channels) for u, up in self._upstreams.items()}

    def placed(self, source: bytes | None, group: bytes) -> tuple[str, ...]:
        """The upstreams the channel is placed on."""
        return tuple(self._on.get((source, group), ()))


def _channels(choice: Choice) -> Iterable[tuple[bytes | None, tuple[str, ...]]]:
    if choice.any_source is not None:
        yield None, choice.any_source
    yield from choice.by_source.items()
