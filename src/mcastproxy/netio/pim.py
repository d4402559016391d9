"""PIM Hellos heard on upstream interfaces: evidence that an upstream router is alive.

The proxy does not speak PIM; it only listens for Hellos (RFC 7761 §4.3.1: PIM version 2,
type 0, sent to ALL-PIM-ROUTERS 224.0.0.13 / ff02::d with TTL/hop limit 1), as draft §5.1
suggests. One raw socket per family, IP protocol 103, joined to ALL-PIM-ROUTERS on each
upstream that watches for hellos; ``receive()`` returns (interface, source) of each Hello.
"""

from __future__ import annotations

import socket

from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.netio import sockopts
from mcastproxy.netio.common import MAX_PER_RECEIVE, NOT_LOOPED_BACK, ListeningSocket
from mcastproxy.netio.interfaces import InterfaceMap

IPPROTO_PIM = 103
ALL_PIM_ROUTERS = {Family.V4: socket.inet_pton(socket.AF_INET, "224.0.0.13"),
                   Family.V6: socket.inet_pton(socket.AF_INET6, "ff02::d")}
PIM_HELLO = 0x20  # version 2 (high nibble), type 0 Hello (low nibble)


def is_hello(pim: bytes) -> bool:
    """A PIMv2 Hello header (RFC 7761 §4.9): version 2, type 0."""
    return len(pim) >= 4 and pim[0] == PIM_HELLO


class PimListener(ListeningSocket):
    """Hellos of one family, on the upstreams ``listen``-ed to."""

    def __init__(self, family: Family, interfaces: InterfaceMap) -> None:
        family = Family(family)
        v4 = family is Family.V4
        af = socket.AF_INET if v4 else socket.AF_INET6
        s = socket.socket(af, socket.SOCK_RAW, IPPROTO_PIM)
        try:
            sockopts.attach_filter(s, NOT_LOOPED_BACK)
            if v4:
                s.setsockopt(socket.IPPROTO_IP, sockopts.IP_PKTINFO, 1)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, sockopts.IPV6_RECVPKTINFO, 1)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        super().__init__(family, interfaces, s, (ALL_PIM_ROUTERS[family],))  # ALL-PIM-ROUTERS

    def receive(self) -> list[tuple[str, bytes]]:
        """(interface, source) of every Hello queued now; anything else is counted."""
        out: list[tuple[str, bytes]] = []
        v4 = self.family is Family.V4
        for _ in range(MAX_PER_RECEIVE):
            try:
                data, ancillary, _flags, addr = self._sock.recvmsg(65535, 128)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.dropped[Drop.RECEIVE_ERROR] += 1
                break
            index = None
            for level, kind, value in ancillary:
                if v4 and level == socket.IPPROTO_IP and kind == sockopts.IP_PKTINFO:
                    index = sockopts.IN_PKTINFO.unpack(value[: sockopts.IN_PKTINFO.size])[0]
                elif (not v4 and level == socket.IPPROTO_IPV6
                      and kind == sockopts.IPV6_PKTINFO):
                    index = sockopts.IN6_PKTINFO.unpack(value[: sockopts.IN6_PKTINFO.size])[1]
            if v4:
                ihl = (data[0] & 0x0F) * 4 if data else 0
                pim, source = data[ihl:], data[12:16]
            else:
                pim = data
                source = socket.inet_pton(socket.AF_INET6, addr[0].partition("%")[0])
            name = self.interfaces.name_of(index) if index is not None else None
            if name is None:
                self.dropped[Drop.UNKNOWN_INTERFACE] += 1
            elif not is_hello(pim):
                self.dropped[Drop.NOT_PIM_HELLO] += 1
            else:
                out.append((name, source))
        return out
