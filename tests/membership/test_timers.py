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
        ProtocolTimers().robustness = 3  # type: ignore[misc]


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
