"""Without the capabilities multicast routing needs, one ``KernelError`` of one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

_SCRIPT = """
from mcastproxy.kernel import KernelError, MulticastRouter
for family in (4, 6):
    try:
        MulticastRouter(family).start(["lo"], [])
    except KernelError as e:
        print(e)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root, setpriv")
def test_no_capabilities_is_one_clear_error() -> None:
    # Root's capabilities taken away (bounding set emptied), as an unprivileged user has none.
    argv = [
        "setpriv",
        "--bounding-set",
        "-all",
        "--inh-caps",
        "-all",
        "--ambient-caps",
        "-all",
        "--",
        sys.executable,
        "-c",
        _SCRIPT,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.splitlines() == ["multicast routing needs root (CAP_NET_ADMIN and CAP_NET_RAW)"] * 2
