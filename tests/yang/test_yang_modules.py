"""The YANG modules the package ships: valid for pyang --strict with the modules they import,
complete (every import is shipped, nothing shipped is unused), installed with the wheel, and
the API's schema (``yang/schema.json``) is what they say."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from yang_harness import YANGLINT, feature_args, module_paths

from mcastproxy.api.yangschema import (
    MODULES,
    OWN,
    load_schema,
    make_schema,
    module_file,
    pyang_context,
    yang_dir,
)

ROOT = Path(__file__).resolve().parents[2]
PYANG = shutil.which("pyang", path=str(Path(sys.executable).parent))
needs_pyang = pytest.mark.skipif(PYANG is None, reason="pyang is not installed (test extra)")
_IMPORT = re.compile(r"^\s*import\s+([\w-]+)", re.MULTILINE)


@needs_pyang
def test_the_modules_pass_pyang_strict() -> None:
    assert PYANG is not None
    own = [str(module_file(name, revision)) for name, revision, _ in MODULES if name in OWN]
    done = subprocess.run([PYANG, "--strict", "-p", f"{yang_dir()}:{yang_dir() / 'ietf'}",
                           *own], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_pyang
def test_the_modules_with_the_features_and_deviations_have_no_error() -> None:
    ctx = pyang_context()
    errors = [(str(pos), tag) for pos, tag, _ in ctx.errors]
    assert errors == []


@pytest.mark.skipif(YANGLINT is None, reason="yanglint (libyang-tools) is not installed")
def test_the_modules_load_in_libyang() -> None:
    assert YANGLINT is not None
    done = subprocess.run([YANGLINT, "-p", str(yang_dir() / "ietf"), *feature_args(),
                           *map(str, module_paths())], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_every_import_is_shipped_and_every_shipped_module_is_listed() -> None:
    shipped = {p.name for p in yang_dir().glob("*.yang")}
    shipped |= {p.name for p in (yang_dir() / "ietf").glob("*.yang")}
    listed = {f"{name}@{revision}.yang" for name, revision, _ in MODULES}
    assert shipped == listed
    names = {name for name, _, _ in MODULES}
    for name, revision, _ in MODULES:
        imports = set(_IMPORT.findall(module_file(name, revision).read_text()))
        assert imports <= names, (name, imports - names)


def test_the_ietf_modules_are_the_rfcs_own() -> None:
    # Verbatim: each says which RFC it is part of, and its revision is its file's.
    for name, revision, _ in MODULES:
        if name in OWN:
            continue
        text = module_file(name, revision).read_text()
        assert re.search(rf"^\s*revision\s+\"?{revision}\"?", text, re.MULTILINE), name
        assert re.search(r"RFC \d{4}", text), name


@needs_pyang
def test_the_shipped_schema_is_what_the_modules_say() -> None:
    # python -m mcastproxy.api.yangschema > src/mcastproxy/yang/schema.json remakes it.
    assert make_schema(pyang_context()) == load_schema()


def test_the_wheel_installs_the_modules(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0 and "Could not find a version" in done.stderr:
        pytest.skip("the build's requirements cannot be fetched here")
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("mcastproxy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name, revision, _ in MODULES:
        relative = module_file(name, revision).relative_to(yang_dir().parent.parent)
        assert str(relative) in names, relative
    assert "mcastproxy/yang/schema.json" in names
