"""``ProtocolTimers``: RFC 9776 §8 / RFC 9777 §9 defaults, derived values, refusals."""

from __future__ import annotations

import dataclasses

import pytest

from mcastproxy.membership import ProtocolTimers


def test_defaults_and_derived_values() -> None:
    t = ProtocolTimers()
    assert (t.robustness, t.query_interval, t.query_response_interval) == (2, 125.0, 10.0)
    assert (t.last_member_query_interval, t.unsolicited_report_interval) == (1.0, 1.0)
    assert t.effective_last_member_query_count == 2
    assert t.effective_startup_query_interval == 31.25
    assert t.effective_startup_query_count == 2
    assert t.group_membership_interval == 270.0  # RFC 9776 §8.4: 2 * 125 + 2 * 10
    assert t.other_querier_present_interval == 255.0  # §8.5: 2 * 125 + 10 / 2
    assert t.last_member_query_time == 2.0  # §8.10: 1 * 2
    assert t.older_host_present_interval == 260.0  # §8.13: 2 * 125 + 10
    assert t.older_version_querier_present_timeout == 260.0  # §8.12


def test_mld_names_for_the_same_defaults() -> None:
    # RFC 9777 §9 has the same timers under listener names, with the same formulas.
    t = ProtocolTimers()
    # §9.4 Multicast Address Listening Interval: "([Robustness Variable] times [Query
    # Interval]) plus 2 times [Query Response Interval]".
    assert t.group_membership_interval == 2 * 125 + 2 * 10 == 270.0
    # §9.5 Other Querier Present Interval: "... plus (0.5 times [Query Response Interval])".
    assert t.other_querier_present_interval == 2 * 125 + 10 / 2 == 255.0
    # §9.6 Startup Query Interval "1/4 the [Query Interval]"; §9.7 Startup Query Count
    # "[Robustness Variable]".
    assert (t.effective_startup_query_interval, t.effective_startup_query_count) == (31.25, 2)
    # §9.10 Last Listener Query Time: "[Last Listener Query Interval] times [Last Listener
    # Query Count]", 1 s times the Robustness Variable (§9.8, §9.9).
    assert t.last_member_query_time == 1.0 * 2 == 2.0
    # §9.12 Older Version Querier Present Interval: "([Robustness Variable] times [Query
    # Interval] in the last Query received) plus ([Query Response Interval])".
    assert t.older_version_querier_present_timeout == 2 * 125 + 10 == 260.0
    # §9.13 Older Version Host Present Interval: "([Robustness Variable] times [Query
    # Interval]) plus ([Query Response Interval])".
    assert t.older_host_present_interval == 2 * 125 + 10 == 260.0


def test_group_membership_interval_is_the_revised_one() -> None:
    # RFC 9776 §8.4 / RFC 9777 §9.4 add two Query Response Intervals, where RFC 3376 §8.4 /
    # RFC 3810 §9.4 added one (2 * 125 + 10 = 260 s).
    t = ProtocolTimers(robustness=3, query_interval=60, query_response_interval=15)
    assert t.group_membership_interval == 3 * 60 + 2 * 15 == 210.0
    assert t.older_host_present_interval == 3 * 60 + 15 == 195.0
    assert t.other_querier_present_interval == 3 * 60 + 7.5 == 187.5


def test_derived_defaults_follow_their_components() -> None:
    t = dataclasses.replace(ProtocolTimers(), robustness=3, query_interval=60)
    assert t.effective_last_member_query_count == 3
    assert t.effective_startup_query_count == 3
    assert t.effective_startup_query_interval == 15.0
    assert t.group_membership_interval == 200.0
    assert t.last_member_query_time == 3.0
    fixed = ProtocolTimers(
        last_member_query_count=1, startup_query_count=4, startup_query_interval=2.5
    )
    assert fixed.effective_last_member_query_count == 1
    assert fixed.effective_startup_query_count == 4
    assert fixed.effective_startup_query_interval == 2.5


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ProtocolTimers().robustness = 3  # type: ignore[misc]  # the write that must fail


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"robustness": 0}, "robustness"),
        ({"robustness": 1.5}, "robustness"),
        ({"query_interval": 0}, "query_interval"),
        ({"query_interval": float("inf")}, "query_interval"),
        ({"query_response_interval": -1}, "query_response_interval"),
        ({"query_response_interval": 125}, "less than query_interval"),
        ({"query_interval": 5, "query_response_interval": 10}, "less than query_interval"),
        ({"last_member_query_interval": 0}, "last_member_query_interval"),
        ({"last_member_query_count": 0}, "last_member_query_count"),
        ({"startup_query_count": 0}, "startup_query_count"),
        ({"startup_query_interval": float("nan")}, "startup_query_interval"),
        ({"unsolicited_report_interval": "1s"}, "unsolicited_report_interval"),
    ],
)
def test_impossible_values_are_refused(fields: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ProtocolTimers(**fields)
