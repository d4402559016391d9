"""Joins and leaves on a downstream become reports on the upstream, and flows the kernel
reports become routes, through the daemon's loop.

::

    host (proto.host) --- d1 ---[ daemon ]--- u1 --- upstream router, data from proto.source
"""

from __future__ import annotations

from pathlib import Path

from daemon_harness import TO_EX, TO_IN, Proto, config, records, running, status_of, until
from fakes import FakeNetwork, ip

from mcastproxy.family import Family
from mcastproxy.kernel import Upcall, UpcallKind
from mcastproxy.wire.messages import Query


def flow(proto: Proto, upstream: str = "u1", group: str | None = None) -> Upcall:
    """The kernel saw data of (proto.source, group) on ``upstream`` with no route for it."""
    return Upcall(UpcallKind.NOCACHE, upstream, upstream, ip(proto.source),
                  ip(group or proto.group))


async def test_a_join_is_reported_upstream_and_a_new_flow_routed(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with running(net, workdir, config(proto)) as daemon:
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: records(sock.messages("u1")), what="a report on u1")
        assert records(sock.messages("u1"))[0] == (TO_EX, ip(proto.group))
        (sent,) = {s.destination for s in sock.sent if s.interface == "u1"}
        assert sent == proto.family.all_v3_routers
        # Reports go out from the upstream's own address (MLD: its link-local one).
        u1 = daemon.interfaces.get("u1")
        assert u1 is not None
        own = u1.ipv4 if proto.family is Family.V4 else u1.link_local
        assert {s.source for s in sock.sent if s.interface == "u1"} == {own}

        router.push_upcall(flow(proto))
        await until(lambda: router.routes["u1"], what="a route in u1's table")
        assert router.routes["u1"] == {(ip(proto.source), ip(proto.group)): ("u1", {"d1"})}
        # Data of a group nobody asked for is not routed.
        router.push_upcall(flow(proto, group=proto.group2))
        await until(lambda: router.upcall_counts[UpcallKind.NOCACHE] == 2)
        assert len(router.routes["u1"]) == 1
        state = await status_of(daemon)
        assert state["routes"] == [{"upstream": "u1", "source": proto.source,
                                    "group": proto.group, "downstream": ["d1"]}]


async def test_a_leave_is_reported_upstream_and_the_route_deleted(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with running(net, workdir, config(proto)):
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(flow(proto))
        await until(lambda: router.routes["u1"])
        sock.inject_message("d1", proto.host, proto.leave())  # fast leave: at once
        await until(lambda: (TO_IN, ip(proto.group)) in records(sock.messages("u1")),
                    what="a leave on u1")
        await until(lambda: not router.routes["u1"], what="the route deleted")
        assert router.calls[-1][0] == "delete_route"


async def test_without_fast_leave_the_engine_s_timers_end_the_group(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    # Short last-member timers: the daemon's one timer handle brings the queries and the end.
    link = ("[{interface: d1, timers: {last-member-query-interval: 250ms, "
            "last-member-query-count: 2}}]")
    async with running(net, workdir, config(proto, downstream=link)):
        sock, router = net.sockets[proto.family], net.routers[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        router.push_upcall(flow(proto))
        await until(lambda: router.routes["u1"])
        sock.inject_message("d1", proto.host, proto.leave())

        def specific_queries() -> list[Query]:
            return [m for m in sock.messages("d1")
                    if isinstance(m, Query) and m.group == ip(proto.group)]

        await until(lambda: len(specific_queries()) == 2, what="two group-specific queries")
        assert router.routes["u1"]  # still forwarded while the queries run
        await until(lambda: not router.routes["u1"], what="the group's end")
        assert (TO_IN, ip(proto.group)) in records(sock.messages("u1"))


async def test_an_upstream_that_goes_down_hands_its_joins_to_the_other(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    candidates = "[{interface: u1, priority: 10}, {interface: u2}]"
    async with running(net, workdir, config(proto, candidates=candidates)) as daemon:
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: records(sock.messages("u1")))
        assert records(sock.messages("u2")) == []
        net.down("u1")
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u2")),
                    what="the join moved to u2")
        state = await status_of(daemon)
        assert state["upstreams"]["u1"]["usable"] is False
        assert state["upstreams"]["u2"]["groups"] == {
            proto.group: {"mode": "exclude", "sources": []}}


async def test_a_graceful_stop_leaves_upstream_what_was_joined(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    async with running(net, workdir, config(proto)):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: records(sock.messages("u1")), what="a report on u1")
    # After the stop, the last thing said upstream is the leave: the upstream router stops
    # sending at once instead of when its membership times out.
    assert records(sock.messages("u1"))[-1] == (TO_IN, ip(proto.group))


async def test_leave_on_stop_can_be_turned_off(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    off = config(proto, candidates="[{interface: u1}], leave-on-stop: false")
    async with running(net, workdir, off):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: records(sock.messages("u1")), what="a report on u1")
    assert (TO_IN, ip(proto.group)) not in records(sock.messages("u1"))
