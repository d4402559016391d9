"""Automatic Multicast Tunneling (RFC 7450): an upstream reached through a relay over unicast.

- ``gateway``: the gateway's state machine (sans-I/O, like the engine), with its
  ``events`` and ``actions``; ``inner``: the IP packets AMT messages carry.
- ``transport``: the asyncio side: a UDP socket to the relay driving a ``Gateway``, and a TUN
  device that the decapsulated multicast enters (``tun``).

The wire codec of the seven AMT messages is ``mcastproxy.wire.amt``.
"""
