"""The status document is built from the engine's snapshot: plain data, detached from the
engine, with every drop visible by reason and by interface; made, encoded and let go of a
slice at a time, each group whole even while the engine goes on between slices."""

from __future__ import annotations

import ipaddress
import json
import weakref
from collections.abc import Generator, Iterator
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceDown, InterfaceUp, NewFlow, PacketReceived
from mcastproxy.family import Family
from mcastproxy.snapshot import release, whole
from mcastproxy.status import document, document_slices, encode
from mcastproxy.wire import build_igmp, build_mld
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates:
    - interface: u1
      records: [{group: 239.1.0.0/16}]
    - interface: u2
policy: {subscriber: {max-groups: unlimited}}  # one host per link joins hundreds of groups
"""


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def running() -> Engine:
    engine = Engine(parse_config(CONFIG), rng=lambda: 0.5)
    for name, addr in (("u1", "192.0.2.1"), ("u2", "198.51.100.1"), ("d1", "10.1.0.1"),
                       ("d2", "10.2.0.1")):
        engine.handle(InterfaceUp(name, (ip(addr),)), 0.0)
    join = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ip("239.1.1.1")),))
    engine.handle(PacketReceived("d1", 4, ip("10.1.0.7"), ip("224.0.0.22"),
                                 build_igmp(join)), 1.0)
    engine.handle(NewFlow("u1", ip("192.0.2.99"), ip("239.1.1.1")), 1.5)
    return engine


def test_status_shows_memberships_routes_and_upstreams() -> None:
    engine = running()
    snap = engine.snapshot()
    doc = document(snap, ["d1", "d2"], now=11.0)
    json.dumps(doc, allow_nan=False)  # plain data all the way down
    link = snap.link("d1", Family.V4)
    assert link is not None
    gmi = link.timers.group_membership_interval  # RFC 9776 §8.4; joined at 1.0
    assert doc["downstream"]["d1/igmp"]["groups"]["239.1.1.1"] == {
        "filter-mode": "exclude", "expire": 1.0 + gmi - 11.0, "up-time": 10.0,
        "last-reporter": "10.1.0.7", "sources": {},
        "host": {"10.1.0.7": {"filter-mode": "exclude", "sources": [],
                              "expire": 1.0 + gmi - 11.0}},
        "subscribers": ["10.1.0.7"], "upstreams": ["u1"]}
    assert list(doc["downstream"]) == ["d1/igmp", "d2/igmp"]
    assert doc["upstreams"]["u1"]["groups"] == {"239.1.1.1": {"mode": "exclude", "sources": []}}
    assert doc["upstreams"]["u2"]["groups"] == {}
    assert doc["routes"] == [{"upstream": "u1", "source": "192.0.2.99", "group": "239.1.1.1",
                              "downstream": ["d1"]}]
    assert doc["engine"] == {"resets": 0, "last-error": None}


def test_every_drop_is_visible_by_reason_and_interface() -> None:
    engine = running()
    # A truncated report, a link-local group (ignored by the router side, RFC 9776 §6), and
    # data for a group nobody asked of u2.
    engine.handle(PacketReceived("d2", 4, ip("10.2.0.9"), ip("224.0.0.22"), b"\x22\x00"), 2.0)
    local = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ip("224.0.0.251")),))
    engine.handle(PacketReceived("d2", 4, ip("10.2.0.9"), ip("224.0.0.22"),
                                 build_igmp(local)), 2.0)
    engine.handle(NewFlow("u2", ip("192.0.2.99"), ip("239.9.9.9")), 2.0)
    doc = document(engine.snapshot(), ["d1", "d2"], {Drop.UNKNOWN_INTERFACE: 3})
    assert doc["drops"]["d2"] == {"truncated message": 1, "link-local scope group": 1}
    assert doc["drops"]["u2"] == {"data for a group this upstream has not joined": 1}
    assert doc["dropped"]["truncated message"] == 1
    assert doc["dropped"]["socket: unknown interface"] == 3


def test_a_snapshot_does_not_change_with_the_engine() -> None:
    engine = running()
    snap = engine.snapshot()
    leave = Report(3, (GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, ip("239.1.1.1")),))
    engine.handle(PacketReceived("d1", 4, ip("10.1.0.7"), ip("224.0.0.22"),
                                 build_igmp(leave)), 3.0)
    engine.handle(NewFlow("u1", ip("192.0.2.98"), ip("239.1.1.1")), 3.0)
    link = snap.link("d1", Family.V4)
    assert link is not None
    assert [g.group for g in link.groups] == [ip("239.1.1.1")]
    assert len(snap.flows) == 1


def test_the_snapshot_has_interfaces_and_each_subscribers_expiry() -> None:
    engine = running()
    snap = engine.snapshot()
    assert snap.interfaces["d1"] == (ip("10.1.0.1"),)
    link = snap.link("d1", Family.V4)
    assert link is not None
    group = link.group(ip("239.1.1.1"))
    assert group is not None
    (sub,) = group.subscribers
    # Joined at 1.0: forgotten one Group Membership Interval later (RFC 9776 §8.4).
    assert sub.expire == 1.0 + link.timers.group_membership_interval
    assert group.expire == sub.expire


def test_each_link_says_its_version_querier_status_and_message_counts() -> None:
    engine = running()
    engine.handle(PacketReceived("d1", 4, ip("10.1.0.8"), ip("224.0.0.22"), b"\x22\x00"), 2.0)
    bad = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ip("239.1.1.2")),))
    engine.handle(PacketReceived("d1", 4, ip("224.1.1.1"), ip("224.0.0.22"),  # a forged sender
                                 build_igmp(bad)), 2.0)
    doc = document(engine.snapshot(), ["d1", "d2"], now=3.0)
    d1 = doc["downstream"]["d1/igmp"]
    assert (d1["version"], d1["operating-version"], d1["oper-status"]) == (3, 3, "up")
    assert (d1["querier"], d1["is-querier"]) == ("10.1.0.1", True)
    stats = d1["statistics"]
    assert stats["received"] == {"total": 2, "query": 0, "report": 2, "leave": 0,
                                 "report-v1": 0, "report-v2": 0, "report-v3": 2}
    assert stats["error"]["report-v3"] == 1
    assert stats["error"]["total"] == 1
    assert stats["sent"]["query"] >= 1  # the startup General Queries (RFC 9776 §8.6)
    assert stats["sent"]["query"] == stats["sent"]["total"]
    engine.handle(InterfaceDown("d2"), 4.0)
    doc = document(engine.snapshot(), ["d1", "d2"], now=4.0)
    assert doc["downstream"]["d2/igmp"]["oper-status"] == "down"


def test_sources_show_their_timers_up_time_and_the_hosts_that_name_them() -> None:
    engine = running()
    s1, s2, g = "192.0.2.1", "192.0.2.2", "239.1.2.2"
    for host, sources, at in (("10.1.0.7", (s1, s2), 2.0), ("10.1.0.8", (s1,), 3.0)):
        report = Report(3, (GroupRecord(RecordType.MODE_IS_INCLUDE, ip(g),
                                        tuple(ip(s) for s in sources)),))
        engine.handle(PacketReceived("d1", 4, ip(host), ip("224.0.0.22"),
                                     build_igmp(report)), at)
    snap = engine.snapshot()
    doc = document(snap, ["d1", "d2"], now=5.0)
    link = snap.link("d1", Family.V4)
    assert link is not None
    gmi = link.timers.group_membership_interval
    entry = doc["downstream"]["d1/igmp"]["groups"][g]
    assert entry["filter-mode"] == "include"
    assert "expire" not in entry
    assert (entry["up-time"], entry["last-reporter"]) == (3.0, "10.1.0.8")
    assert entry["sources"][s1] == {
        "expire": 3.0 + gmi - 5.0, "up-time": 3.0, "host-count": 2,
        "host": {"10.1.0.7": {"host-filter-mode": "include"},
                 "10.1.0.8": {"host-filter-mode": "include"}}}
    assert entry["sources"][s2]["host-count"] == 1
    assert entry["sources"][s2]["up-time"] == 3.0
    assert entry["host"]["10.1.0.8"] == {"filter-mode": "include", "sources": [s1],
                                         "expire": 3.0 + gmi - 5.0}
    # The snapshot keeps the engine's absolute times; without a time, none are shown.
    group = link.group(ip(g))
    assert group is not None
    assert group.up_since == 2.0
    assert group.source_up_since == {ip(s1): 2.0, ip(s2): 2.0}
    bare = document(snap, ["d1", "d2"])["downstream"]["d1/igmp"]["groups"][g]
    assert "up-time" not in bare
    assert "expire" not in bare["sources"][s1]


def test_a_flood_of_forged_reporters_keeps_host_count_and_last_reporter_right() -> None:
    # Many forged senders, each joining again and again, asking for more than the
    # per-subscriber limits let it have, then some leaving: each is one host, under the one
    # source and the one group it may have; the last reporter is the last host that joined.
    engine = Engine(parse_config(CONFIG.replace(
        "policy: {subscriber: {max-groups: unlimited}}",
        "policy: {subscriber: {max-groups: 1, max-group-sources: 1}, report-rate: "
        "{subscriber: unlimited, link: unlimited}}")), rng=lambda: 0.5)
    for name, addr in (("u1", "192.0.2.1"), ("u2", "198.51.100.1"), ("d1", "10.1.0.1"),
                       ("d2", "10.2.0.1")):
        engine.handle(InterfaceUp(name, (ip(addr),)), 0.0)
    s1, s2, g, other = "192.0.2.5", "192.0.2.6", "239.1.3.3", "239.1.3.4"
    hosts = [f"10.1.{n // 250}.{n % 250 + 2}" for n in range(600)]

    def report(host: str, at: float, *records: GroupRecord) -> None:
        engine.handle(PacketReceived("d1", 4, ip(host), ip("224.0.0.22"),
                                     build_igmp(Report(3, records))), at)

    wanted = (ip(s1), ip(s2))
    for rounds in range(3):
        for host in hosts:
            report(host, 1.0 + rounds,
                   GroupRecord(RecordType.MODE_IS_INCLUDE, ip(g), wanted),
                   GroupRecord(RecordType.MODE_IS_INCLUDE, ip(other), wanted))
    for host in hosts[-100:]:
        report(host, 5.0, GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE, ip(g)))
    engine.pop_actions()
    groups = document(engine.snapshot(), ["d1", "d2"], now=6.0)["downstream"]["d1/igmp"][
        "groups"]
    assert other not in groups  # max-groups 1: nobody has it
    entry = groups[g]
    assert sorted(entry["subscribers"]) == sorted(hosts[:500])
    counted = [entry["sources"][s]["host-count"] for s in entry["sources"]]
    assert sum(counted) == 500  # max-group-sources 1: each host under one source only
    assert {h for s in entry["sources"] for h in entry["sources"][s]["host"]} == set(hosts[:500])
    assert all(len(h["sources"]) == 1 for h in entry["host"].values())
    # RFC 8652: the last host that sent a report to join the group; a leave is no join.
    assert entry["last-reporter"] == hosts[-1]
    report(hosts[7], 7.0, GroupRecord(RecordType.MODE_IS_INCLUDE, ip(g), wanted))
    entry = document(engine.snapshot(), ["d1", "d2"], now=8.0)["downstream"]["d1/igmp"][
        "groups"][g]
    assert entry["last-reporter"] == hosts[7]


# --- made, encoded and let go of a slice at a time -----------------------------------------

def joined(groups: int, family: Family = Family.V4) -> Engine:
    """An engine with ``groups`` groups joined by a host on d1 and one on d2, and a route each."""
    engine = running() if family is Family.V4 else Engine(parse_config(
        CONFIG.replace("igmp: {version: 3}", "mld: {version: 2}").replace(
            "239.1.0.0/16", "ff15::/16")), rng=lambda: 0.5)
    if family is Family.V6:
        for name, i in (("u1", 1), ("u2", 2), ("d1", 0xD1), ("d2", 0xD2)):
            engine.handle(InterfaceUp(name, (ip(f"fe80::{i:x}:1"),)), 0.0)
    for first in range(0, groups, 50):
        for link, host in (("d1", "1"), ("d2", "2")):
            report = Report(3 if family is Family.V4 else 2, tuple(
                GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, ip(group_of(family, g)))
                for g in range(first, min(groups, first + 50))))
            src = f"10.{host}.0.7" if family is Family.V4 else f"fe80::{host}:7"
            dst = "224.0.0.22" if family is Family.V4 else "ff02::16"
            payload = (build_igmp(report) if family is Family.V4
                       else build_mld(report, ip(src), ip(dst)))
            engine.handle(PacketReceived(link, family, ip(src), ip(dst), payload), 1.0)
    for g in range(groups):
        source = "192.0.2.99" if family is Family.V4 else "2001:db8::99"
        engine.handle(NewFlow("u1", ip(source), ip(group_of(family, g))), 1.5)
    engine.pop_actions()
    return engine


def group_of(family: Family, g: int) -> str:
    return f"239.1.{g // 256}.{g % 256}" if family is Family.V4 else f"ff15::{g + 1:x}"


@pytest.mark.parametrize("family", list(Family))
def test_the_document_in_slices_is_the_document_and_encodes_as_json(family: Family) -> None:
    engine = joined(700, family)
    snap = engine.snapshot()
    doc = document(snap, ["d1", "d2"])
    slices = document_slices(snap, ["d1", "d2"])
    assert sum(1 for _ in _steps(slices)) > 10  # made in many slices
    assert whole(document_slices(snap, ["d1", "d2"])) == doc
    pieces = list(encode(doc))
    assert len(pieces) > 10
    assert "".join(pieces) == json.dumps(doc)
    assert max(len(p) for p in pieces) < 20_000
    # Addresses read as ipaddress writes them.
    link = doc["downstream"][f"d1/{family.protocol}"]["groups"]
    assert str(ipaddress.ip_address(ip(group_of(family, 699)))) in link


def _steps(slices: Generator[None, None, object]) -> Iterator[None]:
    yield from slices


LEAVES: list[object] = [None, True, 0, -7, 1.5, "", "é\u2028\"", [], {}, [1, [2]], {"k": {"v": []}}]


@st.composite
def json_values(draw: st.DrawFn, depth: int = 0) -> object:
    """Nested containers, some wider than a piece holds, of small values."""
    if depth == 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES) | st.text(max_size=3) | st.integers())
    width = draw(st.sampled_from([0, 1, 2, 63, 64, 65, 130]))
    items = [draw(json_values(depth + 1)) if i < 3 else LEAVES[i % len(LEAVES)]
             for i in range(width)]
    if draw(st.booleans()):
        return items
    return {f"k{i}": item for i, item in enumerate(items)}


@given(json_values())
@settings(deadline=None)
def test_encode_joins_into_json_dumps(value: object) -> None:
    assert "".join(encode(value)) == json.dumps(value)


class Leaf:
    """Something a weak reference can follow, to see that it is freed."""


def test_release_lets_go_of_everything_a_slice_at_a_time() -> None:
    leaves = [Leaf() for _ in range(3000)]
    refs = [weakref.ref(leaf) for leaf in leaves]
    doc = {"top": {"mid": {"groups": {str(i): {"x": [leaf]} for i, leaf in enumerate(leaves)}},
                   "routes": [{"leaf": leaf} for leaf in leaves]},
           "tuple": tuple(leaves), "frozen": MappingProxyType({"a": (leaves[0],)})}
    del leaves
    parts = release(doc)
    del doc
    steps = 0
    for _ in parts:
        steps += 1
    assert steps > 20  # a few hundred at a time
    assert all(ref() is None for ref in refs)


def test_a_snapshot_in_slices_is_the_snapshot_when_nothing_happens() -> None:
    engine = joined(300)
    sliced = engine.snapshot_slices()  # type: ignore[attr-defined]
    assert sum(1 for _ in _steps(sliced)) > 10
    assert whole(engine.snapshot_slices()) == engine.snapshot()  # type: ignore[attr-defined]


def test_a_snapshot_in_slices_while_the_engine_goes_on_holds_each_group_whole() -> None:
    engine = joined(300)
    slices = engine.snapshot_slices()  # type: ignore[attr-defined]
    now, step = 2.0, 0
    while True:
        try:
            next(slices)
        except StopIteration as done:
            snap = done.value
            break
        # Between two slices: a group left on d1, a new one joined, a route for it.
        leave = Report(3, (GroupRecord(RecordType.CHANGE_TO_INCLUDE_MODE,
                                       ip(group_of(Family.V4, step % 300))),))
        join = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE,
                                      ip(f"239.9.{step // 256}.{step % 256}")),))
        for report in (leave, join):
            engine.handle(PacketReceived("d1", 4, ip("10.1.0.7"), ip("224.0.0.22"),
                                         build_igmp(report)), now)
        engine.handle(NewFlow("u1", ip("192.0.2.99"), ip(f"239.9.{step // 256}.{step % 256}")),
                      now)
        engine.pop_actions()
        now, step = now + 0.01, step + 1
    assert step > 10
    link = snap.link("d1", Family.V4)
    assert link is not None
    for g in link.groups:  # each as it was at one moment: joined by its host, fed by u1
        assert [s.address for s in g.subscribers] == [ip("10.1.0.7")]
        assert g.upstreams == ("u1",)
    assert len({f.group for f in snap.flows}) == len(snap.flows)
    json.dumps(document(snap, ["d1", "d2"]))
