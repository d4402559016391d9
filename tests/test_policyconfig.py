"""The configuration's policy sections (``policyconfig``): every key taken, and every refusal
with its field path and reason, through ``mcastproxy check``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mcastproxy.cli import main
from mcastproxy.config import ConfigError, parse_config
from mcastproxy.family import Family
from mcastproxy.policy import UNLIMITED, Action, EdgePolicy

EVERY_KEY = """
igmp: {version: 3}
mld: {version: 2}
policy:
  default: deny
  ssm-only: false
  group-policy:
    - {action: permit, source: 192.0.2.0/24, group: 232.1.0.0/16}
    - {action: permit, group: "ff3e::/16"}
    - {action: deny}
  max-entries: 100000
  max-groups-per-interface: unlimited
  subscriber: {max-groups: 32, max-group-sources: 4}
  exceptions:
    - {group: 232.0.1.1}
    - {source: "2001:db8::1", group: "ff3e::1"}
downstream:
  - interface: d1
    policy:
      default: permit
      ssm-only: true
      group-policy: [{action: deny, group: 239.255.0.0/16}]
      max-groups: 0
      subscriber: {max-groups: unlimited}
      exceptions: [{source: 192.0.2.1}]
      subscribers:
        - prefix: 10.1.1.0/24
          default: deny
          group-policy: [{action: permit, group: 232.9.0.0/16}]
          max-groups: 2
          max-group-sources: unlimited
        - {prefix: "fe80::ff:fe00:d100/120"}
  - interface: d2
