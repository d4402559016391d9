"""Interfaces followed through netlink: up, down, addresses, appearing later.

::

    router                      host
    d1  ----------------------- eth0     (veth; the host end going down is carrier loss)
    d9  (created during the test)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcastlab import Lab, Topology


@pytest.mark.netns
def test_link_watcher_follows_state_addresses_and_new_interfaces(
    make_lab: Callable[..., Lab],
) -> None:
    t = Topology()
    router, host = t.hosts("router", "host")
    t.veth(router.iface("d1", "10.9.0.1/24"), host.iface("eth0", "10.9.0.2/24"))
    lab = make_lab(t)
    watch = lab.python_json("router", "mcastproxy.links", "d1", "d9")
    watch.wait_event(lambda e: e.get("event") == "ready", 10)
    first = [e for e in watch.events() if e.get("event") in ("up", "down")]
    assert first[1] == {"event": "down", "interface": "d9"}  # does not exist yet
    assert first[0]["event"] == "up"
    assert "10.9.0.1" in first[0]["addresses"]
    assert "10.9.0.1/24" in first[0]["prefixes"]  # the link's subnet (verify-source-subnet)

    lab.set_link("host", "eth0", up=False)  # carrier lost on d1
    watch.wait_event(lambda e: e == {"event": "down", "interface": "d1"}, 5)
    lab.set_link("host", "eth0", up=True)
    watch.wait_event(lambda e: e.get("event") == "up" and e["interface"] == "d1", 5)

    lab.run("router", "ip", "addr", "add", "10.9.9.1/28", "dev", "d1")
    watch.wait_event(
        lambda e: e.get("interface") == "d1" and "10.9.9.1/28" in e.get("prefixes", ()), 5
    )
    lab.run("router", "ip", "link", "add", "d9", "type", "veth", "peer", "name", "x9")
    lab.run("router", "ip", "link", "set", "x9", "up")
    lab.run("router", "ip", "link", "set", "d9", "up")
    watch.wait_event(lambda e: e.get("event") == "up" and e["interface"] == "d9", 5)
    lab.run("router", "ip", "link", "del", "d9")
    watch.wait_event(lambda e: e == {"event": "down", "interface": "d9"}, 5)
