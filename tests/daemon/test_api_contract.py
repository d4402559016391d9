"""The API keeps to its own OpenAPI description, checked by schemathesis against the running
daemon (TLS listener, a write token): every operation, with generated and malformed requests
(its coverage and fuzzing phases); no answer is a server error, each has a code, content type
and body its description allows. The description covers the standard tree (RFC 8652/9398 and
the mcastproxy module, their bodies' JSON Schema made from the YANG schema), the clear-groups
actions, the YANG library and the modules. Its "schema-valid request accepted" check is left
out: a body the schema allows may still be refused, as it should, by the rules that span
fields (a default upstream that is no candidate) or by a stale If-Match (412). So is its
"missing required header" check, which wants a 4xx of its list where RFC 6585 §3 has the
answer to a missing If-Match be 428 Precondition Required (the description lists it).

::

    schemathesis --(TCP + TLS, bearer token)--> [ daemon on the fakes ] d1 --- u1, u2
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from api_harness import WRITE_TOKEN, WRITER, free_port, make_pki
from daemon_harness import IGMP, config, running
from fakes import FakeNetwork

from mcastproxy.api.openapi import description

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
BUDGET = 25  # seconds of generated requests


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (test extra)")
@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_the_api_keeps_to_its_description(net: FakeNetwork, workdir: Path) -> None:
    assert SCHEMATHESIS is not None
    make_pki(workdir)
    tokens = workdir / "tokens"
    tokens.write_text(WRITER + "\n")
    tokens.chmod(0o600)
    port = free_port()
    text = "mld: {version: 2}\n" + config(IGMP, candidates="[{interface: u1}, {interface: u2}]") + (
        f"api:\n  listen: 127.0.0.1:{port}\n  tokens: {tokens}\n"
        f"  tls: {{certificate: {workdir}/server.pem, key: {workdir}/server.key}}\n")
    base = f"https://127.0.0.1:{port}"

    async def contract() -> tuple[int, str, dict[str, int]]:
        async with running(net, workdir, text) as daemon:
            proc = await asyncio.create_subprocess_exec(
                SCHEMATHESIS, "run", f"{base}/openapi.json", "--url", base,
                "--tls-verify", "false", "-H", f"Authorization: Bearer {WRITE_TOKEN}",
                "--checks", "all",
                "--exclude-checks", "positive_data_acceptance,missing_required_header",
                "--phases", "coverage,fuzzing", "--max-time", str(BUDGET), "--workers", "1",
                "--no-color", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                cwd=workdir)
            out, _ = await proc.communicate()
            # The proxy went on all the while.
            assert daemon.ready.is_set()
            return proc.returncode or 0, out.decode(), dict(daemon.errors)

    code, out, errors = asyncio.run(asyncio.wait_for(contract(), BUDGET + 60))
    assert code == 0, out[-6000:]
    paths = description()["paths"]  # what it ran: the standard tree's resources among them
    for path in ("ietf-routing:routing", "ietf-igmp-mld:mld/clear-groups", "yang-library",
                 "/restconf/yang/"):
        assert any(path in p for p in paths), path
    assert "api" not in errors  # no handler failed
