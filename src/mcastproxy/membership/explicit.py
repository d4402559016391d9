"""Explicit tracking on one link: what each subscriber asked for each group.

Theory of operation
===================

DESIGN.md's explicit tracking (RFC 8652 ``explicit-tracking``, RFC 6636 §3): the router
state of a group (RFC 9776 §6.2.1, ``group.Group``) says what the link as a whole forwards;
beside it, each subscriber (the source address of its reports) has its own filter mode and
sources for the group, a ``tracking.Subscription`` built by the rules of ``tracking`` and
expiring [Group Membership Interval] after its last report. The group keeps counts over its
subscriptions (``Group.count``) so that fast leave can ask in O(1) whether any tracked
subscriber still wants a source.

Every record from a subscriber goes through ``_track`` before it is applied to the group
state (``intake``). A refresh (the same mode and sources again) only moves the expiry: it
touches no heap, makes no output and tells the admission nothing. A change is told to the
link's ``Admission`` (its counts follow the state) and said as a ``SubscriberChanged``.

When the router state forgets something by its own timers (nobody answered the last-member
queries, RFC 9776 §6.3, §6.5), the subscriptions that claimed it are forgotten too
(``_forget_tracked``); a group that ends takes its subscriptions with it (``_delete_group``).

Sessions (``SessionChanged``, for the session log of RFC 8313 §4.3.3): a subscriber receives a
channel from when its tracked state first asks for it to when it stops asking, whatever the
cause (a record, its expiry, fast leave, a last-member query that went unanswered, the group
ending). A link that loses its address or carrier keeps its state (RFC 9776 §6: its
memberships time out as usual), so its sessions end as they do; a reconfiguration changes no
subscriber's state, so it ends none. INCLUDE (S1, S2) is one session per source, (S1,G)
and (S2,G); EXCLUDE of any sources is one any-source session, (*,G). So INCLUDE {S1} ->
EXCLUDE ends (S1,G) and begins (*,G), while EXCLUDE {} -> EXCLUDE {S3} changes no session.
Sessions are said only when they change, never on a refresh, and only when the link is asked
to (``RouterLink(sessions=True)``); the static pseudo-subscriber (``static``) has none.
"""

from __future__ import annotations

from heapq import heappush

from mcastproxy.family import Family
from mcastproxy.membership.group import (
    EMPTY,
    EXCLUDE,
    INCLUDE,
    IS_EX,
    IS_IN,
    NEVER,
    TO_EX,
    TO_IN,
    Group,
)
from mcastproxy.membership.linkstate import LinkState
from mcastproxy.membership.outputs import SessionChanged
from mcastproxy.membership.state import FilterMode
from mcastproxy.membership.tracking import Subscription, requested_state


