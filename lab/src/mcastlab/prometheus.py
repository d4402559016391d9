"""A Prometheus server in a lab host, scraping the proxy: ``Lab.prometheus(host, targets)``.

The metrics tests hold the proxy's exporter to what a real Prometheus makes of it (Debian's
``prometheus``): it is started in a lab namespace with a configuration of its own (the
targets, a short scrape interval), its data in the lab's log directory, listening on that
namespace's loopback; ``query`` asks its HTTP API (``/api/v1/query``) from inside the
namespace and returns the instant vector as {labels: value}. Stopped with the lab.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mcastlab.headend import in_namespace
from mcastlab.netns import LabError
from mcastlab.poll import wait_until

if TYPE_CHECKING:
    from mcastlab.lab import Lab
    from mcastlab.procs import Proc

LISTEN = "127.0.0.1:9090"
Labels = tuple[tuple[str, str], ...]


def available() -> bool:
    """Whether a Prometheus server is installed."""
    return shutil.which("prometheus") is not None


class Prometheus:
    """A Prometheus server running in a lab host."""

    proc: Proc

    def __init__(self, lab: Lab, host: str, targets: Sequence[str], *,
                 interval: float = 1.0, timeout: float = 20.0) -> None:
        if not available():
            raise LabError("no prometheus on PATH (Debian: apt install prometheus)")
        assert lab.logdir is not None
        self.lab, self.host = lab, host
        home = Path(lab.logdir) / f"prometheus-{host}"
        home.mkdir(exist_ok=True)
        config = home / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": f"{int(interval * 1000)}ms",
                       "evaluation_interval": f"{int(interval * 1000)}ms"},
            "scrape_configs": [{"job_name": "mcastproxy", "scrape_interval":
                                f"{int(interval * 1000)}ms",
                                "static_configs": [{"targets": list(targets)}]}]}))
        self.proc = lab.popen(host, "prometheus", f"--config.file={config}",
                              f"--storage.tsdb.path={home / 'data'}",
                              f"--web.listen-address={LISTEN}", "--log.level=warn")
        wait_until(self._ready, timeout, message=lambda: (
            f"prometheus in {host} not ready within {timeout} s:\n{self.proc.output()[-2000:]}"))

    def _get(self, path: str) -> bytes:
        # The socket is made in the namespace.
        with (in_namespace(self.lab.ns(self.host)),
              urllib.request.urlopen(f"http://{LISTEN}{path}", timeout=5) as r):
            return bytes(r.read())

    def _ready(self) -> bool:
        if not self.proc.running:
            raise LabError(f"prometheus exited:\n{self.proc.output()[-2000:]}")
        try:
            return self._get("/-/ready").startswith(b"Prometheus Server is Ready")
        except OSError:
            return False

    def query(self, expr: str) -> dict[Labels, float]:
        """The instant vector of ``expr`` now: labels (without ``__name__``) -> value."""
        body = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        if body.get("status") != "success":
            raise LabError(f"query {expr!r}: {body}")
        out: dict[Labels, float] = {}
        for item in body["data"]["result"]:
            labels = tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__"))
            out[labels] = float(item["value"][1])
        return out

    def targets_up(self) -> bool:
        """Whether every target's last scrape succeeded."""
        return all(v == 1.0 for v in self.query("up").values()) and bool(self.query("up"))