upstream: {candidates: [{interface: u1}]}
"""


def run_check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "mcastproxy.yaml"
    path.write_text(textwrap.dedent(text))
    code = main(["check", "-c", str(path)])
    out = capsys.readouterr()
    # Without the warnings about this host (its interfaces: checks.py), which are not the
    # configuration's.
    text = (out.out + out.err).replace(f"{path}: ", "")
    return code, "".join(line for line in text.splitlines(keepends=True)
                         if not line.startswith("warning: "))


def test_every_key_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_check(tmp_path, EVERY_KEY, capsys)
    assert code == 0, out
    assert out.rstrip().endswith("edge policy: 5 rules, default deny, ssm-only on d1")
    config = parse_config(EVERY_KEY)
    d1 = EdgePolicy.from_config(config, "d1", Family.V4)
    assert (d1.max_groups, d1.max_entries) == (0, 100_000)
    assert d1.subscriber_limits(None) == (UNLIMITED, 4)
    assert d1.default is Action.PERMIT
    assert d1.ssm_only
    d2 = EdgePolicy.from_config(config, "d2", Family.V6)
    assert (d2.max_groups, d2.default, d2.ssm_only) == (UNLIMITED, Action.DENY, False)


def test_with_no_policy_the_sections_are_empty_and_bounded() -> None:
    config = parse_config("igmp: {}\ndownstream: [{interface: d1}]\n"
                          "upstream: {candidates: [{interface: u1}]}")
    assert config.policy.group_policy == ()
    assert config.downstream[0].policy.subscribers == ()
    assert EdgePolicy.from_config(config, "d1", Family.V4).max_groups < UNLIMITED


def with_policy(glob: str = "", d1: str = "") -> str:
    """A configuration with these policy sections (flow style)."""
    return ("igmp: {}\nmld: {}\n" + (f"policy: {glob}\n" if glob else "")
            + f"downstream: [{{interface: d1{', policy: ' + d1 if d1 else ''}}}]\n"
            + "upstream: {candidates: [{interface: u1}]}\n")


def sub(entry: str) -> str:
    return with_policy(d1=f"{{subscribers: [{entry}]}}")


REFUSALS = [
    (with_policy("{colour: blue}"), "policy.colour", "unknown key"),
    (with_policy(d1="{max-entries: 5}"), "downstream[0].policy.max-entries", "unknown key"),
    (with_policy("{default: maybe}"), "policy.default", "'permit' or 'deny'"),
    (with_policy("{ssm-only: sometimes}"), "policy.ssm-only", "valid boolean"),
    (with_policy("{group-policy: [{group: 232.0.0.0/8}]}"), "policy.group-policy[0].action",
     "is required"),
    (with_policy("{group-policy: [{action: allow}]}"), "policy.group-policy[0].action",
     "'permit' or 'deny'"),
    (with_policy("{group-policy: [{action: deny, group: 10.0.0.0/8}]}"),
     "policy.group-policy[0].group", "not multicast"),
    (with_policy("{group-policy: [{action: deny, source: 232.0.0.1}]}"),
     "policy.group-policy[0].source", "multicast, not unicast"),
    (with_policy("{group-policy: [{action: deny, source: 10.0.0.1/8}]}"),
     "policy.group-policy[0].source", "host bits set"),
    (with_policy('{group-policy: [{action: deny, source: 10.0.0.0/8, group: "ff3e::/16"}]}'),
     "policy.group-policy[0]", "mixes IPv4 and IPv6"),
    (with_policy("{group-policy: [{action: deny, group: 232.0.0.0/8, port: 5}]}"),
     "policy.group-policy[0].port", "unknown key"),
    (with_policy("{group-policy: {action: deny}}"), "policy.group-policy", "valid tuple"),
    # Rules in order: one that an earlier one hides is a mistake.
    (with_policy("{group-policy: [{action: permit, group: 232.0.0.0/8}, "
                 "{action: deny, group: 232.1.0.0/16}]}"), "policy.group-policy[1]",
     "never reached: group-policy[0] (permit group 232.0.0.0/8) comes first"),
    (with_policy(d1="{group-policy: [{action: deny, group: 232.1.0.0/16}, "
                    "{action: deny, group: 232.1.0.0/16}]}"),
     "downstream[0].policy.group-policy[1]", "duplicates group-policy[0]"),
    (with_policy("{group-policy: [{action: deny}, {action: permit, group: 239.0.0.0/8}]}"),
     "policy.group-policy[1]", "never reached"),
    # Limits: a whole number or unlimited.
    (with_policy("{max-entries: -1}"), "policy.max-entries", "not from 0 to 4294967295"),
    (with_policy("{max-entries: 4294967296}"), "policy.max-entries", "not from 0"),
    (with_policy("{max-entries: many}"), "policy.max-entries", "or unlimited"),
    (with_policy("{max-entries: 1.5}"), "policy.max-entries", "whole number"),
    (with_policy("{max-entries: true}"), "policy.max-entries", "whole number"),
    (with_policy("{max-groups-per-interface: '10'}"), "policy.max-groups-per-interface",
     "whole number"),
    (with_policy("{subscriber: {max-groups: -3}}"), "policy.subscriber.max-groups",
     "not from 0"),
    (with_policy("{subscriber: {max-sources: 3}}"), "policy.subscriber.max-sources",
     "unknown key"),
    (with_policy(d1="{max-groups: unlimitted}"), "downstream[0].policy.max-groups",
     "or unlimited"),
    # Exceptions: a channel pattern, in one family, listed once.
    (with_policy("{exceptions: [{}]}"), "policy.exceptions[0]", "needs a source or a group"),
    (with_policy('{exceptions: [{source: 192.0.2.1, group: "ff3e::1"}]}'),
     "policy.exceptions[0]", "mixes IPv4 and IPv6"),
    (with_policy("{exceptions: [{group: 232.0.0.0/8}, {group: 232.0.1.1}]}"),
     "policy.exceptions[1]", "within exceptions[0]"),
    (with_policy(d1="{exceptions: [{group: 10.0.0.0/8}]}"),
     "downstream[0].policy.exceptions[0].group", "not multicast"),
    # Subscriber prefixes.
    (sub("{default: deny}"), "downstream[0].policy.subscribers[0].prefix", "is required"),
    (sub("{prefix: 232.0.0.0/8}"), "downstream[0].policy.subscribers[0].prefix",
     "multicast, not unicast"),
    (sub('{prefix: "2001:db8::/64"}'), "downstream[0].policy.subscribers[0].prefix",
     "not link-local"),
    (sub('{prefix: 10.1.0.0/16, group-policy: [{action: deny, group: "ff3e::/16"}]}'),
     "downstream[0].policy.subscribers[0]", "an IPv6 prefix; subscribers of 10.1.0.0/16"),
    (sub("{prefix: 10.1.0.0/16}, {prefix: 10.1.0.0/16}"),
     "downstream[0].policy.subscribers[1].prefix", "duplicates subscribers[0]"),
    (sub("{prefix: 10.1.0.0/16, ssm-only: true}"),
     "downstream[0].policy.subscribers[0].ssm-only", "unknown key"),
    (sub("{prefix: 10.1.0.0/16, max-group-sources: -1}"),
     "downstream[0].policy.subscribers[0].max-group-sources", "not from 0"),
    (sub("{prefix: 10.1.0.0/16, group-policy: [{action: permit, group: 232.0.0.0/8}, "
         "{action: permit, group: 232.1.1.1}]}"),
     "downstream[0].policy.subscribers[0].group-policy[1]", "never reached"),
]


@pytest.mark.parametrize(("text", "path", "reason"), REFUSALS)
def test_refusals_name_the_field_and_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, path: str, reason: str
) -> None:
    code, out = run_check(tmp_path, text, capsys)
    assert code == 2
    lines = out.splitlines()
    assert any(line.startswith(f"{path}: ") and reason in line for line in lines), out
    assert all("\n" not in line for line in lines)


def test_a_policy_is_refused_whole_with_every_problem_at_once() -> None:
    text = with_policy("{max-entries: -1, group-policy: [{action: deny}, {action: deny}]}",
                       d1="{subscribers: [{prefix: 232.0.0.0/8}]}")
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert {i.path for i in err.value.issues} == {
        "policy.max-entries", "downstream[0].policy.subscribers[0].prefix"}
    # The cross-field checks run once every field passed.
    with pytest.raises(ConfigError) as err:
        parse_config(with_policy("{group-policy: [{action: deny}, {action: deny}]}"))
    assert [i.path for i in err.value.issues] == ["policy.group-policy[1]"]


def test_a_thousand_rules_are_checked_quickly() -> None:
    rules = ", ".join(f"{{action: permit, source: 192.0.{i // 250}.{i % 250 + 1}, "
                      f"group: 232.{i // 250}.{i % 250}.0/24}}" for i in range(1000))
    config = parse_config(with_policy(f"{{default: deny, group-policy: [{rules}]}}"))
    assert len(config.policy.group_policy) == 1000


# --- report-rate ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "why"), [
    ("0", "is not above 0"), ("-5", "is not above 0"), ("20000000", "at most 10000000"),
    ("fast", "expected messages a second"), ("true", "expected messages a second"),
    ("[1]", "expected messages a second"),
])
def test_a_report_rate_that_cannot_be_is_refused_with_its_field(value: str, why: str) -> None:
    from mcastproxy.config import ConfigError, parse_config  # noqa: PLC0415

    text = ("igmp: {version: 3}\ndownstream: [{interface: d1, policy: {report-rate: "
            f"{{subscriber: {value}}}}}}}]\nupstream: {{candidates: [{{interface: u1}}]}}\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    (issue,) = err.value.issues
    assert issue.path == "downstream[0].policy.report-rate.subscriber"
    assert why in issue.reason


def test_report_rates_resolve_link_then_global_then_built_in() -> None:
    from mcastproxy.config import parse_config  # noqa: PLC0415
    from mcastproxy.ratelimit import LINK_RATE, SUBSCRIBER_RATE, Rate, from_setting  # noqa: PLC0415

    cfg = parse_config("igmp: {version: 3}\npolicy: {report-rate: {subscriber: 7}}\n"
                       "downstream: [{interface: d1, policy: {report-rate: {link: unlimited}}},"
                       " {interface: d2}]\nupstream: {candidates: [{interface: u1}]}\n")
    d1, d2 = (d.policy.report_rate for d in cfg.downstream)
    glob = cfg.policy.report_rate
    assert from_setting(d1.subscriber or glob.subscriber, SUBSCRIBER_RATE) == Rate(7, 14)
    assert from_setting(d1.link, LINK_RATE) is None
    assert from_setting(d2.link or glob.link, LINK_RATE) == Rate(LINK_RATE, 2 * LINK_RATE)
