"""Fixtures of the e2e tests: the daemon running in a lab (``running_proxy.Proxy``, started
with ``Lab.proxy``).

The scenarios are one a file, grouped by the topology they run on: ``usecases/`` (the
paper's use cases on ``topologies.proxy_lab()``), ``failover/`` (a redundant headend's
stream on ``proxy_lab(headend=True)``), and FRR as a real upstream router
(``test_frr_upstream.py``). Those that need the kernel to forward are marked ``mroute``; those
that only watch what the proxy says and hears run on any kernel, with ``best_forwarding()``.
The edge tests (``edge/``, an attacker on a link) have fixtures of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from running_proxy import Proxy

from mcastlab import Lab, Topology, topologies
from mcastlab.proxy import Forwarding


@pytest.fixture
def proxy_with(make_lab: Callable[..., Lab], tmp_path: Path) -> Callable[..., Proxy]:
    """``proxy_with(config[, topology, forwarding])``: the daemon run with ``config`` in a
    fresh lab of ``topology`` (default ``topologies.proxy_lab()``), taken down after the test;
    ``forwarding="recorded"`` for a scenario that does not need the kernel to forward."""

    def make(config: str, topology: Topology | None = None,
             forwarding: Forwarding = "kernel") -> Proxy:
        return Proxy(make_lab(topology or topologies.proxy_lab()), config, tmp_path, forwarding)

    return make
