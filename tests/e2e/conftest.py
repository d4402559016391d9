"""Fixtures of the e2e tests: the daemon running in a lab (``running_proxy.Proxy``, started
with ``Lab.proxy``).

The scenarios are one a file, grouped by the topology they run on: ``usecases/`` (the
paper's use cases on ``topologies.proxy_lab()``), ``failover/`` (a redundant headend's
stream on ``proxy_lab(headend=True)``), and FRR as a real upstream router
(``test_frr_upstream.py``). All of them run mcastproxy, and so are marked ``mroute``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from running_proxy import Proxy

from mcastlab import Lab, Topology, topologies


@pytest.fixture
def proxy_with(make_lab: Callable[..., Lab], tmp_path: Path) -> Callable[..., Proxy]:
    """``proxy_with(config[, topology])``: the daemon run with ``config`` in a fresh lab of
    ``topology`` (default ``topologies.proxy_lab()``), taken down after the test."""

    def make(config: str, topology: Topology | None = None) -> Proxy:
        return Proxy(make_lab(topology or topologies.proxy_lab()), config, tmp_path)

    return make
