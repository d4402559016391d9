"""Every namespace and process of a run goes away: on leaving the ``with`` block, on an
exception, on a failed build, on SIGTERM; and after SIGKILL, at the next sweep. Namespaces
that are not ours are never touched.

Topology ``lan_pair``::

    router eth0 ------------ eth0 host     (a ``sleep`` runs in host)
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mcastlab
import mcastproxy
from mcastlab import Lab, LabError, netns, sweep, topologies, wait_until

pytestmark = pytest.mark.netns


def gone(pid: int) -> bool:
    return not netns._alive(pid)  # the zombie-aware check the sweep uses


def ours_left(run_id: str) -> list[str]:
    return [ns for ns in netns.list_namespaces() if netns.run_id_of(ns) == run_id]


def test_leaving_the_block_removes_namespaces_processes_and_record() -> None:
    with Lab(topologies.lan_pair()) as lab:
        names = set(lab.namespaces.values())
        assert names <= set(netns.list_namespaces())
        assert all(n.startswith(f"mcp-{lab.run_id}-") for n in names)
        assert (netns.RUN_DIR / f"{lab.run_id}.json").exists()
        sleeper = lab.popen("host", "sleep", "60")
        # Not started through the lab: found in the namespace and killed all the same.
        stray = int(lab.run("host", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"))
    assert not names & set(netns.list_namespaces())
    assert sleeper.returncode is not None
    wait_until(lambda: gone(stray), timeout=5)
    assert not (netns.RUN_DIR / f"{lab.run_id}.json").exists()


def test_an_exception_in_the_block_still_cleans_up() -> None:
    seen: list[Lab] = []

    def fail_inside() -> None:
        with Lab(topologies.lan_pair()) as lab:
            seen.append(lab)
            lab.receiver("host", "eth0")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    (lab,) = seen
    assert ours_left(lab.run_id) == []
    assert all(p.returncode is not None for p in lab.procs)


def test_a_failed_build_leaves_nothing() -> None:
    t = topologies.lan_pair()
    t.host("host").sysctl("net.ipv4.no_such_setting", 1)
    lab = Lab(t)
    with pytest.raises(LabError, match="no_such_setting"):
        lab.up()
    assert ours_left(lab.run_id) == []
    assert not (netns.RUN_DIR / f"{lab.run_id}.json").exists()


def test_two_labs_of_one_topology_coexist(make_lab: Callable) -> None:
    a, b = make_lab(topologies.lan_pair()), make_lab(topologies.lan_pair())
    assert a.run_id != b.run_id
    assert a.addresses("host", "eth0", family=4) == b.addresses("host", "eth0", family=4)


# -- a run that is killed -------------------------------------------------------------------

CHILD = """
import json, time
from mcastlab import Lab, topologies
lab = Lab(topologies.lan_pair()).up()
p = lab.popen("host", "sleep", "60")
print(json.dumps({"run_id": lab.run_id, "namespaces": list(lab.namespaces.values()),
                  "pid": p.pid, "logdir": str(lab.logdir)}), flush=True)
time.sleep(60)
"""


@pytest.fixture
def child_run() -> Iterator[tuple[subprocess.Popen[str], dict]]:
    """Another process that builds a lab, starts ``sleep 60`` in it and waits."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        str(Path(m.__file__).resolve().parents[1]) for m in (mcastproxy, mcastlab))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 20)
    assert ready, "the child lab did not come up"
    info = json.loads(child.stdout.readline())
    try:
        yield child, info
    finally:
        child.kill()
        child.wait()
        for ns in info["namespaces"]:
            netns.delete_namespace(ns)
        shutil.rmtree(info["logdir"], ignore_errors=True)


def test_sigterm_takes_the_lab_down(child_run: tuple[subprocess.Popen[str], dict]) -> None:
    child, info = child_run
    child.send_signal(signal.SIGTERM)
    assert child.wait(10) == -signal.SIGTERM  # cleaned up, then died of the signal as before
    assert ours_left(info["run_id"]) == []
    wait_until(lambda: gone(info["pid"]), timeout=5)
    assert info["run_id"] not in netns.read_records()


def test_sweep_removes_a_killed_run(child_run: tuple[subprocess.Popen[str], dict]) -> None:
    child, info = child_run
    child.kill()
    child.wait(10)
    assert info["run_id"] in netns.read_records()  # the record outlives its creator
    assert Path(info["logdir"]).is_dir()
    sweep()  # (another session's sweep at its start may get there first: the same result)
    assert ours_left(info["run_id"]) == []
    assert not Path(info["logdir"]).exists()  # its logs too: the host as it was
    wait_until(lambda: gone(info["pid"]), timeout=5)
    assert info["run_id"] not in netns.read_records()


def test_sweep_leaves_live_runs_and_foreign_namespaces(make_lab: Callable) -> None:
    live = make_lab(topologies.lan_pair())
    tag = netns.new_run_id()
    foreign = [f"other-{tag}", f"mcp-{tag}-unrecorded"]  # the second looks like ours: no record
    for ns in foreign:
        netns.run(["ip", "netns", "add", ns])
    try:
        removed = sweep()
        present = set(netns.list_namespaces())
        assert set(foreign) <= present
        assert set(live.namespaces.values()) <= present
        assert not set(removed) & (set(foreign) | set(live.namespaces.values()))
    finally:
        for ns in foreign:
            netns.run(["ip", "netns", "del", ns], check=False)
