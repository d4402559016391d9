"""A small AMT relay (RFC 7450 §5.3) for the lab: the far end of mcastproxy's AMT gateway.

Not part of mcastproxy: a relay serves a provider's channels to gateways that reach it over
unicast only. It runs in a lab namespace::

    python -m mcastlab.amtrelay --address 10.30.2.2 [--stream 10.0.9.1,232.1.1.1]...
        [--rate 100] [--port 5001] [--id relay] [--feed IFACE] [--query-interval 125]
        [--robustness 2] [--limit] [--no-gateway-fields] [--mute] [--max-seconds 600]

It binds UDP port 2268 on ``--address`` (IPv4 or IPv6: the transport) and answers:

- Relay Discovery with a Relay Advertisement naming ``--address``, the discovery nonce
  echoed;
- Request with a Membership Query: the Request's nonce, a Response MAC (the first 48 bits of
  HMAC-SHA-256 over the gateway's address, port and nonce, under a secret drawn at start, so
  a restarted relay refuses the old tunnel's Updates), an IGMPv3 or MLDv2 General Query as
  the P flag asks (QQIC ``--query-interval``, QRV ``--robustness``), the L flag with
  ``--limit``, and the Gateway fields (the Request's source address and port) unless
  ``--no-gateway-fields``;
- Membership Update, when its MAC is right for its source, nonce: the report inside (IGMPv3
  or MLDv2) sets the tunnel's channels. A tunnel is one host, so its records are applied as
  that host's own state (IS_IN / TO_IN (S) is INCLUDE (S), an empty one leaves the group;
  IS_EX / TO_EX (S) is EXCLUDE (S); ALLOW and BLOCK add and take sources);
- Teardown, when its MAC is right for the Gateway fields it carries: the tunnel is removed.

A tunnel with no valid Update for [Robustness] x [Query Interval] + 10 s is forgotten.
Muted (``--mute``, or the ``mute`` command), it answers no Relay Discovery and no Request (a
relay slow to answer, or one that answers nothing), saying ``muted`` for each.

Multicast Data: each ``--stream SOURCE,GROUP`` is a numbered test stream (``mcastlab.payload``,
sender ``--id``) generated from the start at ``--rate`` packets per second as UDP to
``--port``, an IP packet from SOURCE to GROUP; each packet goes to every tunnel whose
channels take (SOURCE, GROUP). With ``--feed IFACE``, multicast packets seen on IFACE are
forwarded the same way, and the relay joins its tunnels' channels there (the kernel's IGMP /
MLD), as a relay joins them on its multicast network.

JSON lines on stdout: ``{"event": "ready", ...}`` first, then one per thing that happened::

    {"event": "discovery" | "request" | "update" | "teardown" | "expired" | "refused"
               | "muted",
     "gateway": "10.30.1.2:40000", ...}

(``update`` with the tunnel's ``channels``, ``[[source or null, group], ...]``; ``teardown``
with ``sent``, the Multicast Data messages that tunnel was sent in all; ``refused`` with
``why``; each with ``time_ns``, CLOCK_MONOTONIC when it was written, one clock for every
namespace, for a benchmark's latencies). Lines on stdin, each answered with its number
``n``: ``tunnels`` ->
``{"event": "tunnels", "n": 1, "tunnels": [{"gateway": ..., "channels": ..., "sent": ...}]}``,
``mute`` / ``unmute`` -> ``{"event": "mute", "n": 3, "muted": true}``, ``quit`` ->
``{"event": "done", "n": 2, ...}``. End of stdin ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import selectors
import socket
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcastlab import sockopts
from mcastlab.payload import MAX_RATE, Payload, build_payload
from mcastproxy.amt.inner import query_packet, read_report
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    MembershipQuery,
    MembershipUpdate,
    MulticastData,
    RelayAdvertisement,
    RelayDiscovery,
    Request,
    Teardown,
    build_amt,
    gateway_address_field,
    gateway_address_of,
    parse_amt,
)
from mcastproxy.wire.checksum import inet_checksum
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.ipv4 import build_ipv4
from mcastproxy.wire.messages import Query, RecordType

MAX_SECONDS = 3600.0
DEFAULT_QUERY_SOURCES = {Family.V4: "192.0.2.1", Family.V6: "fe80::1"}
"""Where the relay's General Queries come from (an MLD query from a link-local address,
RFC 9777 §5.1.14); a gateway looks at their timers, not at this."""

Endpoint = tuple[bytes, int]
"""A gateway as the relay sees it: source address (packed) and UDP port."""
Out = tuple[bytes, int, bytes]
"""A datagram to send: destination address, port, AMT message."""
Channel = tuple[bytes | None, bytes]
"""(source, group); source None: any source (an EXCLUDE-mode join)."""


def text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def endpoint_text(endpoint: Endpoint) -> str:
    address, port = endpoint
    return f"[{text(address)}]:{port}" if len(address) == 16 else f"{text(address)}:{port}"


@dataclass(slots=True)
class Tunnel:
    """One gateway's state at the relay: its family and its groups' filter state."""

    family: Family
    include: dict[bytes, set[bytes]] = field(default_factory=dict)  # group -> sources
    exclude: dict[bytes, set[bytes]] = field(default_factory=dict)  # group -> excluded
    last_update: float = 0.0
    sent: int = 0

    def takes(self, source: bytes, group: bytes) -> bool:
        sources = self.include.get(group)
        if sources is not None:
            return source in sources
        excluded = self.exclude.get(group)
        return excluded is not None and source not in excluded

    def channels(self) -> list[Channel]:
        out: list[Channel] = [(s, g) for g, ss in self.include.items() for s in sorted(ss)]
        return out + [(None, g) for g in self.exclude]

    def apply(self, kind: int, group: bytes, sources: Iterable[bytes]) -> None:
        """A record of the tunnel's one host, applied as its own state (RFC 9776 §5.1)."""
        new = set(sources)
        inc, exc = self.include, self.exclude
        if kind in (RecordType.MODE_IS_INCLUDE, RecordType.CHANGE_TO_INCLUDE_MODE):
            exc.pop(group, None)
            if new:
                inc[group] = new
            else:
                inc.pop(group, None)
        elif kind in (RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE):
            inc.pop(group, None)
            exc[group] = new
        elif kind == RecordType.ALLOW_NEW_SOURCES:
            if group in exc:
                exc[group] -= new
            else:
                inc.setdefault(group, set()).update(new)
        elif kind == RecordType.BLOCK_OLD_SOURCES:
            if group in exc:
                exc[group] |= new
            elif group in inc:
                inc[group] -= new
                if not inc[group]:
                    del inc[group]


