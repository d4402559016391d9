"""The kernel routers' interfaces across a reload (``daemon``), make before break.

Before the engine takes a new configuration, the routers are given the interfaces it adds
and those whose role it changes (an upstream that becomes downstream, say), each step with
its undo, so that a refused reload leaves the routers as they were. The interfaces it drops
are taken away after, once the engine has deleted their routes: a failure then leaves a VIF
that routes nothing, counted rather than undone.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from mcastproxy.config import Config
from mcastproxy.kernel import MulticastRouting, Role
from mcastproxy.statussocket import why

log = logging.getLogger("mcastproxy")


def roles(config: Config) -> dict[str, Role]:
    """The interfaces of ``config`` and what each is."""
    return {**{d.interface: Role.DOWNSTREAM for d in config.downstream},
            **{c.interface: Role.UPSTREAM for c in config.upstream.candidates}}


def add_interfaces(routers: Iterable[MulticastRouting], old: Config, new: Config,
                   undo: list[Callable[[], object]], errors: Counter[str]) -> None:
    """Give the routers the interfaces ``new`` adds and moves, putting on ``undo`` how to
    take each back."""
    was, now = roles(old), roles(new)
    moved = sorted(n for n in was.keys() & now.keys() if was[n] != now[n])
    for router in routers:
        for name in moved:
            router.remove_interface(name)
            undo.append(functools.partial(router.add_interface, name, was[name]))
        for name in [*sorted(now.keys() - was.keys()), *moved]:
            try:
                router.add_interface(name, now[name])
            except BaseException:
                # The router held no such interface before: take back whatever of it a
                # refusal half-way left (a downstream's VIFs in some tables, say).
                try:
                    router.remove_interface(name)
                except ValueError:  # nothing was left: "not an interface"
                    pass
                except Exception as exc:
                    errors["reload undo"] += 1
                    log.warning("undoing a refused reload: %s", why(exc))
                raise
            undo.append(functools.partial(router.remove_interface, name))


def remove_interfaces(routers: Iterable[MulticastRouting], old: Config, new: Config,
                      errors: Counter[str]) -> None:
    """Take from the routers the interfaces ``new`` drops (after the engine deleted their
    routes); a failure is counted and logged, not undone."""
    was, now = roles(old), roles(new)
    for router in routers:
        for name in sorted(was.keys() - now.keys()):
            try:
                router.remove_interface(name)
            except Exception as exc:
                errors["remove interface"] += 1
                log.warning("removing %s from the IPv%d routing: %s", name, router.family,
                            why(exc))
