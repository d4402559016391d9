"""One AMT gateway on its UDP socket in an asyncio loop, the way aioquic's asyncio layer
drives its connection.

``GatewayRunner`` holds a ``Gateway`` (the sans-I/O core) and a non-blocking UDP socket of
the tunnel's family: the socket is read whenever it is readable, ``BATCH`` datagrams at a
time, each fed to ``Gateway.receive`` with ``loop.time()``; then ``flush`` hands the
decapsulated packets to ``on_packets`` (the pseudo-interface's TUN), sends the datagrams
(a failure, say no route to the relay yet, is counted: the gateway's retransmissions cover
it), hands the other actions to ``on_action`` and re-arms one ``call_at`` timer at
``next_deadline()``, moved only when the deadline moved. ``handle(event)`` passes the
caller's events on (what to join, Refresh); ``stop()`` sends the Teardown and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Callable
from typing import Any

from mcastproxy.amt.actions import Action, GatewayState, SendDatagram, StateChanged
from mcastproxy.amt.events import Event, Start, Stop, TimerExpired
from mcastproxy.amt.gateway import Gateway
from mcastproxy.drops import Drop
from mcastproxy.family import Family

BATCH = 64
"""Datagrams read per wake-up before the loop gets its turn back."""
READ_SIZE = 65536

SO_MEMINFO = 55  # asm-generic/socket.h: the socket's memory counters (linux/sock_diag.h)
SK_MEMINFO_DROPS = 8  # ... of which the packets dropped for a full receive queue
_MEMINFO = struct.Struct("9I")

SocketMaker = Callable[[Family], socket.socket]
"""A non-blocking UDP socket of the tunnel's family, bound to an ephemeral port."""


def udp_socket(family: Family, address: str | None = None, port: int = 0) -> socket.socket:
    """A non-blocking UDP socket of ``family`` bound to ``address`` (default: any), ``port``."""
    af = socket.AF_INET if family is Family.V4 else socket.AF_INET6
    sock = socket.socket(af, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((address or ("0.0.0.0" if family is Family.V4 else "::"), port))
    except BaseException:
        sock.close()
        raise
    return sock


def queue_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for ``sock``'s full receive queue (SO_MEMINFO); 0 if it
    does not say."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
    except OSError:
        return 0
    if len(raw) < _MEMINFO.size:
        return 0
    return int(_MEMINFO.unpack(raw)[SK_MEMINFO_DROPS])


class GatewayRunner:
    """``gateway`` on ``sock`` (module comment). ``on_packets`` takes the decapsulated
    packets, ``on_action`` every action but ``SendDatagram``."""

    def __init__(
        self,
        gateway: Gateway,
        sock: socket.socket,
        *,
        on_packets: Callable[[list[bytes]], None],
        on_action: Callable[[GatewayRunner, Action], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.sock = sock
        self.on_packets = on_packets
        self.on_action = on_action
        self.counts: Counter[str] = Counter()
        self.last_change = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._packed: dict[str, bytes] = {}  # source address text -> packed, for the few seen

    @property
    def port(self) -> int:
        """The local UDP port."""
        return int(self.sock.getsockname()[1])

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the socket on ``loop``; the gateway starts (Relay Discovery, or the relay
        taken as found)."""
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._on_datagrams)
        self.handle(Start())

    def handle(self, event: Event) -> None:
        """``event`` for the gateway now; what it causes is carried out."""
        if self._loop is None:
            raise RuntimeError("start() first")
        self.gateway.handle(event, self._loop.time())
        self.flush()

    def stop(self) -> None:
        """The gateway's Teardown (if its tunnel is up) goes out; then ``close()``."""
        if (self._loop is not None and self.sock.fileno() >= 0
                and self.gateway.state not in (GatewayState.STOPPED, GatewayState.IDLE)):
            self.handle(Stop())
        self.close()

    def close(self) -> None:
        """Close everything at once (nothing sent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None and self.sock.fileno() >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    # --- the loop's callbacks ---------------------------------------------------------------

    def _on_datagrams(self) -> None:
        sock, receive, packed = self.sock, self.gateway.receive, self._packed
        af = sock.family
        assert self._loop is not None
        now = self._loop.time()
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
            self.counts["receive-errors"] += 1
        self.counts["datagrams-received"] += n
        self.flush()

    def _on_timer(self) -> None:
        deadline = self._armed
        self._timer = self._armed = None
        assert self._loop is not None
        # asyncio may run a handle up to its clock's resolution early: it is due all the same.
        now = self._loop.time()
        self.gateway.handle(TimerExpired(), now if deadline is None else max(now, deadline))
        self.flush()

    # --- what goes out ----------------------------------------------------------------------

    def flush(self) -> None:
        """Hand out the packets, carry out the actions, re-arm the timer."""
        gateway = self.gateway
        packets = gateway.pop_packets()
        if packets:
            self.on_packets(packets)
        for action in gateway.pop_actions():
            if isinstance(action, SendDatagram):
                self._send(action)
                continue
            if isinstance(action, StateChanged):
                self.last_change = action.why
            if self.on_action is not None:
                self.on_action(self, action)
        self._arm()

    def _send(self, action: SendDatagram) -> None:
        destination = socket.inet_ntop(self.sock.family, action.destination)
        try:
            self.sock.sendto(action.data, (destination, action.port))
            self.counts["datagrams-sent"] += 1
        except OSError:  # no route to the relay yet, say: the retransmissions cover it
            self.counts["send-errors"] += 1

    def _arm(self) -> None:
        deadline = self.gateway.next_deadline()
        if deadline == self._armed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = deadline
        if deadline is not None and self._loop is not None and self.sock.fileno() >= 0:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What status shows of this gateway (plain data)."""
        st = self.gateway.status()
        drops = dict(st.dropped)
        overflow = queue_drops(self.sock) if self.sock.fileno() >= 0 else 0
        if overflow:  # a flood the socket could not hold: the kernel dropped it
            drops[Drop.QUEUE_FULL] = overflow
        af = socket.AF_INET if self.gateway.transport is Family.V4 else socket.AF_INET6
        return {
            "state": str(st.state), "why": self.last_change,
            "relay": socket.inet_ntop(af, st.relay) if st.relay else None,
            "local-port": self.port if self.sock.fileno() >= 0 else None,
            "joined": st.joined,
            "query-interval": st.tunnel.query_interval if st.tunnel else None,
            "robustness": st.tunnel.robustness if st.tunnel else None,
            "messages": {
                "discoveries-sent": st.discoveries_sent, "requests-sent": st.requests_sent,
                "updates-sent": st.updates_sent, "teardowns-sent": st.teardowns_sent,
                "queries-accepted": st.queries_accepted, **dict(sorted(self.counts.items())),
            },
            "data-packets": st.data_delivered, "data-octets": st.data_octets,
            "dropped": {str(r): n for r, n in sorted(drops.items())},
        }  # fmt: skip
