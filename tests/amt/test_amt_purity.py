"""The AMT gateway's core does no I/O and reads no clock, like the engine (STYLE §1): the
gateway, its vocabulary, the inner packets and the codec, and every ``mcastproxy`` module
they import, down the whole chain, import nothing that could; DRIAD's decisions and the split
over relays too. Only ``runner``, ``upstream``, ``resolver`` and ``tun`` touch the system."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcastproxy

FORBIDDEN = {
    "socket", "asyncio", "time", "os", "random", "secrets", "threading", "select", "subprocess",
    "selectors", "signal", "pyroute2", "datetime", "fcntl",
}  # fmt: skip
ROOTS = ["mcastproxy.amt.gateway", "mcastproxy.amt.inner", "mcastproxy.amt.events",
         "mcastproxy.amt.pseudo", "mcastproxy.amt.driad", "mcastproxy.amt.split",
         "mcastproxy.amt.actions", "mcastproxy.wire.amt"]
PACKAGE = Path(mcastproxy.__file__).parent


def _source(module: str) -> Path | None:
    base = PACKAGE.joinpath(*module.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import"
            names.append(node.module or "")
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _chain() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        module = todo.pop()
        if module in found:
            continue
        path = _source(module)
        assert path is not None, module
        found[module] = names = _imports(path)
        for name in [*names, module]:
            parts = name.split(".")
            if parts[0] != "mcastproxy":
                continue
            for end in range(1, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate not in found and _source(candidate) is not None:
                    todo.append(candidate)
    return found


CHAIN = _chain()


def test_the_chain_reaches_the_codecs() -> None:
    assert {"mcastproxy.amt", "mcastproxy.wire.igmp", "mcastproxy.wire.mld",
            "mcastproxy.drops"} <= CHAIN.keys()
    assert not {"mcastproxy.amt.runner", "mcastproxy.amt.resolver"} & CHAIN.keys()


@pytest.mark.parametrize("module", sorted(CHAIN))
def test_core_module_imports_no_io(module: str) -> None:
    assert [n for n in CHAIN[module] if n.split(".")[0] in FORBIDDEN] == []
