"""mcastproxy's configurations for the proxy lab, shared by the tests and the benchmarks.

On ``topologies.proxy_lab()`` the proxy has two downstream links, d1 (the LAN of sub1 and
sub2) and d2 (sub3), and two upstream candidates, u1 toward prov1 and u2 toward prov2::

      prov1 (10.0.1.2, fd00:1::2)            prov2 (10.0.2.2, fd00:2::2)
              |                                      |
              u1 ------------- proxy --------------- u2
              d1 (lan1: sub1, sub2)                  d2 (sub3)

Every configuration here proxies IGMPv3 and MLDv2 with fast leave on d1 and d2. A test
or benchmark that needs another builds it with ``proxy_config``.
"""

from __future__ import annotations

DOWNSTREAM = "downstream: [{interface: d1, fast-leave: true}, {interface: d2, fast-leave: true}]"
"""d1 and d2, both with fast leave (the last tracked subscriber's leave ends the group at once)."""


def proxy_config(*upstream: str, u1: str = "", u2: str = "") -> str:
    """The proxy with d1 and d2 downstream; ``upstream`` settings, one a line
    (``"hold-down: 1s"``); u1 and u2 candidates with settings of their own
    (``u1=", priority: 10"``)."""
    settings = "".join(f"  {line}\n" for line in upstream)
    return f"""
igmp: {{version: 3}}
mld: {{version: 2}}
{DOWNSTREAM}
upstream:
{settings}  candidates:
    - {{interface: u1{u1}}}
    - {{interface: u2{u2}}}
"""


DATA_LIVENESS = ", liveness: {link: true, data: 100ms}"
"""A candidate's setting: usable while its link is up and, per channel, while data comes
(100 ms of silence makes a channel dead there)."""

WHOLESALE = f"""
igmp: {{version: 3}}
mld: {{version: 2}}
{DOWNSTREAM}
upstream:
  takeover: false
  candidates:
    - interface: u1
      records: [{{group: 239.1.0.0/16}}, {{group: "ff1e::1:0/112"}}]
    - interface: u2
      records: [{{group: 239.2.0.0/16}}, {{group: "ff1e::2:0/112"}}]
"""
"""Channels by group prefix, each from its provider: 239.1/16 and ff1e::1:0/112 from u1,
239.2/16 and ff1e::2:0/112 from u2; no takeover."""
