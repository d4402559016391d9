"""From what one subscriber asks to what each upstream is asked for (draft §3-§4.2).

A subscriber's state for a group, (INCLUDE, A) or (EXCLUDE, X), becomes a share per upstream,
each a (filter mode, sources) pair that the upstream's merge (RFC 4605 §4.1) takes in:

- INCLUDE A: each source S of A is requested from the upstream(s) selected for (H, S, G).
- EXCLUDE X: the any-source join is requested from the upstream(s) selected for (H, *, G),
  and also from the upstreams of source-bearing records that match (H, G) (draft §4.2: the
  group's upstream serves it "except the source address configured by the prior
  interface"). Where such a record names a single source, the proxy can say it exactly:
  the record's upstream is asked to INCLUDE that source, and the group's upstream to EXCLUDE
  it. A wider source prefix cannot be said in IGMPv3/MLDv2, so its upstream is joined for any
  source too, and the data plane forwards each actual source from the upstream selection
  picks for it.

Selections are remembered per share (``Choice``) so that a configuration reload leaves
running subscriptions where they are (the paper's smooth migration): only new sources and
new subscriptions are selected under the new rules; takeover re-selects explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mcastproxy.membership.state import FilterMode
from mcastproxy.selection import Selector
from mcastproxy.upstream.merge import EMPTY, InterfaceState, merge

Shares = dict[str, InterfaceState]
"""Upstream name -> the (filter mode, sources) this subscription asks of it. Never changed
after ``split``: equal shares are shared between subscriptions."""


class Choice:
    """The upstream selections one subscription was given, kept across reloads. Filled in
    by ``split`` and never changed after: equal choices are shared between subscriptions."""

    __slots__ = ("any_source", "by_source")

    def __init__(self) -> None:
        self.any_source: tuple[str, ...] | None = None
        self.by_source: dict[bytes, tuple[str, ...]] = {}


def split(
    selector: Selector,
    subscriber: bytes | None,
    group: bytes,
    state: InterfaceState,
    unusable: frozenset[str],
    previous: Choice | None,
    still_good: Callable[[tuple[str, ...]], bool],
    avoid: Mapping[bytes | None, frozenset[str]] | None = None,
    resilient: Callable[[bytes | None, bytes | None, bytes], bool] | None = None,
    place: Callable[[bytes | None, bytes, tuple[str, ...]], tuple[str, ...]] | None = None,
) -> tuple[Shares, Choice]:
    """The shares of subscription (subscriber, group, state), and the choices made.

    A selection remembered in ``previous`` is kept while ``still_good`` accepts it.
    ``avoid`` names, per source (None: any source), upstreams on which that channel alone is
    dead (per-channel takeover). Where ``resilient`` says so for (subscriber, source, group),
    the next-ranked usable upstream is asked too, as hot standby. ``place`` picks among
    the upstreams a selection names (``placement``: ties shared, budgets).
    """
    choice = Choice()
    avoid = avoid or {}

    def select(source: bytes | None) -> tuple[str, ...]:
        dead = avoid.get(source, frozenset())
        if previous is not None:
            old = previous.any_source if source is None else previous.by_source.get(source)
            if old is not None and still_good(old) and not dead.intersection(old):
                return old
        ups = selector.select(subscriber, source, group, unusable | dead).upstreams
        return ups if place is None else place(source, group, ups)

    def standby(source: bytes | None, primary: tuple[str, ...]) -> tuple[str, ...]:
        if resilient is None or not primary or not resilient(subscriber, source, group):
            return ()
        skip = unusable | avoid.get(source, frozenset()) | frozenset(primary)
        # With nothing usable left, selection answers with an unusable one: no standby then.
        return tuple(u for u in selector.select(subscriber, source, group, skip).upstreams
                     if u not in skip)

    mode, sources = state
    if mode is FilterMode.INCLUDE:
        included: dict[str, set[bytes]] = {}
        for s in sources:
            ups = choice.by_source[s] = select(s)
            for u in (*ups, *standby(s, ups)):
                included.setdefault(u, set()).add(s)
        return {u: (FilterMode.INCLUDE, frozenset(ss)) for u, ss in included.items()}, choice

    primary = choice.any_source = select(None)
    parts: dict[str, list[InterfaceState]] = {u: [] for u in primary}
    for u in standby(None, primary):
        parts.setdefault(u, []).append((FilterMode.EXCLUDE, sources))
    also_excluded: set[bytes] = set()
    for prefix, holders in selector.source_records(subscriber, group, unusable):
        if prefix.prefixlen == prefix.max_prefixlen:
            s = prefix.network_address.packed
            if s in sources:
                continue  # the subscriber excludes it anyway
            exact = choice.by_source[s] = select(s)
            if any(u in primary for u in exact):
                continue  # the any-source join brings it from the right upstream
            also_excluded.add(s)
            for u in exact:
                parts.setdefault(u, []).append((FilterMode.INCLUDE, frozenset((s,))))
        else:
            for u in holders:
                if u not in primary:
                    parts.setdefault(u, []).append((FilterMode.EXCLUDE, sources))
    excluded = sources | also_excluded if also_excluded else sources
    shares: Shares = {}
    for u, more in parts.items():
        own = [(FilterMode.EXCLUDE, excluded)] if u in primary else []
        shares[u] = merge([*own, *more]) if more else own[0]
    return shares, choice


NOTHING: InterfaceState = (FilterMode.INCLUDE, EMPTY)
