"""The link's message counts (RFC 8652 ``statistics``): received by type and version, in error
when dropped whole (forged senders, refused queriers), and the queries sent."""

from __future__ import annotations

import pytest
from membership_harness import FLAVORS, IS_IN, SOURCE_FILTERING, Flavor, Harness, ip

from mcastproxy.membership import QuerierMode, QuerierPolicy


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_messages_are_counted_by_type_and_version(flavor: Flavor) -> None:
    h = Harness(flavor)
    g, host = flavor.group(), flavor.host(1)
    startup = h.link.statistics["sent"]["query"]
    assert startup >= 1  # the first startup General Query (RFC 9776 §8.6)
    h.receive(flavor.join(g), host, at=1.0)
    h.receive(flavor.join(g, version=1), host, at=2.0)
    h.receive(flavor.leave(g), host, at=3.0)  # a Leave / Done, or TO_IN({})
    h.receive(flavor.general_query(), flavor.router(1), at=4.0)  # a lower querier wins
    stats = h.link.statistics
    received = stats["received"]
    leaves = 1 if flavor.version < flavor.full else 0
    versions = [flavor.version, 1] + ([] if leaves else [flavor.full])  # each report's
    for v in range(1, flavor.full + 1):
        assert received[f"report-v{v}"] == versions.count(v)
    assert received["leave"] == leaves
    assert received["query"] == 1
    assert received["total"] == 4
    assert received["report"] == 3 - leaves
    assert set(received) == {"total", "query", "report", "leave",
                             *(f"report-v{v}" for v in range(1, flavor.full + 1))}
    assert stats["error"]["total"] == 0
    # The leave was asked about: Group-Specific Queries, counted as sent.
    assert stats["sent"]["query"] == startup + len(h.specific_queries()) + (
        len(h.general_query_times()) - 1)
    assert stats["sent"]["total"] == stats["sent"]["query"]


@pytest.mark.parametrize("flavor", FLAVORS, ids=str)
def test_forged_and_refused_messages_are_errors(flavor: Flavor) -> None:
    h = Harness(flavor, querier=QuerierPolicy(QuerierMode.ALWAYS))
    g = flavor.group()
    forged = flavor.group(9)  # a multicast address as the sender
    for _ in range(50):
        h.receive(flavor.join(g), forged, at=1.0)
        h.receive(flavor.general_query(), flavor.router(1), at=1.0)  # refused: always querier
    stats = h.link.statistics
    assert stats["received"]["total"] == 100
    assert stats["error"]["total"] == 100
    assert stats["error"]["query"] == 50
    assert stats["error"]["report"] == 50
    assert h.link.group_count == 0


@pytest.mark.parametrize("flavor", SOURCE_FILTERING, ids=str)
def test_a_report_with_some_records_ignored_is_no_error(flavor: Flavor) -> None:
    h = Harness(flavor)
    link_local = ip("224.0.0.251") if flavor.family == 4 else ip("ff02::fb")  # never routed
    report = flavor.report(flavor.record(IS_IN, flavor.group(), flavor.sources(1)),
                           flavor.record(IS_IN, link_local, flavor.sources(1)))
    h.receive(report, flavor.host(1), at=1.0)
    assert h.link.statistics["error"]["total"] == 0
    assert h.link.group_count == 1
