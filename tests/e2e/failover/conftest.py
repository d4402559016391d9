"""Upstream failover under a steady stream, for real, one scenario a file, each in IPv4 and
IPv6 (the ``fam`` fixture), on ``topologies.proxy_lab(headend=True)`` (``failover_stream``).

The bounds asserted are generous; ``bench/bench_failover.py`` measures the outages
precisely, many times over.
"""

from __future__ import annotations

import pytest
from failover_stream import FAMS, Fam


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]
