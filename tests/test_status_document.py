"""The status document is built from the engine's snapshot: plain data, detached from the
engine, with every drop visible by reason and by interface."""

from __future__ import annotations

import ipaddress
import json

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceUp, NewFlow, PacketReceived
from mcastproxy.family import Family
from mcastproxy.status import document
from mcastproxy.wire import build_igmp
from mcastproxy.wire.messages import GroupRecord, RecordType, Report

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1}, {interface: d2}]
upstream:
  candidates:
    - interface: u1
      records: [{group: 239.1.0.0/16}]
    - interface: u2
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
    doc = document(engine.snapshot(), ["d1", "d2"])
    json.dumps(doc)  # plain data all the way down
    assert doc["downstream"]["d1/igmp"]["groups"]["239.1.1.1"] == {
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
