"""RFC 8040 §4.8's query parameters of a GET of data: ``content`` (§4.8.1) and ``depth``
(§4.8.2), read strictly, and the depth applied to an answer.

- ``content``: ``all`` (the default), ``config`` (the configuration alone) or ``nonconfig``
  (the state alone).
- ``depth``: ``unbounded`` (the default) or a whole number from 1 to 65535. The resource
  asked for is at level 1, its children at level 2, and so on; a node deeper than ``depth``
  is left out (a container or list entry at the last level is shown empty: it is there, its
  content is not). A list's entries are at the list's level, as a leaf-list's values are.
  Of the whole datastore (``/restconf/data``, not itself a data node) the top-level nodes
  are at level 1.

Any other parameter, one given twice, or a value out of these is refused: 400 with RFC 8040's
error body (``invalid-value``, or ``operation-not-supported`` for a parameter not offered),
never taken as the default.

A depth is applied a slice at a time (``pruned``): the loop gets a turn every millisecond,
as when the state tree is made, since a state of tens of thousands of groups is walked.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcastproxy.api.errors import ApiError

if TYPE_CHECKING:
    from multidict import MultiMapping  # aiohttp's request.query

CONTENT = ("all", "config", "nonconfig")
MAX_DEPTH = 65535  # RFC 8040 §4.8.2: uint16, from 1
UNBOUNDED = 0
NODES_PER_SLICE = 512
_NUMBER = re.compile(r"[1-9][0-9]{0,4}")  # ASCII digits only, no sign, no leading zero


@dataclass(frozen=True, slots=True)
class Query:
    """The parameters of a GET: ``content``; ``depth`` (``UNBOUNDED``: no limit)."""

    content: str = "all"
    depth: int = UNBOUNDED

    @property
    def config(self) -> bool:
        """Whether the configuration is asked for."""
        return self.content != "nonconfig"

    @property
    def state(self) -> bool:
        """Whether the state is asked for."""
        return self.content != "config"


def read_query(query: MultiMapping[str], offered: tuple[str, ...] = ("content", "depth"),
               ) -> Query:
    """The ``Query`` of a request's ``query`` (a parameter may come twice); ApiError 400
    naming what is wrong."""
    for name in dict.fromkeys(query):
        if name not in offered:
            raise ApiError(400, "operation-not-supported", f"the query parameter "
                           f"{_shown(name)!r} is not offered here ({', '.join(offered)} are)")
        if len(query.getall(name)) > 1:
            raise ApiError(400, "invalid-value", f"the query parameter {name} is given more "
                           "than once (RFC 8040 §4.8)")
    content = query.get("content", "all")
    if content not in CONTENT:
        raise ApiError(400, "invalid-value", f"content {_shown(content)!r}: one of "
                       f"{', '.join(CONTENT)} (RFC 8040 §4.8.1)")
    return Query(content, _depth(query.get("depth", "unbounded")))


def _depth(text: str) -> int:
    if text == "unbounded":
        return UNBOUNDED
    if _NUMBER.fullmatch(text) and int(text) <= MAX_DEPTH:
        return int(text)
    raise ApiError(400, "invalid-value", f"depth {_shown(text)!r}: a whole number from 1 to "
                   f"{MAX_DEPTH}, or unbounded (RFC 8040 §4.8.2)")


def _shown(text: str) -> str:
    return text if len(text) <= 64 else text[:64] + "..."


def depth_slices(tree: dict[str, Any], depth: int, top: int = 1,
                 ) -> Generator[None, None, dict[str, Any]]:
    """The members of ``tree`` (each at level ``top``) with what is deeper than ``depth``
    left out, a slice at a time: each ``next`` walks a few hundred nodes; the result (new
    objects; ``tree`` is not changed) is the generator's value."""
    budget = [NODES_PER_SLICE]
    out: dict[str, Any] = {}
    for name, value in tree.items():
        out[name] = yield from _cut(value, top, depth, budget)
    return out


def _cut(value: Any, level: int, depth: int, budget: list[int],
         ) -> Generator[None, None, Any]:
    """``value``, a node at ``level``, cut below ``depth``."""
    budget[0] -= 1
    if budget[0] <= 0:
        budget[0] = NODES_PER_SLICE
        yield
    if isinstance(value, list):  # a list's entries (a leaf-list's values) are at its level
        out_list = []
        for entry in value:
            out_list.append((yield from _cut(entry, level, depth, budget)))
        return out_list
    if not isinstance(value, dict):
        return value
    if level >= depth:
        return {}
    out: dict[str, Any] = {}
    for name, sub in value.items():
        out[name] = yield from _cut(sub, level + 1, depth, budget)
    return out


async def pruned(tree: dict[str, Any], depth: int, top: int = 1) -> dict[str, Any]:
    """``depth_slices`` run to its end, the loop getting a turn every millisecond; ``tree``
    itself if ``depth`` is ``UNBOUNDED``."""
    if depth == UNBOUNDED:
        return tree
    out: dict[str, Any] = await run_sliced(depth_slices(tree, depth, top))
    return out


async def run_sliced(slices: Generator[None, None, Any]) -> Any:
    """The value of a generator that yields between slices of its work, run with the loop
    getting a turn every millisecond."""
    turn = time.perf_counter() + 0.001
    while True:
        try:
            next(slices)
        except StopIteration as done:
            return done.value
        if time.perf_counter() >= turn:
            await asyncio.sleep(0)
            turn = time.perf_counter() + 0.001
