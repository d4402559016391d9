"""IGMP and MLD wire codecs."""

from __future__ import annotations

from mcastproxy.wire.messages import Address, GroupRecord, Leave, Message, Query, RecordType, Report

__all__ = ["Address", "GroupRecord", "Leave", "Message", "Query", "RecordType", "Report"]
