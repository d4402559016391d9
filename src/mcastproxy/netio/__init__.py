"""IGMP and MLD packets in and out, for every interface: per family, a raw socket (link-scope
messages, and sending) and a packet socket (messages to routable groups, which the IP stack
hands to no raw socket without the kernel's multicast routing), behind one descriptor.

- ``IgmpSocket`` / ``MldSocket``: ``fileno()`` for ``add_reader`` (an epoll descriptor over
  both sockets), ``receive()`` draining what is queued as ``Received`` records in arrival
  order (never raising on bad input: drops are counted in ``dropped`` by reason),
  ``send(interface, destination, payload)``, ``listen(interface)`` on each downstream (joins
  the all-routers groups reports and leaves are sent to, and asks the link for every
  multicast frame), close().
- ``InterfaceMap``: interface names <-> indexes and source addresses, which the daemon
  keeps current from netlink.

How Linux delivers IGMP and MLD, with and without multicast routing, and why each message
arrives exactly once, is told in ``netio.igmp`` and ``netio.mld``; the filters that share
the messages out in ``netio.filters``, the packet socket in ``netio.frames`` (and the IPv6
header it reads in ``netio.ipv6``), the pairing of the two in ``netio.reception``.
"""

from __future__ import annotations

from mcastproxy.netio.common import Received
from mcastproxy.netio.igmp import IgmpSocket
from mcastproxy.netio.interfaces import Interface, InterfaceMap
from mcastproxy.netio.mld import MldSocket

__all__ = ["IgmpSocket", "Interface", "InterfaceMap", "MldSocket", "Received"]
