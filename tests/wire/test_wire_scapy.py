"""scapy as an independent oracle: scapy builds and we parse, we build and scapy parses.

scapy 2.8 moved ``scapy.contrib.igmp`` / ``igmpv3`` into ``scapy.layers.igmp`` (the contrib
modules are deprecated shims), so the layers are imported from there. Known scapy gaps,
worked around here:
- ``IGMPv3_MR_Group`` has no Auxiliary Data field, and ``ICMPv6MLDMultAddrRec`` counts
  ``auxdata_len`` in octets where RFC 9777 §5.2.7 says 32-bit words: records are drawn
  without aux data (aux data is covered by the hand-checked vectors).
- scapy keeps the MLDv2 Maximum Response Code and both QQICs as raw codes, and its IGMPv3
  Max Resp Code encoder overflows past 31744: codes are decoded and encoded here with the
  RFC formulas written out again (``_decode8``, ``_decode16``), not with ours.
- ``ICMPv6MLDMultAddrRec`` names itself its payload class and has no ``extract_padding``,
  so when scapy dissects a report the first record swallows the next ones as its payload:
  ``_mld_records`` walks that chain.
- scapy's IGMPv3 ``mrcode`` attribute shows the code, re-encoded from the decoded time it
  keeps internally: the time is read with ``getfieldval``.
- When scapy dissects an IP packet carrying IGMP, its IGMP layer adds a Router Alert option
  to the IP layer (``IGMP.add_underlayer``): our IPv4 headers are read with ``_RawIP``.
"""

from __future__ import annotations

import logging
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import addr, addr4, addr16, igmp_messages, mld_messages, text

from mcastproxy.wire import (
    Leave,
    Message,
    Query,
    Report,
    build_igmp,
    build_ipv4,
    build_mld,
    parse_igmp,
    parse_ipv4,
    parse_mld,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    logging.getLogger("scapy").setLevel(logging.ERROR)
    from scapy.config import conf
    from scapy.layers.igmp import IGMP, IGMP_MQ, IGMPv3_MQ, IGMPv3_MR, IGMPv3_MR_Group
    from scapy.layers.inet import IP, IPOption_NOP, IPOption_Router_Alert
    from scapy.layers.inet6 import (
        ICMPv6MLDMultAddrRec,
        ICMPv6MLDone,
        ICMPv6MLQuery,
        ICMPv6MLQuery2,
        ICMPv6MLReport,
        ICMPv6MLReport2,
        IPv6,
    )
    from scapy.packet import Raw

conf.verb = 0
SCAPY = settings(max_examples=100, deadline=None)


def _decode8(code: int) -> int:
    # RFC 9776 §4.1.1, §4.1.7
    return code if code < 128 else ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)


def _decode16(code: int) -> int:
    # RFC 9777 §5.1.3
    return code if code < 32768 else ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 7) + 3)


CODE8 = {_decode8(code): code for code in range(256)}
CODE16 = {_decode16(code): code for code in range(65536)}


def _tenths(seconds: float) -> int:
    return round(seconds * 10)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


# IGMP -------------------------------------------------------------------------------------


def _scapy_igmp(message: object) -> bytes:
    if isinstance(message, Leave):
        return bytes(IGMP(type=0x17, gaddr=text(message.group)))
    if isinstance(message, Report):
        if message.version == 3:
            records = [
                IGMPv3_MR_Group(
                    rtype=int(r.type), maddr=text(r.group), srcaddrs=[text(s) for s in r.sources]
                )
                for r in message.records
            ]
            return bytes(IGMPv3_MR(records=records))
        kind = 0x16 if message.version == 2 else 0x12
        return bytes(IGMP(type=kind, gaddr=text(message.records[0].group)))
    assert isinstance(message, Query)
    if message.version == 3:
        return bytes(
            IGMPv3_MQ(
                mrcode=_tenths(message.max_resp),  # scapy encodes the float form itself
                gaddr=text(message.group),
                s=int(message.s_flag),
                qrv=message.qrv,
                qqic=CODE8[message.qqi],
                srcaddrs=[text(s) for s in message.sources],
            )
        )
    code = 0 if message.version == 1 else _tenths(message.max_resp)
    return bytes(IGMP(type=0x11, mrcode=code, gaddr=text(message.group)))


