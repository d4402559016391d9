"""mcastproxy running in a lab: ``Lab.proxy(config)`` starts the daemon, ``Proxy`` holds it::

    with Lab(topologies.proxy_lab()) as lab:
        proxy = lab.proxy(configs.WHOLESALE)    # returns once its status socket is there
        proxy.status()["routes"]                # what ``mcastproxy status --json`` shows
        proxy.reload(other_config)              # SIGHUP; returns once it says it applied
        proxy.stop()                            # SIGTERM: it removes what it added to the kernel

The daemon (``mcastproxy run``) runs in the proxy's host (``"proxy"`` by default) with its
configuration file and status socket in a working directory (the lab's log directory unless
given), logging to its process log (``proxy.output()``). Should it exit before its status
socket appears, ``LabError`` carries the end of its log: the daemon's own reason (a bad
configuration, a kernel without multicast routing) rather than a timeout. With
``forwarding="recorded"`` the daemon's routes are recorded in memory, not installed in the
kernel (``mcastlab.recorded``), so it runs on a kernel without multicast routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mcastlab.netns import LabError
from mcastlab.poll import wait_until

if TYPE_CHECKING:
    from mcastlab.lab import Lab
    from mcastlab.procs import Proc

# struct sockaddr_un's sun_path: 108 octets with the terminating NUL.
_UNIX_PATH_MAX = 107

Forwarding = Literal["kernel", "recorded"]
# What runs the daemon: ``mcastproxy run``, or the same with routes recorded in memory
# (``mcastlab.recorded``) on a kernel without multicast routing.
FORWARDING: dict[str, str] = {"kernel": "mcastproxy", "recorded": "mcastlab.recorded"}
# Present when the kernel has IPv4 and IPv6 multicast routing (ipmr, ip6mr).
MROUTE_FILES = (Path("/proc/net/ip_mr_vif"), Path("/proc/net/ip6_mr_vif"))


def kernel_forwards() -> bool:
    """Whether this kernel has multicast routing for both families (``CONFIG_IP_MROUTE``,
    ``CONFIG_IPV6_MROUTE``)."""
    return all(p.exists() for p in MROUTE_FILES)


def best_forwarding() -> Forwarding:
    """The kernel's forwarding where it has it, recorded routes where not: for tests of what
    the proxy says and hears, which hold either way."""
    return "kernel" if kernel_forwards() else "recorded"


class Proxy:
    """``mcastproxy run`` in a lab host, with its configuration file and status socket."""

    daemon: Proc
    """The daemon's process (``output()``, ``pid``, ``popen`` to signal it)."""
    config: Path
    """Its configuration file: written before the start, and by ``reload``."""
    status_socket: Path
    """Where it answers ``mcastproxy status``."""

    def __init__(
        self,
        lab: Lab,
        config: str,
        *,
        host: str = "proxy",
        workdir: Path | None = None,
        args: Sequence[str] = (),
        timeout: float = 10.0,
        forwarding: Forwarding = "kernel",
    ) -> None:
        """Start the daemon with ``config`` (YAML) and wait until it is ready (``Lab.proxy``)."""
        if forwarding not in FORWARDING:
            raise LabError(f"forwarding {forwarding!r}: one of {', '.join(FORWARDING)}")
        workdir = workdir if workdir is not None else lab.logdir
        if workdir is None:
            raise LabError("the lab is not up")
        self.lab = lab
        self.host = host
        name = f"mcastproxy-{lab.run_id}-{len(lab.procs)}"  # new for each daemon started
        self.config = workdir / f"{name}.yaml"
        self.status_socket = workdir / f"{name}.sock"
        if len(str(self.status_socket)) > _UNIX_PATH_MAX:
            raise LabError(f"{self.status_socket}: too long for a UNIX socket; a shorter workdir")
        self.config.write_text(config)
        self.forwarding = forwarding
        self.daemon = lab.python(host, FORWARDING[forwarding], "run", "-c", str(self.config),
                                 "--status-socket", str(self.status_socket), *args)

        from mcastproxy.statussocket import answers  # noqa: PLC0415 (small; see status)

        def ready() -> bool:
            # Listening, not only there: the file appears at bind(), a moment before listen().
            if self.status_socket.exists() and answers(self.status_socket):
                return True
            if not self.daemon.running:
                raise LabError(f"mcastproxy in {host} exited {self.daemon.returncode} before "
                               f"it was ready:\n{self.output()[-3000:]}")
            return False

        wait_until(ready, timeout, message=lambda: (
            f"mcastproxy in {host} did not start within {timeout} s:\n{self.output()[-3000:]}"))

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.daemon.returncode}"
        return f"<Proxy in {self.lab.ns(self.host)}, {state}: {self.config}>"

    @property
    def running(self) -> bool:
        """Whether the daemon still runs."""
        return self.daemon.running

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.daemon.pid

    def output(self) -> str:
        """What the daemon logged so far."""
        return self.daemon.output()

    def status(self) -> dict[str, Any]:
        """What ``mcastproxy status --json`` shows."""
        # Here, not above: a lab that starts no daemon does not load it.
        from mcastproxy.daemon import query_status  # noqa: PLC0415

        return asyncio.run(query_status(self.status_socket))

    def reload(self, config: str | None = None, timeout: float = 10.0) -> None:
        """Write ``config`` (if given) and SIGHUP the daemon; wait until it says it applied."""
        if config is not None:
            self.config.write_text(config)
        before = self.output().count("configuration reloaded")
        self.daemon.popen.send_signal(signal.SIGHUP)
        wait_until(lambda: self.output().count("configuration reloaded") > before, timeout,
                   message=lambda: f"the daemon did not reload:\n{self.output()[-3000:]}")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the daemon (SIGKILL after ``grace`` seconds); its exit status. Idempotent."""
        code = self.daemon.stop(grace=grace)
        with contextlib.suppress(FileNotFoundError):
            self.status_socket.unlink()
        return code

    # -- reading the status -----------------------------------------------------------------

    def routes(self, group: str | None = None) -> list[dict[str, Any]]:
        """The routes the status shows, of ``group`` only if given."""
        g = None if group is None else str(ipaddress.ip_address(group))
        return [r for r in self.status()["routes"] if g is None or r["group"] == g]

    def feeders(self, group: str, link: str = "d1") -> set[str]:
        """The upstreams whose route for ``group`` forwards to ``link`` now."""
        return {r["upstream"] for r in self.routes(group) if link in r["downstream"]}

    def joined(self, group: str) -> set[str]:
        """The upstreams whose host side has joined ``group`` now."""
        g = str(ipaddress.ip_address(group))
        return {u for u, info in self.status()["upstreams"].items() if g in info["groups"]}
