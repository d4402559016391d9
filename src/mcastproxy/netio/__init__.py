"""IGMP and MLD packets in and out: one raw socket per family for every interface.

- ``IgmpSocket`` / ``MldSocket``: ``fileno()`` for ``add_reader``, ``receive()`` draining
  what is queued as ``Received`` records (never raising on bad input: drops are counted
  in ``dropped`` by reason), ``send(interface, destination, payload)``, ``listen(interface)``
  on each downstream (joins the all-routers groups reports and leaves are sent to), close().
- ``InterfaceMap``: interface names <-> indexes and source addresses, which the daemon
  keeps current from netlink.

How Linux delivers IGMP and MLD to these sockets, and why each message arrives exactly
once, is told in ``netio.igmp`` and ``netio.mld``.
"""

from __future__ import annotations

from mcastproxy.netio.common import Received
from mcastproxy.netio.igmp import IgmpSocket
from mcastproxy.netio.interfaces import Interface, InterfaceMap
from mcastproxy.netio.mld import MldSocket

__all__ = ["IgmpSocket", "Interface", "InterfaceMap", "MldSocket", "Received"]
