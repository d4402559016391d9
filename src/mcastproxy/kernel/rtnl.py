"""A small rtnetlink client: multicast rules, multicast route dumps with counters, ipmr VIFs.

Why not pyroute2 or ``ip``? ``ip mrule`` forks a process per rule (milliseconds each, and
unwelcome on a signal handler's path in ``stop()``), and its errors come back as text.
pyroute2 0.9 does these rules well, but importing it and opening its socket took ~440 ms
here, and its generic decoding of a 1,000-entry multicast route dump over a second (against
~7 ms below). What mcastproxy needs is four requests, so they are written out:

- rules of family RTNL_FAMILY_IPMR (128) / RTNL_FAMILY_IP6MR (129): add, delete, dump
  (``struct fib_rule_hdr`` with FRA_IIFNAME, FRA_PRIORITY, FRA_TABLE; FR_ACT_TO_TBL);
- a dump of RTM_GETROUTE in family 128 / 129: every (S,G) entry of every table, with its
  table (RTA_TABLE), addresses (RTA_SRC, RTA_DST), parent (RTA_IIF) and counters
  (RTA_MFC_STATS, ``struct rta_mfc_stats``: packets, bytes, wrong interface, all u64);
  entries still unresolved carry RTNH_F_UNRESOLVED and no counters;
- a dump of RTM_GETLINK in family 128: the ipmr tables and their VIFs (IPMRA_TABLE_*), which
  ``/proc/net/ip_mr_vif`` does not show beyond the default table. ip6mr has no such dump.

Errors from the kernel raise ``OSError`` with the errno the kernel returned.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple, Self

RTNL_FAMILY_IPMR = 128
RTNL_FAMILY_IP6MR = 129

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTM_NEWRULE = 32
RTM_DELRULE = 33
RTM_GETRULE = 34

FR_ACT_TO_TBL = 1
FRA_IIFNAME = 3
FRA_PRIORITY = 6
FRA_TABLE = 15

RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_TABLE = 15
RTA_MFC_STATS = 17
RTNH_F_UNRESOLVED = 32

IPMRA_TABLE_ID = 1
IPMRA_TABLE_VIFS = 6
IPMRA_VIFA_IFINDEX = 1
IPMRA_VIFA_VIF_ID = 2

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NLATTR = struct.Struct("=HH")  # length, type
_FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1,
#                                              res2, action, flags
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol,
#                                       scope, type, flags
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_U32 = struct.Struct("=I")
_MFC_STATS = struct.Struct("=QQQ")
_RECV_SIZE = 1 << 16


class Rule(NamedTuple):
    """A multicast rule: ``iif`` (or None for any) looked up in ``table``, at ``priority``."""

    family: int
    priority: int
    table: int
    iif: str | None


class MrouteEntry(NamedTuple):
    """One resolved (S,G) entry of a multicast routing table, with its counters."""

    table: int
    source: bytes
    group: bytes
    iif: int | None
    packets: int
    bytes: int
    wrong_if: int


def _attr(kind: int, value: bytes) -> bytes:
    size = _NLATTR.size + len(value)
    return _NLATTR.pack(size, kind) + value + bytes(-size % 4)


def _attrs(data: bytes | memoryview, offset: int, end: int) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    while offset + 4 <= end:
        size, kind = _NLATTR.unpack_from(view, offset)
        if size < 4 or offset + size > end:
            return
        yield kind & 0x3FFF, view[offset + 4 : offset + size]  # without NLA_F_NESTED etc.
        offset += (size + 3) & ~3


class Rtnl:
    """One NETLINK_ROUTE socket for requests (not subscribed to any group)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        """Close the socket. Idempotent."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: int, flags: int, payload: bytes) -> int:
        self._seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), kind, flags, self._seq, 0)
        self._sock.send(header + payload)
        return self._seq

    def _replies(self, seq: int) -> Iterator[tuple[int, memoryview]]:
        """The (type, payload) replies to request ``seq`` until DONE or the ack;
        ``OSError`` for an error reply."""
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                size, kind, flags, mseq, _ = _NLMSGHDR.unpack_from(data, offset)
                if size < _NLMSGHDR.size:
                    return
                body = memoryview(data)[offset + _NLMSGHDR.size : offset + size]
                offset += (size + 3) & ~3
                if mseq != seq:
                    continue  # an answer to an earlier request we stopped reading
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return  # the ack
                yield kind, body
                if not flags & NLM_F_MULTI:
                    return

    def _request(self, kind: int, flags: int, payload: bytes) -> None:
        for _ in self._replies(self._send(kind, flags | NLM_F_REQUEST | NLM_F_ACK, payload)):
            pass

    def _dump(self, kind: int, payload: bytes) -> Iterator[tuple[int, memoryview]]:
        return self._replies(self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, payload))

    # -- rules ----------------------------------------------------------------------------

    @staticmethod
    def _rule(rule: Rule) -> bytes:
        head = _FIB_RULE_HDR.pack(rule.family, 0, 0, 0, 0, 0, 0, FR_ACT_TO_TBL, 0)
        body = _attr(FRA_PRIORITY, _U32.pack(rule.priority)) + _attr(
            FRA_TABLE, _U32.pack(rule.table)
        )
        if rule.iif is not None:
            body += _attr(FRA_IIFNAME, rule.iif.encode() + b"\0")
        return head + body

    def add_rule(self, rule: Rule) -> None:
        """Add a rule; one exactly like it already there is not an error."""
        with contextlib.suppress(FileExistsError):
            self._request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, self._rule(rule))

    def delete_rule(self, rule: Rule) -> None:
        """Delete a rule; one already gone is not an error."""
        with contextlib.suppress(FileNotFoundError):
            self._request(RTM_DELRULE, 0, self._rule(rule))

    def rules(self, family: int) -> list[Rule]:
        """Every rule of ``family`` (RTNL_FAMILY_IPMR or RTNL_FAMILY_IP6MR)."""
        out = []
        payload = _FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        for kind, body in self._dump(RTM_GETRULE, payload):
            if kind != RTM_NEWRULE or len(body) < _FIB_RULE_HDR.size:
                continue
            fam, _, _, _, table, _, _, _, _ = _FIB_RULE_HDR.unpack_from(body)
            if fam != family:
                continue
            priority, iif = 0, None
            for akind, value in _attrs(body, _FIB_RULE_HDR.size, len(body)):
                if akind == FRA_PRIORITY:
                    priority = _U32.unpack(value)[0]
                elif akind == FRA_TABLE:
                    table = _U32.unpack(value)[0]
                elif akind == FRA_IIFNAME:
                    iif = bytes(value).rstrip(b"\0").decode()
            out.append(Rule(family, priority, table, iif))
        return out

    # -- multicast routes -----------------------------------------------------------------

    def mroutes(self, family: int) -> list[MrouteEntry]:
        """Every resolved (S,G) entry of every table of ``family``, with its counters."""
        # The hot path of counter sampling, so the replies are walked in place: one pass
        # over each received buffer, offsets instead of slices (about 3x faster than the
        # generic walk; the kernel's side of a 1,000-entry dump takes ~1 ms).
        out: list[MrouteEntry] = []
        append = out.append
        unpack_head = _NLMSGHDR.unpack_from
        unpack_rtmsg = _RTMSG.unpack_from
        unpack_attr = _NLATTR.unpack_from
        unpack_u32 = _U32.unpack_from
        unpack_stats = _MFC_STATS.unpack_from
        seq = self._send(
            RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        )
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset, total = 0, len(data)
            while offset + 16 <= total:
                size, kind, _, mseq, _ = unpack_head(data, offset)
                if size < 16:
                    return out
                start, offset = offset, offset + ((size + 3) & ~3)
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, start + 16)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                if kind != RTM_NEWROUTE:
                    continue
                fam, _, _, _, table, _, _, _, flags = unpack_rtmsg(data, start + 16)
                if fam != family or flags & RTNH_F_UNRESOLVED:
                    continue
                src = dst = b""
                iif = None
                packets = nbytes = wrong_if = 0
                at, end = start + 28, start + size
                while at + 4 <= end:
                    asize, akind = unpack_attr(data, at)
                    if asize < 4:
                        break
                    if akind == RTA_TABLE:
                        table = unpack_u32(data, at + 4)[0]
                    elif akind == RTA_SRC:
                        src = data[at + 4 : at + asize]
                    elif akind == RTA_DST:
                        dst = data[at + 4 : at + asize]
                    elif akind == RTA_IIF:
                        iif = unpack_u32(data, at + 4)[0]
                    elif akind == RTA_MFC_STATS and asize >= 28:
                        packets, nbytes, wrong_if = unpack_stats(data, at + 4)
                    at += (asize + 3) & ~3
                append(MrouteEntry(table, src, dst, iif, packets, nbytes, wrong_if))

    def ipmr_vifs(self) -> dict[int, dict[int, int]]:
        """IPv4 only: table id -> {VIF index: interface index} for every ipmr table."""
        out: dict[int, dict[int, int]] = {}
        payload = _IFINFOMSG.pack(RTNL_FAMILY_IPMR, 0, 0, 0, 0)
        for _kind, body in self._dump(RTM_GETLINK, payload):
            table, vifs = None, {}
            top = list(_attrs(body, _IFINFOMSG.size, len(body)))
            # The table's attributes come nested in one attribute (IFLA_AF_SPEC's number).
            for akind, value in top + [a for k, v in top if k == 26 for a in _attrs(v, 0, len(v))]:
                if akind == IPMRA_TABLE_ID and len(value) == 4:
                    table = _U32.unpack(value)[0]
                elif akind == IPMRA_TABLE_VIFS:
                    for _, vif in _attrs(value, 0, len(value)):
                        fields = dict(_attrs(vif, 0, len(vif)))
                        if IPMRA_VIFA_VIF_ID in fields and IPMRA_VIFA_IFINDEX in fields:
                            vifi = _U32.unpack(fields[IPMRA_VIFA_VIF_ID])[0]
                            vifs[vifi] = _U32.unpack(fields[IPMRA_VIFA_IFINDEX])[0]
            if table is not None:
                out[table] = vifs
        return out


def is_gone(err: OSError) -> bool:
    """Whether ``err`` says the thing to delete is not there (not an error for a delete)."""
    return err.errno in (errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV)
