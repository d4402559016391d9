"""``MessageSocket``: a family's IGMP or MLD in and out, received on two sockets that the
daemon sees as one.

The raw socket (the IP stack's local delivery, and IPv4's Router Alert chain) keeps messages
not addressed to a routable group; the packet socket (``netio.frames``) those that are
(``netio.filters`` splits them; ``netio.igmp`` and ``netio.mld`` tell why it takes two).
Behind ``fileno()`` is an epoll descriptor holding both: an epoll descriptor is itself
readable while either socket is, so the daemon's loop registers one descriptor as before.

``receive()`` reads both without blocking, at most ``MAX_PER_RECEIVE`` packets in all: up to
half from the raw socket, then the packet socket up to what is left, then the raw socket
again if it had more, so that a flood on one cannot starve the other. The messages are then
put back in the order they arrived, by the kernel's receive time of each (SO_TIMESTAMPNS,
taken as the link handed the packet up, before either socket saw it): a host's IGMPv2 report
to G (packet socket) and its Leave to 224.0.0.2 (raw socket) read in one call would
otherwise be handled Leave first whatever order they came in. Messages arriving between the
two reads may still come a call late.
"""

from __future__ import annotations

import heapq
import select
import socket
from collections.abc import Sequence
from operator import itemgetter

from mcastproxy.family import Family
from mcastproxy.netio.common import MAX_PER_RECEIVE, RCVBUF, Arrival, ListeningSocket, Received
from mcastproxy.netio.frames import FrameReceiver
from mcastproxy.netio.interfaces import InterfaceMap

_STAMP = itemgetter(0)


class MessageSocket(ListeningSocket):
    """IGMP or MLD of one family: a raw socket (``sock``, for sending too, and for link-scope
    messages with ``groups`` joined on each interface ``listen``-ed to) and a packet socket
    for routable groups (with a receive buffer of ``rcvbuf``), behind one descriptor.
    Subclasses read the raw socket (``_read_raw``) and send."""

    def __init__(
        self, family: Family, interfaces: InterfaceMap, sock: socket.socket,
        groups: Sequence[bytes], *, rcvbuf: int = RCVBUF,
    ) -> None:
        super().__init__(family, interfaces, sock, groups)
        try:
            self._frames = FrameReceiver(self.family, interfaces, self.dropped, rcvbuf=rcvbuf)
            try:
                self._epoll = select.epoll()
                self._epoll.register(sock.fileno(), select.EPOLLIN)
                self._epoll.register(self._frames.fileno(), select.EPOLLIN)
            except BaseException:
                self._frames.close()
                raise
        except BaseException:
            sock.close()
            raise

    @property
    def unmanaged(self) -> int:
        """Frames to routable groups from interfaces not in the map: ignored, not drops."""
        return self._frames.unmanaged

    def fileno(self) -> int:
        """An epoll descriptor, readable while either socket is (for ``add_reader``)."""
        return self._epoll.fileno()

    def close(self) -> None:
        """Close both sockets and the epoll descriptor. Idempotent."""
        super().close()
        self._frames.close()
        self._epoll.close()

    def listen(self, interface: str) -> None:
        """Join the link-scope groups on ``interface`` and have it pass every multicast frame
        up; call again when it comes back as another index."""
        super().listen(interface)
        iface = self.interfaces.get(interface)
        assert iface is not None  # super().listen() refused it otherwise
        self._frames.listen(interface, iface.index)

    def receive(self) -> list[Received]:
        """Every message queued now on either socket (non-blocking, at most
        ``MAX_PER_RECEIVE`` packets), in arrival order; what is dropped is counted in
        ``dropped``, never raised."""
        half = MAX_PER_RECEIVE // 2
        raw: list[Arrival] = []
        frames: list[Arrival] = []
        n_raw = self._read_raw(raw, half)
        n_frames = self._frames.read(frames, MAX_PER_RECEIVE - n_raw)
        if n_raw == half:
            self._read_raw(raw, MAX_PER_RECEIVE - n_raw - n_frames)
        if not frames:
            return [message for _, message in raw]
        if not raw:
            return [message for _, message in frames]
        # Each socket's queue is in arrival order already: merge the two runs.
        return [message for _, message in heapq.merge(raw, frames, key=_STAMP)]

    def _read_raw(self, out: list[Arrival], limit: int) -> int:
        """Append to ``out`` the messages of up to ``limit`` packets queued on the raw socket
        (non-blocking); how many packets were read."""
        raise NotImplementedError
