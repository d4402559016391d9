"""RFC 8652's clear-groups through the engine (``ClearGroups``): a link's groups, one group, or
the groups holding a source are forgotten with their subscribers, what no one else wants is left
upstream, static groups stay, and the subscribers are learned again from their next reports.

    u1 -- proxy -- d1: 10.1.0.11, .12     d2: 10.2.0.11
"""

from __future__ import annotations

import ipaddress

from harness import T, World, ip

from mcastproxy.events import ClearGroups
from mcastproxy.family import Family

CONFIG = """
igmp: {version: 3}
downstream:
  - {interface: d1, static-group: [{group: 239.1.0.99}]}
  - {interface: d2}
upstream: {candidates: [{interface: u1}]}
"""


def groups(w: World, link: str) -> set[str]:
    found = w.engine.snapshot().link(link, Family.V4)
    return set() if found is None else {str(ipaddress.ip_address(g.group))
                                        for g in found.groups}


def test_a_links_groups_are_cleared_and_the_rest_stays() -> None:
    w = World.make(CONFIG)
    w.join("d1", "10.1.0.11", "239.1.0.1")
    w.join("d1", "10.1.0.12", "239.1.0.2")
    w.join("d2", "10.2.0.11", "239.1.0.2")
    w.clear()
    w.handle(ClearGroups(interface="d1"))
    assert groups(w, "d1") == {"239.1.0.99"}  # the static group stays
    assert groups(w, "d2") == {"239.1.0.2"}
    # 239.1.0.1 had only d1: left upstream; 239.1.0.2 is still d2's.
    assert (T.CHANGE_TO_INCLUDE_MODE, "239.1.0.1", ()) in w.upstream_records("u1")
    assert not any(g == "239.1.0.2" for _, g, _ in w.upstream_records("u1"))
    (logged,) = [log for log in w.logs if log.event == "clear-groups"]
    assert logged.fields["cleared"] == 2
    # The subscriber's next report makes it again.
    w.join("d1", "10.1.0.11", "239.1.0.1")
    assert "239.1.0.1" in groups(w, "d1")


def test_one_group_is_cleared_on_every_link() -> None:
    w = World.make(CONFIG)
    w.join("d1", "10.1.0.11", "239.1.0.2")
    w.join("d2", "10.2.0.11", "239.1.0.2")
    w.join("d2", "10.2.0.11", "239.1.0.3")
    w.handle(ClearGroups(group=ip("239.1.0.2")))
    assert groups(w, "d1") == {"239.1.0.99"}
    assert groups(w, "d2") == {"239.1.0.3"}


def test_the_groups_of_a_source_are_cleared() -> None:
    w = World.make(CONFIG)
    w.join("d1", "10.1.0.11", "232.1.0.1", "192.0.2.1")
    w.join("d1", "10.1.0.11", "232.1.0.2", "192.0.2.2")
    w.handle(ClearGroups(source=ip("192.0.2.1")))
    assert groups(w, "d1") == {"239.1.0.99", "232.1.0.2"}


def test_clearing_what_is_not_there_changes_nothing() -> None:
    w = World.make(CONFIG)
    w.join("d1", "10.1.0.11", "239.1.0.1")
    w.clear()
    w.handle(ClearGroups(interface="nope"))
    w.handle(ClearGroups(group=ip("ff1e::1")))  # no MLD here
    assert groups(w, "d1") == {"239.1.0.1", "239.1.0.99"}
    assert w.upstream_records("u1") == []


def test_one_protocols_groups_are_cleared_in_one_event() -> None:
    # RFC 8652's action on the mld tree: its groups alone, the IGMP ones stay.
    w = World.make(CONFIG.replace("igmp: {version: 3}", "igmp: {version: 3}\nmld: {version: 2}"))
    w.join("d1", "10.1.0.11", "239.1.0.1")
    w.join("d1", "fe80::d1:11", "ff1e::1")
    w.join("d2", "fe80::d2:11", "ff1e::2")
    w.clear()
    w.handle(ClearGroups(family=6))
    assert groups(w, "d1") == {"239.1.0.1", "239.1.0.99"}
    for link in ("d1", "d2"):
        found = w.engine.snapshot().link(link, Family.V6)
        assert found is not None
        assert list(found.groups) == []
    (logged,) = [log for log in w.logs if log.event == "clear-groups"]
    assert logged.fields["cleared"] == 2
    w.handle(ClearGroups(interface="d1", family=4))
    assert groups(w, "d1") == {"239.1.0.99"}
