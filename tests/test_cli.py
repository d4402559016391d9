from __future__ import annotations

import subprocess
import sys

from mcastproxy import __version__


def test_version_from_console_entry_point() -> None:
    cmd = [sys.executable, "-m", "mcastproxy", "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"mcastproxy {__version__}"
