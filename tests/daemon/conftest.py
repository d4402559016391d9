"""The daemon's tests run its loop on the fakes of ``fakes.py``, without root or namespaces.

- An ``async def`` test runs in a fresh event loop (``asyncio.run``) and fails, rather than
  hangs, after ``TEST_TIMEOUT`` seconds.
- ``proto``: IGMP, then MLD (``daemon_harness.IGMP`` / ``MLD``).
- ``net``: a ``FakeNetwork`` with u1, u2, d1 and d2 up, each with an IPv4 address and an
  IPv6 link-local one.
- ``workdir``: a short temporary directory (a UNIX socket's path must fit in 108 octets).
- The daemon logs at INFO into ``caplog``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import ADDRESSES, IGMP, MLD, Proto
from fakes import FakeNetwork

TEST_TIMEOUT = 20.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    wanted = inspect.signature(test).parameters
    kwargs = {k: v for k, v in pyfuncitem.funcargs.items() if k in wanted}
    asyncio.run(asyncio.wait_for(test(**kwargs), TEST_TIMEOUT))
    return True


@pytest.fixture(params=[IGMP, MLD], ids=lambda p: p.family.protocol)
def proto(request: pytest.FixtureRequest) -> Proto:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def net() -> FakeNetwork:
    network = FakeNetwork()
    for name, addresses in ADDRESSES.items():
        network.up(name, *addresses)
    return network


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mcp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _daemon_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The daemon's info lines are captured too (tests read them; failures show them)."""
    caplog.set_level(logging.INFO, logger="mcastproxy")