@SCAPY
@given(igmp_messages(aux=False))
def test_we_read_what_scapy_builds_igmp(message: object) -> None:
    assert parse_igmp(_scapy_igmp(message)) == message


@SCAPY
@given(igmp_messages(aux=False))
def test_scapy_reads_what_we_build_igmp(message: Message) -> None:
    data = build_igmp(message)
    packet = IGMP(data)
    # scapy recomputes the same checksum from the fields it read, and the same bytes.
    again = packet.copy()
    again.chksum = None
    assert bytes(again) == data
    if isinstance(message, Leave):
        assert (packet.type, addr(packet.gaddr)) == (0x17, message.group)
    elif isinstance(message, Report) and message.version < 3:
        assert packet.type == (0x16 if message.version == 2 else 0x12)
        assert addr(packet.gaddr) == message.records[0].group
    elif isinstance(message, Report):
        assert isinstance(packet, IGMPv3_MR)
        assert packet.numgrp == len(message.records)
        for got, want in zip(packet.records, message.records, strict=True):
            assert (got.rtype, addr(got.maddr), got.auxdlen) == (want.type, want.group, 0)
            assert [addr(s) for s in got.srcaddrs] == list(want.sources)
    elif message.version == 3:
        assert isinstance(packet, IGMPv3_MQ)
        # scapy keeps the decoded time internally (``.mrcode`` shows the code again).
        assert packet.getfieldval("mrcode") == _tenths(message.max_resp)
        assert addr(packet.gaddr) == message.group
        assert (packet.s, packet.qrv) == (message.s_flag, message.qrv)
        assert _decode8(packet.qqic) == message.qqi
        assert [addr(s) for s in packet.srcaddrs] == list(message.sources)
    else:
        assert isinstance(packet, IGMP_MQ)
        assert packet.mrcode == (0 if message.version == 1 else _tenths(message.max_resp))
        assert addr(packet.gaddr) == message.group


# MLD --------------------------------------------------------------------------------------


def _scapy_mld(message: object) -> object:
    if isinstance(message, Leave):
        return ICMPv6MLDone(mladdr=text(message.group))
    if isinstance(message, Report):
        if message.version == 1:
            return ICMPv6MLReport(mladdr=text(message.records[0].group))
        records = [
            ICMPv6MLDMultAddrRec(
                rtype=int(r.type), dst=text(r.group), sources=[text(s) for s in r.sources]
            )
            for r in message.records
        ]
        return ICMPv6MLReport2(records=records)
    assert isinstance(message, Query)
    if message.version == 1:
        return ICMPv6MLQuery(mrd=_millis(message.max_resp), mladdr=text(message.group))
    return ICMPv6MLQuery2(
        mrd=CODE16[_millis(message.max_resp)],
        mladdr=text(message.group),
        S=int(message.s_flag),
        QRV=message.qrv,
        QQIC=CODE8[message.qqi],
        sources=[text(s) for s in message.sources],
    )


@SCAPY
@given(mld_messages(aux=False), addr16, addr16)
def test_we_read_what_scapy_builds_mld(message: object, src: bytes, dst: bytes) -> None:
    data = bytes(IPv6(src=text(src), dst=text(dst), hlim=1) / _scapy_mld(message))[40:]
    assert parse_mld(data, src, dst) == message


def _mld_records(report: object) -> list[object]:
    records = []
    for first in report.records:  # type: ignore[attr-defined]  # a scapy packet, untyped
        record = first
        while isinstance(record, ICMPv6MLDMultAddrRec):
            records.append(record)
            record = record.payload
    return records


