"""Which socket Linux gives an IGMP packet to, with the kernel adapter's tables active: the
evidence behind ``netio.igmp``'s design. Runs in the proxy namespace::

    ip netns exec NS python tests/netio/delivery_probe.py

It starts ``MulticastRouter(4)`` (u1, u2 / d1, d2) and opens, next to it:

- ``plain``: a raw IGMP socket, nothing set;
- ``router_alert``: a raw IGMP socket with IP_ROUTER_ALERT;
- ``mroute``: one more mroute socket (table 4799, MRT_INIT) without any filter;
- ``netio``: the production ``IgmpSocket``.

Each IGMP packet one of them reads is printed as ``{"event": "got", "socket": ...,
"src": ..., "dst": ..., "type": ...}``. The line ``listen d1`` on stdin makes ``netio`` join
224.0.0.22 and 224.0.0.2 on d1, answered by ``{"event": "listening"}``.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import sys

from mcastproxy.kernel import MulticastRouter
from mcastproxy.kernel.structs import MRT_INIT, MRT_TABLE
from mcastproxy.netio import IgmpSocket, InterfaceMap, sockopts


def main() -> int:
    router = MulticastRouter(4)
    router.start(["u1", "u2"], ["d1", "d2"])
    plain = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    alert = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    alert.setsockopt(socket.IPPROTO_IP, sockopts.IP_ROUTER_ALERT, 1)
    mroute = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    mroute.setsockopt(socket.IPPROTO_IP, MRT_TABLE, struct.pack("@I", 4799))
    mroute.setsockopt(socket.IPPROTO_IP, MRT_INIT, struct.pack("@i", 1))
    interfaces = InterfaceMap()
    for name in ("u1", "u2", "d1", "d2"):
        interfaces.refresh(name)
    netio = IgmpSocket(interfaces)
    sel = selectors.DefaultSelector()
    for name, s in (("plain", plain), ("router_alert", alert), ("mroute", mroute)):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, name)
    sel.register(netio.fileno(), selectors.EVENT_READ, "netio")
    sel.register(0, selectors.EVENT_READ, "stdin")
    print(json.dumps({"event": "ready"}), flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                line = os.read(0, 4096)
                if not line:
                    router.stop()
                    return 0
                netio.listen(line.split()[-1].decode())
                print(json.dumps({"event": "listening"}), flush=True)
            elif key.data == "netio":
                for m in netio.receive():
                    got("netio", m.source, m.destination, m.payload[0])
            else:
                while True:
                    try:
                        data = key.fileobj.recv(65535)  # type: ignore[union-attr]
                    except BlockingIOError:
                        break
                    if data[9] == 2:  # IGMP, not an upcall
                        ihl = (data[0] & 15) * 4
                        got(key.data, data[12:16], data[16:20], data[ihl])


def got(name: str, src: bytes, dst: bytes, kind: int) -> None:
    event = {
        "event": "got",
        "socket": name,
        "src": socket.inet_ntoa(src),
        "dst": socket.inet_ntoa(dst),
        "type": kind,
    }
    print(json.dumps(event), flush=True)


if __name__ == "__main__":
    sys.exit(main())
