"""``Lab``: a ``Topology`` built in network namespaces, the processes run in it, and teardown.

A lab is brought up once and down once::

    with Lab(topology) as lab:          # or lab = Lab(topology).up(); ...; lab.down()
        lab.run("sub1", "ip", "addr")   # stdout; CommandError with stderr on failure
        rx = lab.receiver("sub1", "eth0")
        ...

Building runs these steps, each as few ``ip`` calls as the step allows:

1. write the run record (``netns.write_record``), so a sweep can tell the run is alive;
2. create the namespaces ``mcp-<run id>-<name>``;
3. in each, set ``accept_dad=0`` and ``rp_filter=0`` for all and default interfaces (stand-
   alone bridge namespaces also get IPv6 turned off: a switch has no addresses);
4. create every veth pair directly in its two namespaces, so nothing ever appears in the
   root namespace, then the bridges and their ports (ports get IPv6 turned off too);
5. set the hosts' own sysctls, add the addresses (IPv6 ones ``nodad``), bring lo and every
   interface up, add the routes;
6. wait until every interface is up and every IPv6-enabled one has a link-local address,
   and no address anywhere is tentative.

Teardown stops the processes the lab started (SIGTERM, then SIGKILL), kills anything else
still running in its namespaces, deletes the namespaces and the run record. It runs on
leaving the ``with`` block (an exception included), at interpreter exit, and on SIGTERM or
SIGHUP (after which the previous disposition of the signal applies). A run killed outright
(SIGKILL) is cleaned up by the next ``netns.sweep()``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import mcastlab
import mcastproxy
from mcastlab import inject, netns
from mcastlab.capture import Capture
from mcastlab.headend import Headend, HeadendOutput, headend_args
from mcastlab.netns import LabError
from mcastlab.poll import wait_until
from mcastlab.procs import Event, JsonProc, Proc
from mcastlab.prometheus import Prometheus
from mcastlab.proxy import Forwarding, Proxy
from mcastlab.receiver import DEFAULT_PORT, Receiver
from mcastlab.sender import DEFAULT_TTL, sender_args
from mcastlab.topology import Iface, Topology

_BASE_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}
_SWITCH_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}


class Lab:
    """A topology brought up in network namespaces of a run of its own."""

    def __init__(
        self,
        topology: Topology,
        *,
        run_id: str | None = None,
        settle_timeout: float = 10.0,
        keep_logs: bool = False,
    ) -> None:
        topology.validate()
        if run_id is not None and netns.run_id_of(netns.namespace_name(run_id, "x")) != run_id:
            raise ValueError(f"run id {run_id!r}: six characters of a-z and 0-9")
        self.topology = topology
        self.run_id = run_id or netns.new_run_id()
        self.settle_timeout = settle_timeout
        self.keep_logs = keep_logs
        self.logdir: Path | None = None
        self._procs: list[Proc] = []
        self._state = "new"

    # -- names ----------------------------------------------------------------------------

    @property
    def namespaces(self) -> dict[str, str]:
        """Lab name (host or stand-alone bridge) -> namespace name."""
        return {n: netns.namespace_name(self.run_id, n) for n in self.topology.namespaces()}

    def ns(self, name: str) -> str:
        """The namespace of host (or stand-alone bridge) ``name``."""
        if name not in self.topology.namespaces():
            raise KeyError(f"no host {name!r} in this lab")
        return netns.namespace_name(self.run_id, name)

    @property
    def procs(self) -> list[Proc]:
        """The processes started in this lab, oldest first."""
        return list(self._procs)

    def __repr__(self) -> str:
        return f"<Lab {self.run_id} {self._state}: {', '.join(self.topology.namespaces())}>"

    # -- up and down ----------------------------------------------------------------------

    def up(self) -> Self:
        """Build the topology; on any failure, tear down what was built and re-raise."""
        if self._state != "new":
            raise LabError(f"lab {self.run_id} is {self._state}; a lab goes up once")
        self._state = "up"
        _register(self)
        try:
            self.logdir = Path(tempfile.mkdtemp(prefix=f"mcp-{self.run_id}-"))
            # A run killed before its teardown: the next sweep removes its logs too.
            netns.write_record(self.run_id, logdir=None if self.keep_logs else self.logdir)
            self._build()
            self._settle()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop processes, delete the namespaces and the run record. Idempotent.

        Re-entrant too: a signal arriving in the middle of a teardown runs it again from the
        start (every step tolerates what is already gone), and so finishes it.
        """
        if self._state not in ("up", "stopping"):
            return
        self._state = "stopping"
        for p in reversed(self._procs):
            with contextlib.suppress(Exception):
                p.stop(grace=1.0)
        mine = set(self.namespaces.values())
        for ns in netns.list_namespaces():
            if ns in mine or netns.run_id_of(ns) == self.run_id:
                netns.delete_namespace(ns)
        netns.remove_record(self.run_id)
        if self.logdir is not None and not self.keep_logs:
            shutil.rmtree(self.logdir, ignore_errors=True)
        # Only now: a teardown that failed stays registered, so that interpreter exit or a
        # signal tries it again (and the next sweep after that).
        self._state = "down"
        _unregister(self)

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def _build(self) -> None:
        t = self.topology
        names = t.namespaces()
        switches = {b.name for b in t.bridges if b.host is None}
        netns.ip_batch(f"netns add {self.ns(n)}" for n in names)
        for n in names:
            netns.sysctl_in(self.ns(n), _BASE_SYSCTLS | (_SWITCH_SYSCTLS if n in switches else {}))
        netns.ip_batch(
            f"link add {self._veth_end(v.a)} type veth peer {self._veth_end(v.b)}"
            for v in t.all_veths()
        )
        ports = t.bridge_ports()
        for n in names:
            lines = []
            for b in t.bridges:
                if b.namespace == n:
                    mac = f" address {b.mac}" if b.mac else ""
                    snoop = 1 if b.snooping else 0
                    opts = f"stp_state 0 mcast_snooping {snoop}"
                    lines.append(f"link add name {b.name}{mac} type bridge {opts}")
                    lines += [f"link set {p.port} master {b.name}" for p in b.ports]
            netns.ip_batch(lines, ns=self.ns(n))
            settings = {
                f"net/ipv6/conf/{port}/disable_ipv6": "1"
                for (pns, port) in ports
                if pns == n and n not in switches
            }
            if n in t.hosts_by_name:
                settings |= t.hosts_by_name[n].sysctls
            netns.sysctl_in(self.ns(n), settings)
        for n in names:
            lines = []
            ifaces = list(t.interfaces(n))
            for i in ifaces:
                for a in i.addrs:
                    nodad = " nodad" if ":" in a else ""
                    lines.append(f"address add {a} dev {i.name}{nodad}")
            lines.append("link set lo up")
            lines += [f"link set {i.name} up" for i in ifaces]
            if n in t.hosts_by_name:
                lines += [f"route add {' '.join(r.words())}" for r in t.hosts_by_name[n].routes]
            netns.ip_batch(lines, ns=self.ns(n))

    def _veth_end(self, end: Iface) -> str:
        words = [f"name {end.name}"]
        if end.mac:
            words.append(f"address {end.mac}")
        if end.mtu:
            words.append(f"mtu {end.mtu}")
        if end.index:
            words.append(f"index {end.index}")
        words.append(f"netns {self.ns(end.host)}")
        return " ".join(words)

    def _expectations(self) -> dict[str, tuple[set[str], set[str]]]:
        """Per namespace: interfaces that must be up, and those that must have a link-local."""
        t = self.topology
        ports = t.bridge_ports()
        out: dict[str, tuple[set[str], set[str]]] = {}
        for n in t.namespaces():
            host = t.hosts_by_name.get(n)
            up: set[str] = set()
            ll: set[str] = set()
            for i in t.interfaces(n):
                bridge = next((b for b in t.bridges if (b.namespace, b.name) == (n, i.name)), None)
                # A bridge has carrier once a port forwards, but its operstate follows through
                # the kernel's link watch, up to a second later. A switch on its own does not
                # need it (its ports forward at once); a bridge that is a host's interface
                # does, for its link-local address. A bridge with no ports never gets there.
                if bridge is not None and (host is None or not bridge.ports):
                    continue
                up.add(i.name)
                if host is not None and (n, i.name) not in ports and not host.ipv6_disabled(i.name):
                    ll.add(i.name)
            out[n] = (up, ll)
        return out

    def _settle(self) -> None:
        pending = self._expectations()
        problems: dict[str, str] = {}

        def settled() -> bool:
            for n in list(pending):
                up, ll = pending[n]
                state = json.loads(netns.run(["ip", "-n", self.ns(n), "-j", "address", "show"]))
                missing = []
                for link in state:
                    name = link.get("ifname")
                    infos = link.get("addr_info", [])
                    if name in up and link.get("operstate") != "UP":
                        missing.append(f"{name} is {link.get('operstate')}")
                    if name in ll and not any(
                        a.get("family") == "inet6" and a.get("scope") == "link" for a in infos
                    ):
                        missing.append(f"{name} has no link-local address")
                    missing += [
                        f"{name} {a.get('local')} is tentative"
                        for a in infos
                        if a.get("tentative") or a.get("dadfailed")
                    ]
                if missing:
                    problems[n] = "; ".join(missing)
                else:
                    problems.pop(n, None)
                    del pending[n]
            return not pending

        wait_until(
            settled,
            self.settle_timeout,
            0.02,
            message=lambda: f"lab {self.run_id} did not settle: {problems}",
        )

    # -- commands and processes -------------------------------------------------------------

    def _require_up(self) -> None:
        if self._state != "up":
            raise LabError(f"lab {self.run_id} is {self._state}, not up")

    def run(
        self,
        host: str,
        *argv: str,
        input: str | None = None,
        timeout: float = 30.0,
        check: bool = True,
    ) -> str:
        """Run a command in ``host``; its stdout, or ``CommandError`` carrying its stderr."""
        self._require_up()
        return netns.run_in(self.ns(host), argv, input=input, timeout=timeout, check=check)

    def _log(self, host: str, what: str) -> Path:
        assert self.logdir is not None
        return self.logdir / f"{host}-{what}-{len(self._procs)}.log"

    def _track(self, p: Proc) -> Any:
        self._procs.append(p)
        return p

    def popen(self, host: str, *argv: str, env: dict[str, str] | None = None) -> Proc:
        """Start a long-running command in ``host``; stopped when the lab goes down.

        Its stdout and stderr go to ``proc.log`` (read them with ``proc.output()``).
        """
        self._require_up()
        name = Path(argv[0]).name if argv else "proc"
        return self._track(Proc(self.ns(host), argv, log=self._log(host, name), env=env))

    def python_env(self) -> dict[str, str]:
        """The environment for Python started in the lab: this mcastproxy and this lab on the
        path, installed or not."""
        srcs = [str(Path(m.__file__).resolve().parents[1]) for m in (mcastproxy, mcastlab)]
        env = dict(os.environ)
        paths = [*dict.fromkeys(srcs), env.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def python(self, host: str, module: str, *args: str) -> Proc:
        """Start ``python -m module args`` (this interpreter) in ``host``."""
        self._require_up()
        argv = [sys.executable, "-m", module, *args]
        return self._track(
            Proc(self.ns(host), argv, log=self._log(host, module), env=self.python_env())
        )

    def python_json(self, host: str, module: str, *args: str) -> JsonProc:
        """Run ``python -m module args`` in ``host``, reading its JSON-lines output as events."""
        self._require_up()
        argv = [sys.executable, "-m", module, *args]
        return self._track(
            JsonProc(self.ns(host), argv, log=self._log(host, module), env=self.python_env())
        )

    def proxy(
        self,
        config: str,
        *,
        host: str = "proxy",
        workdir: Path | None = None,
        args: Sequence[str] = (),
        timeout: float = 10.0,
        forwarding: Forwarding = "kernel",
    ) -> Proxy:
        """Start ``mcastproxy run`` in ``host`` with ``config`` (YAML); returns once it is ready.

        Its configuration file and status socket go to ``workdir`` (default: the lab's log
        directory), ``args`` are more options of ``run``. The ``Proxy`` reads its status,
        reloads and stops it; it is stopped, at the latest, when the lab goes down.
        ``forwarding="recorded"``: its routes are recorded in memory, not installed in the
        kernel (``mcastlab.recorded``: for a kernel without multicast routing).
        """
        self._require_up()
        return Proxy(self, config, host=host, workdir=workdir, args=args, timeout=timeout,
                     forwarding=forwarding)

    def receiver(
        self, host: str, iface: str, *, port: int = DEFAULT_PORT, keep_version: bool = False
    ) -> Receiver:
        """Start a receiver on ``host``'s ``iface``; then ``rx.join(mode, group, *sources)``."""
        self._require_up()
        rx = Receiver(
            self.ns(host),
            iface,
            log=self._log(host, "receiver"),
            port=port,
            keep_version=keep_version,
            env=self.python_env(),
        )
        return self._track(rx)

    def capture(self, host: str, iface: str) -> Capture:
        """Start capturing IGMP/MLD on ``host``'s ``iface``; returns once it is listening."""
        self._require_up()
        cap = Capture(self.ns(host), iface, log=self._log(host, "capture"), env=self.python_env())
        return self._track(cap)

    def start_sender(
        self,
        host: str,
        group: str,
        *,
        count: int,
        rate: float,
        port: int = DEFAULT_PORT,
        iface: str | None = None,
        source: str | None = None,
        ttl: int = DEFAULT_TTL,
        sender_id: str | None = None,
        size: int = 0,
    ) -> JsonProc:
        """Start sending ``count`` packets at ``rate``/s to ``group`` from ``host``.

        Its one event, ``{"event": "done", "sent": ...}``, comes when it has finished.
        """
        self._require_up()
        args = sender_args(
            group,
            port=port,
            count=count,
            rate=rate,
            iface=iface,
            source=source,
            ttl=ttl,
            sender_id=host if sender_id is None else sender_id,
            size=size,
        )
        argv = [sys.executable, "-m", "mcastlab.sender", *args]
        proc = JsonProc(self.ns(host), argv, log=self._log(host, "sender"), env=self.python_env())
        return self._track(proc)

    def send(
        self,
        host: str,
        group: str,
        *,
        count: int,
        rate: float,
        port: int = DEFAULT_PORT,
        iface: str | None = None,
        source: str | None = None,
        ttl: int = DEFAULT_TTL,
        sender_id: str | None = None,
        size: int = 0,
    ) -> Event:
        """Send ``count`` packets at ``rate``/s to ``group`` from ``host`` and wait until done.

        Returns the sender's summary (``sent``, ``errors``, ``first_error``, ``start``,
        ``end``); ``LabError`` if the socket could not be set up or any packet not sent.
        """
        proc = self.start_sender(
            host,
            group,
            count=count,
            rate=rate,
            port=port,
            iface=iface,
            source=source,
            ttl=ttl,
            sender_id=sender_id,
            size=size,
        )
        done = proc.wait_event(lambda e: e.get("event") in ("done", "error"), count / rate + 10.0)
        proc.stop()
        if done["event"] == "error":
            raise LabError(f"sender in {host}: {done['error']}")
        if done["errors"]:
            raise LabError(
                f"sender in {host}: {done['errors']} errors, first {done['first_error']}"
            )
        return done

    def headend(
        self,
        outputs: Sequence[HeadendOutput],
        *,
        rate: float,
        count: int,
        port: int = DEFAULT_PORT,
        ttl: int = DEFAULT_TTL,
        sender_id: str = "headend",
        size: int = 0,
        max_seconds: float | None = None,
        report_every: float = 0.0,
    ) -> Headend:
        """Start sending one numbered stream into every output's host at once.

        Each ``HeadendOutput(host, iface, group, source)`` gets the same packets (same
        sender id and sequence numbers); ``pause``/``resume`` an output by its name (the
        host unless named). It runs in the first output's host and stops, at the latest,
        after ``max_seconds`` (default: the stream's length and half a minute).
        """
        self._require_up()
        placed = [o._replace(host=self.ns(o.host), name=o.label) for o in outputs]
        args = headend_args(placed, rate=rate, count=count, port=port, ttl=ttl,
                            sender_id=sender_id, size=size, max_seconds=max_seconds,
                            report_every=report_every)
        host = outputs[0].host
        he = Headend(self.ns(host), args, log=self._log(host, "headend"),
                     env=self.python_env())
        return self._track(he)

    # -- reading the state ----------------------------------------------------------------

    def sysctl(self, host: str, key: str, value: object | None = None) -> str:
        """Read a sysctl in ``host``, after setting it to ``value`` if given."""
        if value is not None:
            netns.sysctl_in(self.ns(host), {key: str(value)})
        return self.run(host, "sysctl", "-n", key).strip()

    def addresses(
        self, host: str, iface: str, *, family: int | None = None, scope: str | None = None
    ) -> list[str]:
        """Addresses on ``host``'s ``iface`` (``scope``: "global", "link", ...), in kernel order."""
        out = json.loads(self.run(host, "ip", "-j", "address", "show", "dev", iface))
        fams = {4: "inet", 6: "inet6"}
        return [
            a["local"]
            for link in out
            for a in link.get("addr_info", [])
            if (family is None or a.get("family") == fams[family])
            and (scope is None or a.get("scope") == scope)
        ]

    def link_local(self, host: str, iface: str) -> str:
        """The IPv6 link-local address of ``host``'s ``iface`` (MLD messages come from it)."""
        found = self.addresses(host, iface, family=6, scope="link")
        if not found:
            raise LabError(f"{host}:{iface} has no IPv6 link-local address")
        return found[0]

    def ifindex(self, host: str, iface: str) -> int:
        """The interface index of ``host``'s ``iface``."""
        out = json.loads(self.run(host, "ip", "-j", "link", "show", "dev", iface))
        return int(out[0]["ifindex"])

    def prometheus(self, host: str, targets: Sequence[str], *,
                   interval: float = 1.0) -> Prometheus:
        """Start a Prometheus server in ``host`` scraping ``targets`` (``ADDRESS:PORT``)
        every ``interval`` seconds; returns once it is ready."""
        self._require_up()
        return Prometheus(self, host, targets, interval=interval)

    def mac(self, host: str, iface: str) -> bytes:
        """The MAC address of ``host``'s ``iface``."""
        self._require_up()
        return inject.mac_of(self.ns(host), iface)

    def inject(self, host: str, iface: str, packets: Iterable[bytes], *,
               to: bytes | None = None) -> int:
        """Send forged IP packets (whole, as built) out of ``host``'s ``iface``, bypassing its
        IP stack; ``to``: the MAC for packets to a unicast address. The number sent."""
        self._require_up()
        return inject.inject(self.ns(host), iface, packets, to=to)

    def set_link(self, host: str, iface: str, *, up: bool) -> None:
        """Bring ``host``'s ``iface`` up or down (carrier loss on a veth, seen by both ends)."""
        self.run(host, "ip", "link", "set", iface, "up" if up else "down")


# -- cleanup on exit and on signals -----------------------------------------------------------

_LIVE: list[Lab] = []
_LOCK = threading.Lock()
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_previous_handlers: dict[int, Any] = {}
_installed = False


def _register(lab: Lab) -> None:
    global _installed  # noqa: PLW0603 - one process-wide installation
    with _LOCK:
        _LIVE.append(lab)
        if _installed:
            return
        _installed = True
    atexit.register(cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for sig in _HANDLED_SIGNALS:
            _previous_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, _on_signal)


def _unregister(lab: Lab) -> None:
    with _LOCK, contextlib.suppress(ValueError):
        _LIVE.remove(lab)


def cleanup_all() -> None:
    """Take down every lab of this process that is still up."""
    for lab in list(reversed(_LIVE)):
        with contextlib.suppress(Exception):
            lab.down()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    cleanup_all()
    prev = _previous_handlers.get(signum)
    if callable(prev):
        prev(signum, frame)
    elif prev != signal.SIG_IGN:
        # The default action: die of the signal, as if we had never caught it.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
