"""Shared pytest setup: the network-namespace lab.

Tests marked ``netns`` build lab topologies: they need root and ``ip netns``, and are skipped
(with the reason) where those are missing. At the start of a session, namespaces left
behind by earlier lab runs that were killed outright are swept away (only those whose
creating process is gone; see ``mcastproxy.lab.netns.sweep``).

Fixtures:

- ``make_lab(topology, **kwargs) -> Lab``: builds a lab for this test and takes it down
  afterwards, however the test ends. If the test failed, the end of each lab process's log
  is printed, so a receiver's or daemon's complaint shows up in the report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mcastproxy.lab import Lab, Topology, sweep


def _netns_unavailable() -> str | None:
    """Why lab tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "sysctl"):
        if shutil.which(tool) is None:
            return f"needs {tool!r} on PATH"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if _netns_unavailable() is None:
        sweep()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _netns_unavailable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    setattr(item, f"lab_report_{report.when}", report)
    return report


@pytest.fixture
def make_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    """Build a lab for this test: ``lab = make_lab(topologies.lan_pair())``."""
    labs: list[Lab] = []

    def make(topology: Topology, **kwargs: Any) -> Lab:
        lab = Lab(topology, **kwargs).up()
        labs.append(lab)
        return lab

    yield make

    report = getattr(request.node, "lab_report_call", None)
    failed = report is not None and report.failed
    for lab in reversed(labs):
        if failed:
            for p in lab.procs:
                text = p.output()[-3000:] if p.log.exists() else "(log gone)"
                print(f"--- {p!r} (exit {p.returncode}) log:\n{text}")
        lab.down()
