"""A multicast sender for the lab: N packets at R packets/s to a group, then a summary.

Run inside a namespace (``Lab.send`` and ``Lab.start_sender`` do this)::

    ip netns exec NS python -m mcastlab.sender --group 232.1.1.1 --port 5001 \\
        --iface eth0 --count 50 --rate 500 --id prov1 [--source 10.0.1.2] [--ttl 8]

Each packet carries a ``mcastlab.payload`` (sender id, sequence number, send time).
The send is always bounded: the count and rate are required, and more than
``MAX_COUNT`` packets or ``MAX_RATE`` packets/s is refused. Packets leave on a fixed
schedule (packet i at start + i/R), so a late wake-up is caught up rather than drifting.

On stdout, one JSON line at the end::

    {"event": "done", "sent": 50, "errors": 0, "first_error": null, "start": ..., "end": ...}

(``start`` and ``end`` are ``time.monotonic()``), or ``{"event": "error", "error": "..."}``
if the socket could not be set up (an interface or source address that is not there).

Exit status 0 if every packet was sent, 1 if some send failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence

from mcastlab import sockopts
from mcastlab.payload import Payload, build_payload, check_limits

DEFAULT_TTL = 8
"""More than 1, so that packets cross the proxy (which decrements TTL/hop limit)."""


def sender_args(
    group: str,
    *,
    port: int,
    count: int,
    rate: float,
    iface: str | None = None,
    source: str | None = None,
    ttl: int = DEFAULT_TTL,
    sender_id: str = "",
    size: int = 0,
) -> list[str]:
    """The arguments of ``python -m mcastlab.sender`` for a send; checks the limits."""
    check_limits(count, rate)
    args = ["--group", group, "--port", str(port), "--count", str(count), "--rate", str(rate)]
    args += ["--ttl", str(ttl), "--id", sender_id, "--size", str(size)]
    if iface is not None:
        args += ["--iface", iface]
    if source is not None:
        args += ["--source", source]
    return args


def open_socket(group: str, iface: str | None, source: str | None, ttl: int) -> socket.socket:
    """A UDP socket that sends to ``group`` out of ``iface`` with the given TTL / hop limit."""
    fam = sockopts.family_of(group)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    ifindex = socket.if_nametoindex(iface) if iface else 0
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if ifindex:
            s.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, sockopts.ip_mreqn("0.0.0.0", ifindex)
            )
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        if ifindex:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    if source is not None:
        s.bind((source, 0))
    return s


def main(argv: Sequence[str] | None = None) -> int:
    """Send, print the summary; the exit status."""
    ap = argparse.ArgumentParser(prog="mcastlab.sender", description=__doc__.split("\n")[0])
    ap.add_argument("--group", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rate", type=float, required=True, help="packets per second")
    ap.add_argument("--iface", help="send out of this interface (IP_MULTICAST_IF)")
    ap.add_argument("--source", help="bind to this source address")
    ap.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="TTL / hop limit")
    ap.add_argument("--id", default="", help="sender id written in each packet")
    ap.add_argument("--size", type=int, default=0, help="pad payloads to this many octets")
    a = ap.parse_args(argv)
    try:
        check_limits(a.count, a.rate)
    except ValueError as e:
        ap.error(str(e))
    try:
        s = open_socket(a.group, a.iface, a.source, a.ttl)
    except OSError as e:
        print(json.dumps({"event": "error", "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    dest = (a.group, a.port)
    sent = errors = 0
    first_error = None
    start = time.monotonic()
    for seq in range(a.count):
        due = start + seq / a.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        data = build_payload(Payload(a.id, seq, time.monotonic_ns()), a.size)
        try:
            s.sendto(data, dest)
            sent += 1
        except OSError as e:
            errors += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
    end = time.monotonic()
    s.close()
    done = {"event": "done", "sent": sent, "errors": errors, "first_error": first_error}
    print(json.dumps(done | {"start": start, "end": end}), flush=True)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
