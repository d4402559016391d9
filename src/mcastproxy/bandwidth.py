"""Bandwidth admission (CAC): what a channel costs, and the budgets it must fit (RFC 8313 §6.1).

Theory of operation
===================

RFC 8313 §6.1 asks the last replication point, this proxy, to limit state per subscriber and,
beyond that, to "take bandwidth into account". Words:

- *channel*: (S,G), or (*,G) for an any-source join.
- *rate*: the bits a second a channel costs. The channel bandwidth table
  (``policy.bandwidth.channels``) gives it: its entries are (source, group) prefix patterns,
  first match wins, matched as ``group-policy`` rules are (an entry naming a source never
  matches (*,G)). A channel no entry matches costs the table's ``default-rate`` (0 unless set:
  not counted), or the rate learned from its traffic (``learn``) when that is higher.
- *class*: a ``mandatory`` channel (a service channel that must never be refused) is always
  admitted and counts against the budgets, so that optional channels make room for it;
  an ``optional`` channel (the default) is refused when it does not fit.
- *budget*: ``max-bandwidth`` of each subscriber on a link (its prefix's, else the link's
  ``subscriber``, else the global ``subscriber``), and of a link (``downstream[].policy``,
  else ``policy.max-bandwidth-per-interface``; both families together, as ``max-groups``).

What counts. A subscriber's use is the sum of the rates of the channels its state holds:
(*,G) for EXCLUDE state (whatever it excludes), (S,G) for each INCLUDE source. A link's use
is the sum of the rates of the channels any of its subscribers holds, each once: one copy of a
channel crosses the link whatever the number of subscribers (a count of holders per channel).
Counts follow state as ``admission``'s do: the router says when a subscription is made,
changed or ends (``hold``, ``change``, ``release``), never when it is asked for, so they
cannot drift from what the link holds. A rate is taken when the channel is counted and kept
with it, so a later change of the table or a learned rate never unbalances a count: a new
configuration has the router count its state again.

The decision (``admit``). The channels a record adds for the subscriber are checked in address
order: each optional one must fit the subscriber's budget (less what the record gives up, an
INCLUDE source replaced or dropped) and, when the link does not carry it yet, the link's; one
that fits is added to the running totals, one that does not is refused. An any-source join is
admitted or refused whole. What asks for less is never checked.

An anonymous report (source 0.0.0.0 or ::) makes state that no subscriber answers for, so it
cannot be counted: where a link budget is set, it is refused a rated optional channel the link
does not already carry (``UNACCOUNTED_BANDWIDTH``); it may still join what flows.

Preemption (``preempt``): a mandatory channel that would take a link past its max-bandwidth
takes the room from optional channels instead of going over: the least watched first (then the
costliest), until it fits. A preempted channel's group ends on the link for all who watch it
(``victims``, taken by ``admission`` and cleared by the router after the record), and its
subscribers' next joins are admitted or refused as any join is. Without it, a mandatory
channel goes over the budget and the optional ones that follow are refused until there is room.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.rules import UNLIMITED, Action, Network, Rule, RuleSet

Channel = tuple[bytes | None, bytes]  # (source, or None for any; group)


class ChannelRate(NamedTuple):
    """A channel's cost and class, and where it comes from ("" for the default rate)."""

    rate: int  # bits a second
    mandatory: bool
    where: str  # "policy.bandwidth.channels[2]", "policy.bandwidth.default-rate", "learned"

    def describe(self) -> str:
        kind = "mandatory" if self.mandatory else "optional"
        return f"{format_rate(self.rate)} {kind} ({self.where or 'no table entry'})"


class RateEntry(NamedTuple):
    """An entry of the channel bandwidth table, compiled."""

    source: Network | None
    group: Network | None
    rate: int
    mandatory: bool
    where: str


class ChannelRates:
    """The channel bandwidth table of one family, with the rates learned from traffic."""

    __slots__ = ("_by_where", "_rules", "default", "learned", "margin", "preempt")

    def __init__(self, entries: Iterable[RateEntry], family: Family, default: int = 0,
                 margin: float | None = None, *, preempt: bool = False) -> None:
        entries = list(entries)
        self._rules = RuleSet((Rule(Action.PERMIT, e.source, e.group, e.where)
                               for e in entries), family)
        self._by_where = {e.where: ChannelRate(e.rate, e.mandatory, e.where) for e in entries}
        self.default = ChannelRate(default, False,
                                   "policy.bandwidth.default-rate" if default else "")
        # Measured rates, margin applied (``learning`` fills it; one dict for every link
        # of the family); ``margin`` None: rates are not learned.
        self.learned: dict[Channel, int] = {}
        self.margin = margin
        self.preempt = preempt

    def __bool__(self) -> bool:
        return bool(self._rules) or self.default.rate > 0 or self.margin is not None

    def of(self, source: bytes | None, group: bytes) -> ChannelRate:
        """The rate and class of the channel."""
        index = self._rules.first_index(source, group)
        if index >= 0:
            return self._by_where[self._rules.rules[index].where]
        learned = self.learned.get((source, group))
        if learned is not None and learned > self.default.rate:
            return ChannelRate(learned, False, "learned")
        return self.default

    def patterns(self) -> tuple[object, ...]:
        """What decides rates, to tell whether a new table changes them."""
        return (tuple(self._by_where.items()), self.default, self.margin, self.preempt)


