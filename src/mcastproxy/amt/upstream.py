"""AMT upstreams (RFC 7450) run by the daemon: a candidate whose interface is a TUN device.

Theory of operation
===================

An upstream candidate with ``amt:`` settings is an upstream like any other to the engine: the
daemon makes its interface, a TUN device, before the kernel's multicast tables are set up,
so that it becomes that upstream's VIF in its own table; selection, takeover, per-channel
data liveness, hot standby and accounting then apply to it unchanged. What makes it AMT is
behind the device, here:

- ``AmtUpstream`` (one candidate): the TUN device (``tun.open_tun``, given the candidate's
  ``address`` list, /32 and /128), and one ``Gateway`` per inner family the proxy speaks
  (IGMPv3 with ``igmp``, MLDv2 with ``mld``), each on a UDP socket of its own to the relay or
  discovery address (its family is the tunnel's): each is a tunnel of its own at the relay.
- Out of the TUN: the packets the kernel sends there, among them the reports of the proxy's
  upstream host side (it sends them on this interface as on any upstream). The
  pseudo-interface's ``HostMembership`` of their family rebuilds the host's membership from
  them; a change goes to that family's gateway (``MembershipChanged``), which sends it in a
  Membership Update, and answers every relay query with the whole of it.
- Into the TUN: the relay's General Queries (``QueryReceived``), with the configured querier
  source (``pseudo.relay_query_packet``): the host side hears a querier there, evidence of
  life for an upstream whose ``liveness`` counts queries, and answers them (the answer
  changes nothing: it is not sent twice). With query liveness on, the gateways keep the
  query exchange running with nothing joined (``keep_querier``), so the upstream is usable
  before anything is joined through it. Multicast Data, decapsulated, is written in as it
  arrives: the kernel's multicast routing forwards it as any upstream's traffic.
- Timers: one ``call_at`` handle per gateway at ``next_deadline()`` (re-requests at the
  relay's query interval, retransmissions, rediscovery when the relay stops answering:
  how a restarted or moved relay is found again).
- ``stop()``: the reports the host side sent last (its leaves, on a graceful stop) are read
  from the TUN and sent, then each gateway's Teardown, then the sockets and the TUN are
  closed: the device goes with its descriptor.

Bad input never raises: a datagram that is not the relay's, a forged or truncated message, a
packet out of the TUN that is not a report are dropped and counted by reason (``status()``).
The UDP socket is read ``BATCH`` datagrams at a time, so a flood costs drops, not the loop.

``AmtUpstreams`` is the daemon's handle on all of them: ``open()`` before the kernel is
touched (a device that cannot be made refuses the start), ``start(loop)``, ``stop()`` after
the kernel's tables are removed, ``status()``, and ``reload_refusal(old, new)``: adding,
removing or changing an AMT upstream needs a restart (a reload that would is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mcastproxy.amt.actions import GatewayState, QueryReceived, SendDatagram, StateChanged
from mcastproxy.amt.events import MembershipChanged, Start, Stop, TimerExpired
from mcastproxy.amt.gateway import Gateway, GatewayTimers
from mcastproxy.amt.pseudo import HostMembership, relay_query_packet
from mcastproxy.amt.tun import add_address, is_tun, open_tun
from mcastproxy.config import AmtSettings, Candidate, Config
from mcastproxy.drops import Drop
from mcastproxy.family import Family

BATCH = 64
"""Datagrams (or TUN packets) read per wake-up before the loop gets its turn back."""
READ_SIZE = 65536
DEFAULT_QUERIER = {Family.V4: bytes(4), Family.V6: ipaddress.IPv6Address("fe80::1").packed}
"""The source of the relay's queries inside the TUN when ``querier`` names none."""

SO_MEMINFO = 55  # asm-generic/socket.h: the socket's memory counters (linux/sock_diag.h)
SK_MEMINFO_DROPS = 8  # ... of which the packets dropped for a full receive queue
_MEMINFO = struct.Struct("9I")

log = logging.getLogger("mcastproxy.amt")

TunOpener = Callable[[str], int]
"""Make the TUN device of that name; its descriptor (non-blocking)."""
SocketMaker = Callable[[Family], socket.socket]
"""A non-blocking UDP socket of the tunnel's family, bound to an ephemeral port."""


class AmtError(Exception):
    """An AMT upstream cannot be set up (its TUN device, its socket)."""


