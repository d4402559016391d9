"""The YANG tools of the tests: ``yanglint`` (libyang) over instance data, with the modules
the package ships, their features and deviations (``mcastproxy.api.yangschema``).

``validate(data)`` writes ``data`` (RFC 7951 JSON) to a file and has yanglint check it
against the modules (``kind``: ``config`` for configuration alone, ``data`` for a datastore
with its state); it returns yanglint's complaints, "" when there are none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mcastproxy.api.yangschema import MODULES, features, module_file, yang_dir

YANGLINT = shutil.which("yanglint")


def module_paths() -> list[Path]:
    """The modules to load, those that implement what others refer to first (libyang
    checks a ``must`` only against modules already implemented)."""
    first = ("ietf-ip", "ietf-pim-base")
    ordered = sorted(MODULES, key=lambda m: m[0] not in first)
    return [module_file(name, revision) for name, revision, _ in ordered
            if name in (*first, "mcastproxy", "mcastproxy-deviations")]


def feature_args() -> list[str]:
    return [arg for module, feats in features().items()
            for arg in ("-F", f"{module}:{','.join(feats)}")]


def validate(data: dict[str, Any], kind: str = "config") -> str:
    """yanglint's complaints about ``data`` ("" if none)."""
    assert YANGLINT is not None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(data, file)
    try:
        done = subprocess.run(
            [YANGLINT, "-p", str(yang_dir() / "ietf"), *feature_args(), "-t", kind,
             *map(str, module_paths()), file.name],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        Path(file.name).unlink()
    complaints = (done.stdout + done.stderr).strip()
    return complaints or ("" if done.returncode == 0 else f"exit {done.returncode}")
