"""``mcastproxy run`` for real, on the proxy topology, in IPv4 and IPv6 (use cases of the paper).

::

      prov1 (channels 239.1/16, ff1e::1:0/112)    prov2 (channels 239.2/16, ff1e::2:0/112)
             eth0                                       eth0
              |                                          |
              u1 ------------------ proxy --------------- u2
              d1 (bridge lan1: sub1, sub2)               d2 (sub3)

Each test asserts which upstream carried each report (captured on the provider's side), that
data reaches exactly the subscribers that asked for it, from the upstream selected, with no
duplicates, and that after the leaves the upstream memberships stop.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from running_proxy import Proxy

from mcastproxy.lab import JoinMode, wait_until
from mcastproxy.wire.messages import RecordType

pytestmark = pytest.mark.netns


@dataclass(frozen=True)
class Fam:
    v: int
    asm: JoinMode
    g1: str  # a channel of provider 1
    g2: str  # a channel of provider 2
    prov_addr: dict[str, str]  # provider -> its source address


# Channels outside the SSM ranges (232/8, ff3x::/32), where any-source joins count (RFC 4604).
FAMS = {
    4: Fam(4, JoinMode.IGMPV3_ASM, "239.1.1.1", "239.2.2.2",
           {"prov1": "10.0.1.2", "prov2": "10.0.2.2"}),
    6: Fam(6, JoinMode.MLDV2_ASM, "ff1e::1:1", "ff1e::2:2",
           {"prov1": "fd00:1::2", "prov2": "fd00:2::2"}),
}

WHOLESALE = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  takeover: false
  candidates:
    - interface: u1
      records: [{group: 239.1.0.0/16}, {group: "ff1e::1:0/112"}]
    - interface: u2
      records: [{group: 239.2.0.0/16}, {group: "ff1e::2:0/112"}]
"""

RESILIENCY = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  takeover: true
  candidates:
    - interface: u1
      priority: 10
    - interface: u2
      priority: 5
"""


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]


def delivered(rx, group: str) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Sequence numbers received per sender for ``group``."""
    out: dict[str, list[int]] = {}
    for p in rx.packets(group):
        out.setdefault(p.sender, []).append(p.seq)
    return out


def test_wholesale_two_providers_one_subscriber(proxy_with: Callable[[str], Proxy],
                                                fam: Fam) -> None:
    proxy = proxy_with(WHOLESALE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    sub1.join(fam.asm, fam.g2)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g2)
    # Each channel was asked of its own provider only.
    assert not any(fam.g2 in str(m) for m in proxy.reports("prov1", fam))
    proxy.send("prov1", fam, fam.g1)
    proxy.send("prov2", fam, fam.g2)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 40 and len(sub1.packets(fam.g2)) >= 40, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(40))}  # all, once, in order
    assert delivered(sub1, fam.g2) == {"prov2": list(range(40))}
    assert sub3.packets() == []  # d2 asked for nothing
    # Leaves: the proxy leaves upstream, and traffic no longer reaches the subscriber.
    sub1.leave(fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_INCLUDE_MODE, fam.g1)
    before = len(sub1.packets(fam.g1))
    proxy.send("prov1", fam, fam.g1, count=20)
    assert len(sub1.packets(fam.g1)) == before


def test_resiliency_standby_serves_when_the_active_link_goes_down(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    proxy = proxy_with(RESILIENCY)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    assert proxy.reports("prov2", fam) == []
    proxy.send("prov1", fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20, 5)
    # The active upstream's link loses carrier: the standby takes over.
    proxy.lab.set_link("prov1", "eth0", up=False)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    # `explain --live` takes the running proxy's view of which upstreams are usable.
    out = json.loads(proxy.lab.run(
        "proxy", sys.executable, "-m", "mcastproxy", "explain", "-c", str(proxy.config),
        "--subscriber", "10.1.1.11" if fam.v == 4 else "fe80::ff:fe00:d111",
        "--group", fam.g1, "--live", str(proxy.status_socket), "--json"))
    assert out["upstreams"] == ["u2"]
    assert out["liveness"]["u1"]["usable"] is False
    assert out["liveness"]["u1"]["inactive_because"] == "link down"
    proxy.send("prov2", fam, fam.g1, count=20)
    wait_until(lambda: len(delivered(sub1, fam.g1).get("prov2", [])) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20)), "prov2": list(range(20))}