class RelayCore:
    """The relay's protocol, without sockets: datagrams in, datagrams out, events for a log."""

    def __init__(
        self,
        address: bytes,
        *,
        secret: bytes,
        query_interval: int = 125,
        robustness: int = 2,
        max_response: float = 10.0,
        limit: bool = False,
        gateway_fields: bool = True,
        muted: bool = False,
    ) -> None:
        self.address = address
        self.muted = muted
        self.secret = secret
        self.query_interval = query_interval
        self.robustness = robustness
        self.max_response = max_response
        self.limit = limit
        self.gateway_fields = gateway_fields
        self.tunnels: dict[Endpoint, Tunnel] = {}
        self.events: list[dict[str, Any]] = []
        self.refused = 0

    def mac(self, address: bytes, port: int, nonce: int) -> int:
        """The Response MAC of a tunnel: keyed, so only the relay makes it, and over the
        gateway's endpoint and nonce, so it is valid for that tunnel only (RFC 7450 §5.3)."""
        data = address + struct.pack("!HI", port, nonce)
        return int.from_bytes(hmac.new(self.secret, data, hashlib.sha256).digest()[:6], "big")

    def _event(self, kind: str, endpoint: Endpoint, **more: Any) -> None:
        self.events.append({"event": kind, "gateway": endpoint_text(endpoint), **more})

    def _refuse(self, endpoint: Endpoint, why: str) -> list[Out]:
        self.refused += 1
        self._event("refused", endpoint, why=why)
        return []

    def receive(self, source: bytes, port: int, data: bytes, now: float) -> list[Out]:
        """A datagram from ``source``:``port``; what to send back."""
        endpoint = (source, port)
        try:
            msg = parse_amt(data)
        except WireError as e:
            return self._refuse(endpoint, str(e))
        if self.muted and isinstance(msg, RelayDiscovery | Request):
            self._event("muted", endpoint, message=type(msg).__name__)
            return []
        if isinstance(msg, RelayDiscovery):
            self._event("discovery", endpoint)
            return [(source, port, build_amt(RelayAdvertisement(msg.nonce, self.address)))]
        if isinstance(msg, Request):
            self._event("request", endpoint, family=int(msg.family))
            return [(source, port, build_amt(self._query(source, port, msg)))]
        if isinstance(msg, MembershipUpdate):
            return self._update(endpoint, msg, now)
        if isinstance(msg, Teardown):
            gateway = (gateway_address_of(msg.gateway_address), msg.gateway_port)
            if msg.mac != self.mac(*gateway, msg.nonce):
                return self._refuse(endpoint, "teardown with a wrong MAC")
            tunnel = self.tunnels.pop(gateway, None)
            self._event("teardown", gateway, sender=endpoint_text(endpoint),
                        sent=0 if tunnel is None else tunnel.sent)
            return []
        return self._refuse(endpoint, f"{type(msg).__name__} is not for a relay")

    def _query(self, source: bytes, port: int, msg: Request) -> MembershipQuery:
        family = msg.family
        query = Query(family.newest_version, family.unspecified, self.max_response,
                      qrv=self.robustness, qqi=self.query_interval)
        packet = query_packet(family, query_source(family, self.address), query)
        mac = self.mac(source, port, msg.nonce)
        if not self.gateway_fields:
            return MembershipQuery(mac, msg.nonce, packet, self.limit)
        return MembershipQuery(mac, msg.nonce, packet, self.limit, port,
                               gateway_address_field(source))

    def _update(self, endpoint: Endpoint, msg: MembershipUpdate, now: float) -> list[Out]:
        if msg.mac != self.mac(*endpoint, msg.nonce):
            return self._refuse(endpoint, "update with a wrong MAC")
        try:
            family, _, report = read_report(msg.report)
        except WireError as e:
            return self._refuse(endpoint, f"update: {e}")
        tunnel = self.tunnels.get(endpoint)
        if tunnel is None or tunnel.family is not family:
            if self.limit:
                return self._refuse(endpoint, "no new gateways (limit)")
            tunnel = self.tunnels[endpoint] = Tunnel(family)
        for record in report.records:
            tunnel.apply(record.type, record.group, record.sources)
        tunnel.last_update = now
        channels = [[None if s is None else text(s), text(g)] for s, g in tunnel.channels()]
        self._event("update", endpoint, family=int(family), channels=channels)
        return []

    def forward(self, packet: bytes) -> list[Out]:
        """A multicast IP packet: a Multicast Data message to every tunnel that takes it."""
        if not packet:
            return []
        if packet[0] >> 4 == 4 and len(packet) >= 20:
            source, group = packet[12:16], packet[16:20]
        elif packet[0] >> 4 == 6 and len(packet) >= 40:
            source, group = packet[8:24], packet[24:40]
        else:
            return []
        out: list[Out] = []
        data = b""
        for (address, port), tunnel in self.tunnels.items():
            if tunnel.takes(source, group):
                data = data or build_amt(MulticastData(packet))
                tunnel.sent += 1
                out.append((address, port, data))
        return out

    def expire(self, now: float) -> None:
        """Forget tunnels whose host has said nothing for the Group Membership Interval."""
        interval = self.robustness * self.query_interval + self.max_response
        for endpoint, tunnel in list(self.tunnels.items()):
            if now - tunnel.last_update > interval:
                del self.tunnels[endpoint]
                self._event("expired", endpoint)

    def pop_events(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events


def query_source(family: Family, address: bytes) -> bytes:
    """The relay's own address when it is of the query's family, else a stand-in."""
    if len(address) == family.length and family is Family.V4:
        return address
    return ipaddress.ip_address(DEFAULT_QUERY_SOURCES[family]).packed


def udp_packet(source: bytes, group: bytes, port: int, payload: bytes, ttl: int = 16) -> bytes:
    """An IPv4 or IPv6 UDP packet from ``source`` to ``group``, checksums included (the UDP
    one is optional in IPv4 and sent anyway; it is mandatory in IPv6, RFC 8200 §8.1)."""
    length = 8 + len(payload)
    head = struct.pack("!HHHH", 40000, port, length, 0)
    if len(source) == 4:
        pseudo = source + group + struct.pack("!xBH", 17, length)
    else:
        pseudo = source + group + struct.pack("!I3xB", length, 17)
    checksum = inet_checksum(pseudo + head + payload) or 0xFFFF
    udp = head[:6] + struct.pack("!H", checksum) + payload
    if len(source) == 4:
        return build_ipv4(source, group, udp, ttl=ttl, router_alert=False, tos=0, protocol=17)
    return struct.pack("!IHBB16s16s", 6 << 28, length, 17, ttl, source, group) + udp


def complete_udp_checksum(packet: bytes) -> bytes:
    """``packet`` with its UDP checksum computed, if it is UDP. A packet sent by a host in the
    lab reaches a packet socket before anything computed its checksum (the veth offloads it,
    and the kernel only writes the pseudo-header's part): forwarded as it is, the receiving
    stack would find it wrong."""
    version = packet[0] >> 4 if packet else 0
    if version == 4 and len(packet) >= 20 and packet[9] == 17:
        start = (packet[0] & 0x0F) * 4
        pseudo_head = packet[12:20] + struct.pack("!xBH", 17, len(packet) - start)
    elif version == 6 and len(packet) >= 48 and packet[6] == 17:
        start = 40
        pseudo_head = packet[8:40] + struct.pack("!I3xB", len(packet) - start, 17)
    else:
        return packet
    udp = packet[start:start + 6] + b"\0\0" + packet[start + 8:]
    checksum = inet_checksum(pseudo_head + udp) or 0xFFFF
    return packet[:start + 6] + struct.pack("!H", checksum) + packet[start + 8:]


# -- the program --------------------------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    obj.setdefault("time_ns", time.monotonic_ns())
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class _Feed:
    """Multicast seen on an interface (AF_PACKET), and the kernel joins that draw it there."""

    def __init__(self, iface: str) -> None:
        self.iface = iface
        self.ifindex = socket.if_nametoindex(iface)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
        self.sock.bind((iface, 0x0003))
        self.sock.setblocking(False)
        self.joins: dict[Channel, socket.socket] = {}

    def read(self) -> list[bytes]:
        out: list[bytes] = []
        with contextlib.suppress(BlockingIOError):
            while len(out) < 256:
                data, addr = self.sock.recvfrom(65535)
                if addr[2] != socket.PACKET_OUTGOING:
                    out.append(complete_udp_checksum(data))
        return out

    def sync(self, channels: set[Channel]) -> None:
        for channel in set(self.joins) - channels:
            self.joins.pop(channel).close()
        for channel in channels - set(self.joins):
            source, group = channel
            fam = socket.AF_INET if len(group) == 4 else socket.AF_INET6
            level = socket.IPPROTO_IP if fam == socket.AF_INET else socket.IPPROTO_IPV6
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if source is None:
                s.setsockopt(level, sockopts.MCAST_JOIN_GROUP,
                             sockopts.group_req(text(group), self.ifindex))
            else:
                s.setsockopt(level, sockopts.MCAST_JOIN_SOURCE_GROUP,
                             sockopts.group_source_req(text(group), text(source), self.ifindex))
            self.joins[channel] = s


def run(a: argparse.Namespace) -> int:
    address = ipaddress.ip_address(a.address)
    core = RelayCore(address.packed, secret=secrets.token_bytes(32),
                     query_interval=a.query_interval, robustness=a.robustness,
                     limit=a.limit, gateway_fields=not a.no_gateway_fields, muted=a.mute)
    streams = []
    for spec in a.stream:
        source, group = (ipaddress.ip_address(p).packed for p in spec.split(","))
        streams.append((source, group))
    fam = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((a.address, AMT_PORT))
        sock.setblocking(False)
        feed = _Feed(a.feed) if a.feed else None
    except OSError as e:
        _emit({"event": "error", "n": 0, "error": f"{type(e).__name__}: {e}"})
        return 1
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "amt")
    sel.register(0, selectors.EVENT_READ, "stdin")
    if feed is not None:
        sel.register(feed.sock, selectors.EVENT_READ, "feed")
    _emit({"event": "ready", "pid": os.getpid(), "address": a.address, "port": AMT_PORT,
           "streams": a.stream, "feed": a.feed})

    def send(outs: list[Out]) -> None:
        for dest, port, data in outs:
            with contextlib.suppress(OSError):  # a gateway gone away: its tunnel expires
                sock.sendto(data, (text(dest), port))

    start = time.monotonic()
    seq = 0
    interval = 1.0 / a.rate
    stop_at = start + a.max_seconds
    n = 0
    buf = b""
    why = "max-seconds"
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        while streams and start + seq * interval <= now:
            payload = build_payload(Payload(a.id, seq, time.monotonic_ns()), a.size)
            for source, group in streams:
                send(core.forward(udp_packet(source, group, a.port, payload)))
            seq += 1
        core.expire(now)
        wake = min(stop_at, start + seq * interval if streams else now + 1.0)
        for key, _ in sel.select(max(0.0, wake - time.monotonic())):
            if key.data == "amt":
                with contextlib.suppress(BlockingIOError):
                    for _ in range(256):
                        data, addr = sock.recvfrom(65535)
                        source_address = ipaddress.ip_address(addr[0].split("%")[0]).packed
                        send(core.receive(source_address, addr[1], data, time.monotonic()))
                # Said at once: a command answered next (``tunnels``) never shows a state
                # whose event is not out yet.
                for event in core.pop_events():
                    _emit(event)
            elif key.data == "feed" and feed is not None:
                for packet in feed.read():
                    send(core.forward(packet))
            else:
                chunk = os.read(0, 4096)
                if not chunk:
                    why = "stdin closed"
                    stop_at = 0.0
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    n += 1
                    verb = raw.decode().strip()
                    if verb == "tunnels":
                        _emit({"event": "tunnels", "n": n, "tunnels": _tunnels(core)})
                    elif verb in ("mute", "unmute"):
                        core.muted = verb == "mute"
                        _emit({"event": "mute", "n": n, "muted": core.muted})
                    elif verb == "quit":
                        why, stop_at = "quit", 0.0
                        _emit({"event": "done", "n": n, "why": why, "seq": seq})
                    else:
                        _emit({"event": "error", "n": n, "error": f"unknown command {verb!r}"})
        for event in core.pop_events():
            _emit(event)
        if feed is not None:
            feed.sync({c for t in core.tunnels.values() for c in t.channels()})
    if why != "quit":
        _emit({"event": "done", "why": why, "seq": seq})
    sock.close()
    return 0


