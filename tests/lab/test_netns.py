"""Run ids in namespace names, and telling a live run from a dead one (no root needed)."""

from __future__ import annotations

import os
import subprocess

from mcastlab import netns


def test_names_carry_the_run_id() -> None:
    rid = netns.new_run_id()
    assert netns.run_id_of(netns.namespace_name(rid, "proxy")) == rid
    assert netns.run_id_of("mcp-abc123-proxy") == "abc123"
    assert netns.run_id_of("mcp-abc12-proxy") is None  # too short: not a run id of ours
    assert netns.run_id_of("other-abc123-proxy") is None


def test_a_record_is_alive_while_its_creator_runs() -> None:
    me = os.getpid()
    start = netns.process_start_time(me)
    assert start is not None
    assert netns.RunRecord("abc123", me, start, 0.0, []).creator_alive
    # Same pid, another start time: the pid was reused by someone else.
    assert not netns.RunRecord("abc123", me, start + 1, 0.0, []).creator_alive


def test_a_record_is_dead_once_its_creator_exits() -> None:
    p = subprocess.Popen(["sleep", "60"])
    start = netns.process_start_time(p.pid)
    assert start is not None
    rec = netns.RunRecord("abc123", p.pid, start, 0.0, [])
    assert rec.creator_alive
    p.kill()
    p.wait()
    assert not rec.creator_alive
