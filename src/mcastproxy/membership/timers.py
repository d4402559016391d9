"""Protocol timers and counters (RFC 9776 §8, RFC 9777 §9): one type, from the configuration
file to the router side.

``ProtocolTimers`` holds the tunable values with the RFC defaults; everything the RFCs derive
from them (Group Membership Interval, Other Querier Present Interval, Last Member Query
Time, ...) is a property, so a changed component can never leave a stale derived value
behind. ``None`` in a field means "the RFC's default, derived from the other fields" and the
``effective_*`` property gives the value in force.

The names are IGMP's (RFC 9776); MLD (RFC 9777) has the same timers under listener names:
Multicast Address Listening Interval = ``group_membership_interval``, Last Listener Query
Interval / Count / Time = ``last_member_query_*``, Older Version Host Present Interval =
``older_host_present_interval``.

The values come in two ways, each held to its own rules:

- From an operator's configuration file (``config`` validates with ``context=FROM_FILE``):
  keys in kebab-case (``query-interval``), durations written ``125s``, ``500ms``, ``2m`` or as
  seconds, and each value within what the wire can carry (``WIRE_BOUNDS``), so that what is
  configured is what is advertised. Refusals name the keys as written.
- From Python (``ProtocolTimers(query_interval=60.0)``, ``dataclasses.replace``, a querier
  adopting another's QRV and QQI): numbers only, refused (``ValueError`` naming the field)
  only when no link could run with them. A Robustness Variable above 7 is such a value that
  works: RFC 9776 §4.1.6 sends it as QRV 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticKnownError

_FILE = "from-file"
FROM_FILE: Final[Mapping[str, bool]] = MappingProxyType({_FILE: True})
"""The validation context of values read from an operator's configuration file."""

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``125s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 125s, 500ms or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 125s, 500ms, or seconds)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


WIRE_BOUNDS: Final[Mapping[str, tuple[float, float]]] = MappingProxyType({
    # QRV is 3 bits (RFC 9776 §4.1.6, RFC 9777 §5.1.8).
    "robustness": (1, 7),
    "last_member_query_count": (1, 7),
    "startup_query_count": (1, 7),
    # QQIC's largest value, in seconds (RFC 9776 §4.1.7, RFC 9777 §5.1.9).
    "query_interval": (1.0, 31744.0),
    "startup_query_interval": (0.1, 31744.0),
    # IGMPv3's largest Max Resp Code, 31744 tenths (RFC 9776 §4.1.1). MLDv2 allows more
    # (RFC 9777 §5.1.3), but one bound serves both.
    "query_response_interval": (0.1, 3174.4),
    "last_member_query_interval": (0.1, 3174.4),
    "unsolicited_report_interval": (0.1, 3174.4),
})
"""The least and greatest value a configuration file may give each field."""

_COUNTS = ("robustness", "last_member_query_count", "startup_query_count")
_DURATIONS = (
    "query_interval",
    "query_response_interval",
    "last_member_query_interval",
    "startup_query_interval",
    "unsolicited_report_interval",
)


def _from_file(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, Mapping) and bool(context.get(_FILE))


def _kebab(name: str) -> str:
    return name.replace("_", "-")


@dataclass(
    frozen=True,
    slots=True,
    config=ConfigDict(extra="forbid", alias_generator=_kebab, populate_by_name=True),
)
class ProtocolTimers:
    """RFC 9776 §8 / RFC 9777 §9 values, in seconds (counts are plain integers)."""

    robustness: int = 2  # §8.1 Robustness Variable
    query_interval: float = 125.0  # §8.2
    query_response_interval: float = 10.0  # §8.3 (Max Response Time of General Queries)
    last_member_query_interval: float = 1.0  # §8.8 (LMQI)
    last_member_query_count: int | None = None  # §8.9, default [Robustness Variable]
    startup_query_interval: float | None = None  # §8.6, default 1/4 [Query Interval]
    startup_query_count: int | None = None  # §8.7, default [Robustness Variable]
    unsolicited_report_interval: float = 1.0  # §8.11 (host side)

    # --- validation -----------------------------------------------------------------------

    @field_validator(*_COUNTS, *_DURATIONS, mode="before")
    @classmethod
    def _as_given(cls, value: object, info: ValidationInfo) -> object:
        """A file's durations become seconds. From Python, numbers only, refused when no link
        could run with them."""
        name = info.field_name
        if value is None or name is None:
            return value  # None is refused by the type where it is not "the RFC default"
        if _from_file(info):
            return parse_duration(value) if name in _DURATIONS else value
        if name in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, not {value!r}")
            if name == "robustness" and value < 1:
                # RFC 9776 §8.1: "The Robustness Variable MUST NOT be zero".
                raise ValueError(f"robustness must be at least 1 (RFC 9776 §8.1), not {value}")
            if value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number of seconds, not {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number of seconds, not {value!r}")
        return value

    @field_validator(*_COUNTS, *_DURATIONS, mode="after")
    @classmethod
    def _fits_the_wire(cls, value: float | None, info: ValidationInfo) -> float | None:
        """From a file, each value within ``WIRE_BOUNDS``."""
        name = info.field_name
        if value is None or name is None or not _from_file(info):
            return value
        least, greatest = WIRE_BOUNDS[name]
        if not value >= least:
            raise PydanticKnownError("greater_than_equal", {"ge": _plain(least)})
        if not value <= greatest:
            raise PydanticKnownError("less_than_equal", {"le": _plain(greatest)})
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ProtocolTimers:
        from_file = _from_file(info)
        name = _kebab if from_file else str
        # RFC 9776 §8.3: "The number of seconds represented by the [Query Response Interval]
        # must be less than the [Query Interval]."
        if self.query_response_interval >= self.query_interval:
            raise ValueError(
                f"{name('query_response_interval')} ({self.query_response_interval:g}s) must "
                f"be less than {name('query_interval')} ({self.query_interval:g}s) "
                f"(RFC 9776 §8.3)"
            )
        # A file's startup queries come no slower than the queries that follow them.
        if (
            from_file
            and self.startup_query_interval is not None
            and self.startup_query_interval > self.query_interval
        ):
            raise ValueError("startup-query-interval cannot exceed query-interval")
        return self

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


def _plain(bound: float) -> float | int:
    """A bound as pydantic's own messages print it: 7, 31744, 0.1."""
    return int(bound) if bound == int(bound) else bound
