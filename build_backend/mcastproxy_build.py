"""mcastproxy's build backend: setuptools', which also asks for mypy when the compiled build is
wanted.

``MCASTPROXY_COMPILE=1 pip install .`` compiles the protocol core with mypyc (setup.py); the
build environment then needs mypy, which ships mypyc, and pydantic, which mypy's pydantic
plugin (pyproject.toml's [tool.mypy]) and the configuration's types need while mypyc reads
the modules. The default build asks for setuptools alone, and needs no compiler.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (the rest of PEP 517's interface, unchanged)

COMPILE_REQUIRES = ["mypy>=1.11", "pydantic>=2.6,<3"]
METADATA_ONLY = "MCASTPROXY_METADATA_ONLY"
"""Set by this backend while setuptools writes the metadata alone (setup.py reads it)."""


def compiling() -> bool:
    """Whether the environment asks for the compiled build (setup.py reads the same)."""
    return os.environ.get("MCASTPROXY_COMPILE", "").strip().lower() in ("1", "yes", "true", "on")


def get_requires_for_build_wheel(config_settings: dict[str, object] | None = None) -> list[str]:
    if compiling():
        # Not setuptools' answer: it runs setup.py to find out, which cannot compile yet.
        # (setup.py has no setup_requires, the rest of setuptools' answer.)
        return list(COMPILE_REQUIRES)
    return list(_setuptools.get_requires_for_build_wheel(config_settings))


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, object] | None = None
) -> str:
    if not compiling():
        return str(_setuptools.prepare_metadata_for_build_wheel(metadata_directory,
                                                                config_settings))
    # The metadata does not depend on the extension modules: setup.py skips mypyc for it
    # (which would otherwise read and translate the whole core twice).
    os.environ[METADATA_ONLY] = "1"
    try:
        return str(_setuptools.prepare_metadata_for_build_wheel(metadata_directory,
                                                                config_settings))
    finally:
        del os.environ[METADATA_ONLY]


def get_requires_for_build_editable(config_settings: dict[str, object] | None = None) -> list[str]:
    if compiling():
        # An editable install would build the extension modules into src/mcastproxy, where
        # every run of the sources, the pure test suite's too, would import them instead.
        raise RuntimeError("MCASTPROXY_COMPILE: the compiled build is not installed editable; "
                           "install it with `MCASTPROXY_COMPILE=1 pip install .`")
    return list(_setuptools.get_requires_for_build_editable(config_settings))
