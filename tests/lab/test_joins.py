"""Kernel hosts join in every IGMP/MLD mode; the reports, decoded by our codecs, say so.

Topology ``lan_pair``::

    router eth0 10.0.0.1 fd00::1 ------------ eth0 10.0.0.2 fd00::2  host
    (captures IGMP/MLD)                       (a receiver joins, then leaves)
                                              link-local fe80::ff:fe00:2

No querier runs: the host's kernel sends its unsolicited reports (state-change reports in
IGMPv3/MLDv2) as soon as the receiver joins, and a Leave/Done or a state-change report as
soon as it leaves. The test polls the capture for the first one of each.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import NamedTuple

import pytest

from mcastlab import JoinMode, LabError, topologies
from mcastproxy.wire import GroupRecord, Leave, Message, RecordType, Report

pytestmark = pytest.mark.netns

HOST_V4 = "10.0.0.2"
HOST_LL = "fe80::ff:fe00:2"  # EUI-64 of 02:00:00:00:00:02
ROUTER_V4 = "10.0.0.1"
ROUTER_V6 = "fd00::1"


def packed(a: str) -> bytes:
    return ipaddress.ip_address(a).packed


def reports(
    version: int, rtype: RecordType, group: str, *sources: str
) -> Callable[[Message], bool]:
    """A report of ``version`` holding the record (type, group, sources)."""
    record = GroupRecord(rtype, packed(group), tuple(packed(s) for s in sources))
    return lambda m: isinstance(m, Report) and m.version == version and record in m.records


def leaves(group: str) -> Callable[[Message], bool]:
    """An IGMPv2 Leave Group / MLDv1 Done for ``group``."""
    return lambda m: m == Leave(packed(group))


class Case(NamedTuple):
    mode: JoinMode
    group: str
    sources: tuple[str, ...]
    join: Callable[[Message], bool]  # what the join report must say
    join_dst: str  # where it goes
    leave: Callable[[Message], bool]
    leave_dst: str


G4, G4S, G6, G6S = "239.1.2.1", "232.1.2.3", "ff1e::1:1", "ff3e::1:3"
EX, IN = RecordType.CHANGE_TO_EXCLUDE_MODE, RecordType.CHANGE_TO_INCLUDE_MODE
ALLOW, BLOCK = RecordType.ALLOW_NEW_SOURCES, RecordType.BLOCK_OLD_SOURCES

CASES = [
    # RFC 2236 §3: a v2 Report to the group; a Leave to all-routers.
    # wire reads an old report as MODE_IS_EXCLUDE with no sources (RFC 9776 §7.3.2).
    Case(
        JoinMode.IGMPV2,
        G4,
        (),
        reports(2, RecordType.MODE_IS_EXCLUDE, G4),
        G4,
        leaves(G4),
        "224.0.0.2",
    ),
    # RFC 9776 §5.1: an any-source join is a change to EXCLUDE {}; its leave to INCLUDE {}.
    Case(
        JoinMode.IGMPV3_ASM,
        G4,
        (),
        reports(3, EX, G4),
        "224.0.0.22",
        reports(3, IN, G4),
        "224.0.0.22",
    ),
    # A source join from INCLUDE {} allows the new source; its leave blocks it.
    Case(
        JoinMode.IGMPV3_SSM,
        G4S,
        (ROUTER_V4,),
        reports(3, ALLOW, G4S, ROUTER_V4),
        "224.0.0.22",
        reports(3, BLOCK, G4S, ROUTER_V4),
        "224.0.0.22",
    ),
    # RFC 2710 §4: a v1 Report to the group; a Done to all-routers.
    Case(
        JoinMode.MLDV1,
        G6,
        (),
        reports(1, RecordType.MODE_IS_EXCLUDE, G6),
        G6,
        leaves(G6),
        "ff02::2",
    ),
    # RFC 9777 §6.1, as for IGMPv3, sent to all MLDv2-capable routers.
    Case(
        JoinMode.MLDV2_ASM, G6, (), reports(2, EX, G6), "ff02::16", reports(2, IN, G6), "ff02::16"
    ),
    Case(
        JoinMode.MLDV2_SSM,
        G6S,
        (ROUTER_V6,),
        reports(2, ALLOW, G6S, ROUTER_V6),
        "ff02::16",
        reports(2, BLOCK, G6S, ROUTER_V6),
        "ff02::16",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.mode.value for c in CASES])
def test_host_join_and_leave_are_reported(make_lab: Callable, case: Case) -> None:
    lab = make_lab(topologies.lan_pair())
    host_addr = HOST_V4 if case.mode.family == 4 else HOST_LL
    assert lab.link_local("host", "eth0") == HOST_LL

    with lab.capture("router", "eth0") as cap, lab.receiver("host", "eth0") as rx:
        rx.join(case.mode, case.group, *case.sources)
        pkt, _ = cap.wait_for(lambda p, m: p.src == host_addr and case.join(m), timeout=5)
        assert (pkt.dst, pkt.outgoing) == (case.join_dst, False)

        after_join = cap.mark()
        rx.leave(case.group, *case.sources)
        pkt, _ = cap.wait_for(
            lambda p, m: p.src == host_addr and case.leave(m), timeout=5, start=after_join
        )
        assert pkt.dst == case.leave_dst

    # Nothing the host sent failed to decode.
    assert [d for d in cap.decoded() if d.error is not None] == []


def test_one_receiver_holds_several_groups_and_sources(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with lab.capture("router", "eth0") as cap, lab.receiver("host", "eth0") as rx:
        rx.join(JoinMode.IGMPV3_SSM, "232.1.1.1", ROUTER_V4, "10.0.0.9")
        rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
        rx.join(JoinMode.MLDV2_ASM, G6)
        for s in (ROUTER_V4, "10.0.0.9"):
            cap.wait_for(
                lambda _p, m, s=s: (
                    reports(3, ALLOW, "232.1.1.1", s)(m) or _allows(m, "232.1.1.1", s)
                ),
                timeout=5,
            )
        cap.wait_for(lambda _p, m: reports(3, EX, "239.1.1.1")(m), timeout=5)
        cap.wait_for(lambda _p, m: reports(2, EX, G6)(m), timeout=5)

        mark = cap.mark()
        rx.leave("232.1.1.1", "10.0.0.9")  # one source of two
        cap.wait_for(lambda _p, m: reports(3, BLOCK, "232.1.1.1", "10.0.0.9")(m), start=mark)


def test_a_join_sets_the_interfaces_version(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with lab.capture("router", "eth0") as cap, lab.receiver("host", "eth0") as rx:
        rx.join(JoinMode.IGMPV2, "239.1.3.1")
        assert lab.sysctl("host", "net.ipv4.conf.eth0.force_igmp_version") == "2"
        cap.wait_for(lambda _p, m: reports(2, RecordType.MODE_IS_EXCLUDE, "239.1.3.1")(m))
        rx.join(JoinMode.IGMPV3_ASM, "239.1.3.2")  # back to automatic, hence version 3
        assert lab.sysctl("host", "net.ipv4.conf.eth0.force_igmp_version") == "0"
        cap.wait_for(lambda _p, m: reports(3, EX, "239.1.3.2")(m))
        rx.join(JoinMode.MLDV1, "ff1e::3:1")
        assert lab.sysctl("host", "net.ipv6.conf.eth0.force_mld_version") == "1"
        rx.join(JoinMode.MLDV2_SSM, "ff3e::3:2", ROUTER_V6)
        assert lab.sysctl("host", "net.ipv6.conf.eth0.force_mld_version") == "0"
        cap.wait_for(lambda _p, m: reports(2, ALLOW, "ff3e::3:2", ROUTER_V6)(m))


def _allows(m: Message, group: str, source: str) -> bool:
    """An IGMPv3 report whose ALLOW record for ``group`` lists ``source`` among others."""
    return isinstance(m, Report) and any(
        r.type == ALLOW and r.group == packed(group) and packed(source) in r.sources
        for r in m.records
    )


def test_bad_commands_are_refused(make_lab: Callable) -> None:
    lab = make_lab(topologies.lan_pair())
    with lab.receiver("host", "eth0") as rx:
        for args in [
            (JoinMode.IGMPV3_SSM, "232.1.1.1"),  # SSM without a source
            (JoinMode.IGMPV3_ASM, "239.1.1.1", ROUTER_V4),  # ASM with one
            (JoinMode.MLDV2_ASM, "239.1.1.1"),  # IPv4 group in an MLD mode
        ]:
            with pytest.raises(LabError):
                rx.join(*args)
        with pytest.raises(LabError, match="not joined"):
            rx.leave("239.9.9.9")
        rx.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
        with pytest.raises(LabError, match="already joined"):
            rx.join(JoinMode.IGMPV2, "239.1.1.1")
