"""Learned channel rates and empty channels, from the traffic the proxy measures (RFC 8313 §6.1).

Theory of operation
===================

The daemon reads the kernel's per-route byte counters and hands the engine each channel's
measured rate every few seconds (``RatesMeasured``: (S,G) -> bits a second over the last
window). Two things are learned from it:

- *Learned rates* (``policy.bandwidth.learn``). A channel the bandwidth table has no entry for
  costs what it is measured to carry, plus ``learn-margin`` (a fraction, for bursts), when that
  is more than ``default-rate``. A learned rate changes when a measurement differs from it by
  more than a tenth, and is kept when the channel stops (a pause does not make it free). The
  channels already counted are counted again at the new rate (``Cac.rerate``,
  ``Placement.rerate``), so the budgets see what flows, not what was guessed at the join.
  An any-source join (*,G) is learned as the sum of its group's sources.
- *Empty channels* (``empty-after``). RFC 8313 §6.1 names "observation of traffic" as a way to
  recognise invalid or empty state. A channel asked upstream for ``empty-after`` with no
  traffic seen since is empty: counted (``empty channel``), logged once, and, with
  ``refuse-empty-for``, a new join of it is refused for that long (``placement``): those who
  hold it keep it, a repeat is refused. Traffic seen on it again, or its state ending, clears
  it. An (S,G) channel is seen when its route carries traffic; (*,G) when any route of G does.

Only channels asked of some upstream are watched (the ledger's merges), so what is tracked is
bounded by the limits on membership state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mcastproxy.family import Family
from mcastproxy.membership import FilterMode

if TYPE_CHECKING:
    from mcastproxy.actions import Outbox
    from mcastproxy.bandwidth import ChannelRates
    from mcastproxy.candidates import Candidates
    from mcastproxy.config import Config
    from mcastproxy.ledger import Ledger
    from mcastproxy.membership import RouterLink

Channel = tuple[bytes | None, bytes]
CHANGE = 0.1  # a learned rate moves when a measurement differs from it by more than this


class Learning:
    """Learned rates and empty channels (see the module's comment)."""

    def __init__(self, candidates: Candidates, ledger: Ledger,
                 links: Mapping[tuple[str, Family], RouterLink], outbox: Outbox) -> None:
        self._candidates = candidates
        self._ledger = ledger
        self._links = links
        self._outbox = outbox
        self.learned: dict[Family, dict[Channel, int]] = {f: {} for f in Family}
        self.asked: dict[Channel, float] = {}  # channel -> since when it is asked upstream
        self.seen: dict[Channel, float] = {}  # channel -> when traffic was last seen on it
        self.empty: set[Channel] = set()
        self.margin: float | None = None
        self.empty_after: float | None = None
        self.refuse_for: float | None = None

    @property
    def watching(self) -> bool:
        """Whether rates are learned or empty channels watched."""
        return self.margin is not None or self.empty_after is not None

    def configure(self, config: Config) -> None:
        table = config.policy.bandwidth
        self.margin = table.learn_margin if table.learn else None
        self.empty_after = table.empty_after
        self.refuse_for = table.refuse_empty_for
        if self.margin is None:
            for learned in self.learned.values():
                learned.clear()
        if self.empty_after is None:
            self.asked.clear()
            self.seen.clear()
            self.empty.clear()
            self._candidates.placement.empty.clear()

    def measured(self, rates: Mapping[tuple[bytes, bytes], float], now: float) -> None:
        """The channels' rates over the last window (bits a second)."""
        changed: list[Channel] = []
        margin = self.margin
        groups: dict[bytes, float] = {}
        for (source, group), bps in rates.items():
            if bps > 0:
                self.seen[source, group] = now
                self.seen[None, group] = now
                groups[group] = groups.get(group, 0.0) + bps
        if margin is not None:
            measured: list[tuple[Channel, float]] = [(c, bps) for c, bps in rates.items()]
            measured += [((None, g), bps) for g, bps in groups.items()]
            for channel, bps in measured:
                if bps <= 0:
                    continue
                learned = self.learned[Family.V4 if len(channel[1]) == 4 else Family.V6]
                rate = int(bps * (1.0 + margin))
                old = learned.get(channel)
                if old is None or abs(rate - old) > CHANGE * old:
                    learned[channel] = rate
                    changed.append(channel)
        if margin is not None:
            self._share_learned()
            for channel in changed:
                self._rerate(channel)
        if self.empty_after is not None:
            self._watch_empty(now)

    def _share_learned(self) -> None:
        """Every link's table, and the placement's, read the one dict of their family (a
        link that came up or a reload made new tables since the last time)."""
        for (_, family), link in self._links.items():
            adm = link.admission
            if adm is not None and adm.cac is not None:
                adm.cac.rates.learned = self.learned[family]
        placement = self._candidates.placement
        for family in Family:
            rates: ChannelRates | None = placement.rates(family)
            if rates is not None:
                rates.learned = self.learned[family]

    def _rerate(self, channel: Channel) -> None:
        group = channel[1]
        for (_, family), link in self._links.items():
            adm = link.admission
            if adm is not None and adm.cac is not None and len(group) == family.length:
                adm.cac.rerate(channel)
        self._candidates.placement.rerate(channel)

    # ==== empty channels =======================================================================

    def _watch_empty(self, now: float) -> None:
        asked: set[Channel] = set()
        for (_, group), merged in self._ledger.upstream_groups.items():
            if merged.empty:
                continue
            mode, sources = merged.state()
            if mode is FilterMode.EXCLUDE:
                asked.add((None, group))
            else:
                asked.update((s, group) for s in sources)
        for channel in [c for c in self.asked if c not in asked]:
            del self.asked[channel]
            self.empty.discard(channel)
        after = self.empty_after
        assert after is not None
        placement = self._candidates.placement
        for channel in asked:
            since = self.asked.setdefault(channel, now)
            seen = self.seen.get(channel)
            if seen is not None and seen >= since:
                self.asked[channel] = seen  # quiet from now on counts from here
                if channel in self.empty:
                    self.empty.discard(channel)
                    placement.empty.pop(channel, None)
                continue
            if now - since >= after and channel not in self.empty:
                self.empty.add(channel)
                self._outbox.counts["empty channel"] += 1
                source, group = channel
                said = _text(source) if source is not None else "*"
                self._outbox.log("warning", "empty-channel",
                                 f"channel ({said}, {_text(group)}) asked upstream for "
                                 f"{now - since:.0f} s with no traffic",
                                 source=said, group=_text(group))
                if self.refuse_for is not None:
                    placement.empty[channel] = now + self.refuse_for
        for channel, until in list(placement.empty.items()):
            if until <= now:
                del placement.empty[channel]
        for channel in [c for c in self.seen if c not in asked]:
            del self.seen[channel]  # only what is asked is remembered


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))
