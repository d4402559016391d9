"""``python -m mcastproxy`` is the ``mcastproxy`` command."""

from __future__ import annotations

import sys

from mcastproxy.cli import main

sys.exit(main())
