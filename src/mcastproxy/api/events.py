"""The event stream (``GET /restconf/streams/events``): server-sent events of what the proxy
logs, as they happen.

RFC 8040 §6 streams notifications as server-sent events (W3C EventSource); here each event
is one the daemon logs (the engine's ``Log`` actions: ``join-refused``, ``upstream-join``,
``channel-takeover``, ``liveness``, ``upstream-down``... and the daemon's own ``reloaded``
and ``reload-refused``), as ``event: NAME`` and one line of JSON data. ``?event=A,B`` keeps
those named only.

The daemon hands each event to ``EventHub.publish`` before its log line's rate limit, at no
cost beyond a ``put_nowait`` per client. Each client has a queue of ``QUEUE`` events: a
client that does not keep up (its queue full) is dropped, its connection aborted, rather
than holding events back or making the proxy wait. At most ``MAX_CLIENTS`` stream at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

QUEUE = 4096  # events held for one client (a burst of joins makes one per group)
MAX_CLIENTS = 16
KEEPALIVE = 15.0  # seconds: a comment line, so that proxies and clients see the stream lives


class Subscriber:
    """One client's stream: its queue, the events it wants, and whether it was dropped."""

    def __init__(self, wanted: frozenset[str] | None, abort: Any) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE)
        self.wanted = wanted
        self.dropped = False
        self._abort = abort

    def offer(self, frame: bytes, event: str) -> bool:
        """Queue ``frame``; False (and the client dropped) when its queue is full."""
        if self.wanted is not None and event not in self.wanted:
            return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped = True
            self._abort()
            return False
        return True


class EventHub:
    """Fans events out to the clients streaming them."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0  # clients dropped for being slow
        self.sent = 0

    def subscribe(self, wanted: frozenset[str] | None, abort: Any) -> Subscriber | None:
        if len(self.subscribers) >= MAX_CLIENTS:
            return None
        sub = Subscriber(wanted, abort)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        if not self.subscribers:
            return
        data = {"event": event, "level": logging.getLevelName(level).lower(),
                "time": round(time.time(), 6), "message": message, "fields": dict(fields)}
        frame = (f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n").encode()
        for sub in list(self.subscribers):
            if not sub.offer(frame, event):
                self.subscribers.discard(sub)
                self.dropped += 1
        self.sent += 1
