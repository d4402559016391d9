"""Every example configuration is valid, and selects as its comments say."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mcastproxy.cli import main
from mcastproxy.config import load_config
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
    ],
)
def test_example_selects_as_documented(
    name: str, h: str, s: str | None, g: str, down: tuple[str, ...], expected: set[str]
) -> None:
    assert upstreams(name, h, s, g, *down) == expected
