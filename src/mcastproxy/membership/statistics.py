"""Message counts of one link, in the words of RFC 8652 (``statistics``: ``received``,
``sent``, ``error``).

Theory of operation
===================

RFC 8652 (ietf-igmp-mld, ``global-statistics-sent-received`` and ``-error``) counts messages
by type: ``query``, ``report``, ``leave`` and their ``total``; ``error`` counts the messages
that were not taken. Here they are counted per link and family, and reports also by version
(``report-v1`` .. ``report-v3``: IGMPv1/v2/v3 reports, MLDv1/v2 reports), which tells an
operator at a glance which hosts make a link fall back to an older version (RFC 9776 §7.3).

The report path pays one list-item increment per message, and nothing is allocated: the
counts are three lists of five integers, indexed by the message kinds below. A message is an
``error`` when it is dropped whole (its sender, its version, a query's policy: ``Drop``
says why, in ``RouterLink.dropped``); a report some of whose records were ignored is not.
``sent`` counts the queries the link sent (General, Group-Specific, Group-and-Source-Specific
and merged General Queries); the router side sends nothing else.
"""

from __future__ import annotations

QUERY, REPORT_V1, REPORT_V2, REPORT_V3, LEAVE = 0, 1, 2, 3, 4
KINDS = 5


class MessageCounts:
    """Messages received, sent and in error on one link, by kind (see the module's comment)."""

    __slots__ = ("error", "received", "sent")

    def __init__(self) -> None:
        self.received = [0] * KINDS
        self.sent = [0] * KINDS
        self.error = [0] * KINDS

    def report(self, counts: list[int], newest: int) -> dict[str, int]:
        """One direction's counts in RFC 8652's names; ``newest``: the family's newest
        version (IGMP 3, MLD 2), the report versions shown."""
        reports = counts[REPORT_V1:REPORT_V3 + 1]
        out = {"total": sum(counts), "query": counts[QUERY], "report": sum(reports),
               "leave": counts[LEAVE]}
        for version in range(1, newest + 1):
            out[f"report-v{version}"] = counts[version]
        return out
