"""The vocabulary of IGMP (RFC 1112, 2236, 9776) and MLD (RFC 2710, 9777) messages.

One model serves both families and every version, so the rest of mcastproxy reasons about
"a report with these group records" rather than about wire formats:

- ``Query``: a Membership Query (IGMP) or Multicast Listener Query (MLD), any version.
- ``Report``: a Version 3 Membership Report (IGMPv3) or Version 2 Multicast Listener Report
  (MLDv2), with its group records; or an old-style report (IGMPv1/v2 Membership Report, MLDv1
  Multicast Listener Report), which carries one group and is modelled as one
  MODE_IS_EXCLUDE record with no sources, as RFC 9776 §7.3.2 / RFC 9777 §8.3.2 read it.
- ``Leave``: an IGMPv2 Leave Group or an MLDv1 Multicast Listener Done, which the same
  sections read as CHANGE_TO_INCLUDE_MODE with no sources.

Addresses are packed network-order ``bytes`` (4 octets for IPv4, 16 for IPv6): that is what
sockets hand over and what packets are built from, and the family follows from the length.
``ipaddress.ip_address(b)`` turns one into text for people.

Messages are NamedTuples rather than frozen dataclasses: they are made once per record on
the packet path, and a tuple is several times cheaper to build, while being just as immutable.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

Address = bytes
"""A packed IPv4 (4 octets) or IPv6 (16 octets) address."""


class RecordType(IntEnum):
    """Group Record Types (RFC 9776 §4.2.12, RFC 9777 §5.2.12)."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE_MODE = 3
    CHANGE_TO_EXCLUDE_MODE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6


class GroupRecord(NamedTuple):
    """One group record of a version 3 (IGMP) or version 2 (MLD) report."""

    type: RecordType
    group: Address
    sources: tuple[Address, ...] = ()
    aux_data: bytes = b""


class Query(NamedTuple):
    """A query of any version.

    ``version`` is what the message's form says (RFC 9776 §7.1, RFC 9777 §8.1): IGMP 1 (8
    octets, Max Resp Code 0), 2 (8 octets), 3 (12 or more); MLD 1 (24 octets), 2 (28 or more).
    ``group`` is the unspecified address (all zeros) in a General Query.
    ``max_resp`` is the Maximum Response Time in seconds, decoded from its code; ``qqi`` is the
    Querier's Query Interval in seconds (0 when the version has none), ``qrv`` the Querier's
    Robustness Variable (0 when none).
    """

    version: int
    group: Address
    max_resp: float
    sources: tuple[Address, ...] = ()
    s_flag: bool = False
    qrv: int = 0
    qqi: int = 0


class Report(NamedTuple):
    """A membership report: version 3 (IGMP) / 2 (MLD) with records, or an older single-group one.

    ``version`` is the protocol version of the message: IGMP 1, 2 or 3; MLD 1 or 2.
    """

    version: int
    records: tuple[GroupRecord, ...]


class Leave(NamedTuple):
    """An IGMPv2 Leave Group or MLDv1 Done for ``group``."""

    group: Address


Message = Query | Report | Leave