def _udp_socket(family: Family) -> socket.socket:
    af = socket.AF_INET if family is Family.V4 else socket.AF_INET6
    sock = socket.socket(af, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind(("0.0.0.0" if family is Family.V4 else "::", 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _sysctl(path: str, value: str) -> None:
    """Best effort: a kernel without the setting leaves the default."""
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


def _system_tun(name: str) -> int:
    """The TUN device ``name``, made and up, with the kernel's settings an AMT pseudo-interface
    wants: no reverse-path filter on it (its sources are routed elsewhere, if at all)."""
    if is_tun(name) is False:
        raise OSError(f"{name} exists and is not a TUN device")
    fd = open_tun(name)
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/rp_filter", "0")
    _sysctl(f"/proc/sys/net/ipv6/conf/{name}/router_solicitations", "0")
    return fd


class _Tunnel:
    """One gateway of an AMT upstream: its socket, timer handle and counts."""

    def __init__(self, gateway: Gateway, sock: socket.socket) -> None:
        self.gateway = gateway
        self.sock = sock
        self.membership = HostMembership(gateway.family)
        self.timer: asyncio.TimerHandle | None = None
        self.armed: float | None = None
        self.counts: Counter[str] = Counter()
        self.last_change = ""
        self.packed: dict[str, bytes] = {}  # source address text -> packed, for the few seen


class AmtUpstream:
    """The AMT upstream candidate ``interface``: its TUN device and gateways (module
    comment). ``families``: the inner families the proxy speaks."""

    def __init__(
        self,
        interface: str,
        settings: AmtSettings,
        families: Iterable[Family],
        *,
        addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
        keep_querier: bool = False,
        timers: GatewayTimers | None = None,
        tun_opener: TunOpener = _system_tun,
        socket_maker: SocketMaker = _udp_socket,
        nonce: Callable[[], int] | None = None,
    ) -> None:
        self.interface = interface
        self.settings = settings
        self.families = tuple(dict.fromkeys(Family(f) for f in families))
        self.addresses = tuple(addresses)
        self.keep_querier = keep_querier
        self.timers = timers
        self.transport = Family(settings.target.version)
        self._tun_opener = tun_opener
        self._socket_maker = socket_maker
        self._nonce = nonce or (lambda: secrets.randbits(32))
        self._tun: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tunnels: dict[Family, _Tunnel] = {}
        self.tun_counts: Counter[str] = Counter()
        self.tun_dropped: Counter[Drop] = Counter()
        self._querier = {f: DEFAULT_QUERIER[f] for f in Family}
        for q in settings.querier:
            self._querier[Family(q.version)] = q.packed

    # --- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Make the TUN device (with its addresses) and the gateways' sockets; ``AmtError``
        if any cannot be, with nothing left behind."""
        try:
            self._tun = self._tun_opener(self.interface)
            if self._tun_opener is _system_tun:
                for address in self.addresses:
                    add_address(self.interface, address.packed, address.max_prefixlen)
                if Family.V6 not in self.families:  # nothing of IPv6 to say or hear there
                    _sysctl(f"/proc/sys/net/ipv6/conf/{self.interface}/disable_ipv6", "1")
            target = self.settings.target.packed
            for family in self.families:
                own = [a.packed for a in self.addresses if a.version == family]
                gateway = Gateway(
                    family, target, nonce=self._nonce, discover=self.settings.relay is None,
                    report_source=own[0] if own else None, timers=self.timers,
                    name=self.interface, port=self.settings.port,
                    keep_querier=self.keep_querier,
                )  # fmt: skip
                self._tunnels[family] = _Tunnel(gateway, self._socket_maker(self.transport))
        except (OSError, ValueError) as exc:
            self.close()
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise AmtError(f"AMT upstream {self.interface}: {why}") from exc

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the TUN and the sockets on ``loop``; the gateways start (Relay Discovery, or
        the relay taken as found)."""
        if self._tun is None:
            raise RuntimeError("open() first")
        self._loop = loop
        loop.add_reader(self._tun, self._on_tun)
        for tunnel in self._tunnels.values():
            loop.add_reader(tunnel.sock.fileno(), self._on_datagrams, tunnel)
            tunnel.gateway.handle(Start(), loop.time())
            self._flush(tunnel)

    def stop(self) -> None:
        """Send what the host side said last (read from the TUN), then each gateway's
        Teardown; close the sockets and the TUN (the device goes with it)."""
        if self._loop is not None and self._tun is not None:
            for tunnel in self._tunnels.values():
                tunnel.gateway.keep_querier = False  # the last leave asks for no more queries
            self._on_tun(limit=None)
            for tunnel in self._tunnels.values():
                if tunnel.gateway.state is not GatewayState.STOPPED:
                    tunnel.gateway.handle(Stop(), self._loop.time())
                    self._flush(tunnel)
        self.close()

    def close(self) -> None:
        """Close everything at once (nothing sent)."""
        loop = self._loop
        for tunnel in self._tunnels.values():
            if tunnel.timer is not None:
                tunnel.timer.cancel()
                tunnel.timer = None
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(tunnel.sock.fileno())
            tunnel.sock.close()
        self._tunnels.clear()
        if self._tun is not None:
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._tun)
            with contextlib.suppress(OSError):
                os.close(self._tun)
            self._tun = None
        self._loop = None

    # --- what arrives -----------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_datagrams(self, tunnel: _Tunnel) -> None:
        sock, receive, af = tunnel.sock, tunnel.gateway.receive, tunnel.sock.family
        packed = tunnel.packed
        now = self._now()
        n = 0
        try:
            while n < BATCH:
                data, address = sock.recvfrom(READ_SIZE)
                n += 1
                host = address[0]
                source = packed.get(host)
                if source is None:
                    if len(packed) >= 64:  # the relay's, and a few others: no more is kept
                        packed.clear()
                    source = packed[host] = socket.inet_pton(af, host.partition("%")[0])
                receive(source, address[1], data, now)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # an ICMP error queued on the socket (port unreachable): go on
            tunnel.counts["receive-errors"] += 1
        tunnel.counts["datagrams-received"] += n
        self._flush(tunnel)

    def _on_tun(self, limit: int | None = BATCH) -> None:
        """Packets the kernel sent out of the TUN: the host side's reports among them."""
        tun = self._tun
        if tun is None:
            return
        changed: set[Family] = set()
        n = 0
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while limit is None or n < limit:
                packet = os.read(tun, READ_SIZE)
                n += 1
                self.tun_counts["packets-read"] += 1
                family = _version(packet)
                if family is None:
                    self.tun_dropped[Drop.NOT_IP] += 1
                    continue
                tunnel = self._tunnels.get(family)
                if tunnel is None:
                    self.tun_dropped[Drop.NOT_PROXIED] += 1
                    continue
                result = tunnel.membership.read(packet)
                if isinstance(result, Drop):
                    self.tun_dropped[result] += 1
                elif result is not None:
                    self.tun_counts["reports-carried"] += 1
                    tunnel.gateway.handle(MembershipChanged(tunnel.membership.current(),
                                                            (result,)), self._now())
                    changed.add(family)
        for family in changed:
            self._flush(self._tunnels[family])

    def _on_timer(self, tunnel: _Tunnel) -> None:
        deadline = tunnel.armed
        tunnel.timer = tunnel.armed = None
        # asyncio may run a handle up to its clock's resolution early: it is due all the same.
        now = self._now()
        tunnel.gateway.handle(TimerExpired(), now if deadline is None else max(now, deadline))
        self._flush(tunnel)

    # --- what goes out ----------------------------------------------------------------------

    def _flush(self, tunnel: _Tunnel) -> None:
        """Write the decapsulated packets into the TUN, carry out the gateway's actions,
        re-arm its timer."""
        gateway = tunnel.gateway
        packets = gateway.pop_packets()
        if packets:
            self._write(packets)
        for action in gateway.pop_actions():
            if isinstance(action, SendDatagram):
                self._send(tunnel, action)
            elif isinstance(action, QueryReceived):
                self._write([relay_query_packet(gateway.family, self._querier[gateway.family],
                                                action.query)])
                self.tun_counts["queries-written"] += 1
            elif isinstance(action, StateChanged):
                tunnel.last_change = action.why
                relay = (socket.inet_ntop(tunnel.sock.family, action.relay)
                         if action.relay is not None else "none")
                log.info("AMT upstream %s, %s gateway: %s (%s; relay %s)", self.interface,
                         gateway.family.protocol.upper(), action.state, action.why, relay,
                         extra={"event": "amt-gateway", "fields": {
                             "interface": self.interface, "state": str(action.state),
                             "why": action.why, "relay": relay}})
        self._arm(tunnel)

    def _write(self, packets: list[bytes]) -> None:
        tun = self._tun
        if tun is None:
            return
        written = 0
        for packet in packets:
            try:
                os.write(tun, packet)
                written += 1
            except OSError:
                self.tun_counts["write-errors"] += 1
        self.tun_counts["packets-written"] += written

    def _send(self, tunnel: _Tunnel, action: SendDatagram) -> None:
        destination = socket.inet_ntop(tunnel.sock.family, action.destination)
        try:
            tunnel.sock.sendto(action.data, (destination, action.port))
            tunnel.counts["datagrams-sent"] += 1
        except OSError:  # no route to the relay yet, say: the retransmissions cover it
            tunnel.counts["send-errors"] += 1

    def _arm(self, tunnel: _Tunnel) -> None:
        deadline = tunnel.gateway.next_deadline()
        if deadline == tunnel.armed:
            return
        if tunnel.timer is not None:
            tunnel.timer.cancel()
            tunnel.timer = None
        tunnel.armed = deadline
        if deadline is not None and self._loop is not None:
            tunnel.timer = self._loop.call_at(deadline, self._on_timer, tunnel)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status`` shows of this upstream (plain data)."""
        target = self.settings.target
        dropped: Counter[str] = Counter({str(r): n for r, n in self.tun_dropped.items()})
        gateways = {}
        for family, tunnel in self._tunnels.items():
            st = tunnel.gateway.status()
            gateway_drops = dict(st.dropped)
            overflow = _queue_drops(tunnel.sock)
            if overflow:  # a flood the socket could not hold: the kernel dropped it
                gateway_drops[Drop.QUEUE_FULL] = overflow
            for reason, n in gateway_drops.items():
                dropped[str(reason)] += n
            relay = socket.inet_ntop(tunnel.sock.family, st.relay) if st.relay else None
            gateway: dict[str, Any] = {
                "state": str(st.state), "why": tunnel.last_change, "relay": relay,
                "local-port": tunnel.sock.getsockname()[1],
                "joined": st.joined, "groups": len(tunnel.membership),
                "query-interval": st.tunnel.query_interval if st.tunnel else None,
                "robustness": st.tunnel.robustness if st.tunnel else None,
                "messages": {
                    "discoveries-sent": st.discoveries_sent, "requests-sent": st.requests_sent,
                    "updates-sent": st.updates_sent, "teardowns-sent": st.teardowns_sent,
                    "queries-accepted": st.queries_accepted,
                    **dict(sorted(tunnel.counts.items())),
                },
                "data-packets": st.data_delivered, "data-octets": st.data_octets,
                "dropped": {str(r): n for r, n in sorted(gateway_drops.items())},
            }  # fmt: skip
            gateways[family.protocol] = gateway
        return {
            "relay" if self.settings.relay is not None else "discovery": str(target),
            "port": self.settings.port,
            "transport": f"ipv{self.transport}",
            "gateways": gateways,
            "tun": {**dict(sorted(self.tun_counts.items())),
                    "dropped": {str(r): n for r, n in sorted(self.tun_dropped.items())}},
            "dropped": dict(sorted(dropped.items())),
        }


def _queue_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for ``sock``'s full receive queue (SO_MEMINFO); 0 if it
    does not say."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
    except OSError:
        return 0
    if len(raw) < _MEMINFO.size:
        return 0
    return int(_MEMINFO.unpack(raw)[SK_MEMINFO_DROPS])


def _version(packet: bytes) -> Family | None:
    if not packet:
        return None
    v = packet[0] >> 4
    return Family.V4 if v == 4 else Family.V6 if v == 6 else None


def _families(config: Config) -> list[Family]:
    return [f for f, on in ((Family.V4, config.igmp), (Family.V6, config.mld)) if on]


def _key(config: Config, c: Candidate) -> tuple[Any, ...]:
    """What of ``config`` an AMT upstream ``c`` is made from: a change needs a restart."""
    return (c.amt, c.address, c.liveness.queries, tuple(_families(config)))


class AmtUpstreams:
    """The daemon's AMT upstreams: one ``AmtUpstream`` per candidate with ``amt:``."""

    def __init__(self, config: Config, **options: Any) -> None:
        self.upstreams = {
            c.interface: AmtUpstream(c.interface, c.amt, _families(config),
                                     addresses=c.address, keep_querier=c.liveness.queries,
                                     **options)
            for c in config.upstream.candidates if c.amt is not None
        }  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.upstreams)

    def open(self) -> None:
        """Make every TUN device and socket; ``AmtError`` (all closed again) if one fails."""
        opened: list[AmtUpstream] = []
        try:
            for upstream in self.upstreams.values():
                upstream.open()
                opened.append(upstream)
        except BaseException:
            for upstream in opened:
                upstream.close()
            raise

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for upstream in self.upstreams.values():
            upstream.start(loop)

    def stop(self) -> None:
        for upstream in self.upstreams.values():
            try:
                upstream.stop()
            except Exception:  # the others stop all the same
                log.exception("stopping AMT upstream %s", upstream.interface)
                upstream.close()

    def status(self) -> dict[str, Any]:
        return {name: u.status() for name, u in self.upstreams.items()}

    @staticmethod
    def reload_refusal(old: Config, new: Config) -> str | None:
        """Why ``new`` cannot be applied by a reload over ``old``, or None."""
        def amt(config: Config) -> dict[str, tuple[Any, ...]]:
            return {c.interface: _key(config, c) for c in config.upstream.candidates
                    if c.amt is not None}

        was, now = amt(old), amt(new)
        if was == now:
            return None
        names = sorted(n for n in was.keys() | now.keys() if was.get(n) != now.get(n))
        return (f"adding, removing or changing an AMT upstream ({', '.join(names)}) needs a "
                "restart")
