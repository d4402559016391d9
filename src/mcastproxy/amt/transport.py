"""The asyncio side of an AMT gateway: a UDP socket to the relay, a TUN device, a timer.

``GatewayTransport`` drives one ``Gateway`` (the sans-I/O core) the way aioquic's asyncio
layer drives its connection:

- Datagrams: the socket (IPv4 or IPv6, the gateway's transport family; an ephemeral port
  unless one is given) is read whenever it is readable, up to ``BATCH`` datagrams at a time,
  each fed to ``Gateway.receive`` with ``loop.time()``; then the decapsulated packets are
  written to the TUN device, the actions carried out, and the timer re-armed.
- Actions: ``SendDatagram`` is a ``sendto`` (a failure, say no route to the relay yet, is
  counted: the gateway's retransmissions cover it); ``StateChanged`` and ``QueryReceived``
  go to the ``on_action`` callback, for a log or a host side.
- The timer: one ``call_at`` handle at ``Gateway.next_deadline()``, moved only when the
  deadline moved.
- The TUN device (``tun.open_tun``), named by the caller and up: the pseudo-interface where
  the multicast enters the kernel. What the kernel sends out of it (its own IGMP/MLD
  reports, when a socket joins there) is read and counted, or handed to ``on_tun_packet``.

``start()`` opens both and starts the gateway; ``membership()`` and ``refresh()`` pass the
caller's events on; ``stop()`` sends the gateway's Teardown and closes everything (the TUN
device goes with its descriptor).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import Counter
from collections.abc import Callable

from mcastproxy.amt.actions import Action, SendDatagram
from mcastproxy.amt.events import Event, MembershipChanged, Refresh, Start, Stop, TimerExpired
from mcastproxy.amt.gateway import Gateway
from mcastproxy.amt.tun import open_tun
from mcastproxy.family import Family
from mcastproxy.wire.messages import Report

BATCH = 64
"""Datagrams read per wake-up before the loop gets its turn back."""
TUN_READ_SIZE = 65536


class GatewayTransport:
    """One ``Gateway`` on a UDP socket and TUN device ``tun_name``, in the running loop."""

    def __init__(
        self,
        gateway: Gateway,
        tun_name: str,
        *,
        local_address: str | None = None,
        local_port: int = 0,
        mtu: int | None = None,
        on_action: Callable[[Action], None] | None = None,
        on_tun_packet: Callable[[bytes], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.tun_name = tun_name
        self.family = gateway.transport
        self._af = socket.AF_INET if self.family is Family.V4 else socket.AF_INET6
        self.local_address = local_address or ("0.0.0.0" if self.family is Family.V4 else "::")
        self.local_port = local_port
        self.mtu = mtu
        self.on_action = on_action
        self.on_tun_packet = on_tun_packet
        self.counts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._tun: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._packed: dict[str, bytes] = {}  # source text -> packed, for the few sources seen

    @property
    def port(self) -> int:
        """The local UDP port (known once started)."""
        if self._sock is None:
            raise RuntimeError("not started")
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        """Create the TUN device and the socket, start the gateway (Relay Discovery)."""
        self._loop = loop = asyncio.get_running_loop()
        self._tun = open_tun(self.tun_name, mtu=self.mtu)
        try:
            sock = socket.socket(self._af, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((self.local_address, self.local_port))
        except BaseException:
            os.close(self._tun)
            self._tun = None
            raise
        self._sock = sock
        loop.add_reader(sock.fileno(), self._on_datagrams)
        loop.add_reader(self._tun, self._on_tun)
        self._event(Start())

    def membership(self, current: tuple[Report, ...], changes: tuple[Report, ...] = ()) -> None:
        """What to join changed (``MembershipChanged``)."""
        self._event(MembershipChanged(current, changes))

    def refresh(self) -> None:
        """Ask the relay for a query now (``Refresh``)."""
        self._event(Refresh())

    async def stop(self) -> None:
        """Stop the gateway (its Teardown goes out), then close the socket and the TUN."""
        if self._sock is None:
            return
        self._event(Stop())
        loop, sock, tun = self._loop, self._sock, self._tun
        assert loop is not None
        if self._timer is not None:
            self._timer.cancel()
        loop.remove_reader(sock.fileno())
        sock.close()
        self._sock = None
        if tun is not None:
            loop.remove_reader(tun)
            os.close(tun)
            self._tun = None

    # --- the loop's callbacks ---------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _event(self, event: Event) -> None:
        self.gateway.handle(event, self._now())
        self._flush()

    def _on_datagrams(self) -> None:
        sock = self._sock
        if sock is None:
            return
        receive, packed = self.gateway.receive, self._packed
        now = self._now()
        n = 0
        try:
            while n < BATCH:
                data, address = sock.recvfrom(65535)
                n += 1
                host = address[0]
                source = packed.get(host)
                if source is None:
                    if len(packed) > 64:  # sources are few; anything else is not worth keeping
                        packed.clear()
                    source = packed[host] = socket.inet_pton(self._af, host.split("%")[0])
                receive(source, address[1], data, now)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # an ICMP error queued on the socket (port unreachable): go on
            self.counts["receive errors"] += 1
        self.counts["datagrams received"] += n
        self._flush()

    def _on_tun(self) -> None:
        tun = self._tun
        if tun is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            for _ in range(BATCH):
                packet = os.read(tun, TUN_READ_SIZE)
                self.counts["tun packets read"] += 1
                if self.on_tun_packet is not None:
                    self.on_tun_packet(packet)

    def _flush(self) -> None:
        """Write the packets, carry out the actions, re-arm the timer."""
        tun = self._tun
        packets = self.gateway.pop_packets()
        if packets and tun is not None:
            written = 0
            for packet in packets:
                try:
                    os.write(tun, packet)
                    written += 1
                except OSError:
                    self.counts["tun write errors"] += 1
            self.counts["tun packets written"] += written
        for action in self.gateway.pop_actions():
            if isinstance(action, SendDatagram):
                self._send(action)
            elif self.on_action is not None:
                self.on_action(action)
        self._arm()

    def _send(self, action: SendDatagram) -> None:
        sock = self._sock
        if sock is None:
            return
        destination = socket.inet_ntop(self._af, action.destination)
        try:
            sock.sendto(action.data, (destination, action.port))
            self.counts["datagrams sent"] += 1
        except OSError:
            self.counts["send errors"] += 1

    def _arm(self) -> None:
        deadline = self.gateway.next_deadline()
        if deadline == self._armed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = deadline
        if deadline is not None and self._loop is not None and self._sock is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        deadline = self._armed
        self._timer = self._armed = None
        # asyncio may run a handle up to its clock's resolution early: it is due all the same.
        now = self._now()
        self.gateway.handle(TimerExpired(), now if deadline is None else max(now, deadline))
        self._flush()
