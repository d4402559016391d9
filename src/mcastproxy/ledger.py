"""The subscription ledger: who asked which upstream for what (draft §3-§4.2, RFC 4605 §4.1).

The router side of a downstream link tracks each subscriber's state for a group (explicit
tracking). The ledger splits that state into *shares*, one per upstream that selection picks
for it (``subscriptions.split``), and keeps them twice:

- per (link, group), by subscriber and by upstream: which upstreams this link asks for the
  group, and what of it (the forwarding plan picks each link's feeder from these);
- per (upstream, group), over all links: the merge each upstream must report (RFC 4605 §4.1).
  A changed merge marks (upstream, group) *dirty*; the engine reports dirty merges once per
  event, after every share has moved, so a subscription moving between upstreams is joined
  on the new one and settled on the old one in one pass.

A popular channel has thousands of subscribers on a link whose states split alike: they hold
one share, and the link group counts its *holders*. The merges take a share in with its
first holder and give it back with its last, so a subscriber joining or leaving a channel
that others on the link watch moves no merge and reports nothing (merging is a union: a
share counted once merges as one counted per holder).

Words:
- *share*: a subscriber's contribution for a (link, group): its state, the part of it
  given to each upstream, and the selections made (kept across reloads: smooth migration);
  one object for every subscriber of the link group whose state splits alike.
- *lingering*: a subscriber that left without fast leave keeps its shares until the link
  stops forwarding what it asked (the last-member queries end), so the upstream is not
  left before the link is.
- *anonymous share*: when a link forwards more than its tracked subscribers explain (older
  hosts suppress reports; IGMP reports from 0.0.0.0), a share selected for an unknown
  subscriber covers the rest.
- *bridging*: a share that moved to another upstream and stays on the old one until the new
  one delivers (make before break, ``moves``).
"""

from __future__ import annotations

from collections.abc import Iterable

from mcastproxy.candidates import Candidates
from mcastproxy.membership.router import RouterLink
from mcastproxy.membership.state import FilterMode
from mcastproxy.subscriptions import NOTHING, Choice, Shares, split
from mcastproxy.upstream.merge import EMPTY, InterfaceState, MergedGroup

Subscriber = bytes | None  # None: the anonymous share of a link
SHARED_RESULTS = 4096  # distinct shares, and splits, kept for sharing
Avoid = dict[bytes, dict[bytes | None, frozenset[str]]]  # per-channel takeover marks


def wants(state: InterfaceState, source: bytes) -> bool:
    """Whether a (filter mode, sources) state asks for ``source``."""
    mode, sources = state
    return (source in sources) if mode is FilterMode.INCLUDE else (source not in sources)


class Share:
    """A contribution to a (link, group): a subscriber's state and where it went. Never
    changed once made: subscribers whose state splits alike hold one ``Share`` (see
    ``Ledger._shared``), and each link group counts the holders of each (``LinkGroup.held``),
    so that the merges take in each distinct share once however many hold it."""

    __slots__ = ("choice", "shares", "state")

    def __init__(self, state: InterfaceState, shares: Shares, choice: Choice) -> None:
        self.state = state
        self.shares = shares
        self.choice = choice

    def uses(self, upstream: str) -> bool:
        """Whether this share asks ``upstream``, or chose it for some source."""
        choice = self.choice
        if choice.any_source is not None and upstream in choice.any_source:
            return True
        return (any(upstream in ups for ups in choice.by_source.values())
                or upstream in self.shares)


class LinkGroup:
    """What one downstream link asks for one group, by subscriber and by upstream."""

    __slots__ = ("bridging", "by_upstream", "held", "lingering", "members", "routed", "tracked")

    def __init__(self) -> None:
        self.members: dict[Subscriber, Share] = {}  # tracked subscribers and anonymous
        self.lingering: dict[bytes, list[Share]] = {}  # departed, until the link catches up
        # Moved to another upstream that does not deliver yet: the old shares stay meanwhile.
        self.bridging: dict[Subscriber, Share] = {}
        self.tracked = MergedGroup()  # merge of the tracked subscribers' states
        # Share -> how many of members, lingering and bridging hold it: the merges below
        # (and the upstreams') take in a share when its first holder comes, and give it back
        # when its last goes. Merging is idempotent (RFC 9776 §3.2: a union), so a share
        # counted once gives the same merge as one counted per holder, and a subscriber
        # joining or leaving a channel that others on the link watch changes no merge.
        self.held: dict[Share, int] = {}
        self.by_upstream: dict[str, MergedGroup] = {}  # merge of the shares given to each
        self.routed: object = None  # what the link's routes were last computed from

    def route_inputs(self, wanted: InterfaceState) -> object:
        """What this link's part of the routes depends on, besides flows and liveness (which
        recompute the routes themselves when they change)."""
        return (wanted, len(self.bridging),
                tuple((u, m.state()) for u, m in self.by_upstream.items()))

    def empty(self) -> bool:
        return not (self.members or self.lingering or self.bridging)


