"""The membership core does no I/O and keeps no clock (DESIGN.md, STYLE §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import mcastproxy.membership

FORBIDDEN = {"socket", "asyncio", "time", "os", "random", "threading", "select", "subprocess"}


def test_no_io_or_clock_imports() -> None:
    package = Path(mcastproxy.membership.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [(path.name, n) for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
