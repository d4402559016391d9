"""A capture of whole IGMP and MLD packets (IP header included) on one interface of a lab
namespace, so tests can check what the lab's capture leaves out: TTL / hop limit, the IPv4
Router Alert option, the IPv6 Hop-by-Hop header.

    ip netns exec NS python tests/netio/raw_capture.py IFACE

prints ``{"event": "ready"}``, then ``{"event": "packet", "outgoing": bool, "ip": "<hex>"}``
per IPv4 packet of protocol 2 or IPv6 packet whose first header is Hop-by-Hop or ICMPv6.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from mcastlab.procs import JsonProc

ETH_P_ALL, ETH_P_IP, ETH_P_IPV6, PACKET_OUTGOING = 0x0003, 0x0800, 0x86DD, 4


def main() -> int:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    s.bind((sys.argv[1], ETH_P_ALL))
    print(json.dumps({"event": "ready"}), flush=True)
    while True:
        data, addr = s.recvfrom(65535)
        if (addr[1] == ETH_P_IP and data[9] == 2) or (addr[1] == ETH_P_IPV6 and data[6] in (0, 58)):
            out = {"event": "packet", "outgoing": addr[2] == PACKET_OUTGOING, "ip": data.hex()}
            print(json.dumps(out), flush=True)


class RawCapture(JsonProc):
    """The capture running in a lab namespace."""

    def __init__(self, lab: Any, host: str, iface: str) -> None:
        argv = [sys.executable, str(Path(__file__).resolve()), iface]
        log = lab.logdir / f"{host}-rawcap-{len(lab.procs)}.log"
        super().__init__(lab.ns(host), argv, log=log, env=lab.python_env())
        self.wait_event(lambda e: e.get("event") == "ready", 10)

    def packets(self) -> list[bytes]:
        """The packets received on the interface so far (not those it sent)."""
        return [bytes.fromhex(e["ip"]) for e in self.events("packet") if not e["outgoing"]]


if __name__ == "__main__":
    sys.exit(main())