class Ledger:
    """Shares per (link, group) and merges per (upstream, group)."""

    def __init__(self, candidates: Candidates, avoid: Avoid) -> None:
        self._candidates = candidates
        self._avoid = avoid  # owned by per-channel takeover; read here
        self.link_groups: dict[tuple[str, bytes], LinkGroup] = {}
        self.upstream_groups: dict[tuple[str, bytes], MergedGroup] = {}
        self.dirty: set[tuple[str, bytes]] = set()  # (upstream, group) merges changed
        self._results: dict[object, Share] = {}  # see ``_shared``
        # (group, state) -> its share, for splits that depend on nothing else (no remembered
        # choice, no subscriber records, no placement, no per-channel takeover mark); kept
        # for one selector and one set of unusable upstreams, emptied when either changes.
        self._splits: dict[tuple[bytes, InterfaceState], Share] = {}
        self._split_selector: object = None
        self._split_unusable: frozenset[str] | None = None

    # --- from the router side ---------------------------------------------------------------

    def subscriber_changed(self, name: str, link: RouterLink, group: bytes, subscriber: bytes,
                           wanted: InterfaceState) -> None:
        """``subscriber``'s state for ``group`` on link ``name`` changed; the link now
        forwards ``wanted`` of the group."""
        lg = self.link_groups.get((name, group))
        if lg is None:
            lg = self.link_groups[name, group] = LinkGroup()
        state = link.requested(group, subscriber)
        if (bridge := lg.bridging.pop(subscriber, None)) is not None:
            self.unshare(group, lg, bridge)  # what it asks now is shared afresh
        old = lg.members.pop(subscriber, None)
        if old is not None:
            lg.tracked.remove(*old.state)
            if wanted != NOTHING:
                # The link may still forward what it asked: keep its shares until it stops.
                lg.lingering.setdefault(subscriber, []).append(old)
            else:
                self.unshare(group, lg, old)
        if state is not None:
            lg.tracked.add(*state)
            self.share(group, lg, subscriber, state, old.choice if old else None)

    def settle(self, name: str, group: bytes, wanted: InterfaceState, flowing: bool) -> bool:
        """Bring the lingering and anonymous shares of (link, group) in line with what the
        link forwards (``wanted``), once the link's outputs for an event are in. True when
        the link's routes of the group (``flowing``: it has flows) must be recomputed."""
        lg = self.link_groups.get((name, group))
        if lg is None:
            if wanted == NOTHING:
                return False
            lg = self.link_groups[name, group] = LinkGroup()
        explained = wanted == NOTHING or wanted == lg.tracked.state()
        if lg.lingering and explained:
            for olds in lg.lingering.values():
                for old in olds:
                    self.unshare(group, lg, old)
            lg.lingering.clear()
        explained = explained or bool(lg.lingering)
        anon = lg.members.get(None)
        if (explained or anon is None or anon.state != wanted) and (
                bridge := lg.bridging.pop(None, None)) is not None:
            self.unshare(group, lg, bridge)
        if explained and anon is not None:
            self.unshare(group, lg, anon)
            del lg.members[None]
        elif not explained and (anon is None or anon.state != wanted):
            if anon is not None:
                self.unshare(group, lg, anon)
            self.share(group, lg, None, wanted, anon.choice if anon else None)
        if lg.empty():
            del self.link_groups[name, group]
        elif flowing and self._candidates.ignore_subscribers(group):
            # A subscriber joining a channel the link already gets changes none of its routes:
            # skip the recomputation (a popular channel sees many such joins).
            inputs = lg.route_inputs(wanted)
            if inputs == lg.routed:
                return False
            lg.routed = inputs
        return flowing

    # --- shares -----------------------------------------------------------------------------

    def share(self, group: bytes, lg: LinkGroup, subscriber: Subscriber, state: InterfaceState,
              previous: Choice | None) -> Share:
        """Split ``subscriber``'s ``state`` among the upstreams selection picks, and add the
        parts to the merges (``previous``: selections that may stand)."""
        c = self._candidates
        placement = c.placement
        found = key = None
        if (previous is None and not placement.active and c.ignore_subscribers(group)
                and not (c.takeover and self._avoid.get(group))):
            # Nothing but (group, state) goes into this split: the same one as last time,
            # unless selection or usability changed since (see ``_splits``).
            if c.selector is not self._split_selector or c.unusable != self._split_unusable:
                self._splits.clear()
                self._split_selector, self._split_unusable = c.selector, c.unusable
            key = (group, state)
            found = self._splits.get(key)
        if found is None:
            found = self._shared(state, *split(
                c.selector, subscriber, group, state, c.unusable, previous, c.still_good,
                self._avoid.get(group) if c.takeover else None,
                c.resilient.match if c.resilient else None,
                placement.choose if placement.active else None,
            ))
            if key is not None:
                if len(self._splits) >= SHARED_RESULTS:
                    self._splits.clear()
                self._splits[key] = found
        lg.members[subscriber] = found
        held = lg.held
        n = held.get(found, 0)
        held[found] = n + 1
        if n:
            return found  # counted in the merges already (``LinkGroup.held``)
        if placement.active:
            placement.hold(group, found.choice)
        for upstream, part in found.shares.items():
            lg.by_upstream.setdefault(upstream, MergedGroup()).add(*part)
            self._upstream_merge(upstream, group).add(*part)
            self.dirty.add((upstream, group))
        return found

    def _shared(self, state: InterfaceState, shares: Shares, choice: Choice) -> Share:
        """One object for every equal result: thousands of subscribers of a channel split
        alike (a few hundred octets each otherwise), and a link group counts its holders of
        one share rather than merging each. Shares are never changed, so sharing them is
        safe; the table is bounded (a result made again after it was emptied is a share of
        its own, counted apart: the merges stay right)."""
        key = (state, tuple(shares.items()), choice.any_source, tuple(choice.by_source.items()))
        found = self._results.get(key)
        if found is None:
            if len(self._results) >= SHARED_RESULTS:
                self._results.clear()
            found = self._results[key] = Share(state, shares, choice)
        return found

    def unshare(self, group: bytes, lg: LinkGroup, share: Share) -> None:
        """One holder of ``share`` gave it up; the last takes its parts back from the
        merges."""
        held = lg.held
        n = held[share] - 1
        if n:
            held[share] = n
            return
        del held[share]
        placement = self._candidates.placement
        if placement.active:
            placement.release(group, share.choice)
        for upstream, part in share.shares.items():
            per_link = lg.by_upstream[upstream]
            per_link.remove(*part)
            if per_link.empty:
                del lg.by_upstream[upstream]
            self.upstream_groups[upstream, group].remove(*part)
            self.dirty.add((upstream, group))

    def _upstream_merge(self, upstream: str, group: bytes) -> MergedGroup:
        merged = self.upstream_groups.get((upstream, group))
        if merged is None:
            merged = self.upstream_groups[upstream, group] = MergedGroup()
        return merged

    def recount_placement(self) -> None:
        """Count every share's channels in the placement afresh (its budgets were just
        turned on)."""
        placement = self._candidates.placement
        for (_, group), lg in self.link_groups.items():
            for share in lg.held:  # each counted once per link group, as ``share`` does
                placement.hold(group, share.choice)

    # --- what upstreams are asked -------------------------------------------------------------

    def upstream_state(self, upstream: str, group: bytes) -> InterfaceState:
        """What ``upstream`` must report for ``group`` now (a merge that emptied is gone)."""
        merged = self.upstream_groups.get((upstream, group))
        if merged is None:
            return FilterMode.INCLUDE, EMPTY
        if merged.empty:
            del self.upstream_groups[upstream, group]
        return merged.state()

    def joined(self, upstream: str, group: bytes) -> bool:
        """Whether some subscription asks ``upstream`` for ``group``."""
        return (upstream, group) in self.upstream_groups

    def asked(self, group: bytes, upstreams: Iterable[str]) -> bool:
        """Whether any of ``upstreams`` is asked for ``group``."""
        return any((u, group) in self.upstream_groups for u in upstreams)

    def feeders(self, link: str, group: bytes) -> dict[str, InterfaceState]:
        """Which upstreams ``link`` asks for ``group``, and what of it."""
        lg = self.link_groups.get((link, group))
        if lg is None:
            return {}
        return {u: m.state() for u, m in lg.by_upstream.items() if not m.empty}
