"""The README's demo runs from start to end on real kernel hosts, and says what it should."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.netns
def test_demo_runs_and_shows_each_decision() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcastproxy.demo"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "-> proxy sends on u1: TO_EXCLUDE(232.1.1.1)" in text
    assert "-> proxy sends on u2: ALLOW(232.2.2.2; 10.0.2.2)" in text
    assert "record {subscriber 10.1.1.12/32} matches (subscriber-based" in text
    assert "-> proxy sends on u1: ALLOW(ff3e::1:1; fd00:1::2)" in text
    assert "-> proxy sends on u2: ALLOW(ff3e::1:1; fd00:1::2)" in text  # after the takeover
    assert "-> proxy sends on u2: TO_INCLUDE(232.1.1.1)" in text
    assert text.rstrip().endswith("lab removed.")
