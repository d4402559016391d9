"""The lab's configurations of mcastproxy are valid, and select as their docstrings say."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mcastlab import configs
from mcastproxy.config import load_config
from mcastproxy.selection import Selector

CONFIGS = {
    "wholesale": configs.WHOLESALE,
    "plain": configs.proxy_config(),
    "tie, data": configs.proxy_config("hold-down: 1s", u1=configs.DATA_LIVENESS,
                                      u2=configs.DATA_LIVENESS),
    "priorities": configs.proxy_config("takeover: false", u1=", priority: 10",
                                       u2=", priority: 5"),
}


@pytest.mark.parametrize("text", CONFIGS.values(), ids=CONFIGS.keys())
def test_configs_load(text: str, tmp_path: Path) -> None:
    path = tmp_path / "mcastproxy.yaml"
    path.write_text(text)
    config = load_config(path)
    assert [d.interface for d in config.downstream] == ["d1", "d2"]
    assert all(d.fast_leave for d in config.downstream)
    assert [c.interface for c in config.upstream.candidates] == ["u1", "u2"]


@pytest.mark.parametrize(("group", "upstream"), [("239.1.1.1", "u1"), ("ff1e::1:1", "u1"),
                                                 ("239.2.2.2", "u2"), ("ff1e::2:2", "u2")])
def test_wholesale_takes_each_channel_from_its_provider(
    group: str, upstream: str, tmp_path: Path
) -> None:
    path = tmp_path / "mcastproxy.yaml"
    path.write_text(configs.WHOLESALE)
    sel = Selector(load_config(path))
    g = ipaddress.ip_address(group)
    subscriber = ipaddress.ip_address("10.1.1.11" if g.version == 4 else "fe80::ff:fe00:d111")
    assert set(sel.select(subscriber.packed, None, g.packed, frozenset()).upstreams) == {upstream}