LOAD_BALANCING = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  candidates:
    - interface: u1
      records: [{{group: 239.1.0.0/16}}, {{group: "ff1e::1:0/112"}}]
    - interface: u2
      records: [{{group: 239.2.0.0/16}}, {{group: "ff1e::2:0/112"}}, {{source: "{s2}"}}]
"""


def test_load_balancing_by_group_prefix_and_source(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    # Channels split by group prefix; provider 2's source is always taken from u2, even in
    # u1's block (draft §4.2: a source record outranks a group record).
    proxy = proxy_with(LOAD_BALANCING.format(s2=fam.prov_addr["prov2"]))
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    sub3.join(fam.asm, fam.g2)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g2)
    # The any-source join of g1 is also asked of u2 for provider 2's source, exactly.
    proxy.wait_report("prov2", fam, RecordType.ALLOW_NEW_SOURCES, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    proxy.send("prov2", fam, fam.g2, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 40 and len(sub3.packets(fam.g2)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20)), "prov2": list(range(20))}
    assert delivered(sub3, fam.g2) == {"prov2": list(range(20))}
    assert sub3.packets(fam.g1) == []


MERGING = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  takeover: false
  candidates:
    - interface: u1
      records: [{{subscriber: "{base1}"}}]
    - interface: u2
      records: [{{subscriber: "{base2}"}}]
"""
BASES = {4: ("10.1.1.0/24", "10.1.2.0/24"),
         6: ("fe80::ff:fe00:d100/120", "fe80::ff:fe00:d200/120")}


def test_network_merging_each_customer_base_its_own_provider(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    base1, base2 = BASES[fam.v]
    proxy = proxy_with(MERGING.format(base1=base1, base2=base2))
    sub1 = proxy.lab.receiver("sub1", "eth0")  # the first network's customer, on d1
    sub3 = proxy.lab.receiver("sub3", "eth0")  # the merged network's customer, on d2
    sub1.join(fam.asm, fam.g1)
    sub3.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20 and len(sub3.packets(fam.g1)) >= 20, 5)
    # The same channel, each base from its own provider, and no duplicates.
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    assert delivered(sub3, fam.g1) == {"prov2": list(range(20))}


MIGRATION_BEFORE = """
igmp: {version: 3}
mld: {version: 2}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  default: u1
  candidates:
    - interface: u1
    - interface: u2
      records: [{group: 239.255.0.0/16}]
"""
MIGRATION_AFTER = MIGRATION_BEFORE.replace(
    "records: [{group: 239.255.0.0/16}]",
    'records: [{group: 239.255.0.0/16}, {group: 239.1.0.0/16}, {group: "ff1e::1:0/112"}]',
)


