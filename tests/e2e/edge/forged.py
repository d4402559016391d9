"""What an attacker on a subscriber or upstream link sends, built with scapy (an encoder
independent of the proxy's own): IGMP and MLD messages in whole IP packets whose TTL / hop
limit, Router Alert and source the test chooses, for ``Lab.inject``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLQuery2,
    ICMPv6MLReport2,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.packet import Packet, Raw

with warnings.catch_warnings():  # scapy.layers.igmp has another interface; these still work
    warnings.simplefilter("ignore", DeprecationWarning)
    from scapy.contrib.igmp import IGMP
    from scapy.contrib.igmpv3 import IGMPv3, IGMPv3gr

TO_EX, TO_IN, IS_IN, ALLOW = 4, 3, 1, 5
Record = tuple[int, str, Sequence[str]]  # (record type, group, sources)


def ipv4(src: str, dst: str, payload: Packet, *, ttl: int = 1, ra: bool = True) -> bytes:
    # The IGMP message is encoded on its own: under an IP layer, scapy's IGMP classes put
    # their own TTL and Router Alert in (``igmpize``), which a forger must not have.
    options = [IPOption_Router_Alert()] if ra else []
    return bytes(IP(src=src, dst=dst, ttl=ttl, proto=2, options=options) / Raw(bytes(payload)))


def ipv6(src: str, dst: str, payload: object, *, hlim: int = 1, ra: bool = True) -> bytes:
    if ra:
        return bytes(IPv6(src=src, dst=dst, hlim=hlim)
                     / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)]) / payload)
    return bytes(IPv6(src=src, dst=dst, hlim=hlim) / payload)


def igmpv3_report(src: str, records: Sequence[Record], *, dst: str = "224.0.0.22",
                  ttl: int = 1, ra: bool = True) -> bytes:
    recs = [IGMPv3gr(rtype=t, maddr=g, srcaddrs=list(s)) for t, g, s in records]
    return ipv4(src, dst, IGMPv3(type=0x22, records=recs), ttl=ttl, ra=ra)


def igmpv3_query(src: str, *, group: str = "0.0.0.0", qrv: int = 2, qqic: int = 125,
                 mrcode: int = 100) -> bytes:
    dst = "224.0.0.1" if group == "0.0.0.0" else group
    return ipv4(src, dst, IGMPv3(type=0x11, mrcode=mrcode, gaddr=group, qrv=qrv, qqic=qqic))


def igmpv2_query(src: str) -> bytes:
    return ipv4(src, "224.0.0.1", IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0"))


def igmpv1_report(src: str, group: str) -> bytes:
    """An RFC 1112 report: type 0x12, to the group, TTL 1 and never a Router Alert."""
    return ipv4(src, group, IGMP(type=0x12, mrcode=0, gaddr=group), ra=False)


def mldv2_report(src: str, records: Sequence[Record], *, hlim: int = 1,
                 ra: bool = True) -> bytes:
    recs = [ICMPv6MLDMultAddrRec(rtype=t, dst=g, sources=list(s)) for t, g, s in records]
    return ipv6(src, "ff02::16", ICMPv6MLReport2(records=recs), hlim=hlim, ra=ra)


def mldv2_query(src: str, *, qrv: int = 2, qqic: int = 125) -> bytes:
    return ipv6(src, "ff02::1", ICMPv6MLQuery2(mrd=10000, mladdr="::", QRV=qrv, QQIC=qqic))
