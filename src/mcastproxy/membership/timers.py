"""Protocol timers and counters of the router side (RFC 9776 §8, RFC 9777 §9).

``ProtocolTimers`` holds the tunable values with the RFC defaults; everything the RFCs
derive from them (Group Membership Interval, Other Querier Present Interval, Last Member
Query Time, ...) is a property, so a changed component can never leave a stale derived
value behind. ``None`` in a field means "the RFC's default, derived from the other fields"
and the ``effective_*`` property gives the value in force.

The names are IGMP's (RFC 9776); MLD (RFC 9777) has the same timers under listener names:
Multicast Address Listening Interval = ``group_membership_interval``, Last Listener Query
Interval / Count / Time = ``last_member_query_*``, Older Version Host Present Interval =
``older_host_present_interval``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProtocolTimers:
    """RFC 9776 §8 / RFC 9777 §9 values, in seconds (counts are plain integers).

    Range checks against what the wire can carry belong to the configuration; this class
    only refuses values that cannot work at all (``ValueError`` naming the field).
    """

    robustness: int = 2  # §8.1 Robustness Variable
    query_interval: float = 125.0  # §8.2
    query_response_interval: float = 10.0  # §8.3 (Max Response Time of General Queries)
    last_member_query_interval: float = 1.0  # §8.8 (LMQI)
    last_member_query_count: int | None = None  # §8.9, default [Robustness Variable]
    startup_query_interval: float | None = None  # §8.6, default 1/4 [Query Interval]
    startup_query_count: int | None = None  # §8.7, default [Robustness Variable]
    unsolicited_report_interval: float = 1.0  # §8.11 (host side)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for values no link can run with."""
        # RFC 9776 §8.1: "The Robustness Variable MUST NOT be zero".
        if isinstance(self.robustness, bool) or not isinstance(self.robustness, int):
            raise ValueError(f"robustness must be an integer, not {self.robustness!r}")
        if self.robustness < 1:
            raise ValueError(
                f"robustness must be at least 1 (RFC 9776 §8.1), not {self.robustness}"
            )
        for name in (
            "query_interval",
            "query_response_interval",
            "last_member_query_interval",
            "unsolicited_report_interval",
        ):
            _require_positive(name, getattr(self, name))
        if self.startup_query_interval is not None:
            _require_positive("startup_query_interval", self.startup_query_interval)
        for name in ("last_member_query_count", "startup_query_count"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, not {value!r}")
        # RFC 9776 §8.3: "The number of seconds represented by the [Query Response Interval]
        # must be less than the [Query Interval]."
        if self.query_response_interval >= self.query_interval:
            raise ValueError(
                f"query_response_interval ({self.query_response_interval:g} s) must be less "
                f"than query_interval ({self.query_interval:g} s) (RFC 9776 §8.3)"
            )

    # --- effective values of the fields that default to a derived value ------------------

    @property
    def effective_last_member_query_count(self) -> int:
        """§8.9 Last Member Query Count; default: the Robustness Variable."""
        if self.last_member_query_count is None:
            return self.robustness
        return self.last_member_query_count

    @property
    def effective_startup_query_interval(self) -> float:
        """§8.6 Startup Query Interval; default: 1/4 of the Query Interval."""
        if self.startup_query_interval is None:
            return self.query_interval / 4
        return self.startup_query_interval

    @property
    def effective_startup_query_count(self) -> int:
        """§8.7 Startup Query Count; default: the Robustness Variable."""
        if self.startup_query_count is None:
            return self.robustness
        return self.startup_query_count

    # --- derived values -------------------------------------------------------------------

    @property
    def group_membership_interval(self) -> float:
        """RFC 9776 §8.4 (RFC 9777 §9.4 Multicast Address Listening Interval).

        "This value MUST be ([Robustness Variable] times [Query Interval]) plus (2 * [Query
        Response Interval])": 270 s by default. RFC 3376 §8.4 and RFC 3810 §9.4 added one
        Query Response Interval (260 s); the revised RFCs changed it (Erratum 6725, named in
        RFC 9776 Appendix C and RFC 9777 Appendix B.2).
        """
        return self.robustness * self.query_interval + 2 * self.query_response_interval

    @property
    def other_querier_present_interval(self) -> float:
        """RFC 9776 §8.5: ([Robustness Variable] x [Query Interval]) + 0.5 x [QRI]."""
        return self.robustness * self.query_interval + 0.5 * self.query_response_interval

    @property
    def last_member_query_time(self) -> float:
        """RFC 9776 §8.10 LMQT: [Last Member Query Interval] x [Last Member Query Count]."""
        return self.last_member_query_interval * self.effective_last_member_query_count

    @property
    def older_host_present_interval(self) -> float:
        """RFC 9776 §8.13: ([Robustness Variable] x [Query Interval]) + [QRI]."""
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def older_version_querier_present_timeout(self) -> float:
        """RFC 9776 §8.12 / RFC 9777 §9.12, as a router that hears an older querier uses it:
        ([Robustness Variable] x [Query Interval]) + [QRI], 260 s by default.

        RFC 3376/3810 wrote it this way, with the values of the last Query received; RFC 9776
        words it as "[Robustness Variable] times [Query Interval] plus (10 times the Max
        Response Time in the last received Query Message)" and recommends the default values.
        The host side (``upstream.host``) takes the Max Response Time from the older Query.
        """
        return self.robustness * self.query_interval + self.query_response_interval


def _require_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number of seconds, not {value!r}")
