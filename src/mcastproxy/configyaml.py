"""Reading the configuration file's YAML safely: size, encoding, nesting and aliases bounded
before anything is built from it, keys that are names and given once, numbers that are finite.

Every refusal is a ``ConfigIssue`` (where, and why) in a ``ConfigError``, the one error the
configuration raises (``config``). libyaml's safe loader is used where PyYAML was built with
it (ten times faster on large record lists); its parser recurses in C, so nesting is bounded
from the parser's events before any node is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ConfigError(Exception):
    """A configuration that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


MAX_FILE_SIZE = 16 * 2**20  # octets
# Collections within collections: the file's deepest are the fields of a record, six down.
# libyaml builds its nodes recursively in C, so that a deep enough file would crash it.
MAX_NESTING = 16
# Anchors and aliases are allowed (a list of records or routers written once, used by several
# candidates) but bounded. An alias stands for its anchor's whole node without it being written
# again, so a few hundred octets of aliases of aliases can stand for billions of nodes (the
# "billion laughs"), which validation would walk one by one. Bounding the number of aliases
# would not do (nine aliases of nine aliases, nine deep, are 81 aliases for 9^9 nodes):
# what is bounded is the nodes they add, counted as if every alias were written out.
MAX_ALIAS_NODES = 10_000
_MERGE = "tag:yaml.org,2002:merge"  # ``<<: *defaults``


def too_large() -> ConfigIssue:
    return ConfigIssue("", f"larger than {MAX_FILE_SIZE // 2**20} MiB: too large for a "
                           "configuration")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_yaml(text: str | bytes, source: str) -> Any:
    """The data of YAML ``text``, refused (ConfigError) if it is too large, not UTF-8, not
    YAML, nested too deep, or expands its aliases beyond ``MAX_ALIAS_NODES``."""
    if len(text) > MAX_FILE_SIZE:
        raise ConfigError([too_large()])
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            octet = exc.object[exc.start]
            raise ConfigError([ConfigIssue("", f"not UTF-8 text: octet 0x{octet:02x} at offset "
                                               f"{exc.start}")]) from None
    try:
        _check_nesting(text)  # before libyaml builds nodes, recursively
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).split("\n  in ")[0]
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not take
            where = f"character {exc.position + 1}"
        problem = " ".join(problem.split())
        raise ConfigError([ConfigIssue("", f"YAML syntax error at {where}: {problem}")]) from None
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        # An integer of 5,000 digits (ValueError), text that is not Unicode (UnicodeError)...
        raise ConfigError([ConfigIssue("", f"cannot be read as YAML: {one_line(exc)}")]
                          ) from None


def _check_nesting(text: str) -> None:
    """Refuse collections nested deeper than ``MAX_NESTING``, reading parser events only
    (libyaml's parser keeps its own stack) and stopping at the first too deep."""
    loader = _Loader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    raise ConfigError([ConfigIssue("", f"nested more than {MAX_NESTING} deep at "
                                                       f"line {mark.line + 1}")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node) -> None:
    """Refuse what the YAML's nodes would become once every alias is expanded: more than
    ``MAX_ALIAS_NODES`` nodes added by aliases, collections nested more than ``MAX_NESTING``
    deep, an alias inside the node it names; and mapping keys that are not names (strings).
    Each node is visited once (an alias is the node it names), depth first, with no
    recursion."""
    size: dict[int, int] = {}  # node -> nodes it stands for, aliases expanded
    depth: dict[int, int] = {}  # node -> collections nested in it, itself included
    open_: set[int] = set()  # nodes whose children are being visited
    written = 0
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = (1 + max((depth[id(c)] for c in children), default=0)
                          if isinstance(node, yaml.CollectionNode) else 0)
            if depth[key] > MAX_NESTING:
                raise ConfigError([ConfigIssue("", f"nested more than {MAX_NESTING} deep, "
                                                   f"aliases expanded, {_at(node)}")])
            if size[key] - written > MAX_ALIAS_NODES:
                raise ConfigError([ConfigIssue("", f"aliases expand to more than "
                                                   f"{MAX_ALIAS_NODES:,} nodes, {_at(node)}")])
            continue
        if key in size:
            continue
        written += 1
        open_.add(key)
        todo.append((node, True))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, _ in node.value:
                if not (isinstance(k, yaml.ScalarNode) and k.tag in (
                        "tag:yaml.org,2002:str", _MERGE)):
                    name = k.value if isinstance(k, yaml.ScalarNode) else "a collection"
                    raise ConfigError([ConfigIssue("", f"a key is a name: {name!r} is not, "
                                                       f"{_at(k)}")])
                if k.tag != _MERGE:
                    # YAML would keep the last and drop the first without a word.
                    if k.value in seen:
                        raise ConfigError([ConfigIssue("", f"key {k.value!r} is given twice "
                                                           f"in one mapping, {_at(k)}")])
                    seen.add(k.value)
        for child in children:
            if id(child) in open_:
                raise ConfigError([ConfigIssue("", f"an alias names a node it is in, "
                                                   f"{_at(child)}")])
            if id(child) not in size:
                todo.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _at(node: yaml.Node) -> str:
    return f"at line {node.start_mark.line + 1}"


def check_numbers(data: Any) -> list[ConfigIssue]:
    """Numbers that are not finite (``.inf``, ``.nan``, ``1e999``): no setting takes one."""
    issues = []
    seen: set[int] = set()
    todo: list[tuple[str, Any]] = [("", data)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(ConfigIssue(path, f"{value} is not a finite number"))
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            todo += ((f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else
                      str(k), v) for k, v in items)
    return sorted(issues, key=lambda i: i.path)
