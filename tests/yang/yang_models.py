"""The configuration file's keys, walked from its models (pydantic), and the YANG schema's
leaves, walked from ``yang/schema.json``: what the consistency test compares."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mcastproxy.config import Config


@dataclasses.dataclass(frozen=True)
class FileKey:
    """A key of the file: its path (``downstream[].policy.max-groups``), its model and field
    name, whether it is a list of values, and the field (None for a pydantic dataclass's)."""

    path: str
    model: type[Any]
    name: str
    many: bool
    field: FieldInfo | None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside Optional and Annotated, and whether it is a tuple of them."""
    many = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, many
            annotation = args[0]
        elif origin is tuple:
            many = True
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, many


def _nested(annotation: Any) -> bool:
    return isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation))


def file_keys(model: type[Any] = Config, prefix: str = "") -> Iterator[FileKey]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        fields: list[tuple[str, str, Any, FieldInfo | None]] = [
            (name, f.alias or name.replace("_", "-"), f.annotation, f)
            for name, f in model.model_fields.items()]
    else:
        hints = typing.get_type_hints(model)
        fields = [(f.name, f.name.replace("_", "-"), hints[f.name], None)
                  for f in dataclasses.fields(model)]
    for name, key, annotation, field in fields:
        path = f"{prefix}.{key}" if prefix else key
        inner, many = _unwrap(annotation)
        if _nested(inner):
            yield from file_keys(inner, path + ("[]" if many else ""))
        else:
            yield FileKey(path, model, name, many, field)


def _local(name: str) -> str:
    return name.partition(":")[2]


def yang_leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every configuration leaf and leaf-list below schema ``node``: (local names joined by
    ``/``, node, with ``is-key`` where it is its list's key); the offered ones only."""
    keys = node.get("keys", ())
    for name, sub in node.get("children", {}).items():
        path = f"{prefix}/{_local(name)}" if prefix else _local(name)
        if sub["kind"] in ("leaf", "leaf-list"):
            yield path, {**sub, "is-key": True} if _local(name) in keys else sub
        elif sub["kind"] in ("container", "list"):
            yield from yang_leaves(sub, path)
