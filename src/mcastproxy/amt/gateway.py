"""The gateway of Automatic Multicast Tunneling (RFC 7450 §5.2), for one inner family.

Theory of operation
===================

An AMT gateway receives multicast where its network has only unicast: a relay in a network
with multicast joins channels for it and sends each packet to it in a UDP datagram. The
gateway's side of that, as a state machine (``GatewayState``):

    IDLE --Start--> DISCOVERING --Relay Advertisement--> RELAY_FOUND <-------------+
                       ^   ^                                  |                    |
                       |   |                         something joined       last leave
                       |   |                                  v             (Teardown once
                       |   +----- relay not answering ---- REQUESTING        the tunnel
                       |                                      |              is up)
                       |                              Membership Query             |
                       |                                      v                    |
                       +--------- relay not answering ---- ESTABLISHED ------------+

    and from any state: Stop (Teardown if the tunnel is up) --> STOPPED;
    with give_up, "relay not answering" (either) --> UNANSWERED instead

- Relay Discovery (§5.2.3.4). ``Start`` sends a Relay Discovery with a fresh nonce to the
  discovery address (an anycast address, RFC 7450 §4.1, or a relay's own); a Relay
  Advertisement echoing the nonce names the relay's unicast address. Unanswered, the
  discovery is sent again with the same nonce, after 1 s, 2 s, 4 s ... up to ``max_timeout``,
  for as long as it takes. A gateway made with ``discover=False`` takes the discovery
  address for the relay's and skips this.
- Request and Membership Query (§5.2.3.5-§5.2.3.6). Once something is joined, the gateway
  sends a Request with a fresh nonce and the P flag of its family; the relay answers with a
  Membership Query carrying that nonce, a Response MAC and a General Query. A query whose
  nonce is neither the outstanding Request's nor the tunnel's, or from anywhere but the
  relay's address and port, is dropped: the nonce is what keeps an off-path host from
  forging one (§6). The MAC is opaque to the gateway, echoed in every Update and Teardown.
  Should everything be left before the query comes, the Requests stop.
- Membership Updates (§5.2.3.6). Each accepted query is answered at once with the current
  membership (``MembershipChanged.current``), so a relay that lost the tunnel learns it
  again from the next query; state changes (``MembershipChanged.changes``) are sent as they
  come. The General Query is also handed out (``QueryReceived``) for a host side.
- Timing (§5.2.3.7). The query's QQIC is the relay's query interval: that long after each
  query, a new Request (fresh nonce) asks for the next one, which is how the relay's state
  is refreshed (QQIC 0 means the default 125 s, RFC 9776 §4.1.7). An unanswered Request is
  sent again (same nonce) with the back-off above; after the first Request and [QRV] more
  (the query's Robustness Variable, 2 by default) the relay is taken as gone: the gateway
  discovers again (or, without discovery, starts over with a fresh nonce and the back-off
  kept), which is also how it follows a relay that restarted or changed address. Data keeps
  flowing from the relay meanwhile. ``Refresh`` sends the next Request at once. A late
  duplicate of the tunnel's query, once a newer Request is out, is ignored: taking it would
  cancel that Request, whose query would then be refused as unknown.
- Giving up (``give_up=True``, a relay found by DRIAD, RFC 8777 §4.2.1, that has others to
  fall back on): a Relay Discovery or a Request unanswered after the first send and
  [Robustness] more (the back-off above: 1 + 2 + 4 s by default) ends in UNANSWERED rather
  than in more of the same: nothing more is sent, and the caller moves the gateway's
  channels to the next relay. Only a configured relay is asked for ever.
- Teardown (§5.2.3.8). When the last membership leaves, on ``Stop``, and when a query shows
  that the gateway's address or port as the relay sees it (the G fields) changed (a NAT
  rebinding), the gateway sends a Teardown with the nonce, MAC and Gateway fields of the
  query that set up the tunnel, so that the relay stops sending to that endpoint. A relay
  that sends no G fields leaves nothing to say them with: no Teardown then, its state times
  out.
- Keeping the querier (``keep_querier=True``): the Request and query exchange runs even
  with nothing joined (an Update with no report is never sent then), so that the relay's
  queries go on arriving as evidence that the relay answers (an upstream whose liveness is its
  queries). The last leave still sends a Teardown, then a Request with a fresh nonce.
- The L flag (§5.1.4): a relay that takes no new gateways says so; a query with L set is
  dropped unless the tunnel is already up with that relay, so the Request goes unanswered
  and the gateway moves on (to another relay, through anycast discovery).
- Multicast Data (§5.1.6; the pseudo-interface, §5.2.2): accepted from the relay's address
  and port only, carrying a multicast packet of the gateway's family, which is handed out
  whole for the pseudo-interface.

Bad input from the network never raises: it is dropped and counted by reason in
``dropped`` (``Drop``: the codec's reasons, and the gateway's own ``AMT_*``). Misuse by the
caller (a report of the wrong version, ``Start`` twice) raises ``ValueError`` /
``RuntimeError`` before anything changes.

One gateway carries one inner family, IGMPv3 (``Family.V4``) or MLDv2 (``Family.V6``), over
an IPv4 or IPv6 transport (the family of the discovery address): a pseudo-interface with both
has two gateways, each a tunnel of its own at the relay (its own UDP port). Like the engine it
is sans-I/O: ``handle(event, now)``, ``pop_actions()``, ``next_deadline()``; nonces come from
the injected ``nonce`` (32 random bits each call). Timers are the state's own times, read by
``next_deadline()``. The data plane has a lean surface of its own, as aioquic's datagrams do:
``receive(source, port, data, now)`` is ``handle(DatagramReceived(...))`` without making the
event, and ``pop_packets()`` hands out the decapsulated packets as plain ``bytes``, in order,
so that a packet costs no object beyond its own octets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcastproxy.amt.actions import (
    Action,
    GatewayState,
    QueryReceived,
    SendDatagram,
    StateChanged,
)
from mcastproxy.amt.events import (
    DatagramReceived,
    Event,
    MembershipChanged,
    Refresh,
    Start,
    Stop,
    TimerExpired,
)
from mcastproxy.amt.inner import data_drop, read_query, report_packet
from mcastproxy.drops import Drop, DropCounts
from mcastproxy.family import Family
from mcastproxy.wire.amt import (
    AMT_PORT,
    MembershipQuery,
    MembershipUpdate,
    RelayAdvertisement,
    RelayDiscovery,
    Request,
    Teardown,
    build_amt,
    parse_amt,
    parse_multicast_data,
)
from mcastproxy.wire.errors import WireError
from mcastproxy.wire.messages import Report

DEFAULT_QUERY_INTERVAL = 125.0
"""Seconds between Requests when the relay's query says QQIC 0 (RFC 9776 §4.1.7, §8.2)."""
DEFAULT_ROBUSTNESS = 2
"""Retransmissions of an unanswered Request when no query said QRV (RFC 9776 §8.1)."""

