"""Applying what the engine asks (``actions``): packets sent, kernel routes set and deleted,
log lines, sessions, in the order asked.

Every route change is told to the ``Meter`` (accounting): it reads the route's counters just
before (one ioctl, with accounting on) so that what the route counted goes to the links it
had. Of the ``Session`` actions of a batch, those that end are handed over before its routes
change (what they were delivered, and by which upstream, is read while their link has it),
those that begin after (with the route that carries them set). A route the kernel
refuses is counted (``errors``) and logged, never raised: the engine keeps its state and the
next change of that route tries again.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from mcastproxy.actions import Action, DeleteRoute, Log, SendPacket, Session, SetRoute
from mcastproxy.family import BY_LENGTH, BY_VERSION, Family
from mcastproxy.kernel import KernelError, MulticastRouting
from mcastproxy.meter import Meter
from mcastproxy.platform import PacketSocket


def _text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


class Applier:
    """Applies actions with the daemon's ``routers`` and ``sockets`` (by family, filled once
    it starts); ``log(level, event, message, fields)`` writes a rate-limited line."""

    def __init__(self, routers: Mapping[Family, MulticastRouting],
                 sockets: Mapping[Family, PacketSocket], meter: Meter, errors: Counter[str],
                 log: Callable[[int, str, str, Mapping[str, Any]], None],
                 now: Callable[[], float]) -> None:
        self.routers = routers
        self.sockets = sockets
        self.meter = meter
        self.errors = errors
        self.log = log
        self.now = now

    def apply(self, actions: list[Action]) -> None:
        sessions: list[Session] = []
        meter = self.meter
        for action in actions:
            # Sessions that end, before the routes of the same event change: what they were
            # delivered, and by which upstream, is read while their link still has it.
            if isinstance(action, Session) and not action.start:
                meter.session(action, self.now())
        for action in actions:
            if isinstance(action, SendPacket):
                sock = self.sockets.get(BY_VERSION[action.family])
                if sock is not None:
                    sock.send(action.interface, action.destination, action.payload)
            elif isinstance(action, SetRoute):
                router = self.routers[BY_LENGTH[len(action.group)]]
                reading = meter.reading(router, action.table, action.source, action.group)
                try:
                    # A table holds the routes of the upstream it is named by: that is the
                    # interface its flows arrive on.
                    router.set_route(action.table, action.source, action.group, action.table,
                                     action.oifs)
                except (KernelError, OSError, ValueError) as exc:
                    self.errors["set route"] += 1
                    self.log(logging.WARNING, "route-refused", f"route ({_text(action.source)}, "
                              f"{_text(action.group)}) in {action.table}: {exc}", {})
                else:
                    meter.route_set(action, reading)
            elif isinstance(action, DeleteRoute):
                router = self.routers[BY_LENGTH[len(action.group)]]
                reading = meter.reading(router, action.table, action.source, action.group)
                try:
                    router.delete_route(action.table, action.source, action.group)
                    meter.route_deleted(action, reading)
                except (KernelError, OSError, ValueError) as exc:
                    self.errors["delete route"] += 1
                    self.log(logging.WARNING, "route-delete-refused",
                              f"delete ({_text(action.source)}, {_text(action.group)}) in "
                              f"{action.table}: {exc}", {})
            elif isinstance(action, Log):
                level = logging.getLevelName(action.level.upper())
                self.log(level if isinstance(level, int) else logging.INFO, action.event,
                          action.message, action.fields)
                meter.log(action, self.now())
            elif isinstance(action, Session) and action.start:
                sessions.append(action)
        # Sessions that begin, after the routes of the same event: with the route that
        # carries them set.
        for action in sessions:
            meter.session(action, self.now())
