"""FRR (zebra and pimd) run as a router inside one host of a lab, and read through vtysh.

Each instance lives in a directory of its own (the test's tmp directory): its config files,
pid files, the zebra API socket and the vty sockets (``--vty_socket``; vtysh is pointed at
them the same way, and keeps its history there with ``-H`` rather than in ``~/.history_frr``),
so several instances can run at once and nothing of the host's FRR (``/etc/frr``,
``/run/frr``, the system service) is used or touched. FRR also makes a crash-log directory
per process under ``/var/tmp/frr`` and never removes ``/var/tmp/frr`` itself; the daemons
run in the mount namespace that ``ip netns exec`` gives each command, with a directory of
the instance bind-mounted over ``/var/tmp``, so that goes into the instance's directory too.

The daemons run as root with the vty group as their group (``-u root -g frrvty``): FRR
refuses to start when the user is not in the vty group its build names, and a group given
with ``-g`` counts as one of the user's groups. They are started with ``lab.popen`` and so
stopped (SIGTERM, then SIGKILL) when the lab goes down, however the test ends; their logs
(stdout, debug level) are those processes' logs.

FRR 8.4's JSON, as this module reads it::

    show ip igmp interface json
      {"eth0": {"name": "eth0", "state": "up", "address": "10.0.1.2", "index": 2,
                "version": 3, "querier": true, "querierIp": "10.0.1.2", ...}}
    show ip igmp interface eth0 json
      {"eth0": {..., "querier": "local", "timerQueryInterval": 5,
                "timerGroupMembershipIntervalMsec": 12000, "timerLastMemberQueryMsec": 2000,
                "timerQueryResponseIntervalMsec": 2000, "timerRobustnessVariable": 2, ...}}
    show ip igmp groups json
      {"totalGroups": 2, "watermarkLimit": 0,
       "eth0": {"name": "eth0", "state": "up", "address": "10.0.1.2", ...,
                "groups": [{"group": "232.1.1.1", "mode": "INCLUDE", "timer": "--:--:--",
                            "sourcesCount": 1, "version": 3, "uptime": "00:00:02"}, ...]}}
      (no interface key at all once the interface has no group)
    show ip igmp sources json
      {"eth0": {"name": "eth0",
                "232.1.1.1": {"group": "232.1.1.1",
                              "sources": [{"source": "10.0.1.2", "timer": "00:28",
                                           "forwarded": true, "uptime": "00:00:02"}]},
                "239.1.1.1": {"group": "239.1.1.1", "sources": [{"source": "*", ...}]}}}

An EXCLUDE-mode group with no excluded source is listed with one source ``*``. Neither
command names the host that reported; with ``debug igmp packets`` pimd logs each record of
each IGMPv3 report it receives with the reporter's address (``FrrRouter.heard``).
"""

from __future__ import annotations

import grp
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcastlab import Lab, Proc, wait_until
from mcastlab.netns import run

FRR_DIR = Path("/usr/lib/frr")
DAEMONS = ("zebra", "pimd")
VTY_GROUP = "frrvty"  # Debian's build: --enable-vty-group=frrvty


def frr_missing() -> str | None:
    """Why FRR cannot run here (what is not installed), or None if it can."""
    if shutil.which("vtysh") is None:
        return "FRR is not installed: no vtysh on PATH (Debian: apt-get install frr)"
    for d in DAEMONS:
        if not os.access(FRR_DIR / d, os.X_OK):
            return f"FRR is not installed: no {FRR_DIR / d} (Debian: apt-get install frr)"
    return None


@dataclass(frozen=True)
class Membership:
    """One group as FRR holds it on an interface: its filter mode, IGMP version, sources.

    ``sources`` is FRR's source list: addresses in INCLUDE mode, ``{"*"}`` for an EXCLUDE
    mode group that excludes nothing.
    """

    mode: str
    version: int
    sources: frozenset[str]


@dataclass(frozen=True)
class Heard:
    """One group record of an IGMPv3 report, as pimd logged receiving it."""

    reporter: str
    iface: str
    type: int  # RFC 3376 §4.2.12: 1 IS_IN, 2 IS_EX, 3 TO_IN, 4 TO_EX, 5 ALLOW, 6 BLOCK
    group: str


_RECORD = re.compile(
    r"Recv IGMP report v3 from (\S+) on (\S+): record=\d+ type=(\d+) auxdatalen=\d+"
    r" sources=\d+ group=(\S+)"
)