class Budget:
    """A link's bandwidth budget and use, shared by the link's two families."""

    __slots__ = ("maximum", "used")

    def __init__(self, maximum: int = UNLIMITED) -> None:
        self.maximum = maximum
        self.used = 0


class Cac:
    """The bandwidth counts of one link and family (see the module's comment)."""

    __slots__ = ("budget", "holders", "hosts", "rates", "static", "used", "victims")

    def __init__(self, rates: ChannelRates, budget: Budget) -> None:
        self.rates = rates
        self.budget = budget
        self.used: dict[bytes, int] = {}  # subscriber -> bits a second it holds
        # channel -> [subscribers holding it (a count), the rate it is counted at, 1 if
        # mandatory]
        self.holders: dict[Channel, list[int]] = {}
        # Who holds each channel, to count a learned rate against them (``rerate``): kept
        # only where rates are learned, as the counts alone cost a join or a leave less.
        self.hosts: dict[Channel, set[bytes]] | None = {} if rates.margin is not None else None
        self.static: dict[Channel, int] = {}  # channels static groups hold: never preempted
        self.victims: list[Channel] = []  # preempted, for the router to clear (``preempt``)

    # ==== the decision =========================================================================

    def admit_any_source(self, host: bytes | None, group: bytes, max_bandwidth: int,
                         gives_up: Sequence[Channel]) -> tuple[Drop, str] | None:
        """Why the any-source join of ``group`` by ``host`` does not fit (the reason and
        what decided), or None; ``gives_up``: the channels of the state it replaces."""
        channel: Channel = (None, group)
        held = self.holders.get(channel)
        if held is not None and (held[2] or max_bandwidth >= UNLIMITED):
            return None  # the link carries it: no new copy, and no budget or mandatory
        if (held is not None and not gives_up and host is not None
                and self.used.get(host, 0) + held[1] <= max_bandwidth):
            return None  # the common join: a channel the link carries, within the budget
        cost = self.rates.of(None, group)
        if cost.mandatory:
            self._make_room(channel, cost.rate)
            return None
        if cost.rate == 0:
            return None
        credit = sum(self._rate_held(c) for c in gives_up) if host else 0
        return self._fits(host, channel, cost, cost.rate - credit, max_bandwidth)

    def admit_sources(self, host: bytes | None, group: bytes, added: Iterable[bytes],
                      max_bandwidth: int, gives_up: Iterable[Channel],
                      ) -> list[tuple[bytes, Drop, str]]:
        """The sources of ``added`` (INCLUDE sources new to ``host``) that do not fit, each
        with its reason and what decided; ``gives_up``: the channels the record drops."""
        refused = []
        extra_sub = -sum(self._rate_held(c) for c in gives_up) if host else 0
        extra_link = 0
        for s in sorted(added):
            channel = (s, group)
            cost = self.rates.of(s, group)
            if cost.mandatory:
                self._make_room(channel, cost.rate + extra_link)
                continue
            if cost.rate == 0:
                continue
            why = self._fits(host, channel, cost, extra_sub + cost.rate, max_bandwidth,
                             extra_link)
            if why is not None:
                refused.append((s, *why))
                continue
            extra_sub += cost.rate
            if channel not in self.holders:
                extra_link += cost.rate
        return refused

    def _fits(self, host: bytes | None, channel: Channel, cost: ChannelRate, sub_cost: int,
              max_bandwidth: int, extra_link: int = 0) -> tuple[Drop, str] | None:
        if host is not None and self.used.get(host, 0) + sub_cost > max_bandwidth:
            return Drop.SUBSCRIBER_MAX_BANDWIDTH, (
                f"subscriber max-bandwidth {format_rate(max_bandwidth)}, "
                f"{format_rate(self.used.get(host, 0))} held; channel {cost.describe()}")
        if channel in self.holders:
            return None  # the link carries it already: no new copy
        budget = self.budget
        if budget.maximum >= UNLIMITED:
            return None
        if host is None:
            return Drop.UNACCOUNTED_BANDWIDTH, f"channel {cost.describe()}"
        if budget.used + extra_link + cost.rate > budget.maximum:
            return Drop.LINK_MAX_BANDWIDTH, (
                f"link max-bandwidth {format_rate(budget.maximum)}, "
                f"{format_rate(budget.used)} in use; channel {cost.describe()}")
        return None

    def _make_room(self, channel: Channel, rate: int) -> None:
        """Preempt optional channels until a mandatory ``channel`` of ``rate`` fits the link
        (``preempt``; the least watched first, then the costliest)."""
        budget = self.budget
        if not self.rates.preempt or channel in self.holders or budget.maximum >= UNLIMITED:
            return
        freed = sum(self._rate_held(v) for v in self.victims)
        over = budget.used - freed + rate - budget.maximum
        if over <= 0:
            return
        groups = {v[1] for v in self.victims}
        candidates = sorted(
            (held[0], -held[1], c) for c, held in self.holders.items()
            if c[1] != channel[1] and c[1] not in groups and not held[2]
            and c not in self.static)  # a static group is the operator's: never taken
        for _, minus_rate, victim in candidates:
            if over <= 0:
                break
            self.victims.append(victim)
            over += minus_rate

    def _rate_held(self, channel: Channel) -> int:
        held = self.holders.get(channel)
        return held[1] if held is not None else 0

    # ==== the counts ============================================================================

    def hold(self, host: bytes, group: bytes, exclude: bool, sources: Iterable[bytes]) -> None:
        """``host`` holds the channels of its new state."""
        if exclude:
            self._add(host, (None, group))
            return
        for s in sources:
            self._add(host, (s, group))

    def change(self, host: bytes, group: bytes, old_exclude: bool, old: frozenset[bytes],
               exclude: bool, new: frozenset[bytes]) -> None:
        before = set(_channels(group, old_exclude, old))
        after = set(_channels(group, exclude, new))
        for channel in before - after:
            self._remove(host, channel)
        for channel in after - before:
            self._add(host, channel)

    def release(self, host: bytes, group: bytes, exclude: bool,
                sources: Iterable[bytes]) -> None:
        if exclude:
            self._remove(host, (None, group))
            return
        for s in sources:
            self._remove(host, (s, group))

    def _add(self, host: bytes, channel: Channel) -> None:
        held = self.holders.get(channel)
        if held is None:
            cost = self.rates.of(*channel)
            held = self.holders[channel] = [0, cost.rate, int(cost.mandatory)]
            self.budget.used += cost.rate
        held[0] += 1
        used = self.used
        used[host] = used.get(host, 0) + held[1]
        if self.hosts is not None:
            self.hosts.setdefault(channel, set()).add(host)
        if host in _STATIC:
            self.static[channel] = self.static.get(channel, 0) + 1

    def _remove(self, host: bytes, channel: Channel) -> None:
        held = self.holders.get(channel)
        if held is None:
            return
        used = self.used
        n = used.get(host, 0) - held[1]
        if n > 0:
            used[host] = n
        else:
            used.pop(host, None)
        hosts = self.hosts
        if hosts is not None:
            hosts[channel].discard(host)
        if host in _STATIC:
            k = self.static.get(channel, 0) - 1
            if k > 0:
                self.static[channel] = k
            else:
                self.static.pop(channel, None)
        held[0] -= 1
        if held[0] <= 0:
            del self.holders[channel]
            if hosts is not None:
                del hosts[channel]
            self.budget.used -= held[1]

    def rerate(self, channel: Channel) -> None:
        """Count a held channel at its rate now (one was learned): the link's and its
        holders' use follow."""
        held = self.holders.get(channel)
        if held is None or self.hosts is None:  # hosts: kept wherever rates are learned
            return
        delta = self.rates.of(*channel).rate - held[1]
        if delta:
            held[1] += delta
            self.budget.used += delta
            for host in self.hosts[channel]:
                self.used[host] = self.used.get(host, 0) + delta

    def clear(self) -> None:
        """Forget the counts, before the router counts its state again."""
        for _, rate, _ in self.holders.values():
            self.budget.used -= rate
        self.holders.clear()
        if self.hosts is not None:
            self.hosts.clear()
        self.static.clear()
        self.used.clear()

    @property
    def link_used(self) -> int:
        """Bits a second of this family's channels on the link."""
        return sum(rate for _, rate, _ in self.holders.values())


