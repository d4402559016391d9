"""``Lab.proxy`` starts mcastproxy in a lab host; a daemon that exits before it is ready is
a ``LabError`` carrying its own reason, at once rather than after the timeout.

Topology ``lan_pair``::

    router eth0 ------------ eth0 host     (mcastproxy is started in router)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mcastlab import Lab, LabError, topologies

pytestmark = pytest.mark.netns

REFUSED = """
igmp: {version: 7}
downstream: [{interface: eth0}]
upstream: {candidates: [{interface: lo}]}
"""


def test_a_daemon_that_exits_says_why(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(topologies.lan_pair())
    t = time.monotonic()
    with pytest.raises(LabError, match=r"exited 2 before it was ready:(.|\n)*igmp.version"):
        lab.proxy(REFUSED, host="router", timeout=30)
    assert time.monotonic() - t < 10


def test_a_status_socket_path_too_long_is_refused_before_the_start(
    make_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = make_lab(topologies.lan_pair())
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with pytest.raises(LabError, match="too long for a UNIX socket"):
        lab.proxy(REFUSED, host="router", workdir=deep)
    assert lab.procs == []