class FrrRouter:
    """zebra and pimd running in ``host`` of ``lab``, with state in ``workdir``."""

    def __init__(self, lab: Lab, host: str, workdir: Path, pimd_config: str) -> None:
        self.lab = lab
        self.host = host
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "var-tmp").mkdir(exist_ok=True)
        (self.dir / "zebra.conf").write_text(f"hostname {host}\n")
        (self.dir / "pimd.conf").write_text(f"hostname {host}\n{pimd_config}")
        self.procs: dict[str, Proc] = {}
        for daemon, ready in (("zebra", self._zserv), ("pimd", self.dir / "pimd.vty")):
            self._start(daemon)
            wait_until(lambda r=ready: self._check_running() and r.exists(), 10, 0.05,
                       message=lambda d=daemon: f"{d} did not start:\n{self.log(d)}")

    @property
    def _zserv(self) -> Path:
        return self.dir / "zserv.api"

    def _start(self, daemon: str) -> None:
        group = VTY_GROUP
        try:
            grp.getgrnam(group)
        except KeyError:  # a build without a vty group: FRR then checks nothing
            group = "root"
        d = self.dir
        argv = [
            str(FRR_DIR / daemon), "-u", "root", "-g", group,
            "-f", str(d / f"{daemon}.conf"), "-i", str(d / f"{daemon}.pid"),
            "-z", str(self._zserv), "--vty_socket", str(d),
            "-A", "127.0.0.1", "-P", "0",  # no TCP vty
            "--log", "stdout", "--log-level", "debug",
        ]
        script = (f"mount --bind {shlex.quote(str(d / 'var-tmp'))} /var/tmp"
                  f" && exec {shlex.join(argv)}")
        self.procs[daemon] = self.lab.popen(self.host, "sh", "-c", script)

    def _check_running(self) -> bool:
        for d, p in self.procs.items():
            if not p.running:
                raise AssertionError(f"{d} exited {p.returncode}:\n{p.output()[-3000:]}")
        return True

    def log(self, daemon: str) -> str:
        """What ``daemon`` logged so far."""
        return self.procs[daemon].output()

    def vtysh(self, command: str) -> str:
        """The output of one vtysh command (pimd's and zebra's, as vtysh merges them)."""
        self._check_running()
        # vtysh keeps a history of commands, even those given with -c, in ~/.history_frr
        # unless told where.
        argv = ["vtysh", "--vty_socket", str(self.dir), "-H", str(self.dir / "vtysh-history")]
        return run([*argv, "-c", command], timeout=10)

    def json(self, command: str) -> Any:
        """``command`` (without ``json``) run with ``json``, parsed."""
        return json.loads(self.vtysh(f"{command} json"))

    def igmp_interface(self, iface: str, *, detail: bool = False) -> dict[str, Any] | None:
        """FRR's IGMP state of ``iface``, None if it has none.

        ``show ip igmp interface json`` has ``querier`` true or false; the detail form
        (``show ip igmp interface IFACE json``) says ``querier`` "local" or "other" and adds
        the timers: ``timerQueryInterval`` (s), ``timerGroupMembershipIntervalMsec``,
        ``timerLastMemberQueryMsec``, ``timerQueryResponseIntervalMsec``,
        ``timerRobustnessVariable``, ...
        """
        return self.json(f"show ip igmp interface {iface if detail else ''}".strip()).get(iface)

    def wait_querier(self, iface: str, version: int = 3, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until pimd is the IGMP querier of ``iface`` in ``version``; its state then."""

        def ready() -> dict[str, Any] | None:
            i = self.igmp_interface(iface)
            ok = i and i.get("state") == "up" and i.get("querier") and i.get("version") == version
            return i if ok else None

        return wait_until(ready, timeout, 0.1, message=lambda: (
            f"FRR is not the IGMPv{version} querier on {iface}: {self.igmp_interface(iface)}\n"
            f"{self.log('pimd')[-3000:]}"))

    def memberships(self) -> dict[str, dict[str, Membership]]:
        """interface -> group -> Membership, from ``show ip igmp groups/sources json``."""
        groups = self.json("show ip igmp groups")
        sources = self.json("show ip igmp sources")
        out: dict[str, dict[str, Membership]] = {}
        for iface, state in groups.items():
            if not isinstance(state, dict):
                continue  # totalGroups, watermarkLimit
            per = sources.get(iface, {})
            out[iface] = {
                g["group"]: Membership(
                    g["mode"],
                    g["version"],
                    frozenset(s["source"] for s in per.get(g["group"], {}).get("sources", [])),
                )
                for g in state.get("groups", [])
            }
        # A group FRR lists sources for but not as a group would be a bug of FRR's: show it.
        for iface, per in sources.items():
            for g, entry in per.items():
                if isinstance(entry, dict) and g not in out.get(iface, {}):
                    out.setdefault(iface, {})[g] = Membership("?", 0, frozenset(
                        s["source"] for s in entry.get("sources", [])))
        return out

    def heard(self, match: Callable[[Heard], bool] = lambda h: True) -> list[Heard]:
        """The IGMPv3 group records pimd logged receiving (needs ``debug igmp packets``)."""
        found = (Heard(m[1], m[2], int(m[3]), m[4]) for m in _RECORD.finditer(self.log("pimd")))
        return [h for h in found if match(h)]