@SCAPY
@given(mld_messages(aux=False), addr16, addr16)
def test_scapy_reads_what_we_build_mld(message: Message, src: bytes, dst: bytes) -> None:
    data = build_mld(message, src, dst)
    header = IPv6(src=text(src), dst=text(dst), nh=58, hlim=1, plen=len(data))
    packet = IPv6(bytes(header) + data)
    icmp = packet[IPv6].payload
    again = packet.copy()
    again[IPv6].payload.cksum = None
    assert bytes(again)[40:] == data  # same checksum over the pseudo-header, same bytes
    if isinstance(message, Leave):
        assert isinstance(icmp, ICMPv6MLDone)
        assert addr(icmp.mladdr) == message.group
    elif isinstance(message, Report) and message.version == 1:
        assert isinstance(icmp, ICMPv6MLReport)
        assert addr(icmp.mladdr) == message.records[0].group
    elif isinstance(message, Report):
        assert isinstance(icmp, ICMPv6MLReport2)
        assert icmp.records_number == len(message.records)
        for got, want in zip(_mld_records(icmp), message.records, strict=True):
            assert (got.rtype, addr(got.dst), got.auxdata_len) == (want.type, want.group, 0)
            assert [addr(s) for s in got.sources] == list(want.sources)
    elif message.version == 1:
        assert isinstance(icmp, ICMPv6MLQuery)
        assert icmp.mrd == _millis(message.max_resp)
        assert addr(icmp.mladdr) == message.group
    else:
        assert isinstance(icmp, ICMPv6MLQuery2)
        assert _decode16(icmp.mrd) == _millis(message.max_resp)
        assert addr(icmp.mladdr) == message.group
        assert (message.s_flag, message.qrv) == (icmp.S, icmp.QRV)
        assert _decode8(icmp.QQIC) == message.qqi
        assert [addr(s) for s in icmp.sources] == list(message.sources)


# IPv4 -------------------------------------------------------------------------------------


class _RawIP(IP):
    """scapy's IP reading its payload as Raw: with an IGMP payload, scapy's IGMP layer adds a
    Router Alert option to the IP layer above it (``IGMP.add_underlayer``), which would hide
    whether the header had one."""

    def guess_payload_class(self, payload: bytes) -> type:
        return Raw


ipv4_fields = (addr4, addr4, st.binary(max_size=64), st.integers(0, 255), st.integers(0, 255))


@SCAPY
@given(*ipv4_fields, st.booleans())
def test_scapy_reads_our_ipv4(
    src: bytes, dst: bytes, payload: bytes, ttl: int, tos: int, alert: bool
) -> None:
    data = build_ipv4(src, dst, payload, ttl=ttl, tos=tos, router_alert=alert)
    packet = _RawIP(data)
    assert (packet.version, packet.ihl, packet.len) == (4, 6 if alert else 5, len(data))
    assert (packet.tos, packet.ttl, packet.proto, packet.frag) == (tos, ttl, 2, 0)
    assert str(packet.flags) == "DF"
    assert (addr(packet.src), addr(packet.dst)) == (src, dst)
    assert bytes(packet.payload) == payload
    if alert:
        (option,) = packet.options
        assert isinstance(option, IPOption_Router_Alert)
        assert option.alert == 0
    else:
        assert packet.options == []
    again = packet.copy()
    again.chksum = None
    assert bytes(again) == data


@SCAPY
@given(*ipv4_fields, st.sampled_from(["none", "alert", "nop+alert"]))
def test_we_read_scapys_ipv4(
    src: bytes, dst: bytes, payload: bytes, ttl: int, tos: int, options: str
) -> None:
    chosen = {
        "none": [],
        "alert": [IPOption_Router_Alert()],
        "nop+alert": [IPOption_NOP(), IPOption_Router_Alert()],  # padded with End of List
    }[options]
    packet = IP(src=text(src), dst=text(dst), ttl=ttl, tos=tos, proto=2, options=chosen)
    parsed = parse_ipv4(bytes(packet / Raw(payload)))
    assert parsed == (src, dst, ttl, 2, options != "none", payload)