_STATIC = frozenset(f.all_routers for f in Family)  # static groups' pseudo-subscriber


def _channels(group: bytes, exclude: bool, sources: Iterable[bytes]) -> Iterable[Channel]:
    if exclude:
        return ((None, group),)
    return ((s, group) for s in sources)


_UNITS = ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k"))


def format_rate(bps: int) -> str:
    """Bits a second as an operator writes them: 8M, 2.5M, 500k, unlimited."""
    if bps >= UNLIMITED:
        return "unlimited"
    for size, unit in _UNITS:
        if bps >= size:
            value = bps / size
            return f"{value:.3g}{unit}bit/s"
    return f"{bps}bit/s"


def parse_rate(value: object) -> int:
    """A rate from the file: bits a second as a number, or with a k, M or G suffix (powers of
    1000), e.g. 8M, 2.5M, 500k. Raises ValueError with what was expected."""
    if isinstance(value, bool):
        raise ValueError("expected bits a second such as 8000000, 8M, 2.5M or 500k")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        scale = 1
        for size, unit in _UNITS:
            if text[-1:] in (unit, unit.lower(), unit.upper()):
                scale, text = size, text[:-1]
                break
        try:
            number = float(text) * scale
        except ValueError:
            raise ValueError(f"{value!r} is not a rate: write bits a second such as 8M, "
                             "2.5M, 500k or 8000000") from None
    else:
        raise ValueError("expected bits a second such as 8000000, 8M, 2.5M or 500k")
    if not 0 <= number <= 1e12:  # NaN fails it too
        raise ValueError(f"{value!r} is not from 0 to 1T bits a second")
    return int(number)
