"""``FakeRouter``: the verbs of ``MulticastRouter`` over plain dictionaries, for tests of the
code above the kernel adapter (the daemon). It checks what the real one checks (unknown
tables and interfaces, MAXVIFS, start twice) and records the state the kernel would hold.

Tests read ``tables`` (upstream -> the VIF interfaces that exist), ``routes`` (upstream ->
{(S,G): (iif, oifs)}) and ``calls`` (every verb, in order), make interfaces exist or vanish
with ``exists``, feed ``push_upcall`` / ``count`` for the daemon to read, and make the next
call of a verb (on one interface or table) fail as the kernel would with ``refuse``.
"""

from __future__ import annotations

import os
from collections import Counter

from mcastproxy.family import Family
from mcastproxy.kernel.api import KernelError, Role, RouteCounters, Upcall, UpcallKind
from mcastproxy.kernel.structs import MAXVIFS


class FakeRouter:
    """An in-memory multicast router of one family."""

    def __init__(self, family: int, *, existing: set[str] | None = None) -> None:
        if family not in (4, 6):
            raise ValueError(f"family {family}: 4 or 6")
        self.family = Family(family)
        self.exists: set[str] | None = existing
        """Interfaces that exist (None: every interface does)."""
        self.upstreams: list[str] = []
        self.downstreams: list[str] = []
        self.routes: dict[str, dict[tuple[bytes, bytes], tuple[str, frozenset[str]]]] = {}
        self.calls: list[tuple[object, ...]] = []
        self.upcall_counts: Counter[UpcallKind] = Counter()
        self._counters: dict[tuple[str, bytes, bytes], RouteCounters] = {}
        self.counter_reads = 0
        """Routes read one at a time (``route_counters``)."""
        self._upcalls: list[Upcall] = []
        self._pipe: tuple[int, int] | None = None
        self._refusals: list[tuple[str, str | None, Exception]] = []

    @property
    def running(self) -> bool:
        """Whether started and not stopped."""
        return self._pipe is not None

    @property
    def tables(self) -> dict[str, set[str]]:
        """Upstream -> the interfaces with a VIF in its table (those that exist)."""
        return {u: {n for n in [u, *self.downstreams] if self._exists(n)} for u in self.upstreams}

    def _exists(self, name: str) -> bool:
        return self.exists is None or name in self.exists

    def refuse(self, verb: str, error: Exception, *, on: str | None = None) -> None:
        """Make the next call of ``verb`` ("start", "add_interface", "set_route", ...) raise
        ``error`` (a ``KernelError``, an ``OSError``) before it changes anything; with ``on``,
        the next call for that interface (or table, for routes and counters). Tests."""
        if verb not in _VERBS:
            raise ValueError(f"{verb!r} is not a verb of the router")
        self._refusals.append((verb, on, error))

    def _refused(self, verb: str, subject: str | None = None) -> None:
        for i, (v, on, error) in enumerate(self._refusals):
            if v == verb and on in (None, subject):
                del self._refusals[i]
                raise error

    def start(self, upstreams: list[str], downstreams: list[str]) -> None:
        """Record the tables; errors as the real router's."""
        self._refused("start")
        if self.running:
            raise RuntimeError("already started")
        names = [*upstreams, *downstreams]
        if len(set(names)) != len(names):
            raise ValueError("an interface is named twice")
        _check_vif_count(len(downstreams))
        self.calls.append(("start", tuple(upstreams), tuple(downstreams)))
        self.upstreams = list(upstreams)
        self.downstreams = list(downstreams)
        self.routes = {u: {} for u in upstreams}
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[0], False)

    def stop(self) -> None:
        """Forget everything. Idempotent."""
        if self._pipe is None:
            return
        self.calls.append(("stop",))
        for fd in self._pipe:
            os.close(fd)
        self._pipe = None
        self.upstreams, self.downstreams, self.routes = [], [], {}
        self._upcalls.clear()

    def add_interface(self, name: str, role: Role) -> None:
        """Add an upstream (a table) or a downstream (a VIF in every table)."""
        self._require_running()
        self._refused("add_interface", name)
        role = Role(role)
        self.calls.append(("add_interface", name, role))
        if name in self.upstreams or name in self.downstreams:
            current = Role.UPSTREAM if name in self.upstreams else Role.DOWNSTREAM
            if current != role:
                raise ValueError(f"{name} is already a {current} interface")
            return
        if role == Role.UPSTREAM:
            self.upstreams.append(name)
            self.routes[name] = {}
        else:
            _check_vif_count(len(self.downstreams) + 1)
            self.downstreams.append(name)

    def remove_interface(self, name: str) -> None:
        """Remove an upstream's table, or a downstream from every table and route."""
        self._require_running()
        self._refused("remove_interface", name)
        self.calls.append(("remove_interface", name))
        if name in self.upstreams:
            self.upstreams.remove(name)
            del self.routes[name]
        elif name in self.downstreams:
            self.downstreams.remove(name)
            for routes in self.routes.values():
                for key, (iif, oifs) in list(routes.items()):
                    if iif == name:
                        del routes[key]
                    elif name in oifs:
                        routes[key] = (iif, oifs - {name})
        else:
            raise ValueError(f"{name} is not an interface of this router")

    def interface_changed(self, name: str) -> None:
        """Recorded only: ``tables`` follows ``exists``."""
        self._require_running()
        self._refused("interface_changed", name)
        self.calls.append(("interface_changed", name))

    def set_route(
        self, table: str, source: bytes, group: bytes, iif: str, oifs: frozenset[str]
    ) -> None:
        """Record the route."""
        routes = self._routes(table)
        self._check(source, group)
        self._refused("set_route", table)
        for n in (iif, *oifs):
            if n != table and n not in self.downstreams:
                raise ValueError(f"{n} is not an interface of table {table}")
        self.calls.append(("set_route", table, source, group, iif, frozenset(oifs)))
        routes[source, group] = (iif, frozenset(oifs) - {iif})

    def delete_route(self, table: str, source: bytes, group: bytes) -> None:
        """Forget the route; already gone is not an error."""
        routes = self._routes(table)
        self._check(source, group)
        self._refused("delete_route", table)
        self.calls.append(("delete_route", table, source, group))
        routes.pop((source, group), None)

    def fileno(self) -> int:
        """A pipe's read end, readable while upcalls wait."""
        self._require_running()
        assert self._pipe is not None
        return self._pipe[0]

    def push_upcall(self, upcall: Upcall) -> None:
        """Queue an upcall as the kernel would (tests)."""
        self._require_running()
        assert self._pipe is not None
        self._upcalls.append(upcall)
        os.write(self._pipe[1], b"u")

    def read_upcalls(self) -> list[Upcall]:
        """The queued upcalls (NOCACHE returned, every kind counted)."""
        if self._pipe is None:
            return []
        try:
            while os.read(self._pipe[0], 4096):
                pass
        except BlockingIOError:
            pass
        queued, self._upcalls = self._upcalls, []
        for u in queued:
            self.upcall_counts[u.kind] += 1
        return [u for u in queued if u.kind == UpcallKind.NOCACHE]

    def count(self, table: str, source: bytes, group: bytes, counters: RouteCounters) -> None:
        """Set the counters of a route (tests)."""
        self._counters[table, source, group] = counters

    def counters(self, table: str | None = None) -> dict[tuple[str, bytes, bytes], RouteCounters]:
        """Counters of every route set (zero unless ``count`` said otherwise)."""
        self._require_running()
        self._refused("counters", table)
        tables = [table] if table is not None else list(self.routes)
        zero = RouteCounters(0, 0, 0)
        return {
            (t, s, g): self._counters.get((t, s, g), zero)
            for t in tables
            for (s, g) in self._routes(t)
        }

    def route_counters(self, table: str, source: bytes, group: bytes) -> RouteCounters | None:
        """The counters of one route set (zero unless ``count`` said otherwise); None if
        no such route is set."""
        self._refused("counters", table)
        routes = self.routes.get(table)
        if routes is None or (source, group) not in routes:
            return None
        self.counter_reads += 1
        return self._counters.get((table, source, group), _ZERO)

    def _routes(self, table: str) -> dict[tuple[bytes, bytes], tuple[str, frozenset[str]]]:
        self._require_running()
        try:
            return self.routes[table]
        except KeyError:
            raise ValueError(f"no table for upstream {table!r}") from None

    def _check(self, source: bytes, group: bytes) -> None:
        size = Family(self.family).length
        if len(source) != size or len(group) != size:
            raise ValueError(f"IPv{self.family} addresses are {size} octets")

    def _require_running(self) -> None:
        if not self.running:
            raise RuntimeError("the router is not started")


_ZERO = RouteCounters(0, 0, 0)
_VERBS = frozenset({"start", "add_interface", "remove_interface", "interface_changed",
                    "set_route", "delete_route", "counters"})


def _check_vif_count(downstreams: int) -> None:
    if downstreams + 1 > MAXVIFS:
        raise KernelError(
            f"{downstreams} downstream interfaces: a multicast routing table holds at most "
            f"{MAXVIFS} VIFs (MAXVIFS), one upstream and {MAXVIFS - 1} downstreams"
        )
