"""The namespace tests of the kernel adapter and of ``netio`` share ``proxy_agent``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