def test_migration_by_reload_keeps_running_subscriptions(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    # The paper's smooth migration: after the reload, new subscriptions to g1 come from the
    # new upstream while the running one keeps flowing from the old one until it leaves.
    proxy = proxy_with(MIGRATION_BEFORE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub3 = proxy.lab.receiver("sub3", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    proxy.reload(MIGRATION_AFTER)
    sub3.join(fam.asm, fam.g1)
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    for prov in ("prov1", "prov2"):
        proxy.send(prov, fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20 and len(sub3.packets(fam.g1)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    assert delivered(sub3, fam.g1) == {"prov2": list(range(20))}
    # The running subscription leaves: the old upstream is left; the new one stays.
    sub1.leave(fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_INCLUDE_MODE, fam.g1)
    assert not any(r.type == RecordType.CHANGE_TO_INCLUDE_MODE
                   for m in proxy.reports("prov2", fam) for r in m.records)


def test_bad_reload_keeps_the_running_configuration(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    proxy = proxy_with(WHOLESALE)
    proxy.config.write_text(WHOLESALE.replace("239.1.0.0/16", "10.0.0.0/8"))
    proxy.daemon.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in proxy.daemon.output(), 10)
    assert "is not multicast" in proxy.daemon.output()
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)  # still proxied by the old rules
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)


@pytest.mark.parametrize("mode", list(JoinMode), ids=[m.value for m in JoinMode])
def test_every_kind_of_join_is_proxied(
    proxy_with: Callable[[str], Proxy], mode: JoinMode
) -> None:
    """IGMPv2, IGMPv3 any-source and source-specific, MLDv1, MLDv2 likewise: joined upstream,
    delivered, left upstream after the leave."""
    fam = FAMS[mode.family]
    proxy = proxy_with(WHOLESALE)
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sources = (fam.prov_addr["prov1"],) if mode.source_specific else ()
    sub1.join(mode, fam.g1, *sources)
    joined = RecordType.ALLOW_NEW_SOURCES if sources else RecordType.CHANGE_TO_EXCLUDE_MODE
    proxy.wait_report("prov1", fam, joined, fam.g1)
    proxy.send("prov1", fam, fam.g1, count=20)
    wait_until(lambda: len(sub1.packets(fam.g1)) >= 20, 5)
    assert delivered(sub1, fam.g1) == {"prov1": list(range(20))}
    sub1.leave(fam.g1, *sources)
    left = RecordType.BLOCK_OLD_SOURCES if sources else RecordType.CHANGE_TO_INCLUDE_MODE
    proxy.wait_report("prov1", fam, left, fam.g1)


HELLO_LIVENESS = """
igmp: {{version: 3}}
mld: {{version: 2}}
downstream: [{{interface: d1, fast-leave: true}}, {{interface: d2, fast-leave: true}}]
upstream:
  takeover: true
  hold-down: 1s
  candidates:
    - interface: u1
      priority: 10
      liveness: {{link: true, hellos: true}}
      routers: ["{router}"]
      active-interval: 1500ms
    - interface: u2
      priority: 5
"""
HELLO_SOURCE = {4: "10.0.1.2", 6: "fe80::ff:fe00:b102"}
FORGER = {4: "10.0.1.99", 6: "fe80::99"}  # on u1's link, not one of its routers


def test_pim_hellos_keep_an_upstream_and_their_silence_fails_it_over(
    proxy_with: Callable[[str], Proxy], fam: Fam
) -> None:
    proxy = proxy_with(HELLO_LIVENESS.format(router=HELLO_SOURCE[fam.v]))
    script = str(Path(__file__).with_name("pim_hello.py"))
    hellos = proxy.lab.popen("prov1", sys.executable, script, "eth0", str(fam.v), "40", "0.25",
                             HELLO_SOURCE[fam.v])
    # A host on the link forges hellos all along, from an address that is not a configured
    # router (draft §7): they count for nothing.
    prefix = "/24" if fam.v == 4 else "/64"
    proxy.lab.run("prov1", "ip", "address", "add", FORGER[fam.v] + prefix, "dev", "eth0",
                  *(() if fam.v == 4 else ("nodad",)))
    forger = proxy.lab.popen("prov1", sys.executable, script, "eth0", str(fam.v), "80", "0.1",
                             FORGER[fam.v])
    sub1 = proxy.lab.receiver("sub1", "eth0")
    sub1.join(fam.asm, fam.g1)
    proxy.wait_report("prov1", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    # While hellos come (well past the 1.5 s active interval), u1 keeps the channel.
    wait_until(lambda: hellos.output().count("sent") >= 12, 10)
    assert proxy.reports("prov2", fam) == []
    # The router falls silent: within the active interval the standby takes over.
    hellos.stop()
    proxy.wait_report("prov2", fam, RecordType.CHANGE_TO_EXCLUDE_MODE, fam.g1)
    assert forger.output().count("sent") > hellos.output().count("sent")  # still forging
    assert "upstream u1 is unusable: no query or hello" in proxy.daemon.output()
    assert f"hello on u1 from {FORGER[fam.v]}, not one of its routers" in proxy.daemon.output()
    dropped = proxy.status()["dropped"]
    assert dropped["hello from a router not configured for the upstream"] >= 10
