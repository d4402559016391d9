"""mcastproxy: an IGMP/MLD proxy (RFC 4605) with several upstream interfaces."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES

__version__ = "0.1.0"


def build() -> str:
    """Which build runs: "compiled" when the protocol core is the extension modules mypyc made
    of it (``MCASTPROXY_COMPILE=1 pip install .``, setup.py), else "pure Python"."""
    from mcastproxy import wire  # noqa: PLC0415 - the package itself imports nothing

    origin = wire.__file__ or ""
    return "compiled" if origin.endswith(tuple(EXTENSION_SUFFIXES)) else "pure Python"
