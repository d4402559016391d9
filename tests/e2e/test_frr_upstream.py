"""A real upstream router: FRR's pimd is the IGMPv3 querier toward the proxy's u1.

::

      prov1: FRR (zebra, pimd)                      prov2 (no router)
      eth0 10.0.1.2, IGMPv3 querier,                eth0 10.0.2.2
        query interval 5 s, max response 2 s           |
              |                                        |
              u1 10.0.1.1 ---------- proxy ---------- u2 10.0.2.1
              d1 (bridge lan1: sub1, sub2)            d2 (sub3)

      u1 carries 232.1/16 and 239.1/16, u2 232.2/16 and 239.2/16.

sub1's kernel joins ASM 239.1.1.1, SSM (10.0.1.2, 232.1.1.1) and ASM 239.2.2.2 (IGMPv3).
FRR's own view, read through vtysh, must be exactly the two u1 channels on eth0, as IGMPv3
memberships reported by 10.0.1.1 (pimd's packet debug log names the reporter; its JSON does
not): 239.1.1.1 EXCLUDE {} and 232.1.1.1 INCLUDE {10.0.1.2}, never 239.2.2.2 (that one goes to
prov2). They must still be there more than a group membership interval (2 x 5 s + 2 s) after
the proxy's last state-change report, which only the proxy's answers to FRR's general queries
(current-state records) can give. Data sent from prov1 reaches sub1 through the proxy. When
sub1 leaves, FRR runs its last-member queries, which the proxy leaves unanswered, and both
groups go away within the last member query time.

pimd has ``ip igmp`` on eth0 but not ``ip pim``: IGMP needs no PIM, and with PIM on eth0
pimd installs (10.0.1.2, 232.1.1.1) in from eth0 and out to eth0 for the IGMP join, so the
kernel forwards the looped-back copy of each packet prov1 sends itself back out of eth0,
and every SSM packet would cross the link twice. How FRR is run: ``frr.py``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from frr import FrrRouter, Membership, frr_missing

from mcastlab import Capture, JoinMode, Lab, topologies, wait_until
from mcastproxy.wire.messages import Query, RecordType, Report

pytestmark = [
    pytest.mark.netns,
    pytest.mark.mroute,
    pytest.mark.skipif(frr_missing() is not None, reason=frr_missing() or ""),
]

QUERY_INTERVAL = 5  # s
MAX_RESPONSE = 2  # s
GMI = 2 * QUERY_INTERVAL + MAX_RESPONSE  # RFC 3376 §8.4, FRR's default robustness 2
LMQT = 2 * 1  # FRR's default last member query count 2 x interval 1 s

# The max response time first: FRR refuses a query interval not above the one it has.
PIMD = f"""
debug igmp packets
interface eth0
 ip igmp
 ip igmp version 3
 ip igmp query-max-response-time {MAX_RESPONSE * 10}
 ip igmp query-interval {QUERY_INTERVAL}
"""

CONFIG = """
igmp: {version: 3}
downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]
upstream:
  takeover: false
  candidates:
    - interface: u1
      records: [{group: 232.1.0.0/16}, {group: 239.1.0.0/16}]
    - interface: u2
      records: [{group: 232.2.0.0/16}, {group: 239.2.0.0/16}]
