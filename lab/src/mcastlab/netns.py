"""Network namespaces of lab runs: names, run records, commands inside them, and the sweep.

Every namespace a lab makes is named ``mcp-<run id>-<host>``, where the run id is six random
characters drawn for each ``Lab``. Before the first namespace of a run exists, a record
``/run/mcastproxy-lab/<run id>.json`` names the creating process (pid and start time, so a
recycled pid is not mistaken for it). ``sweep()`` removes the namespaces of runs whose
creator is gone, killing what still runs inside them first; a namespace is touched only
if its name carries a run id that has a record, so namespaces of anyone else are safe.

Python 3.11 has no ``os.setns``; commands enter a namespace as ``ip netns exec NS ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PREFIX = "mcp-"
RUN_DIR = Path("/run/mcastproxy-lab")
_RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
_RUN_ID_LEN = 6
_OURS = re.compile(rf"^{PREFIX}([a-z0-9]{{{_RUN_ID_LEN}}})-")


class LabError(RuntimeError):
    """The lab could not do what was asked of the system."""


class CommandError(LabError):
    """A command failed; the message carries its stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = stderr.strip() or stdout.strip() or "(no output)"
        super().__init__(f"{' '.join(self.argv)!s} exited {returncode}: {detail}")


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> str:
    """Run a command in the root namespace; its stdout, or ``CommandError`` with its stderr."""
    try:
        p = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{' '.join(argv)} took longer than {timeout} s") from e
    if check and p.returncode != 0:
        raise CommandError(argv, p.returncode, p.stdout, p.stderr)
    return p.stdout


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def run_in(
    ns: str,
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
) -> str:
    """Run a command inside namespace ``ns``; its stdout, or ``CommandError``."""
    return run(exec_argv(ns, argv), input=input, timeout=timeout, check=check)


def ip_batch(lines: Iterable[str], *, ns: str | None = None) -> None:
    """Run ``ip`` commands (without the leading ``ip``) in one process, stopping at a failure."""
    lines = list(lines)
    if not lines:
        return
    argv = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    try:
        run(argv, input="\n".join(lines) + "\n")
    except CommandError as e:
        # ip says "Command failed -:N": name the line.
        m = re.search(r"Command failed -:(\d+)", e.stderr)
        if m and 0 < int(m.group(1)) <= len(lines):
            where = f" in namespace {ns}" if ns else ""
            raise LabError(
                f"ip {lines[int(m.group(1)) - 1]}{where}: {e.stderr.strip().splitlines()[0]}"
            ) from e
        raise


def sysctl_in(ns: str, settings: dict[str, str]) -> None:
    """Set sysctls inside ``ns`` (``sysctl`` takes dotted keys, or slashed ones)."""
    if settings:
        run_in(ns, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())])


# -- namespaces -------------------------------------------------------------------------------


def list_namespaces() -> list[str]:
    """Names of all named network namespaces (``ip netns list``)."""
    out = run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(ns: str) -> list[int]:
    """Processes whose network namespace is ``ns``."""
    out = run(["ip", "netns", "pids", ns], check=False)
    return [int(w) for w in out.split() if w.isdigit() and int(w) != os.getpid()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; its parent just has not reaped it.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_namespace_processes(ns: str, *, grace: float = 1.0) -> None:
    """SIGTERM every process in ``ns``, then SIGKILL what is left after ``grace`` seconds."""
    pids = namespace_pids(ns)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            if pids:
                time.sleep(0.01)
        if not pids:
            return


def delete_namespace(ns: str) -> None:
    """Kill what runs in ``ns`` and delete it. A namespace already gone is not an error."""
    if ns not in list_namespaces():
        return
    kill_namespace_processes(ns)
    try:
        run(["ip", "netns", "del", ns])
    except CommandError:
        if ns in list_namespaces():
            raise


# -- runs -------------------------------------------------------------------------------------


def new_run_id() -> str:
    """A fresh random run id (six characters of a-z0-9)."""
    return "".join(secrets.choice(_RUN_ID_ALPHABET) for _ in range(_RUN_ID_LEN))


def namespace_name(run_id: str, name: str) -> str:
    """The namespace of lab host ``name`` in run ``run_id``."""
    return f"{PREFIX}{run_id}-{name}"


def run_id_of(ns: str) -> str | None:
    """The run id in a namespace name of ours, or None."""
    m = _OURS.match(ns)
    return m.group(1) if m else None


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    return int(stat.rpartition(")")[2].split()[19])


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Who created a run: enough to tell later whether that process is still there."""

    run_id: str
    pid: int
    start_time: int
    created: float
    argv: list[str]
    logdir: str | None = None
    """The run's log directory, removed with its namespaces when a sweep finds it dead."""

    @property
    def creator_alive(self) -> bool:
        """Whether the creating process still runs (same pid and start time)."""
        return process_start_time(self.pid) == self.start_time and _alive(self.pid)


def write_record(run_id: str, *, pid: int | None = None,
                 logdir: Path | None = None) -> RunRecord:
    """Record that ``pid`` (default: this process) creates run ``run_id``, logging to
    ``logdir``."""
    pid = os.getpid() if pid is None else pid
    start = process_start_time(pid)
    if start is None:
        raise LabError(f"no process {pid}")
    rec = RunRecord(run_id, pid, start, time.time(), list(sys.argv),
                    str(logdir) if logdir is not None else None)
    RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = RUN_DIR / f".{run_id}.json.tmp"
    tmp.write_text(json.dumps(asdict(rec)) + "\n")
    tmp.replace(RUN_DIR / f"{run_id}.json")
    return rec


def remove_record(run_id: str) -> None:
    """Forget run ``run_id``."""
    with contextlib.suppress(FileNotFoundError):
        (RUN_DIR / f"{run_id}.json").unlink()


def read_records() -> dict[str, RunRecord]:
    """Every run record, by run id (unreadable ones are skipped)."""
    out: dict[str, RunRecord] = {}
    if not RUN_DIR.is_dir():
        return out
    for f in RUN_DIR.glob("*.json"):
        try:
            rec = RunRecord(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        out[rec.run_id] = rec
    return out


def sweep() -> list[str]:
    """Delete the namespaces left by lab runs whose creating process is gone.

    Returns the namespaces removed. Only ``mcp-<run id>-*`` namespaces whose run id has a
    record under ``/run/mcastproxy-lab/`` are considered; runs still alive are left alone.
    Records of dead runs are removed once their namespaces are.
    """
    records = read_records()
    dead = {rid for rid, rec in records.items() if not rec.creator_alive}
    removed = []
    for ns in list_namespaces():
        if run_id_of(ns) in dead:
            delete_namespace(ns)
            removed.append(ns)
    for rid in dead:
        _remove_logdir(records[rid])
        remove_record(rid)
    return removed


def _remove_logdir(rec: RunRecord) -> None:
    """A dead run's log directory, if it is one a lab makes (``<tmp>/mcp-<run id>-*``)."""
    if rec.logdir is None:
        return
    path = Path(rec.logdir)
    if path.parent == Path(tempfile.gettempdir()) and path.name.startswith(
            f"{PREFIX}{rec.run_id}-"):
        shutil.rmtree(path, ignore_errors=True)
