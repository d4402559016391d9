"""The two builds: the sources run as pure Python, and the opt-in compiled build (setup.py,
``MCASTPROXY_COMPILE=1``) runs the protocol core as the extension modules mypyc made of it.
``mcastproxy --version`` says which one runs. ``scripts/test-compiled`` runs the unit tests
against the compiled build, saying so with ``MCASTPROXY_EXPECT_BUILD=compiled``."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import mcastproxy
from mcastproxy import __version__, build

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "src" / "mcastproxy"
EXPECTED = os.environ.get("MCASTPROXY_EXPECT_BUILD", "pure Python")


def compiled_modules() -> list[str]:
    """setup.py's COMPILED, as module names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (paths,) = [ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets)]
    return [p.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for p in paths]


def is_extension(module: str) -> bool:
    return (importlib.import_module(module).__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))


def test_version_says_which_build_runs() -> None:
    cmd = [sys.executable, "-m", "mcastproxy", "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"mcastproxy {__version__} ({EXPECTED})"
    assert build() == EXPECTED


@pytest.mark.skipif(Path(mcastproxy.__file__).parent != SOURCES,
                    reason="runs another copy of mcastproxy than the sources in this tree")
def test_the_sources_in_this_tree_hold_no_compiled_module() -> None:
    # An extension module in src/ would be imported in place of its source by every run of
    # the tree, the pure test suite's included: the compiled build is made elsewhere.
    built = [p for suffix in EXTENSION_SUFFIXES for p in SOURCES.rglob(f"*{suffix}")]
    assert built == []
    assert build() == "pure Python"


def test_every_module_to_compile_is_a_source_here() -> None:
    modules = compiled_modules()
    assert "mcastproxy.wire" in modules  # what build() looks at
    for module in modules:
        parts = module.split(".")[1:]
        assert (SOURCES.joinpath(*parts) / "__init__.py").exists() or \
            SOURCES.joinpath(*parts).with_suffix(".py").exists(), module


@pytest.mark.skipif(EXPECTED != "compiled", reason="the pure build runs (scripts/test-compiled "
                                                    "runs the compiled one)")
def test_the_compiled_build_runs_the_core_compiled_and_the_rest_as_python() -> None:
    modules = compiled_modules()
    assert [m for m in modules if not is_extension(m)] == []
    # The modules left out run from their sources beside them.
    for module in ("mcastproxy.membership.timers", "mcastproxy.daemon", "mcastproxy.cli"):
        assert module not in modules
        assert not is_extension(module)
