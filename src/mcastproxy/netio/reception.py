"""``MessageSocket``: a family's IGMP or MLD in and out, received on two sockets that the
daemon sees as one.

The raw socket (the IP stack's local delivery, and IPv4's Router Alert chain) keeps messages
not addressed to a routable group; the packet socket (``netio.frames``) those that are
(``netio.filters`` splits them; ``netio.igmp`` and ``netio.mld`` tell why it takes two).
Behind ``fileno()`` is an epoll descriptor holding both: an epoll descriptor is itself
readable while either socket is, so the daemon's loop registers one descriptor as before.

``receive()`` asks the epoll descriptor which of the two sockets has anything (one call,
``poll(0)``), and reads only those, without blocking, at most ``MAX_PER_RECEIVE`` packets in
all: a read that finds a socket empty raises inside CPython (BlockingIOError), which costs
five times the poll, and the packet socket is empty almost always. When both have messages:
up to half from the raw socket, then the packet socket up to what is left, then the raw
socket again if it had more, so that a flood on one cannot starve the other; the messages
are then put back in the order they arrived, by the kernel's receive time of each
(SO_TIMESTAMPNS, taken as the link handed the packet up, before either socket saw it): a
host's IGMPv2 report to G (packet socket) and its Leave to 224.0.0.2 (raw socket) read in one
call would otherwise be handled Leave first whatever order they came in. Messages arriving
after the poll, or between the two reads, may still come a call late.
"""

from __future__ import annotations

import heapq
import select
import socket
from collections.abc import Sequence
from operator import itemgetter

from mcastproxy.family import Family
from mcastproxy.netio.common import (
    MAX_PER_RECEIVE,
    RCVBUF,
    ListeningSocket,
    Received,
    Stamp,
    Stamps,
)
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
                self._raw_fd = sock.fileno()
                self._epoll.register(self._raw_fd, select.EPOLLIN)
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
        ready = self._epoll.poll(0)
        if len(ready) < 2:
            out: list[Received] = []
            if ready:
                if ready[0][0] == self._raw_fd:
                    self._read_raw(out, None, MAX_PER_RECEIVE)
                else:
                    self._frames.read(out, None, MAX_PER_RECEIVE)
            return out
        half = MAX_PER_RECEIVE // 2
        raw: list[Received] = []
        frames: list[Received] = []
        raw_stamps: list[Stamp] = []
        frame_stamps: list[Stamp] = []
        n_raw = self._read_raw(raw, raw_stamps, half)
        n_frames = self._frames.read(frames, frame_stamps, MAX_PER_RECEIVE - n_raw)
        if n_raw == half:
            self._read_raw(raw, raw_stamps, MAX_PER_RECEIVE - n_raw - n_frames)
        if not frames:
            return raw
        if not raw:
            return frames
        # Each socket's queue is in arrival order already: merge the two runs.
        merged = heapq.merge(zip(raw_stamps, raw, strict=True),
                             zip(frame_stamps, frames, strict=True), key=_STAMP)
        return [message for _, message in merged]

    def _read_raw(self, out: list[Received], stamps: Stamps, limit: int) -> int:
        """Append to ``out`` the messages of up to ``limit`` packets queued on the raw socket
        (non-blocking), and their receive times to ``stamps`` (unless None); how many
        packets were read."""
        raise NotImplementedError
