"""Reading the proxy's status in the edge tests."""

from __future__ import annotations

from mcastlab.proxy import Proxy


def drops(proxy: Proxy, link: str) -> dict[str, int]:
    """What the proxy dropped on ``link``, by reason (its status)."""
    return dict(proxy.status()["drops"].get(link, {}))


def groups(proxy: Proxy, link: str) -> dict[str, dict[str, object]]:
    """The groups with members on ``link`` (``d1/igmp``, ``d1/mld``...)."""
    return dict(proxy.status()["downstream"][link]["groups"])