_Outgoing = RelayDiscovery | Request | MembershipUpdate | Teardown

_IDLE = GatewayState.IDLE
_DISCOVERING = GatewayState.DISCOVERING
_RELAY_FOUND = GatewayState.RELAY_FOUND
_REQUESTING = GatewayState.REQUESTING
_ESTABLISHED = GatewayState.ESTABLISHED
_UNANSWERED = GatewayState.UNANSWERED
_STOPPED = GatewayState.STOPPED


@dataclass(frozen=True, slots=True)
class GatewayTimers:
    """Retransmission back-off: the first retry ``initial_timeout`` seconds after a send,
    each next one twice as long, at most ``max_timeout``."""

    initial_timeout: float = 1.0
    max_timeout: float = 120.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_timeout <= self.max_timeout:
            raise ValueError("timeouts must satisfy 0 < initial_timeout <= max_timeout")


@dataclass(frozen=True, slots=True)
class Tunnel:
    """What the Membership Query that set up the tunnel said (RFC 7450 §5.1.4): echoed in
    Updates and Teardown; ``query_interval`` and ``robustness`` from its General Query;
    ``at`` when it was accepted."""

    mac: int
    nonce: int
    query_interval: float
    robustness: int
    gateway_port: int | None
    gateway_address: bytes | None
    at: float


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """An immutable snapshot of a gateway, for status and tests."""

    state: GatewayState
    family: Family
    relay: bytes | None
    tunnel: Tunnel | None
    joined: bool
    discoveries_sent: int
    requests_sent: int
    updates_sent: int
    teardowns_sent: int
    queries_accepted: int
    data_delivered: int
    data_octets: int
    dropped: dict[Drop, int]


