"""Every example configuration is valid, and selects as its comments say."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mcastproxy.cli import main
from mcastproxy.config import load_config
from mcastproxy.family import Family
from mcastproxy.policy import EdgePolicy
from mcastproxy.selection import Selector

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_passes_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(path)]) == 0
    assert ": ok: " in capsys.readouterr().out


def upstreams(name: str, h: str | None, s: str | None, g: str, *down: str) -> set[str]:
    sel = Selector(load_config(EXAMPLES[0].parent / f"{name}.yaml"))

    def b(x: str | None) -> bytes | None:
        return None if x is None else ipaddress.ip_address(x).packed

    return set(sel.select(b(h), b(s), ipaddress.ip_address(g).packed, frozenset(down)).upstreams)


@pytest.mark.parametrize(
    ("name", "h", "s", "g", "down", "expected"),
    [
        ("wholesale", "10.0.0.7", None, "232.1.0.1", (), {"u1"}),
        ("wholesale", "10.0.0.7", None, "232.2.0.1", (), {"u2"}),
        ("wholesale", "fe80::1", None, "ff3e::2:1", (), {"u2"}),
        ("wholesale", "10.0.0.7", None, "232.2.0.1", ("u2",), {"u2"}),  # takeover off
        ("resiliency", "10.0.0.7", None, "239.1.1.1", (), {"u1"}),
        ("resiliency", "10.0.0.7", None, "239.1.1.1", ("u1",), {"u2"}),
        ("robust-reception", "10.0.0.7", None, "232.10.0.5", (), {"u1", "u2"}),
        ("robust-reception", "10.0.0.7", None, "232.11.0.5", (), {"u1"}),
        ("load-balancing", "10.0.0.7", None, "232.1.1.1", (), {"u1"}),
        ("load-balancing", "10.0.0.7", None, "232.200.1.1", (), {"u2"}),
        ("load-balancing", "10.0.0.7", "192.0.2.10", "232.1.1.1", (), {"u2"}),
        ("load-balancing", "10.0.0.7", "192.0.2.11", "232.1.1.1", (), {"u1"}),
        ("network-merging", "10.1.3.4", None, "232.1.1.1", (), {"u1"}),
        ("network-merging", "10.2.3.4", None, "232.1.1.1", (), {"u2"}),
        ("network-merging", "fe80::ff:fe02:1234", None, "ff3e::1", (), {"u2"}),
        ("migration", "10.0.0.7", None, "232.1.1.1", (), {"u2"}),
        ("migration", "10.0.0.7", None, "232.5.1.1", (), {"u1"}),
        # Tied: both may carry a channel; placement puts each on one (test_engine_placement).
        ("shared-ring", "10.0.0.7", None, "232.1.1.1", (), {"u1", "u2"}),
        ("shared-ring", "10.0.0.7", None, "232.1.1.1", ("u1",), {"u2"}),
    ],
)
def test_example_selects_as_documented(
    name: str, h: str, s: str | None, g: str, down: tuple[str, ...], expected: set[str]
) -> None:
    assert upstreams(name, h, s, g, *down) == expected


@pytest.mark.parametrize(
    ("link", "h", "s", "g", "permit", "where"),
    [
        ("d1", "10.1.0.7", "192.0.2.7", "232.1.2.3", True, "policy.group-policy[0]"),
        ("d1", "10.1.0.7", None, "232.1.2.3", False, "downstream[0].policy.ssm-only"),
        ("d1", "10.1.0.7", "192.0.2.200", "232.1.200.3", False,
         "downstream[0].policy.group-policy[0]"),
        ("d1", "10.1.0.7", "198.51.100.1", "232.1.2.3", False, "policy.default"),
        ("d2", "10.2.8.7", None, "239.1.2.3", True,
         "downstream[1].policy.subscribers[0].group-policy[0]"),
        ("d2", "10.2.9.7", None, "239.1.2.3", False, "policy.default"),
        ("d2", "fe80::7", "2001:db8:1::5", "ff3e::1:5", True, "policy.group-policy[2]"),
    ],
)
def test_edge_example_admits_as_documented(
    link: str, h: str, s: str | None, g: str, permit: bool, where: str,
) -> None:
    config = load_config(EXAMPLES[0].parent / "edge.yaml")
    group = ipaddress.ip_address(g)
    policy = EdgePolicy.from_config(config, link, Family(group.version))
    verdict = policy.verdict(ipaddress.ip_address(h).packed,
                             ipaddress.ip_address(s).packed if s else None, group.packed)
    assert (verdict.permit, verdict.where) == (permit, where)
