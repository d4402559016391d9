"""Fixtures of the edge tests: the proxy on ``topologies.proxy_lab()`` facing an attacker.

These tests are about what the proxy hears and says (what it drops and counts, whether it
stays querier, what it reports upstream), not what it forwards, so they run on any kernel:
with the kernel's multicast routing where it has it, with routes recorded in memory where
not (``mcastlab.recorded``). They are marked ``netns`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mcastlab import Lab, topologies
from mcastlab.proxy import Proxy, best_forwarding


@pytest.fixture
def edge(make_lab: Callable[..., Lab]) -> Callable[[str], tuple[Lab, Proxy]]:
    """``lab, proxy = edge(config)``: the proxy running ``config`` in a fresh proxy lab."""

    def make(config: str) -> tuple[Lab, Proxy]:
        lab = make_lab(topologies.proxy_lab())
        return lab, lab.proxy(config, forwarding=best_forwarding())

    return make

