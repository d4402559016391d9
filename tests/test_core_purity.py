"""The protocol core does no I/O and reads no clock (DESIGN.md, STYLE §1): the engine and
everything under it import nothing that could."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcastproxy

FORBIDDEN = {
    "socket", "asyncio", "time", "os", "random", "threading", "select", "subprocess",
    "selectors", "signal", "pyroute2", "datetime",
}
PACKAGE = Path(mcastproxy.__file__).parent
CORE = [
    "engine.py", "events.py", "actions.py", "subscriptions.py", "selection.py",
    *(f"{d}/{p.name}" for d in ("wire", "membership", "upstream")
      for p in sorted((PACKAGE / d).glob("*.py"))),
]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.append(node.module or "")
    assert [n for n in imported if n.split(".")[0] in FORBIDDEN] == []
