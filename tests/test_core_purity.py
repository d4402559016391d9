"""The protocol core does no I/O and reads no clock (DESIGN.md, STYLE §1): the engine and
everything it imports, module by module down the whole chain, import nothing that could.

The chain is found by reading the sources (``ast``), not by importing them: from
``mcastproxy.engine``, every ``mcastproxy.*`` module imported anywhere in a module (at the
top, in a function, under ``TYPE_CHECKING``), with the packages that hold it, transitively.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcastproxy

FORBIDDEN = {
    "socket", "asyncio", "time", "os", "random", "threading", "select", "subprocess",
    "selectors", "signal", "pyroute2", "datetime",
}
ROOT = "mcastproxy.engine"
PACKAGE = Path(mcastproxy.__file__).parent


def source_of(module: str) -> Path | None:
    """The file of ``mcastproxy.*`` module ``module``, or None if there is no such module."""
    parts = module.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(module: str, path: Path) -> list[str]:
    """Every module name ``module`` imports, absolute; for ``from X import y``, also ``X.y``
    (it may name a submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1 packages
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def chain(root: str) -> dict[str, list[str]]:
    """Module -> what it imports, for ``root`` and every ``mcastproxy`` module it reaches
    (a module's packages are imported before it, so they are reached too)."""
    found: dict[str, list[str]] = {}
    todo = [root]
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = source_of(module)
        assert path is not None, f"{module} is not a module of the package"
        found[module] = names = imports_of(module, path)
        for name in [*names, module]:
            parts = name.split(".")
            if parts[0] != "mcastproxy":
                continue
            for end in range(1, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate not in found and source_of(candidate) is not None:
                    todo.append(candidate)
    return found


CHAIN = chain(ROOT)


def test_the_chain_reaches_the_core() -> None:
    """The walk finds what the engine is made of (so a broken walk cannot pass vacuously)."""
    expected = {
        "mcastproxy", "mcastproxy.engine", "mcastproxy.config", "mcastproxy.liveness",
        "mcastproxy.flowwatch", "mcastproxy.selection", "mcastproxy.wire",
        "mcastproxy.membership", "mcastproxy.upstream",
    }
    assert expected <= CHAIN.keys()


@pytest.mark.parametrize("module", sorted(CHAIN))
def test_core_module_imports_no_io(module: str) -> None:
    assert [n for n in CHAIN[module] if n.split(".")[0] in FORBIDDEN] == []
