"""The README's demo runs from start to end: the daemon proxies real traffic in a lab, and the
demo's table says where each channel came from at each step."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def rows(text: str, step: int) -> set[tuple[str, str, str]]:
    """(subscriber, channel, upstream) rows with traffic, in the table of step ``step``."""
    part = text.split(f"\n{step}. ")[1].split("\n\n", maxsplit=1)[0]
    found = re.findall(r"^\s+(sub\d)\s+(\S+)\s+(u\d)\s+(\d+)$", part, re.MULTILINE)
    return {(s, g, u) for s, g, u, n in found if int(n) > 0}


@pytest.mark.netns
@pytest.mark.mroute
def test_demo_proxies_live_and_fails_over() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcastlab.demo"],
        check=False, capture_output=True, text=True, timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert rows(text, 1) == {
        ("sub1", "239.1.1.1", "u2"),  # d1 is fed by sub2's better-ranked selection
        ("sub1", "ff1e::1:1", "u1"),
        ("sub2", "239.1.1.1", "u2"),
        ("sub3", "232.2.2.2", "u2"),
    }
    assert ("sub3", "239.1.1.1", "u1") in rows(text, 2)
    assert ("sub3", "232.2.2.2", "u2") not in rows(text, 2)
    assert {u for _, _, u in rows(text, 3)} == {"u2"}  # after takeover, all via u2
    assert rows(text, 4) == set()
    assert "upstream u1 is down" in text
    assert text.rstrip().endswith("lab removed.")
