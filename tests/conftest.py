"""Shared pytest setup: the network-namespace lab (``mcastlab``).

Tests marked ``netns`` build lab topologies: they need root and ``ip netns``, and are skipped
(with the reason) where those are missing. Tests marked ``mroute`` run mcastproxy's kernel
adapter or the daemon, and so need the kernel's multicast routing: they are skipped (with the
reason) on a kernel built without it. At the start of a session, namespaces left behind by
earlier lab runs that were killed outright are swept away (only those whose creating process
is gone; see ``mcastlab.netns.sweep``).

Fixtures:

- ``make_lab(topology, **kwargs) -> Lab``: builds a lab for this test and takes it down
  afterwards, however the test ends. If the test failed, the end of each lab process's log
  is printed, so a receiver's or daemon's complaint shows up in the report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from mcastlab import Lab, Topology, sweep

# Property tests: ``ci`` (what ``scripts/test`` runs) draws a fixed, larger set of examples,
# so a run is repeatable and still searches well; ``dev`` draws fresh random ones each run.
# Tests that need more or fewer examples than the profile say so themselves.
settings.register_profile("dev", max_examples=60)
settings.register_profile("ci", max_examples=300, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Present when the kernel has IPv4 / IPv6 multicast routing (ipmr, ip6mr).
MROUTE_FILES = {"CONFIG_IP_MROUTE": Path("/proc/net/ip_mr_vif"),
                "CONFIG_IPV6_MROUTE": Path("/proc/net/ip6_mr_vif")}


def _netns_unavailable() -> str | None:
    """Why lab tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "sysctl"):
        if shutil.which(tool) is None:
            return f"needs {tool!r} on PATH"
    return None


def _mroute_unavailable() -> str | None:
    """Why tests of the kernel's multicast routing cannot run here, or None if they can."""
    missing = [option for option, path in MROUTE_FILES.items() if not path.exists()]
    if not missing:
        return None
    files = ", ".join(str(MROUTE_FILES[option]) for option in missing)
    return (f"needs the kernel's multicast routing: this kernel was built without "
            f"{' and '.join(missing)} (no {files})")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _netns_unavailable() is None:
        sweep()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, reason in (("netns", _netns_unavailable()), ("mroute", _mroute_unavailable())):
        if reason is None:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
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
