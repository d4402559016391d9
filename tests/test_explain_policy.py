"""``mcastproxy explain`` with the edge policy: the verdict for a (subscriber, source, group) on
each downstream link (or ``--link``'s), which rule of which level or which default decided,
the exception it matches, and the limits it is held to, as text and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcastproxy.cli import main

EDGE = Path(__file__).resolve().parents[1] / "examples" / "edge.yaml"


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["explain", "-c", str(EDGE), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_text_says_what_decided_on_each_link(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, "--subscriber", "10.2.8.7", "--group", "239.1.2.3")
    assert code == 0
    assert ("policy on d1: refused: an any-source join where downstream[0].policy.ssm-only "
            "is true") in out
    assert ("policy on d2: permitted by downstream[1].policy.subscribers[0].group-policy[0] "
            "(permit group 239.1.0.0/16; subscriber 10.2.8.0/24 on d2)") in out
    assert "limit: subscriber max-groups 4 (downstream[1].policy.subscribers[0].max-groups)" \
        in out
    assert "limit: link max-groups 512 (downstream[1].policy.max-groups)" in out
    assert "limit: proxy max-entries 65,536 (policy.max-entries)" in out


def test_an_exception_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, "--link", "d1", "--subscriber", "10.1.0.7", "--source",
                           "192.0.2.1", "--group", "232.0.1.1")
    assert code == 0
    assert "policy on d2" not in out
    assert "exception policy.exceptions[0]: no limit counts or refuses it" in out


def test_json_carries_the_verdict_and_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, "--link", "d1", "--subscriber", "10.1.0.7", "--source",
                           "192.0.2.200", "--group", "232.1.200.3", "--json")
    assert code == 0
    said = json.loads(out)["policy"]
    assert list(said) == ["d1"]
    d1 = said["d1"]
    assert {k: d1[k] for k in ("permit", "reason", "decided-by", "level", "where", "rule",
                               "exception")} == {
        "permit": False, "reason": "policy-link-deny", "decided-by": "rule", "level": "link d1",
        "where": "downstream[0].policy.group-policy[0]",
        "rule": "deny source 192.0.2.128/25, group 232.1.200.0/24", "exception": None}
    assert d1["limits"][0] == {"scope": "subscriber", "name": "max-groups", "value": 16,
                               "where": "policy.subscriber.max-groups"}


def test_an_unknown_subscriber_is_held_to_the_link_and_proxy_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = explain(capsys, "--link", "d1", "--subscriber", "0.0.0.0", "--source",
                           "192.0.2.7", "--group", "232.1.2.3", "--json")
    assert code == 0
    limits = json.loads(out)["policy"]["d1"]["limits"]
    assert [(lv["scope"], lv["name"]) for lv in limits] == [
        ("link", "max-groups"), ("proxy", "max-entries"), ("link", "max-bandwidth")]


def test_a_link_that_is_not_downstream_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = explain(capsys, "--link", "u1", "--subscriber", "10.1.0.7", "--group",
                           "232.1.2.3")
    assert code == 2
    assert "--link u1 is not a downstream link (downstream: d1, d2)" in err
