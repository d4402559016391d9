"""``stop`` leaves nothing behind; a start after a crash removes what the crashed run left;
a second router cannot take tables a live one owns.

Topology ``proxy_lab`` (only the proxy matters here)::

    prov1 -- u1 [4600] proxy [4601] u2 -- prov2,  d1 -- lan1,  d2 -- sub3

What is checked, after each step, in the proxy namespace: the multicast rules
(``ip mrule show``, ``ip -6 mrule show``), the entries of every table
(``ip mroute show table all``), the VIFs of every ipmr table (netlink, as
/proc/net/ip_mr_vif shows the default table only), /proc/net/ip_mr_vif and
/proc/net/ip6_mr_vif, and the kernel's count of VIFs per device (the read-only
``mc_forwarding`` sysctls, which ipmr and ip6mr raise per VIF and per mroute socket).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from proxy_agent import Agent

from mcastlab import Lab, topologies, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.mroute]

IFACES = ["u1", "u2", "d1", "d2"]
DEFAULT_RULES = {4: "32767:\tfrom all lookup default", 6: "32767:\tfrom all lookup main"}

_PROBE = """
import json
from mcastproxy.kernel.rtnl import Rtnl
with Rtnl() as nl:
    print(json.dumps({t: v for t, v in nl.ipmr_vifs().items()}))
"""


def state(lab: Lab) -> dict[str, Any]:
    """What the proxy namespace holds of multicast routing."""
    fwd = lab.run(
        "proxy",
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/conf/*/mc_forwarding /proc/sys/net/ipv6/conf/*/mc_forwarding",
    )
    return {
        "rules4": lab.run("proxy", "ip", "mrule", "show").strip().splitlines(),
        "rules6": lab.run("proxy", "ip", "-6", "mrule", "show").strip().splitlines(),
        "mroutes4": lab.run("proxy", "ip", "mroute", "show", "table", "all").strip(),
        "mroutes6": lab.run("proxy", "ip", "-6", "mroute", "show", "table", "all").strip(),
        "vifs4": {
            t: v for t, v in json.loads(lab.run("proxy", sys.executable, "-c", _PROBE)).items() if v
        },
        "proc_vifs": [
            lab.run("proxy", "cat", p).strip().splitlines()[1:]
            for p in ("/proc/net/ip_mr_vif", "/proc/net/ip6_mr_vif")
        ],
        "mc_forwarding": sorted(set(fwd.split())),
    }


CLEAN = {
    "rules4": [DEFAULT_RULES[4]],
    "rules6": [DEFAULT_RULES[6]],
    "mroutes4": "",
    "mroutes6": "",
    "vifs4": {},
    "proc_vifs": [[], []],
    "mc_forwarding": ["0"],
}


def start_both(agent: Agent) -> None:
    for family, (s, g) in ((4, ("10.0.1.2", "232.1.0.1")), (6, ("fd00:1::2", "ff3e::1:1"))):
        agent.call("start", family=family, upstreams=["u1", "u2"], downstreams=["d1", "d2"])
        agent.call("set_route", family=family, table="u1", source=s, group=g, iif="u1", oifs=["d1"])
        agent.call("set_route", family=family, table="u2", source=s, group=g, iif="u2", oifs=[])


def assert_running(lab: Lab) -> None:
    st = state(lab)
    for family in (4, 6):
        assert st[f"rules{family}"] == [
            "4600:\tfrom all iif u1 lookup 4600",
            "4600:\tfrom all iif u2 lookup 4601",
            DEFAULT_RULES[family],
        ]
        assert st[f"mroutes{family}"].count("Iif: u") == 2
    ifindex = {n: lab.ifindex("proxy", n) for n in IFACES}
    assert st["vifs4"] == {
        "4600": {"0": ifindex["u1"], "1": ifindex["d1"], "2": ifindex["d2"]},
        "4601": {"0": ifindex["u2"], "1": ifindex["d1"], "2": ifindex["d2"]},
    }


def test_stop_leaves_nothing(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    assert state(lab) == CLEAN
    agent = Agent(lab, "proxy", IFACES)
    start_both(agent)
    assert_running(lab)
    for family in (4, 6):
        agent.call("stop", family=family)
        agent.call("stop", family=family)  # idempotent
    assert state(lab) == CLEAN


def test_a_start_after_a_crash_removes_what_it_left(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    crashed = Agent(lab, "proxy", IFACES)
    start_both(crashed)
    crashed.popen.kill()  # SIGKILL: no stop()
    crashed.wait(5)
    # The kernel flushed the tables when their sockets closed; the rules stay behind.
    left = state(lab)
    assert left["rules4"][:2] == [
        "4600:\tfrom all iif u1 lookup 4600",
        "4600:\tfrom all iif u2 lookup 4601",
    ]
    assert len(left["rules6"]) == 3
    assert (left["mroutes4"], left["vifs4"], left["mc_forwarding"]) == ("", {}, ["0"])

    # A smaller configuration: the rule of the table it does not use must go too.
    agent = Agent(lab, "proxy", IFACES)
    for family in (4, 6):
        agent.call("start", family=family, upstreams=["u2"], downstreams=["d1"])
    st = state(lab)
    assert st["rules4"] == ["4600:\tfrom all iif u2 lookup 4600", DEFAULT_RULES[4]]
    assert st["rules6"] == ["4600:\tfrom all iif u2 lookup 4600", DEFAULT_RULES[6]]
    for family in (4, 6):
        agent.call("stop", family=family)
    assert state(lab) == CLEAN


def test_tables_of_a_live_router_are_not_taken(make_lab: Callable) -> None:
    lab = make_lab(topologies.proxy_lab())
    first = Agent(lab, "proxy", IFACES)
    start_both(first)
    second = Agent(lab, "proxy", IFACES)
    for family in (4, 6):
        with pytest.raises(RuntimeError, match="table 4600 is in use by another program"):
            second.call("start", family=family, upstreams=["u1"], downstreams=["d1"])
    assert_running(lab)  # the first one's rules, VIFs and routes are untouched
    second.stop()
    first.stop()  # end of stdin: the agent stops its routers
    wait_until(lambda: state(lab) == CLEAN, timeout=5)
