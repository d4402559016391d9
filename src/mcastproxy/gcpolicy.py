"""Keeping the cyclic garbage collector's pauses short at a million memberships.

CPython frees an object when its last reference goes (reference counting); the cyclic
collector is only for groups of objects that refer to each other in a cycle. It works by
generations, and a full (generation 2) collection traverses every tracked object alive: at
1,000,000 memberships, several million, about a second during which no report is handled
(``bench/bench_pause.py``). Nothing in the engine's state is freed through a cycle, so those
seconds find nothing there.

So, once the daemon has started and after every full collection, ``GcPolicy`` moves every
object alive into the permanent generation (``gc.freeze``): the next full collection
traverses only what survived since, and costs milliseconds whatever the size of the state.
The young generations are collected as before.

The cost: a cycle of objects that were frozen, and became garbage later, is never collected.
Such cycles come from the I/O around the engine (an asyncio transport and its protocol, an
exception and its traceback) and are few; ``stranded()`` counts them (it collects the frozen
objects, so it has the full collection's cost: tests and the benchmark call it, never the
running proxy). ``GcPolicy.counts()`` gives the policy's figures (for metrics: they change
from one moment to the next, so they are not in ``status``, whose answers are compared).
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcPolicy:
    """The collector's policy for one daemon: ``install()`` at its start, ``uninstall()``
    at its end (the process is as it was, its objects thawed)."""

    def __init__(self) -> None:
        self.installed = False
        self.full_collections = 0
        """Full collections since ``install``, each followed by a freeze."""
        self.longest_pause = 0.0
        """The longest collection of any generation since ``install``, in seconds."""
        self._started = 0.0

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        gc.collect()  # what start-up left as garbage goes now, not into the permanent one
        gc.freeze()
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if not self.installed:
            return
        self.installed = False
        gc.callbacks.remove(self._callback)
        gc.unfreeze()

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.longest_pause = max(self.longest_pause, time.perf_counter() - self._started)
        if info["generation"] == 2:
            # The younger generations were collected with it, so all that is left is alive.
            self.full_collections += 1
            gc.freeze()

    def counts(self) -> dict[str, float | int]:
        """Objects frozen, full collections, the longest pause (ms)."""
        return {"frozen": gc.get_freeze_count(), "full-collections": self.full_collections,
                "longest-pause-ms": round(self.longest_pause * 1e3, 1)}


def stranded() -> int:
    """Unreachable objects among the frozen ones (they stay unreachable: counted, then freed
    and the rest frozen again). As slow as a full collection."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found