def _tunnels(core: RelayCore) -> list[dict[str, Any]]:
    return [
        {"gateway": endpoint_text(e), "family": int(t.family), "sent": t.sent,
         "channels": [[None if s is None else text(s), text(g)] for s, g in t.channels()]}
        for e, t in core.tunnels.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mcastlab.amtrelay", description=__doc__.split("\n")[0])
    ap.add_argument("--address", required=True, help="bind and advertise this address")
    ap.add_argument("--stream", action="append", default=[], metavar="SOURCE,GROUP")
    ap.add_argument("--rate", type=float, default=100.0, help="packets/s of each stream")
    ap.add_argument("--port", type=int, default=5001, help="UDP port of the streams")
    ap.add_argument("--id", default="relay", help="sender id in the streams' payloads")
    ap.add_argument("--size", type=int, default=0, help="pad payloads to this many octets")
    ap.add_argument("--feed", help="forward multicast seen on this interface")
    ap.add_argument("--query-interval", type=int, default=125, help="QQIC, seconds")
    ap.add_argument("--robustness", type=int, default=2, help="QRV")
    ap.add_argument("--limit", action="store_true", help="set the L flag: no new gateways")
    ap.add_argument("--no-gateway-fields", action="store_true", help="queries without G")
    ap.add_argument("--mute", action="store_true", help="answer no Discovery nor Request")
    ap.add_argument("--max-seconds", type=float, default=600.0)
    a = ap.parse_args(argv)
    if not 0 < a.rate <= MAX_RATE:
        ap.error(f"rate must be > 0 and <= {MAX_RATE}")
    if not 0 < a.max_seconds <= MAX_SECONDS:
        ap.error(f"max seconds must be > 0 and <= {MAX_SECONDS}")
    try:
        for spec in a.stream:
            parts = [ipaddress.ip_address(p) for p in spec.split(",")]
            if len(parts) != 2 or parts[0].version != parts[1].version:
                raise ValueError(f"stream {spec!r}: SOURCE,GROUP of one family")
            if not parts[1].is_multicast:
                raise ValueError(f"stream {spec!r}: {parts[1]} is not multicast")
    except ValueError as e:
        ap.error(str(e))
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
