"""Automatic Multicast Tunneling (RFC 7450): an upstream reached through a relay over unicast.

- ``gateway``: the gateway's state machine (sans-I/O, like the engine), with its
  ``events`` and ``actions``; ``inner``: the IP packets AMT messages carry.
- ``pseudo``: what crosses the pseudo-interface (the host side's membership, the relay's
  queries); ``split``: that membership split over the relays that carry it.
- ``driad`` (RFC 8777): a source's relay from its AMTRELAY record, and the cache of answers;
  ``resolver``: the DNS lookups behind it (dnspython, on the loop).
- ``runner``: the asyncio side of one gateway, its UDP socket and timer; ``upstream``: an AMT
  upstream candidate, its TUN device (``tun``) and gateways, as the daemon runs it.

The wire codec of the seven AMT messages is ``mcastproxy.wire.amt``.
"""
