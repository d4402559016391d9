"""``FakeRouter`` keeps the state the kernel would, with the real router's checks."""

from __future__ import annotations

import os
import select

import pytest

from mcastproxy.family import Family
from mcastproxy.kernel import (
    FakeRouter,
    KernelError,
    MulticastRouter,
    MulticastRouting,
    Role,
    RouteCounters,
    Upcall,
    UpcallKind,
)

S, G = bytes([10, 0, 1, 2]), bytes([232, 1, 0, 1])


@pytest.fixture
def router() -> FakeRouter:
    r = FakeRouter(4)
    r.start(["u1", "u2"], ["d1", "d2"])
    return r


def test_it_is_a_multicast_router(router: FakeRouter) -> None:
    assert isinstance(router, MulticastRouting)
    assert isinstance(MulticastRouter(6), MulticastRouting)
    assert router.tables == {"u1": {"u1", "d1", "d2"}, "u2": {"u2", "d1", "d2"}}


def test_routes_are_kept_per_upstream_table(router: FakeRouter) -> None:
    router.set_route("u1", S, G, "u1", frozenset({"d1"}))
    router.set_route("u2", S, G, "u2", frozenset({"d2"}))
    router.set_route("u1", S, G, "u1", frozenset())  # hot standby: counts, forwards nothing
    assert router.routes == {
        "u1": {(S, G): ("u1", frozenset())},
        "u2": {(S, G): ("u2", frozenset({"d2"}))},
    }
    router.delete_route("u1", S, G)
    router.delete_route("u1", S, G)  # gone already: fine
    assert router.routes["u1"] == {}


def test_misuse_raises(router: FakeRouter) -> None:
    with pytest.raises(ValueError, match="no table"):
        router.set_route("d1", S, G, "d1", frozenset())
    with pytest.raises(ValueError, match="not an interface"):
        router.set_route("u1", S, G, "u1", frozenset({"u2"}))
    with pytest.raises(ValueError, match="4 octets"):
        router.set_route("u1", bytes(16), G, "u1", frozenset())
    with pytest.raises(RuntimeError):
        router.start(["u3"], [])


def test_more_than_31_downstreams_are_refused() -> None:
    r = FakeRouter(6)
    with pytest.raises(KernelError, match="MAXVIFS"):
        r.start(["u1"], [f"d{i}" for i in range(32)])
    r.start(["u1"], [f"d{i}" for i in range(31)])
    with pytest.raises(KernelError, match="MAXVIFS"):
        r.add_interface("d99", Role.DOWNSTREAM)


def test_interfaces_come_and_go(router: FakeRouter) -> None:
    router.set_route("u1", S, G, "u1", frozenset({"d1", "d2"}))
    router.add_interface("u3", Role.UPSTREAM)
    router.add_interface("d3", Role.DOWNSTREAM)
    assert router.tables["u3"] == {"u3", "d1", "d2", "d3"}
    router.remove_interface("d2")
    assert router.routes["u1"][S, G] == ("u1", frozenset({"d1"}))
    router.remove_interface("u2")
    assert "u2" not in router.tables
    with pytest.raises(ValueError, match="already a downstream"):
        router.add_interface("d1", Role.UPSTREAM)
    router.exists = {"u1", "d1"}
    assert router.tables["u1"] == {"u1", "d1"}


def test_upcalls_wake_the_reader_and_counters_are_read(router: FakeRouter) -> None:
    router.set_route("u1", S, G, "u1", frozenset({"d1"}))
    assert select.select([router.fileno()], [], [], 0)[0] == []
    router.push_upcall(Upcall(UpcallKind.NOCACHE, "u1", "u1", S, G))
    router.push_upcall(Upcall(UpcallKind.WRONGVIF, "u1", "d1", S, G))
    assert select.select([router.fileno()], [], [], 0)[0] == [router.fileno()]
    assert router.read_upcalls() == [Upcall(UpcallKind.NOCACHE, "u1", "u1", S, G)]
    assert router.upcall_counts == {UpcallKind.NOCACHE: 1, UpcallKind.WRONGVIF: 1}
    router.count("u1", S, G, RouteCounters(5, 500, 1))
    assert router.counters() == {("u1", S, G): RouteCounters(5, 500, 1)}


def test_stop_is_idempotent(router: FakeRouter) -> None:
    fd = router.fileno()
    router.stop()
    router.stop()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    assert router.read_upcalls() == []
    assert router.calls[0][0] == "start"
    assert router.calls[-1] == ("stop",)


def test_a_refused_verb_fails_once_and_changes_nothing(router: FakeRouter) -> None:
    assert router.family is Family.V4
    router.refuse("add_interface", KernelError("no table left"))
    with pytest.raises(KernelError, match="no table left"):
        router.add_interface("u3", Role.UPSTREAM)
    assert "u3" not in router.tables
    router.add_interface("u3", Role.UPSTREAM)  # once only
    assert "u3" in router.tables
    router.refuse("set_route", OSError(105, "No buffer space available"), on="u2")
    router.set_route("u1", S, G, "u1", frozenset({"d1"}))  # another table: not refused
    with pytest.raises(OSError, match="buffer space"):
        router.set_route("u2", S, G, "u2", frozenset({"d1"}))
    assert router.routes["u2"] == {}
    with pytest.raises(ValueError, match="not a verb"):
        router.refuse("explode", KernelError("no"))
