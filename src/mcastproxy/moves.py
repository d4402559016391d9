"""Moving subscriptions between upstreams: reselection, make before break (draft §5).

When what selection depends on changes (an upstream fails or returns, a channel dies on one
upstream, the configuration is reloaded), the shares it picks are split again. The new
shares are added before the old ones are taken back, so an upstream that keeps a
subscription never sees it left and joined again.

Words:
- *reselect*: split again the shares a predicate picks; *fresh* drops the remembered
  selections, so preferred upstreams take their subscriptions back.
- *bridge*: a share moving off upstreams that are still usable and deliver the group stays
  on them (``bridging`` in the ledger) until the new upstream delivers it too, so the link
  never goes dark while the new upstream's join travels (make before break). Where the old
  upstreams deliver nothing of the group there is nothing to keep: the share moves at once.
  When ``BRIDGE_TIMEOUT`` passes before the new upstream delivers, the move is abandoned if
  the old upstreams still deliver (the subscription goes back where it works), and completed
  otherwise (nothing works either way: selection decides).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from mcastproxy.actions import Outbox
from mcastproxy.candidates import Candidates
from mcastproxy.ledger import Ledger, Share

# A subscription moved to an upstream that is usable again stays on the old one until the
# new one delivers (make before break), but no longer than this: an upstream join through
# PIM can take a few seconds.
BRIDGE_TIMEOUT = 5.0


class Moves:
    """Reselection, and the bridges it leaves until the new upstreams deliver."""

    def __init__(self, ledger: Ledger, candidates: Candidates, outbox: Outbox,
                 links: Callable[[], Iterable[str]], refresh: Callable[[bytes], None],
                 delivering: Callable[[bytes], set[str]]) -> None:
        self._ledger = ledger
        self._candidates = candidates
        self._outbox = outbox
        self._links = links  # the downstream links' names
        # The forwarding plan: recompute a group's routes; which upstreams deliver a group.
        self._refresh = refresh
        self._delivering = delivering
        self.bridges: dict[bytes, float] = {}  # group -> when its bridging shares end

    def reselect(self, now: float, which: Callable[[Share], bool], fresh: bool = False,
                 group_only: bytes | None = None, bridge: bool = False) -> None:
        """Split again the shares ``which`` picks (all remembered choices dropped if
        ``fresh``; only of ``group_only`` if given), after the selection's inputs changed.

        Make before break: the new shares are added before the old are taken back, and with
        ``bridge`` a share moving off upstreams that are still usable stays on them until
        the new upstream delivers (``end``) or ``BRIDGE_TIMEOUT`` passes."""
        ledger, cands = self._ledger, self._candidates
        delivering: dict[bytes, set[str]] = {}
        for (_link, group), lg in list(ledger.link_groups.items()):
            if group_only is not None and group != group_only:
                continue
            for subscriber, share in list(lg.members.items()):
                if not which(share):
                    continue
                new = ledger.share(group, lg, subscriber, share.state,
                                   None if fresh else share.choice)
                left = share.shares.keys() - new.shares.keys()
                if (bridge and left and subscriber not in lg.bridging
                        and not left & cands.unusable and left <= cands.names
                        and left & _cached(delivering, group, self._delivering)):
                    lg.bridging[subscriber] = share
                    self.bridges.setdefault(group, now + BRIDGE_TIMEOUT)
                else:
                    ledger.unshare(group, lg, share)
            self._refresh(group)

    def end(self, group: bytes, delivered: bool = True) -> None:
        """The moved subscriptions of ``group`` leave their old upstreams now; or, if the new
        ones did not deliver in time, they go back where they were (what works is not
        given up for what does not)."""
        self.bridges.pop(group, None)
        ledger = self._ledger
        for name in self._links():
            lg = ledger.link_groups.get((name, group))
            if lg is None or not lg.bridging:
                continue
            for subscriber, old in lg.bridging.items():
                new = lg.members.get(subscriber)
                if delivered or new is None:
                    ledger.unshare(group, lg, old)
                else:
                    ledger.unshare(group, lg, new)
                    lg.members[subscriber] = old
            lg.bridging.clear()
            if lg.empty():
                del ledger.link_groups[name, group]
        if not delivered:
            self._outbox.counts["move abandoned"] += 1
            self._outbox.log("warning", "move-abandoned",
                             f"{ipaddress.ip_address(group)}: the upstream it moved to did not "
                             f"deliver within {BRIDGE_TIMEOUT:g} s; it stays where it was",
                             group=str(ipaddress.ip_address(group)))
        self._refresh(group)

    def end_all(self) -> None:
        """Every bridge ends now (its old upstreams failed: nothing to wait for)."""
        for group in list(self.bridges):
            self.end(group)

    def due(self, now: float) -> None:
        """Bridges whose new upstreams did not deliver in time end: abandoned where the old
        upstreams still deliver, completed where they do not."""
        for group in [g for g, end in self.bridges.items() if end <= now]:
            self.end(group, delivered=not self._old_upstreams(group) & self._delivering(group))

    def next_deadline(self) -> float | None:
        return min(self.bridges.values()) if self.bridges else None

    def _old_upstreams(self, group: bytes) -> set[str]:
        """The upstreams the bridging shares of ``group`` stay on."""
        ledger = self._ledger
        return {u for name in self._links()
                if (lg := ledger.link_groups.get((name, group))) is not None
                for old in lg.bridging.values() for u in old.shares}


def _cached(cache: dict[bytes, set[str]], group: bytes,
            compute: Callable[[bytes], set[str]]) -> set[str]:
    found = cache.get(group)
    if found is None:
        found = cache[group] = compute(group)
    return found
