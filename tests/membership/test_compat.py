"""Interoperation with older versions (RFC 9776 §7.3, RFC 9777 §8.3).

Older hosts (§7.3.2): an IGMPv1/v2 or MLDv1 report starts the group's Older Host Present
timer (260 s); while it runs, BLOCK is ignored and TO_EX(A) is TO_EX({}); with IGMPv1 hosts,
Leave and TO_IN are ignored too. Older queriers (§7.3.1): an older General Query makes the
link use that version for the Older Version Querier Present timeout (260 s).
"""

from __future__ import annotations

import pytest
from membership_harness import (
    BLOCK,
    GMI,
    IGMPV3,
    IS_IN,
    MLDV2,
    OHPI,
    SOURCE_FILTERING,
    TO_EX,
    TO_IN,
    Flavor,
    Harness,
)

from mcastproxy.drops import Drop
from mcastproxy.membership import FilterMode
from mcastproxy.wire.messages import Leave

INCLUDE, EXCLUDE = FilterMode.INCLUDE, FilterMode.EXCLUDE
OLDER = {IGMPV3: 2, MLDV2: 1}  # the version of an older host's report


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_older_host_present_mode_starts_and_expires(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    old = OLDER[flavor]
    h.receive(f.join(g, version=old), f.host(1), at=0)
    state = h.link.group_state(g)
    assert state.compatibility_mode == old
    assert state.filter_mode is EXCLUDE
    # Keep the group alive with version-2/3 reports only: the mode returns after 260 s.
    h.receive(f.report(f.record(2, g)), f.host(2), at=200)
    h.advance(OHPI - 0.001)
    assert h.link.group_state(g).compatibility_mode == old
    h.advance(OHPI)
    assert h.link.group_state(g).compatibility_mode == flavor.full


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_older_host_present_block_ignored_and_to_ex_sources_ignored(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.join(g, version=OLDER[flavor]), f.host(1), at=0)
    h.take()
    h.receive(f.report(f.record(BLOCK, g, f.sources(1))), f.host(2), at=1)
    assert h.link.dropped == {Drop.IGNORED_FOR_OLDER_VERSION: 1}
    h.receive(f.report(f.record(TO_EX, g, f.sources(1))), f.host(2), at=2)
    # TO_EX({s1}) read as TO_EX({}): nothing blocked, no source queried.
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    assert h.specific_queries() == []
    # Once the older hosts are gone, the same records count again.
    h.receive(f.report(f.record(2, g)), f.host(2), at=OHPI)
    h.receive(f.report(f.record(TO_EX, g, f.sources(1))), f.host(2), at=OHPI + 1)
    # EXCLUDE({},{}) TO_EX({s1}): s1 joins X with the Group Timer and is queried; nobody
    # answers, so after LMQT it is blocked.
    assert [q.sources for _, q in h.specific_queries()] == [(f.source(1),)]
    h.advance(OHPI + 3)
    assert h.link.forwarded(g) == (EXCLUDE, f.sources(1))


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_older_host_leave_is_to_in_nothing(flavor: Flavor) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    h.receive(f.join(g, version=OLDER[flavor]), f.host(1), at=0)
    h.receive(Leave(g), f.host(1), at=10)
    assert [(t, q.group) for t, q in h.specific_queries()] == [(10.0, g)]
    h.advance(12)
    assert h.link.group_state(g) is None


def test_igmpv1_host_leave_and_to_in_are_ignored() -> None:
    f = IGMPV3
    h = Harness(f)
    g = f.group()
    h.receive(f.join(g, version=1), f.host(1), at=0)
    assert h.link.group_state(g).compatibility_mode == 1
    h.receive(Leave(g), f.host(2), at=5)
    h.receive(f.report(f.record(TO_IN, g, f.sources(1))), f.host(3), at=6)
    assert h.link.dropped == {Drop.IGNORED_FOR_OLDER_VERSION: 2}
    assert h.specific_queries() == []
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    # An IGMPv2 report as well: IGMPv1 mode while the v1 timer runs, then IGMPv2.
    h.receive(f.join(g, version=2), f.host(2), at=100)
    h.advance(OHPI)
    assert h.link.group_state(g).compatibility_mode == 2
    h.advance(100 + OHPI)
    assert h.link.group_state(g).compatibility_mode == 3


# --- an older querier on the link (§7.3.1) ---------------------------------------------------


@pytest.mark.parametrize(("flavor", "older"), [(IGMPV3, 2), (IGMPV3, 1), (MLDV2, 1)], ids=str)
def test_older_querier_makes_the_link_use_its_version(flavor: Flavor, older: int) -> None:
    h = Harness(flavor)
    f, g = flavor, flavor.group()
    # From a higher address: we stay querier, but speak the older version.
    h.receive(f.general_query(version=older), f.router(20), at=1)
    assert h.link.operating_version == older
    assert h.link.is_querier
    h.advance(157)
    q = h.queries(since=2)[0][1]
    assert q.version == older
    assert q.sources == ()
    assert q.qrv == 0
    assert not q.s_flag
    assert q.max_resp == (0.0 if (f.family == 4 and older == 1) else 10.0)
    # Source-specific records shrink to their whole-group meaning.
    h.receive(f.report(f.record(IS_IN, g, f.sources(1))), f.host(1), at=160)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    assert h.link.subscriber(g, f.host(1)) == (EXCLUDE, frozenset())
    h.receive(f.report(f.record(BLOCK, g, f.sources(2))), f.host(1), at=161)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    # The version returns [Older Version Querier Present Timeout] (260 s) after the last
    # older query.
    h.advance(1 + OHPI)
    assert h.link.operating_version == flavor.full
    h.advance(1 + OHPI + 130)
    assert h.queries(since=1 + OHPI)[0][1].version == flavor.full


def test_igmpv1_querier_means_leaves_are_ignored() -> None:
    f = IGMPV3
    h = Harness(f)
    g = f.group()
    h.receive(f.general_query(version=1), f.router(20), at=1)
    h.receive(f.join(g, version=2), f.host(1), at=2)
    h.receive(Leave(g), f.host(1), at=3)
    h.receive(f.report(f.record(TO_IN, g)), f.host(1), at=4)
    assert h.link.dropped == {Drop.IGNORED_FOR_OLDER_VERSION: 2}
    assert h.specific_queries() == []
    h.advance(100)
    assert h.link.group_state(g).group_timer == 2 + GMI


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_configured_older_version_whole_group_only(flavor: Flavor) -> None:
    """A link configured for IGMPv2 / MLDv1 reads newer reports as joins and leaves."""
    older = Flavor(f"{flavor.name}-as-{OLDER[flavor]}", flavor.family, OLDER[flavor])
    h = Harness(older)
    g = older.group()
    h.receive(flavor.report(flavor.record(IS_IN, g, flavor.sources(1))), older.host(1), at=0)
    assert h.link.forwarded(g) == (EXCLUDE, frozenset())
    h.receive(flavor.report(flavor.record(TO_IN, g)), older.host(1), at=10)
    assert [(t, q.version) for t, q in h.specific_queries()] == [(10.0, older.version)]
    h.advance(12)
    assert h.link.group_state(g) is None
    assert h.link.forwarded(g) == (INCLUDE, frozenset())
