"""Ordered (source, group) prefix rules, first match wins: the matching behind ``group-policy``,
exceptions and the channel bandwidth table.

A rule matches a request (source S or any, group G) when each prefix it names contains the
request's address; a rule that names a source never matches an any-source request (it cannot
know which sources will send), as in upstream selection.

Rules are compiled per family into one hash table per shape (which prefixes a rule names and
their lengths), keyed by the masked (S, G), holding the first rule of that key: the first
match is the smallest index found over the shapes ("tuple space search", as in
``selection``). Shapes are probed in the order of their first rule, so the probing stops at a
shape whose first rule comes after the best match so far. A lookup costs a few dict probes
whatever the number of rules. The same structure finds a rule that an earlier one makes
unreachable (it matches everything the later would), which the configuration refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

from mcastproxy.family import Family

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNLIMITED = 1 << 62  # a bound no count reaches: "unlimited" costs the same comparison


class Action(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class Rule(NamedTuple):
    """A compiled rule: its action, its prefixes (None: any) and where it is written."""

    action: Action
    source: Network | None
    group: Network | None
    where: str  # its place in the file: "downstream[0].policy.group-policy[2]"

    def describe(self) -> str:
        parts = [f"{name} {value}" for name, value in (("source", self.source),
                                                       ("group", self.group)) if value]
        return f"{self.action} {', '.join(parts) or 'everything'}"


class RuleSet:
    """Ordered rules of one family, first match wins (see the module's comment)."""

    __slots__ = ("_shapes", "_width", "rules")

    def __init__(self, rules: Iterable[Rule], family: Family) -> None:
        self.rules = tuple(r for r in rules if _of_family(r, family))
        self._width = width = family.width
        # (first index, source mask or None, group mask, table: masked key -> first index)
        shapes: dict[tuple[int | None, int], tuple[int | None, int, dict[int, int]]] = {}
        for i, rule in enumerate(self.rules):
            slen = rule.source.prefixlen if rule.source is not None else None
            glen = rule.group.prefixlen if rule.group is not None else 0
            shape = shapes.get((slen, glen))
            if shape is None:
                smask = None if slen is None else mask(slen, width)
                shape = shapes[slen, glen] = (smask, mask(glen, width), {})
            smask, gmask, table = shape
            table.setdefault(_key(rule, smask, gmask, width), i)
        self._shapes = sorted(((min(t.values()), smask, gmask, t)
                               for smask, gmask, t in shapes.values()), key=lambda s: s[0])

    def __bool__(self) -> bool:
        return bool(self._shapes)

    def first(self, source: bytes | None, group: bytes) -> Rule | None:
        """The first rule matching (``source``, or any source if None, ``group``)."""
        index = self.first_index(source, group)
        return None if index < 0 else self.rules[index]

    def first_index(self, source: bytes | None, group: bytes) -> int:
        """The index of the first rule matching, -1 if none does."""
        shapes = self._shapes
        if not shapes:
            return -1
        g = int.from_bytes(group)
        s = int.from_bytes(source) if source is not None else -1
        best = len(self.rules)
        width = self._width
        for start, smask, gmask, table in shapes:
            if start >= best:
                break  # every rule of this shape and the next ones comes later
            if smask is None:
                hit = table.get(g & gmask)
            elif s < 0:
                continue  # a rule naming a source never matches an any-source request
            else:
                hit = table.get((s & smask) << width | (g & gmask))
            if hit is not None and hit < best:
                best = hit
        return -1 if best == len(self.rules) else best


def _of_family(rule: Rule, family: Family) -> bool:
    return all(p is None or p.version == family for p in (rule.source, rule.group))


def mask(length: int, width: int) -> int:
    """The mask of a prefix of ``length`` bits in an address of ``width`` bits."""
    return ((1 << length) - 1) << (width - length)


def _key(rule: Rule, smask: int | None, gmask: int, width: int) -> int:
    g = int(rule.group.network_address) & gmask if rule.group is not None else 0
    if smask is None or rule.source is None:
        return g
    return (int(rule.source.network_address) & smask) << width | g


def unreachable(rules: Sequence[Rule]) -> list[tuple[int, int]]:
    """(i, j) for each rule i that an earlier rule j makes unreachable: j matches every
    request i would (each prefix j names contains i's, and i names it too). The earlier
    rules are kept by shape, as ``RuleSet`` keeps them: a few probes per rule."""
    found = []
    # (family or None for a rule naming no prefix, source length, group length) ->
    # (masked source, masked group) -> the first rule of that key
    shapes: dict[tuple[int | None, int | None, int | None],
                 dict[tuple[int | None, int | None], int]] = {}
    for i, rule in enumerate(rules):
        family = next((p.version for p in (rule.source, rule.group) if p is not None), None)
        first = None
        for (fam, slen, glen), table in shapes.items():
            if fam is not None and fam != family:
                continue
            if slen is not None and (rule.source is None or rule.source.prefixlen < slen):
                continue
            if glen is not None and (rule.group is None or rule.group.prefixlen < glen):
                continue
            hit = table.get((_masked(rule.source, slen), _masked(rule.group, glen)))
            if hit is not None and (first is None or hit < first):
                first = hit
        if first is not None:
            found.append((i, first))
            continue
        slen = rule.source.prefixlen if rule.source is not None else None
        glen = rule.group.prefixlen if rule.group is not None else None
        shapes.setdefault((family, slen, glen), {}).setdefault(
            (_masked(rule.source, slen), _masked(rule.group, glen)), i)
    return found


def _masked(prefix: Network | None, length: int | None) -> int | None:
    if prefix is None or length is None:
        return None
    return int(prefix.network_address) & mask(length, prefix.max_prefixlen)
