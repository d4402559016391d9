"""mcastproxy's optional compiled build (pyproject.toml holds everything else).

By default this builds the pure-Python package: ``pip install .`` needs no compiler. With
``MCASTPROXY_COMPILE=1`` in the environment, the protocol core listed in ``COMPILED`` is
compiled with mypyc into C extension modules, installed beside the same ``.py`` sources (as
black and mypy ship): ``MCASTPROXY_COMPILE=1 pip install .`` needs a C compiler and the
Python headers, and pip fetches mypy for the build (build_backend/). ``mcastproxy --version``
says which build runs. The compiled build is never installed editable (build_backend/ refuses):
an extension module in ``src/`` would shadow the sources the pure test run means to check.
``scripts/test-compiled`` builds a copy of the tree into ``.venv-compiled``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from setuptools import setup

COMPILED = [
    # the codecs (mcastproxy.wire, every module)
    "mcastproxy/wire/__init__.py",
    "mcastproxy/wire/_records.py",
    "mcastproxy/wire/amt.py",
    "mcastproxy/wire/checksum.py",
    "mcastproxy/wire/codes.py",
    "mcastproxy/wire/errors.py",
    "mcastproxy/wire/igmp.py",
    "mcastproxy/wire/ipv4.py",
    "mcastproxy/wire/messages.py",
    "mcastproxy/wire/mld.py",
    # the router side's state, the host side, selection and the engine's concepts
    "mcastproxy/membership/__init__.py",
    "mcastproxy/membership/addresses.py",
    "mcastproxy/membership/group.py",
    "mcastproxy/membership/state.py",
    "mcastproxy/membership/tracking.py",
    # RouterLink and the chain of classes it is built from (a native class inherits only
    # from native classes: all of them or none), and what it holds
    "mcastproxy/membership/linkstate.py",
    "mcastproxy/membership/explicit.py",
    "mcastproxy/membership/queries.py",
    "mcastproxy/membership/intake.py",
    "mcastproxy/membership/static.py",
    "mcastproxy/membership/router.py",
    "mcastproxy/membership/querier.py",
    "mcastproxy/membership/validity.py",
    "mcastproxy/membership/statistics.py",
    "mcastproxy/membership/outputs.py",
    "mcastproxy/membership/ssmmap.py",
    "mcastproxy/upstream/__init__.py",
    "mcastproxy/upstream/host.py",
    "mcastproxy/upstream/merge.py",
    "mcastproxy/selection.py",
    "mcastproxy/candidates.py",
    "mcastproxy/channel_takeover.py",
    "mcastproxy/flowwatch.py",
    "mcastproxy/forwarding.py",
    "mcastproxy/ledger.py",
    "mcastproxy/liveness.py",
    "mcastproxy/moves.py",
    "mcastproxy/takeover.py",
    # the engine and its concepts
    "mcastproxy/engine.py",
    "mcastproxy/downstream.py",
    "mcastproxy/admission.py",
    "mcastproxy/policy.py",
    "mcastproxy/rules.py",
    "mcastproxy/bandwidth.py",
    "mcastproxy/placement.py",
    "mcastproxy/learning.py",
    "mcastproxy/subscriptions.py",
    "mcastproxy/ratelimit.py",
    "mcastproxy/upstreams.py",
    "mcastproxy/snapshot.py",
]
"""The modules mypyc compiles, relative to src/: the protocol core, from the codecs to the
engine. A compiled (native) class inherits only from compiled classes, so ``RouterLink``
comes with every class it is built from (``membership.linkstate`` to ``.static``); and
Python code cannot subclass or patch one (tests wrap the engine instead of subclassing it).

Left as Python:

- ``membership.timers``: a pydantic dataclass, whose validators pydantic inspects for their
  signature at class creation, which a compiled function does not have (and it is read
  once, at configuration time);
- ``config``, ``configtypes``, ``policyconfig``: pydantic models, read at configuration time
  alone;
- ``events``, ``actions``, ``family``, ``drops``: what the daemon and the engine hand each
  other, made and read on both sides. Tried compiled: a frozen dataclass costs as much to
  make compiled as not (mypyc keeps its ``__setattr__`` guard: 1.2 us for an event of seven
  fields), the daemon's CPU per report moved within the noise, and a compiled ``Family``
  turns every parameter typed with it into a check that refuses a plain 4 or 6 (twenty unit
  tests of the router side and the engine fail), as a compiled ``Event`` union pre-empts the
  engine's own "not an engine event";
- the daemon and everything with I/O (``daemon``, ``netio``, ``kernel``, ``amt``, status,
  metrics, logs, the CLI): their time goes to system calls and the event loop, and they
  are changed often."""


def _wanted() -> bool:
    """Asked for, and not just the metadata being written (build_backend/)."""
    return (os.environ.get("MCASTPROXY_COMPILE", "").strip().lower() in ("1", "yes", "true", "on")
            and not os.environ.get("MCASTPROXY_METADATA_ONLY"))


def _build_base() -> str:
    """A build directory of this run's own, removed when it ends: setuptools packs whatever
    its build directory holds, so a shared ``build/`` would carry one build's extension
    modules into the next (a "pure" wheel with compiled modules in it, or modules of an
    older list of them)."""
    path = tempfile.mkdtemp(prefix="mcastproxy-build-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _ext_modules(build_base: str) -> list[object]:
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 - the default build has no mypy
    except ImportError:
        raise SystemExit(
            "MCASTPROXY_COMPILE: the compiled build needs mypy (which ships mypyc) where it "
            "builds: pip's build environment has it (build_backend/), a build without "
            "isolation needs it installed"
        ) from None
    here = os.path.dirname(os.path.abspath(__file__))
    return list(
        mypycify(
            [os.path.join(here, "src", path) for path in COMPILED],
            opt_level="3",
            target_dir=os.path.join(build_base, "mypyc"),  # the C sources
        )
    )


BUILD_BASE = _build_base()
setup(
    ext_modules=_ext_modules(BUILD_BASE) if _wanted() else [],
    options={"build": {"build_base": BUILD_BASE}},
)
