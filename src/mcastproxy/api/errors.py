"""RFC 8040's errors (§7.1): one exception, ``ApiError``, rendered as its error body.

Every refusal of the API is an ``ApiError`` raised where the fault is found and turned into
an answer at one boundary (the server's middleware), in the manner of h11's protocol errors:
the status code, RFC 8040's ``error-tag`` (§7, the table of tags and codes), the
``error-type`` (``protocol`` for a request the server cannot take, ``application`` for a
configuration it refuses), and for each problem its ``error-path`` (an instance identifier,
RFC 7951 §6.11, of the field at fault) and ``error-message`` (the reason, as ``mcastproxy
check`` says it). ``error-info`` carries the field as the file names it
(``upstream.candidates[1].records[0].group``), so that a controller can show both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

YANG_JSON = "application/yang-data+json"
CONFIG = "mcastproxy:config"

_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Problem:
    """One ``error`` of the body: ``field`` as the file names it ("" for the whole);
    ``path``: the node's instance identifier where the request named a YANG tree (then it is
    the ``error-path``); ``tag``: its own ``error-tag`` (else the error's)."""

    message: str
    field: str = ""
    top: str = CONFIG
    path: str = ""
    tag: str = ""


class ApiError(Exception):
    """A refused request: ``status``, RFC 8040's ``tag`` and ``type``, its ``problems``."""

    def __init__(self, status: int, tag: str, problems: Iterable[Problem] | str, *,
                 error_type: str = "protocol", headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.tag = tag
        self.error_type = error_type
        self.problems = ([Problem(problems, "", "")] if isinstance(problems, str)
                         else list(problems))
        self.headers = dict(headers or {})
        super().__init__("; ".join(p.message for p in self.problems))

    def body(self) -> dict[str, Any]:
        errors = []
        for p in self.problems:
            error: dict[str, Any] = {"error-type": self.error_type,
                                     "error-tag": p.tag or self.tag}
            if p.path:
                error["error-path"] = p.path
            elif p.top:
                error["error-path"] = error_path(p.top, p.field)
            error["error-message"] = p.message
            if p.field:
                error["error-info"] = {"mcastproxy:field": p.field}
            errors.append(error)
        return {"ietf-restconf:errors": {"error": errors}}

    def text(self) -> str:
        return json.dumps(self.body(), indent=2) + "\n"


def error_path(top: str, field: str) -> str:
    """``/mcastproxy:config/upstream/candidates[2]/records[1]/group`` for the file's
    ``upstream.candidates[1].records[0].group``: positions as XPath's, from 1 (the file's
    document has no YANG keys; the standard tree's errors name theirs, ``yangdata``)."""
    path = f"/{top}"
    if not field:
        return path
    for part in field.split("."):
        if not part:
            continue
        path += "/" + _INDEX.sub(lambda m: f"[{int(m.group(1)) + 1}]", part)
    return path
