"""The use cases of the paper, one scenario a file: ``mcastproxy run`` for real on the proxy
topology (``topologies.proxy_lab()``), each in IPv4 and IPv6 (the ``fam`` fixture).

Each scenario asserts which upstream carried each report (captured on the provider's side),
that data reaches exactly the subscribers that asked for it, from the upstream selected,
with no duplicates, and that after the leaves the upstream memberships stop.
"""

from __future__ import annotations

import pytest
from provider_channels import FAMS, Fam


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def fam(request: pytest.FixtureRequest) -> Fam:
    return FAMS[request.param]
