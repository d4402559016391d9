"""A small authoritative DNS server for the lab (UDP, dnspython): the AMTRELAY, A and AAAA
records that DRIAD (RFC 8777) looks up, served in a namespace.

Not part of mcastproxy. It runs in a lab namespace::

    python -m mcastlab.dnsserver --address 10.30.5.2 [--port 53] \\
        [--record "2.1.0.10.in-addr.arpa. 5 AMTRELAY 0 1 1 10.30.2.2"]... \\
        [--forge MODE] [--max-seconds 600]

Each ``--record`` is one resource record in zone-file form (NAME TTL TYPE RDATA; class IN).
A query is answered from them: the records of its name and type (AA set); NODATA with an
SOA (negative TTL 1 s, RFC 2308) when the name has records of other types; NXDOMAIN with
the SOA otherwise. A CNAME at the name is followed within the server's own records.

``--forge MODE`` (or the ``forge`` command) answers wrongly instead, for the tests of what a
resolver must refuse: ``wrong-id`` (another message ID), ``wrong-question`` (another name),
``truncated`` (the TC bit and no answer: a resolver asks again over TCP, which this server
does not serve), ``garbage`` (random octets), ``huge`` (the question's answer followed by
hundreds of AMTRELAY records), ``cname-loop`` (a CNAME to a name whose CNAME points back),
``servfail``, ``silent`` (no answer at all).

JSON lines on stdout: ``{"event": "ready", ...}``, then ``{"event": "query", "name": ...,
"type": ..., "from": ...}`` for each query (with ``time_ns``). Commands on stdin, one JSON
object a line, each answered with its number ``n``::

    {"cmd": "set", "records": ["NAME TTL TYPE RDATA", ...]}   replace every record
    {"cmd": "forge", "mode": MODE or null}
    {"cmd": "quit"}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

FORGE_MODES = ("wrong-id", "wrong-question", "truncated", "garbage", "huge", "cname-loop",
               "servfail", "silent")
SOA = "ns.lab. hostmaster.lab. 1 60 60 600 1"
"""The SOA of negative answers: its minimum (the last field) is their TTL, 1 s."""
MAX_SECONDS = 3600.0


def parse_record(text: str) -> dns.rrset.RRset:
    """``NAME TTL TYPE RDATA`` (class IN) as a one-record RRset."""
    name, ttl, kind, rdata = text.split(None, 3)
    return dns.rrset.from_text(dns.name.from_text(name), int(ttl), "IN", kind, rdata)


class DnsCore:
    """The server without its socket: a query's octets in, the answer's octets out."""

    def __init__(self, records: Iterable[str] = (), forge: str | None = None) -> None:
        self.records: list[dns.rrset.RRset] = []
        self.forge = forge
        self.set(records)

    def set(self, records: Iterable[str]) -> None:
        merged: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        for text in records:
            rrset = parse_record(text)
            key = (rrset.name, rrset.rdtype)
            if key in merged:
                merged[key].union_update(rrset)
            else:
                merged[key] = rrset
        self.records = list(merged.values())

    def _find(self, name: dns.name.Name, rdtype: int) -> list[dns.rrset.RRset]:
        return [r for r in self.records if r.name == name and r.rdtype == rdtype]

    def answer(self, wire: bytes) -> tuple[bytes | None, dict[str, Any]]:
        """The answer to ``wire`` (None: none), and what the query asked, for the log."""
        try:
            query = dns.message.from_wire(wire)
            question = query.question[0]
        except Exception:
            return None, {"name": None}
        name, rdtype = question.name, question.rdtype
        info = {"name": name.to_text(), "type": dns.rdatatype.to_text(rdtype)}
        if self.forge == "silent":
            return None, info
        if self.forge == "garbage":
            return os.urandom(64), info
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.forge == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire(), info
        if self.forge == "truncated":
            response.flags |= dns.flags.TC
            return response.to_wire(), info
        if self.forge == "cname-loop":
            other = dns.name.from_text("loop", name)
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", other.to_text()))
            response.answer.append(dns.rrset.from_text(other, 60, "IN", "CNAME", name.to_text()))
            return response.to_wire(), info
        self._fill(response, name, rdtype)
        if self.forge == "huge":
            huge = dns.rrset.from_text(name, 60, "IN", "AMTRELAY",
                                       *(f"{i % 256} 1 1 10.30.{i // 256}.{i % 256}"
                                         for i in range(400)))
            response.answer = [huge]
        if self.forge == "wrong-id":
            response.id = (query.id + 1) % 65536
        if self.forge == "wrong-question":
            response.question = [dns.rrset.RRset(dns.name.from_text("elsewhere.lab."),
                                                 dns.rdataclass.IN, rdtype)]
        return response.to_wire(max_size=65535), info

    def _fill(self, response: dns.message.Message, name: dns.name.Name, rdtype: int) -> None:
        for _ in range(8):  # CNAMEs within this server's records
            found = self._find(name, rdtype)
            if found:
                response.answer.extend(found)
                return
            cname = self._find(name, dns.rdatatype.CNAME)
            if not cname:
                break
            response.answer.extend(cname)
            name = next(iter(cname[0])).target
        # The SOA's owner encloses every name (the root), so a resolver takes its minimum.
        soa = dns.rrset.from_text(dns.name.root, 1, "IN", "SOA", SOA)
        response.authority.append(soa)
        if not any(r.name == name for r in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)


def _emit(obj: dict[str, Any]) -> None:
    obj.setdefault("time_ns", time.monotonic_ns())
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(a: argparse.Namespace) -> int:
    core = DnsCore(a.record, a.forge)
    family = socket.AF_INET6 if ":" in a.address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((a.address, a.port))
        sock.setblocking(False)
    except OSError as e:
        _emit({"event": "error", "n": 0, "error": f"{type(e).__name__}: {e}"})
        return 1
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "dns")
    sel.register(0, selectors.EVENT_READ, "stdin")
    _emit({"event": "ready", "pid": os.getpid(), "address": a.address, "port": a.port})
    stop_at = time.monotonic() + a.max_seconds
    n = 0
    buf = b""
    while time.monotonic() < stop_at:
        for key, _ in sel.select(max(0.0, stop_at - time.monotonic())):
            if key.data == "dns":
                with contextlib.suppress(BlockingIOError):
                    for _ in range(256):
                        data, peer = sock.recvfrom(65535)
                        out, info = core.answer(data)
                        _emit({"event": "query", "from": peer[0], "forge": core.forge, **info})
                        if out is not None:
                            with contextlib.suppress(OSError):
                                sock.sendto(out, peer)
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                stop_at = 0.0
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                n += 1
                try:
                    c = json.loads(raw)
                    if c["cmd"] == "set":
                        core.set(c["records"])
                    elif c["cmd"] == "forge":
                        if c["mode"] not in (None, *FORGE_MODES):
                            raise ValueError(f"unknown forge mode {c['mode']!r}")
                        core.forge = c["mode"]
                    elif c["cmd"] == "quit":
                        stop_at = 0.0
                    else:
                        raise ValueError(f"unknown command {c['cmd']!r}")
                except (ValueError, KeyError, TypeError) as e:
                    _emit({"event": "error", "n": n, "error": str(e)})
                    continue
                _emit({"event": "ok", "n": n})
    _emit({"event": "done"})
    sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mcastlab.dnsserver", description=__doc__.split("\n")[0])
    ap.add_argument("--address", required=True, help="listen on this address")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--record", action="append", default=[], metavar="'NAME TTL TYPE RDATA'")
    ap.add_argument("--forge", choices=FORGE_MODES)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    a = ap.parse_args(argv)
    if not 0 < a.max_seconds <= MAX_SECONDS:
        ap.error(f"max seconds must be > 0 and <= {MAX_SECONDS}")
    try:
        DnsCore(a.record)
    except Exception as e:
        ap.error(f"bad record: {e}")
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