class ExplicitTracking(LinkState):
    """The link's tracked subscribers (see the module's comment)."""

    def _track(self, g: Group, host: bytes, rtype: int, a: frozenset[bytes], now: float) -> bool:
        """Update ``host``'s own state for the group from one record.

        Returns whether the host was tracked for the group before the record.
        """
        subscribers = g.subscribers
        sub = subscribers.get(host)
        if sub is None:
            old_mode, old = INCLUDE, EMPTY
        else:
            old_mode, old = sub.mode, sub.sources
            # The common case, a refresh: the same filter mode and sources again.
            if (old_mode is EXCLUDE and rtype in (IS_EX, TO_EX) and (a is old or a == old)) or (
                old_mode is INCLUDE and rtype in (IS_IN, TO_IN) and a == old and a
            ):
                self._refresh(g, host, sub, now + self._gmi)
                g.last_reporter = host
                return True
        mode, new = requested_state(old_mode, old, rtype, a)

        if mode is INCLUDE and not new:  # INCLUDE of nothing: the subscriber left
            if sub is not None:
                self._remove_subscription(g, host, sub)
                return True
            return False
        expires = now + self._gmi
        g.last_reporter = host  # RFC 8652: the last host that sent a report to join it
        if sub is None:
            subscribers[host] = Subscription(
                mode, self._shared_sets(new) if new else EMPTY, expires
            )
            heappush(self._subscription_heap, (expires, g.address, host))
            self._due = min(self._due, expires)
            adm = self._admission
            if adm is not None:
                if adm.counts_all:  # inline: a join's hot path
                    adm.held[host] = adm.held.get(host, 0) + 1
                else:
                    adm.hold(host, g.address, mode is EXCLUDE, new)
            if new:
                g.count(mode, new, 1)
            elif mode is EXCLUDE:
                g.n_exclude += 1
            self._changed_subscribers.append((g.address, host))
            self._changed_groups[g.address] = None
            if self._sessions:
                self._sessions_changed(g.address, host, INCLUDE, EMPTY, mode, new)
            return False
        self._refresh(g, host, sub, expires)
        if mode is not old_mode or new != old:
            g.count(old_mode, old, -1)
            sub.mode = mode
            sub.sources = new = self._shared_sets(new)
            g.count(mode, new, 1)
            if self._admission is not None:
                self._admission.change(host, g.address, old_mode is EXCLUDE, old,
                                       mode is EXCLUDE, new)
            self._changed_subscribers.append((g.address, host))
            self._changed_groups[g.address] = None
            if self._sessions:
                self._sessions_changed(g.address, host, old_mode, old, mode, new)
        return True

    def _refresh(self, g: Group, host: bytes, sub: Subscription, expires: float) -> None:
        """A report from the subscriber: it expires [Group Membership Interval] from now. Its
        heap entry is moved when it comes up, unless it is now too late (GMI shrank)."""
        sub.expires = expires
        if expires < sub.scheduled:
            sub.scheduled = expires
            heappush(self._subscription_heap, (expires, g.address, host))
            self._due = min(self._due, expires)

    def _remove_subscription(self, g: Group, host: bytes, sub: Subscription) -> None:
        del g.subscribers[host]
        g.count(sub.mode, sub.sources, -1)
        if self._admission is not None:
            self._admission.release(host, g.address, sub.mode is EXCLUDE, sub.sources)
        self._changed_subscribers.append((g.address, host))
        self._changed_groups[g.address] = None
        if self._sessions:
            self._sessions_changed(g.address, host, sub.mode, sub.sources, INCLUDE, EMPTY)

    def _forget_tracked(self, g: Group, mode: FilterMode | None, source: bytes | None) -> None:
        """The router state forgot something nobody answered for: so does tracking.

        ``mode`` given: remove the subscribers in that mode. ``source`` given: remove it
        from the INCLUDE subscribers' sets. Neither: remove every subscriber.
        """
        for host, sub in list(g.subscribers.items()):
            if source is not None:
                if sub.mode is not INCLUDE or source not in sub.sources:
                    continue
                remaining = sub.sources - {source}
                if remaining:
                    g.count(INCLUDE, sub.sources, -1)
                    if self._admission is not None:
                        self._admission.change(host, g.address, False, sub.sources, False,
                                               remaining)
                    if self._sessions:
                        self._sessions_changed(g.address, host, INCLUDE, sub.sources, INCLUDE,
                                               remaining)
                    sub.sources = self._shared_sets(remaining)
                    g.count(INCLUDE, sub.sources, 1)
                    self._changed_subscribers.append((g.address, host))
                    self._changed_groups[g.address] = None
                    continue
            elif mode is not None and sub.mode is not mode:
                continue
            self._remove_subscription(g, host, sub)

    def _delete_group(self, g: Group) -> None:
        if g.subscribers:
            self._forget_tracked(g, None, None)
        self._groups.pop(g.address, None)
        self._retransmitting.discard(g.address)
        g.scheduled = NEVER  # its heap entries are stale from now on
        if g.counted and self._admission is not None:
            g.counted = False
            self._admission.release_group()

    def _sessions_changed(self, group: bytes, host: bytes, old_mode: FilterMode,
                          old: frozenset[bytes], mode: FilterMode, new: frozenset[bytes]) -> None:
        """Say the sessions ``host``'s change of state for ``group`` ended, then those it
        began (see the module's comment): a source of INCLUDE mode is a session of its own,
        EXCLUDE mode whatever its sources one any-source session."""
        if old_mode is EXCLUDE and mode is EXCLUDE:
            return  # still an any-source join: only the sources it excludes changed
        if host in STATIC_HOSTS:
            return  # the static pseudo-subscriber (``static``) has no sessions
        out = self._outputs
        if old_mode is EXCLUDE:
            out.append(SessionChanged(group, host, None, False))
            for s in sorted(new):
                out.append(SessionChanged(group, host, s, True))
        elif mode is EXCLUDE:
            if old:
                for s in sorted(old):
                    out.append(SessionChanged(group, host, s, False))
            out.append(SessionChanged(group, host, None, True))
        else:
            for s in sorted(old - new):
                out.append(SessionChanged(group, host, s, False))
            for s in sorted(new - old):
                out.append(SessionChanged(group, host, s, True))


# The static groups' pseudo-subscriber of each family (``static``): the all-routers addresses.
STATIC_HOSTS = frozenset(f.all_routers for f in Family)