"""

FRR_ADDR = "10.0.1.2"  # prov1 eth0: the querier, and the source of the SSM channel
PROXY_U1 = "10.0.1.1"
PROXY_U2 = "10.0.2.1"
ASM, SSM, OTHER = "239.1.1.1", "232.1.1.1", "239.2.2.2"  # OTHER is a channel of u2
JOINED = {
    ASM: Membership("EXCLUDE", 3, frozenset({"*"})),
    SSM: Membership("INCLUDE", 3, frozenset({FRR_ADDR})),
}
CURRENT_STATE = (RecordType.MODE_IS_INCLUDE, RecordType.MODE_IS_EXCLUDE)


def ip(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def records(cap: Capture, src: str, start: int = 0) -> list[tuple[int, int, str, tuple[str, ...]]]:
    """(capture time, type, group, sources) of every record of the reports ``src`` sent."""
    return [
        (p.time_ns, r.type, ip(r.group), tuple(ip(s) for s in r.sources))
        for p, m in cap.messages(start) if p.src == src and isinstance(m, Report)
        for r in m.records
    ]


def queries(cap: Capture, start: int = 0) -> list[tuple[int, str, tuple[str, ...]]]:
    """(capture time, group, sources) of every query FRR sent."""
    return [
        (p.time_ns, ip(m.group), tuple(ip(s) for s in m.sources))
        for p, m in cap.messages(start) if p.src == FRR_ADDR and isinstance(m, Query)
    ]


def frr_heard_only_the_proxy_on_u1(frr: FrrRouter) -> None:
    """Every IGMPv3 report FRR received, but its own kernel's, came from u1 for u1's channels."""
    heard = frr.heard(lambda h: h.reporter != FRR_ADDR)
    assert {(h.reporter, h.iface) for h in heard} == {(PROXY_U1, "eth0")}
    assert {h.group for h in heard} == {ASM, SSM}


def test_frr_querier_sees_exactly_what_the_proxy_joins(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(topologies.proxy_lab())
    frr = FrrRouter(lab, "prov1", tmp_path / "frr", PIMD)
    assert frr.wait_querier("eth0", version=3)["address"] == FRR_ADDR
    # FRR drops a config line it refuses, saying so only in its log: check what it runs.
    timers = frr.igmp_interface("eth0", detail=True) or {}
    assert (timers.get("timerQueryInterval"), timers.get("timerGroupMembershipIntervalMsec"),
            timers.get("timerLastMemberQueryMsec")) == (QUERY_INTERVAL, GMI * 1000, LMQT * 1000)
    assert frr.memberships() == {}

    cap1, cap2 = lab.capture("prov1", "eth0"), lab.capture("prov2", "eth0")
    lab.proxy(CONFIG, workdir=tmp_path)

    sub1 = lab.receiver("sub1", "eth0")
    sub1.join(JoinMode.IGMPV3_ASM, ASM)
    sub1.join(JoinMode.IGMPV3_SSM, SSM, FRR_ADDR)
    sub1.join(JoinMode.IGMPV3_ASM, OTHER)

    # FRR holds exactly the two u1 channels, on the link to u1, reported by the proxy's u1.
    wait_until(lambda: frr.memberships() == {"eth0": JOINED}, 5,
               message=lambda: f"FRR holds {frr.memberships()}")
    wait_until(lambda: (RecordType.CHANGE_TO_EXCLUDE_MODE, OTHER, ())
               in [r[1:] for r in records(cap2, PROXY_U2)], 5,
               message="the proxy did not join 239.2.2.2 on u2")
    frr_heard_only_the_proxy_on_u1(frr)

    # Data from FRR's namespace reaches sub1 through the proxy, each packet once, in order.
    for group in (SSM, ASM):
        lab.send("prov1", group, count=40, rate=400, iface="eth0", source=FRR_ADDR)
        got = sub1.wait_packets(40, 5, group=group)
        assert [(p.sender, p.seq) for p in got] == [("prov1", i) for i in range(40)]

    # Across query cycles: the memberships outlive the group membership interval counted
    # from the proxy's last state-change report, so FRR's general queries were answered.
    def last_change_ns() -> int:
        return max(t for t, kind, _, _ in records(cap1, PROXY_U1) if kind not in CURRENT_STATE)

    def held_past_gmi() -> bool:
        held = frr.memberships()
        assert held == {"eth0": JOINED}, f"FRR dropped or changed memberships: {held}"
        return time.monotonic_ns() > last_change_ns() + (GMI + 1) * 10**9

    wait_until(held_past_gmi, GMI + 8, 0.5)
    general = [t for t, group, _ in queries(cap1) if group == "0.0.0.0" and t > last_change_ns()]
    assert general, "FRR sent no general query after the joins"
    answers = {r[1:] for r in records(cap1, PROXY_U1) if r[0] > general[0]}
    assert answers == {
        (RecordType.MODE_IS_EXCLUDE, ASM, ()),
        (RecordType.MODE_IS_INCLUDE, SSM, (FRR_ADDR,)),
    }
    assert {(h.type, h.group) for h in frr.heard(lambda h: h.reporter == PROXY_U1)} >= {
        (RecordType.MODE_IS_EXCLUDE, ASM), (RecordType.MODE_IS_INCLUDE, SSM)}  # FRR's side

    # Leaves: the proxy leaves upstream, FRR's last-member queries go unanswered, and FRR's
    # groups go away. 239.2.2.2 stays joined (on u2) and never shows up at FRR.
    mark = cap1.mark()
    sub1.leave(ASM)
    sub1.leave(SSM, FRR_ADDR)
    wait_until(lambda: frr.memberships() == {}, LMQT + 4, 0.1,
               message=lambda: f"FRR still holds {frr.memberships()}")
    after = records(cap1, PROXY_U1, mark)
    assert {r[1:] for r in after if r[1] not in CURRENT_STATE} == {
        (RecordType.CHANGE_TO_INCLUDE_MODE, ASM, ()),
        (RecordType.BLOCK_OLD_SOURCES, SSM, (FRR_ADDR,)),
    }
    for group, sources in ((ASM, ()), (SSM, (FRR_ADDR,))):
        asked = [t for t, g, s in queries(cap1, mark) if (g, s) == (group, sources)]
        assert asked, f"FRR sent no last-member query for {group} {sources}: {queries(cap1, mark)}"
        answered = [r for r in after if r[0] > asked[0] and r[2] == group and r[1] in CURRENT_STATE]
        assert not answered, f"the proxy answered a last-member query after leaving: {answered}"
    assert frr.json("show ip igmp groups")["totalGroups"] == 0
    assert frr.json("show ip igmp sources") == {}
    frr_heard_only_the_proxy_on_u1(frr)  # the whole run through
