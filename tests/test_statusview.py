"""``mcastproxy status VIEW`` (``statusview``): a part of the status as rows, filtered, from a
status document as the daemon answers it (served here by a one-shot socket, as the daemon's
is read)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from mcastproxy.cli import main
from mcastproxy.statusview import view

STATE: dict[str, Any] = {
    "upstreams": {
        "u1": {"usable": True, "priority": 0, "liveness": {},
               "groups": {"239.1.1.1": {"mode": "exclude", "sources": []},
                          "232.1.0.5": {"mode": "include", "sources": ["10.0.9.1"]}}},
        "u2": {"usable": False, "priority": 0, "liveness": {}, "groups": {}},
    },
    "downstream": {
        "d1/igmp": {
            "version": 3, "operating-version": 2, "oper-status": "up", "querier": "10.1.1.1",
            "is-querier": True,
            "statistics": {"received": {"total": 9, "query": 0, "report": 8, "leave": 1},
                           "sent": {"total": 4, "query": 4, "report": 0, "leave": 0},
                           "error": {"total": 1, "query": 0, "report": 1, "leave": 0}},
            "groups": {
                "239.1.1.1": {
                    "filter-mode": "exclude", "expire": 250.0, "up-time": 12.5,
                    "last-reporter": "10.1.1.12", "sources": {},
                    "host": {"10.1.1.11": {"filter-mode": "exclude", "sources": [],
                                           "expire": 240.0},
                             "10.1.1.12": {"filter-mode": "exclude", "sources": [],
                                           "expire": 250.0}},
                    "subscribers": ["10.1.1.11", "10.1.1.12"], "upstreams": ["u1"]},
                "232.1.0.5": {
                    "filter-mode": "include", "up-time": 3.0, "last-reporter": "10.1.1.11",
                    "sources": {"10.0.9.1": {"expire": 257.0, "up-time": 3.0,
                                             "host-count": 1,
                                             "host": {"10.1.1.11": {
                                                 "host-filter-mode": "include"}}}},
                    "host": {"10.1.1.11": {"filter-mode": "include", "sources": ["10.0.9.1"],
                                           "expire": 257.0}},
                    "subscribers": ["10.1.1.11"], "upstreams": ["u1"]}},
            "admission": {"groups-count": 2, "max-groups": 16384, "subscribers": 2,
                          "refused": {}}},
        "d1/mld": {"version": 2, "operating-version": 2, "oper-status": "down",
                   "querier": None, "is-querier": False, "groups": {
                       "ff1e::1:1": {"filter-mode": "exclude", "expire": 100.0,
                                     "up-time": 30.0, "last-reporter": None, "sources": {},
                                     "host": {}, "subscribers": [], "upstreams": ["u1"]}}},
    },
    "routes": [{"upstream": "u1", "source": "10.0.9.1", "group": "232.1.0.5",
                "downstream": ["d1"]}],
    "dropped": {"ttl-not-one": 3}, "drops": {"d1": {"IPv4 TTL is not 1": 3}},
    "events": {}, "engine": {"resets": 0, "last-error": None}, "errors": {},
}


def test_what_one_subscriber_gets_and_from_where() -> None:
    rows = view(STATE, "memberships", subscriber="10.1.1.11")
    assert [(r["group"], r["upstreams"]) for r in rows] == [("239.1.1.1", ["u1"]),
                                                            ("232.1.0.5", ["u1"])]
    assert view(STATE, "memberships", group="ff1e:0::1:1") == [
        {"interface": "d1", "protocol": "mld", "group": "ff1e::1:1", "subscriber": None,
         "filter-mode": "exclude", "sources": [], "expire": 100.0, "up-time": 30.0,
         "last-reporter": None, "upstreams": ["u1"]}]  # untracked: a row without a subscriber
    # Each subscriber's own mode, sources and expiry; the group's up-time and last reporter.
    (row,) = view(STATE, "memberships", subscriber="10.1.1.11", group="232.1.0.5")
    assert (row["filter-mode"], row["sources"], row["expire"], row["up-time"],
            row["last-reporter"]) == ("include", ["10.0.9.1"], 257.0, 3.0, "10.1.1.11")
    assert view(STATE, "memberships", subscriber="10.9.9.9") == []


def test_each_view_and_its_filters() -> None:
    assert [r["group"] for r in view(STATE, "upstreams", interface="u1")] == [
        "239.1.1.1", "232.1.0.5"]
    assert view(STATE, "flows", interface="d1")[0]["source"] == "10.0.9.1"
    assert view(STATE, "drops") == [{"interface": "d1", "reason": "IPv4 TTL is not 1",
                                     "count": 3}]
    assert [(r["protocol"], r["groups"]) for r in view(STATE, "interfaces")] == [
        ("igmp", 2), ("mld", 1)]
    igmp, mld = view(STATE, "interfaces")
    assert (igmp["oper-status"], igmp["version"], igmp["querier"], igmp["is-querier"],
            igmp["received"], igmp["errors"]) == ("up", 2, "10.1.1.1", True, 9, 1)
    assert (mld["oper-status"], mld["querier"], mld["received"]) == ("down", None, None)
    with pytest.raises(ValueError, match="--subscriber filters memberships only"):
        view(STATE, "flows", subscriber="10.1.1.11")


def serve(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def once() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(answer)

    thread = threading.Thread(target=once)
    thread.start()
    return thread


def test_the_command_prints_rows_or_json(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.sock"
    thread = serve(path, json.dumps(STATE).encode())
    assert main(["status", "memberships", "--socket", str(path), "--subscriber",
                 "10.1.1.12"]) == 0
    thread.join()
    assert capsys.readouterr().out.splitlines() == [
        "interface  protocol  group      subscriber  filter-mode  sources  expire  up-time  "
        "last-reporter  upstreams",
        "d1         igmp      239.1.1.1  10.1.1.12   exclude      -        250.0   12.5     "
        "10.1.1.12      u1",
    ]
    path.unlink()
    thread = serve(path, json.dumps(STATE).encode())
    assert main(["status", "drops", "--json", "--socket", str(path)]) == 0
    thread.join()
    assert json.loads(capsys.readouterr().out)[0]["count"] == 3


def test_a_filter_a_view_does_not_take_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "s.sock"
    thread = serve(path, json.dumps(STATE).encode())
    assert main(["status", "drops", "--group", "239.1.1.1", "--socket", str(path)]) == 2
    thread.join()
    assert capsys.readouterr().err == "mcastproxy status: --group does not filter drops\n"