class Gateway:
    """An AMT gateway carrying inner ``family`` through the relay found at
    ``discovery_address`` (packed; its family is the transport's).

    ``report_source`` is the source address of the reports it sends in Updates (default the
    unspecified address); ``name`` the interface its drops are counted under; ``port`` the
    relay's UDP port (RFC 7450 §7: 2268), where the gateway sends and the only port it
    accepts from; ``keep_querier`` runs the query exchange with nothing joined and
    ``give_up`` stops at a relay that does not answer (module comment).
    """

    def __init__(
        self,
        family: Family,
        discovery_address: bytes,
        *,
        nonce: Callable[[], int],
        discover: bool = True,
        report_source: bytes | None = None,
        timers: GatewayTimers | None = None,
        name: str | None = None,
        port: int = AMT_PORT,
        keep_querier: bool = False,
        give_up: bool = False,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"UDP port {port} is not in 1-65535")
        self.family = family = Family(family)
        self.transport = Family.of(discovery_address)  # ValueError if no address
        self.discovery_address = discovery_address
        self.discover = discover
        self.report_source = family.unspecified if report_source is None else report_source
        if len(self.report_source) != family.length:
            raise ValueError(f"report_source must be an {family.length}-octet address")
        self.timers = timers or GatewayTimers()
        self.name = name
        self.port = port
        self.keep_querier = keep_querier
        self.give_up = give_up
        self.dropped = DropCounts()
        self._nonce = nonce
        self._state = _IDLE
        self._relay: bytes | None = None
        self._current: tuple[Report, ...] = ()
        self._tunnel: Tunnel | None = None
        # The discovery or Request awaiting an answer: its nonce, sends so far, back-off.
        self._pending: int | None = None
        self._sends = 0
        self._timeout = self.timers.initial_timeout
        self._retry_at: float | None = None
        self._actions: list[Action] = []
        self._packets: list[bytes] = []
        self._discoveries = self._requests = self._updates = self._teardowns = 0
        self._queries = self._delivered = self._octets = 0

    # --- the surface ------------------------------------------------------------------------

    @property
    def state(self) -> GatewayState:
        return self._state

    @property
    def relay(self) -> bytes | None:
        """The relay's unicast address, once known."""
        return self._relay

    def handle(self, event: Event, now: float) -> None:
        """Take ``event`` at time ``now``; what it causes waits in ``pop_actions()``."""
        if type(event) is DatagramReceived:
            self.receive(event.source, event.port, event.data, now)
        elif isinstance(event, TimerExpired):
            self._timer(now)
        elif isinstance(event, MembershipChanged):
            self._membership(event.current, event.changes, now)
        elif isinstance(event, Start):
            if self._state is not _IDLE:
                raise RuntimeError(f"the gateway is {self._state}: it starts once")
            self._start(now)
        elif isinstance(event, Refresh):
            if self._state is _ESTABLISHED and self._pending is None:
                self._request(now, "refresh asked for")
        elif isinstance(event, Stop):
            self._stop()
        else:
            raise TypeError(f"not a gateway event: {event!r}")

    def receive(self, source: bytes, port: int, data: bytes, now: float) -> None:
        """A UDP datagram from ``source``:``port``: ``handle(DatagramReceived(...), now)``."""
        if data[:1] == b"\x06":  # Multicast Data: the hot path
            if source != self._relay or port != self.port:
                self._drop(Drop.AMT_NOT_FROM_RELAY)
                return
            if self._state is _STOPPED:
                self._drop(Drop.AMT_UNEXPECTED)
                return
            try:
                packet = parse_multicast_data(data)
            except WireError as e:
                self._drop(e.reason)
                return
            reason = data_drop(packet, self.family)
            if reason is not None:
                self._drop(reason)
                return
            self._delivered += 1
            self._octets += len(packet)
            self._packets.append(packet)
            return
        self._control(source, port, data, now)

    def pop_packets(self) -> list[bytes]:
        """The multicast packets that came through the tunnel since the last call, in order:
        each enters the pseudo-interface as if received there (RFC 7450 §5.2.2)."""
        packets, self._packets = self._packets, []
        return packets

    def pop_actions(self) -> list[Action]:
        """What the gateway wants done, in order, since the last call."""
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        """When ``TimerExpired`` is next due, or None if no timer runs."""
        if self._retry_at is not None:
            return self._retry_at
        tunnel = self._tunnel
        if self._state is _ESTABLISHED and tunnel is not None:
            return tunnel.at + tunnel.query_interval
        return None

    def status(self) -> GatewayStatus:
        return GatewayStatus(
            self._state, self.family, self._relay, self._tunnel, bool(self._current),
            self._discoveries, self._requests, self._updates, self._teardowns, self._queries,
            self._delivered, self._octets, self.dropped.by_reason(),
        )  # fmt: skip

    # --- transitions ------------------------------------------------------------------------

    def _enter(self, state: GatewayState, why: str) -> None:
        if state is not self._state:
            self._state = state
            self._actions.append(StateChanged(state, self._relay, why))

    def _start(self, now: float) -> None:
        if self.discover:
            self._discover(now, "started")
        else:
            self._relay_found(self.discovery_address, now, "started with a relay address")

    def _discover(self, now: float, why: str) -> None:
        # §5.2.3.4: a fresh nonce for each discovery; retransmissions repeat it.
        self._pending = self._nonce()
        self._sends = 0
        self._timeout = self.timers.initial_timeout
        self._enter(_DISCOVERING, why)
        self._send_discovery(now)

    def _send_discovery(self, now: float) -> None:
        assert self._pending is not None
        self._send(self.discovery_address, RelayDiscovery(self._pending))
        self._discoveries += 1
        self._arm(now)

    def _arm(self, now: float) -> None:
        """One more send of the pending message: the next retry after the back-off."""
        self._sends += 1
        self._retry_at = now + self._timeout
        self._timeout = min(self._timeout * 2, self.timers.max_timeout)

    def _relay_found(self, relay: bytes, now: float, why: str) -> None:
        if self._tunnel is not None and (relay != self._relay or not self._current):
            self._teardown()  # the old tunnel, if its relay still keeps it: stop its data
        self._tunnel = None
        self._relay = relay
        self._pending = self._retry_at = None
        self._enter(_RELAY_FOUND, why)
        if self._current:
            self._request(now, "something to join")
        elif self.keep_querier:
            self._request(now, "keeping the querier")

    def _request(self, now: float, why: str, *, keep_backoff: bool = False) -> None:
        # §5.2.3.5: each Request a fresh nonce; retransmissions of it repeat it.
        assert self._relay is not None
        self._pending = self._nonce()
        self._sends = 0
        if not keep_backoff:
            self._timeout = self.timers.initial_timeout
        if self._state is not _ESTABLISHED:  # a refresh keeps the tunnel up meanwhile
            self._enter(_REQUESTING, why)
        self._send_request(now)

    def _send_request(self, now: float) -> None:
        assert self._relay is not None
        assert self._pending is not None
        self._send(self._relay, Request(self._pending, self.family))
        self._requests += 1
        self._arm(now)

    def _timer(self, now: float) -> None:
        retry_at = self._retry_at
        if retry_at is not None:
            if now < retry_at:
                return
            if self._sends > self._robustness() and (self.give_up
                                                     or self._state is not _DISCOVERING):
                self._relay_lost(now)
            elif self._state is _DISCOVERING:
                self._send_discovery(now)
            else:
                self._send_request(now)
            return
        tunnel = self._tunnel
        if (
            self._state is _ESTABLISHED
            and tunnel is not None
            and now >= tunnel.at + tunnel.query_interval
        ):
            # §5.2.3.7: the relay's query interval has passed: ask for the next query.
            self._request(now, "query interval")

    def _robustness(self) -> int:
        tunnel = self._tunnel
        return DEFAULT_ROBUSTNESS if tunnel is None else tunnel.robustness

    def _relay_lost(self, now: float) -> None:
        why = "relay not answering"
        if self.give_up:
            # RFC 8777 §4.2.1: the caller tries the next relay; this one is asked no more.
            self._tunnel = None
            self._pending = self._retry_at = None
            self._enter(_UNANSWERED, why)
            return
        if self.discover:
            self._discover(now, why)  # keeps the relay (and its data) until another is found
            return
        # The relay is configured: it may be restarting. Start over with a fresh nonce and
        # the back-off grown so far, so a long outage costs a Request per max_timeout.
        self._tunnel = None
        self._enter(_REQUESTING, why)
        self._request(now, why, keep_backoff=True)

    def _membership(
        self, current: tuple[Report, ...], changes: tuple[Report, ...], now: float
    ) -> None:
        newest = self.family.newest_version
        if any(r.version != newest for r in (*current, *changes)):
            raise ValueError(f"AMT carries {self.family.protocol.upper()} reports of version "
                             f"{newest} only")
        self._current = current
        state = self._state
        if state is _ESTABLISHED:
            for report in changes:
                self._update(report)
            if not current:
                self._teardown()
                self._tunnel = None
                self._pending = self._retry_at = None
                self._enter(_RELAY_FOUND, "nothing joined")
                if self.keep_querier:
                    self._request(now, "keeping the querier")
        elif state is _REQUESTING:
            if not current and not self.keep_querier:
                self._pending = self._retry_at = None
                self._enter(_RELAY_FOUND, "nothing joined")
        elif state is _RELAY_FOUND and current:
            self._request(now, "something to join")

    def _stop(self) -> None:
        if self._tunnel is not None and self._state is not _STOPPED:
            self._teardown()
        self._tunnel = None
        self._pending = self._retry_at = None
        self._enter(_STOPPED, "stopped")

    # --- what arrives -----------------------------------------------------------------------

    def _drop(self, reason: Drop) -> None:
        self.dropped.add(self.name, reason)

    def _control(self, source: bytes, port: int, data: bytes, now: float) -> None:
        state = self._state
        if state is _IDLE or state is _STOPPED:
            self._drop(Drop.AMT_UNEXPECTED)
            return
        try:
            msg = parse_amt(data)
        except WireError as e:
            self._drop(e.reason)
            return
        if isinstance(msg, MembershipQuery):
            self._query(msg, source, port, now)
        elif isinstance(msg, RelayAdvertisement):
            self._advertisement(msg, port, now)
        else:  # Discovery, Request, Update, Teardown: what a relay receives
            self._drop(Drop.AMT_NOT_FOR_GATEWAY)

    def _advertisement(self, msg: RelayAdvertisement, port: int, now: float) -> None:
        if self._state is not _DISCOVERING:
            self._drop(Drop.AMT_UNEXPECTED)
        elif port != self.port:
            self._drop(Drop.AMT_NOT_FROM_RELAY)
        elif msg.nonce != self._pending:
            # §5.2.3.4: only the nonce ties an advertisement to our discovery (it may come
            # from an anycast address or the relay's own, so the source says nothing).
            self._drop(Drop.AMT_WRONG_NONCE)
        elif len(msg.relay) != self.transport.length:
            self._drop(Drop.WRONG_FAMILY)  # a relay we could not reach on this transport
        else:
            self._relay_found(msg.relay, now, "relay advertised")

    def _query(self, msg: MembershipQuery, source: bytes, port: int, now: float) -> None:
        state = self._state
        if state is not _REQUESTING and state is not _ESTABLISHED:
            self._drop(Drop.AMT_UNEXPECTED)
            return
        if source != self._relay or port != self.port:
            self._drop(Drop.AMT_NOT_FROM_RELAY)
            return
        old = self._tunnel
        pending = self._pending
        # §5.2.3.6: the nonce of the outstanding Request (or, a duplicate, the tunnel's).
        if msg.nonce != pending and (old is None or msg.nonce != old.nonce):
            self._drop(Drop.AMT_WRONG_NONCE)
            return
        if pending is not None and msg.nonce != pending:
            return  # a late duplicate of the tunnel's query: the newer Request stands
        try:
            family, query = read_query(msg.query)
        except WireError as e:
            self._drop(e.reason)
            return
        if family is not self.family:
            self._drop(Drop.WRONG_FAMILY)
            return
        if msg.limit and old is None:
            self._drop(Drop.AMT_RELAY_FULL)  # §5.1.4: as if unanswered
            return
        if (
            old is not None
            and old.gateway_address is not None
            and msg.gateway_address is not None
            and (old.gateway_port, old.gateway_address) != (msg.gateway_port, msg.gateway_address)
        ):
            self._teardown()  # §5.2.3.8: our address or port changed on the way (a NAT)
        # RFC 9776 §4.1.7 / RFC 9777 §5.1.9: QQIC 0 and QRV 0 mean "use the default".
        self._tunnel = Tunnel(
            msg.mac, msg.nonce, float(query.qqi) or DEFAULT_QUERY_INTERVAL,
            query.qrv or DEFAULT_ROBUSTNESS, msg.gateway_port, msg.gateway_address, now,
        )  # fmt: skip
        self._queries += 1
        self._pending = self._retry_at = None
        self._timeout = self.timers.initial_timeout
        self._enter(_ESTABLISHED, "membership query")
        self._actions.append(QueryReceived(query))
        for report in self._current:
            self._update(report)

    # --- what goes out ----------------------------------------------------------------------

    def _send(self, destination: bytes, msg: _Outgoing) -> None:
        self._actions.append(SendDatagram(destination, self.port, build_amt(msg)))

    def _update(self, report: Report) -> None:
        tunnel, relay = self._tunnel, self._relay
        assert tunnel is not None
        assert relay is not None
        packet = report_packet(self.family, self.report_source, report)
        self._send(relay, MembershipUpdate(tunnel.mac, tunnel.nonce, packet))
        self._updates += 1

    def _teardown(self) -> None:
        tunnel, relay = self._tunnel, self._relay
        if tunnel is None or relay is None:
            return
        if tunnel.gateway_port is None or tunnel.gateway_address is None:
            return  # §5.2.3.8: the relay gave no Gateway fields to say it with
        self._send(relay, Teardown(tunnel.mac, tunnel.nonce, tunnel.gateway_port,
                                   tunnel.gateway_address))
        self._teardowns += 1
