"""Fixtures of the e2e tests: the daemon running in a lab (``running_proxy.Proxy``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from running_proxy import Proxy

from mcastproxy.lab import Lab, Topology, topologies


@pytest.fixture
def proxy_with(make_lab: Callable[..., Lab], tmp_path: Path) -> Callable[..., Proxy]:
    """``proxy_with(config[, topology])``: the daemon run with ``config`` in a fresh lab of
    ``topology`` (default ``topologies.proxy_lab()``), taken down after the test."""

    def make(config: str, topology: Topology | None = None) -> Proxy:
        return Proxy(make_lab(topology or topologies.proxy_lab()), config, tmp_path)

    return make
