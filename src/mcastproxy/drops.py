"""Why an input was dropped: one vocabulary from the codec to the socket.

Every input the proxy does not act on (a malformed packet, a message that breaks an RFC's
validity rules, a join the rules of the link ignore, data nobody asked for) is dropped for one
of these reasons and counted by reason and by the interface it arrived on, so that an operator
sees in ``mcastproxy status`` why a subscriber was ignored.

A ``Drop`` is a ``StrEnum`` whose value is the short text the operator reads ("bad checksum",
"any-source join to an SSM group"); its name is the stable identifier for machines (metric
labels, JSON keys that must not change with the wording). ``Drop.BAD_CHECKSUM.key`` is
"bad-checksum". Each reason also says which ``Stage`` dropped it: the codec (malformed bytes,
the peer's fault), the router side's validity rules, the proxy's own rules, or the socket.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum


class Stage(StrEnum):
    """Where an input was dropped."""

    SOCKET = "socket"  # before decoding: no packet information, unknown interface
    MALFORMED = "malformed"  # the codec refused the bytes (``WireError``)
    INVALID = "invalid"  # well-formed, but breaks the RFC's validity rules (RFC 9776 §9...)
    IGNORED = "ignored"  # valid, but the proxy's rules say not to act on it


class Drop(StrEnum):
    """Why an input was dropped; the value is what an operator reads."""

    # --- the socket (netio) ---------------------------------------------------------------
    RECEIVE_ERROR = "receive error"
    EMPTY = "empty"
    NO_PACKET_INFORMATION = "no packet information"
    UNKNOWN_INTERFACE = "unknown interface"
    NOT_IGMP = "not IGMP"
    NOT_PIM_HELLO = "not a PIM hello"
    QUEUE_FULL = "receive queue full"  # dropped by the kernel before we could read it
    # A raw ICMPv6 socket's count of the kernel's drops holds both, inseparably:
    QUEUE_FULL_OR_BAD_CHECKSUM = "receive queue full or bad ICMPv6 checksum"

    # --- the codecs (wire): malformed bytes -----------------------------------------------
    TRUNCATED_HEADER = "truncated header"
    NOT_IPV4 = "not IPv4"
    BAD_HEADER_LENGTH = "bad header length"
    BAD_TOTAL_LENGTH = "bad total length"
    NOT_IPV6 = "not IPv6"
    BAD_PAYLOAD_LENGTH = "bad payload length"  # IPv6 (RFC 8200 §3)
    UNRECOGNIZED_OPTION = "unrecognized hop-by-hop option"  # RFC 8200 §4.2: discard
    BAD_HEADER_CHECKSUM = "bad header checksum"
    FRAGMENT = "fragment"
    TRUNCATED_OPTION = "truncated option"
    BAD_OPTION_LENGTH = "bad option length"
    BAD_ROUTER_ALERT = "bad router alert"
    TRUNCATED_MESSAGE = "truncated message"
    NOT_MLD = "not MLD"
    BAD_CHECKSUM = "bad checksum"
    UNKNOWN_TYPE = "unknown type"
    BAD_QUERY_LENGTH = "bad query length"
    TRUNCATED_SOURCE_LIST = "truncated source list"
    TRUNCATED_GROUP_RECORD = "truncated group record"
    TRUNCATED_AUX_DATA = "truncated aux data"
    # AMT (RFC 7450 §5.1): the version nibble is 0; a message's length follows from its type
    # (and from the IP header of the packet it carries)
    AMT_BAD_VERSION = "AMT version is not 0"
    AMT_BAD_LENGTH = "AMT message of the wrong length"
    NOT_IP = "encapsulated packet is neither IPv4 nor IPv6"

    # --- the router side (membership): validity, RFC 9776 §4, §6, §9; RFC 9777 §5, §7 -----
    UNKNOWN_MESSAGE = "not a query, report or leave"
    WRONG_FAMILY = "address of the other family"
    VERSION_INVALID = "no such protocol version"
    FROM_OWN_ADDRESS = "from the proxy's own address"
    SOURCE_INVALID = "IPv4 source is multicast or broadcast"
    SOURCE_NOT_LINK_LOCAL = "MLD source is not link-local"  # RFC 9777 §5.1.14, §5.2.13
    QUERY_SOURCE_UNSPECIFIED = "query from the unspecified address"
    NOT_MULTICAST = "group is not multicast"
    LINK_LOCAL_SCOPE = "link-local scope group"  # 224.0.0.0/24, ff02::/16 and smaller
    UNKNOWN_RECORD_TYPE = "unknown group record type"  # RFC 9776 §4.2.12: ignored
    RECORD_INVALID_FOR_VERSION = "record type the report's version cannot carry"
    IGNORED_FOR_OLDER_VERSION = "ignored in older-version compatibility mode"  # §7.3
    # RFC 9776 §6.4 / RFC 9777 §7.4 (RFC 4604), for a group in the SSM address range:
    SSM_EXCLUDE_MODE = "any-source join to an SSM group"  # an IS_EX or TO_EX record
    SSM_OLDER_VERSION = "older-version message for an SSM group"  # IGMPv1/v2, MLDv1
    # RFC 9776 §4 (RFC 2236 §2): every IGMP message is sent with TTL 1 and, from IGMPv2 on,
    # the Router Alert option; RFC 9777 §5, §6.2, §7.4 (RFC 2710 §3): MLD with hop limit 1 and
    # the Hop-by-Hop Router Alert. Anything else did not come from a neighbour on the link.
    TTL_NOT_ONE = "IPv4 TTL is not 1"
    HOP_LIMIT_NOT_ONE = "IPv6 hop limit is not 1"
    NO_ROUTER_ALERT = "no Router Alert option"
    # verify-source-subnet (RFC 8652), the first defence of RFC 9776 §9.2-§9.3:
    SOURCE_NOT_IN_SUBNET = "IGMP source is not in the link's subnets"

    # --- the proxy (engine) ---------------------------------------------------------------
    NOT_A_QUERY_ON_UPSTREAM = "not a query, on an upstream"  # RFC 4605 §2
    NOT_PROXIED = "not a proxied interface or family"
    SEND_ON_DOWN_INTERFACE = "send on an interface that is down"
    NO_LINK_LOCAL_ADDRESS = "no IPv6 link-local address to send from"
    DATA_NOT_ON_UPSTREAM = "data on an interface that is not an upstream"
    DATA_NOT_JOINED = "data for a group this upstream has not joined"
    HELLO_NOT_ON_UPSTREAM = "PIM hello on an interface that is not an upstream"
    QUERY_NOT_FROM_ROUTER = "query from a router not configured for the upstream"  # draft §7
    HELLO_NOT_FROM_ROUTER = "hello from a router not configured for the upstream"
    # Who may be querier on a downstream link (RFC 9776 §6.6.2, §9.1; RFC 9777 §7.6.2, §10):
    QUERY_ON_ALWAYS_QUERIER_LINK = "query on a link where the proxy is always querier"
    QUERY_NOT_FROM_LINK_ROUTER = "query from a sender not among the link's routers"
    # Edge policy and admission (``policy``, ``admission``; RFC 8313 §6.1, RFC 8652 names):
    # a join, or a source of one, refused; one count per (S,G) or (*,G) refused.
    POLICY_SSM_ONLY = "any-source join where ssm-only is set"
    POLICY_SUBSCRIBER_DENY = "denied by a group-policy rule of the subscriber's prefix"
    POLICY_LINK_DENY = "denied by a group-policy rule of the link"
    POLICY_GLOBAL_DENY = "denied by a rule of the global group-policy"
    POLICY_DEFAULT_DENY = "no group-policy rule matches and the default is deny"
    SUBSCRIBER_MAX_GROUPS = "over the subscriber's max-groups"
    SUBSCRIBER_MAX_GROUP_SOURCES = "over the subscriber's max-group-sources"
    LINK_MAX_GROUPS = "over the link's max-groups"
    PROXY_MAX_ENTRIES = "over the proxy's max-entries"
    # Bandwidth admission (``bandwidth``): the channel's rate does not fit a budget.
    SUBSCRIBER_MAX_BANDWIDTH = "over the subscriber's max-bandwidth"
    LINK_MAX_BANDWIDTH = "over the link's max-bandwidth"
    UNACCOUNTED_BANDWIDTH = "a rated channel asked by an anonymous report where budgets are set"
    PREEMPTED = "an optional channel preempted for a mandatory one (bandwidth.preempt)"
    # Upstream admission (``placement``): no upstream selection gives the channel has room.
    UPSTREAM_MAX_BANDWIDTH = "over the upstream's max-bandwidth"
    UPSTREAM_MAX_GROUPS = "over the upstream's max-groups"
    EMPTY_CHANNEL = "a channel found empty (joined, no traffic) asked again"  # ``learning``
    # Report rate limits of a link (``ratelimit``): dropped before the router side's work.
    SUBSCRIBER_RATE = "over the subscriber's report rate"
    LINK_RATE = "over the link's report rate"

    # --- the AMT gateway (amt.gateway): RFC 7450 §5.2 -------------------------------------
    AMT_NOT_FROM_RELAY = "AMT message not from the relay"
    AMT_WRONG_NONCE = "AMT message with a nonce the gateway did not send"
    AMT_NOT_FOR_GATEWAY = "AMT message of a type a gateway does not receive"
    AMT_UNEXPECTED = "AMT message the gateway's state does not expect"
    AMT_NOT_GENERAL_QUERY = "AMT Membership Query without an IGMPv3 or MLDv2 General Query"
    AMT_RELAY_FULL = "AMT relay takes no new gateways (L flag)"
    AMT_DATA_NOT_MULTICAST = "AMT data whose packet is not multicast"

    @property
    def key(self) -> str:
        """The stable identifier: the name in kebab-case ("bad-checksum")."""
        return self.name.lower().replace("_", "-")

    @property
    def stage(self) -> Stage:
        return _STAGE.get(self, Stage.IGNORED)


_SOCKET = (Drop.RECEIVE_ERROR, Drop.EMPTY, Drop.NO_PACKET_INFORMATION, Drop.UNKNOWN_INTERFACE,
           Drop.NOT_IGMP, Drop.NOT_PIM_HELLO, Drop.QUEUE_FULL,
           Drop.QUEUE_FULL_OR_BAD_CHECKSUM)
_MALFORMED = (
    Drop.TRUNCATED_HEADER, Drop.NOT_IPV4, Drop.BAD_HEADER_LENGTH, Drop.BAD_TOTAL_LENGTH,
    Drop.BAD_HEADER_CHECKSUM, Drop.FRAGMENT, Drop.TRUNCATED_OPTION, Drop.BAD_OPTION_LENGTH,
    Drop.BAD_ROUTER_ALERT, Drop.TRUNCATED_MESSAGE, Drop.NOT_MLD, Drop.BAD_CHECKSUM,
    Drop.UNKNOWN_TYPE, Drop.BAD_QUERY_LENGTH, Drop.TRUNCATED_SOURCE_LIST,
    Drop.TRUNCATED_GROUP_RECORD, Drop.TRUNCATED_AUX_DATA,
    Drop.NOT_IPV6, Drop.BAD_PAYLOAD_LENGTH, Drop.UNRECOGNIZED_OPTION,
    Drop.AMT_BAD_VERSION, Drop.AMT_BAD_LENGTH, Drop.NOT_IP,
)
_INVALID = (
    Drop.UNKNOWN_MESSAGE, Drop.WRONG_FAMILY, Drop.VERSION_INVALID, Drop.SOURCE_INVALID,
    Drop.SOURCE_NOT_LINK_LOCAL, Drop.QUERY_SOURCE_UNSPECIFIED, Drop.NOT_MULTICAST,
    Drop.UNKNOWN_RECORD_TYPE, Drop.RECORD_INVALID_FOR_VERSION, Drop.TTL_NOT_ONE,
    Drop.HOP_LIMIT_NOT_ONE, Drop.NO_ROUTER_ALERT, Drop.SOURCE_NOT_IN_SUBNET,
    Drop.AMT_WRONG_NONCE, Drop.AMT_NOT_FOR_GATEWAY, Drop.AMT_NOT_GENERAL_QUERY,
    Drop.AMT_DATA_NOT_MULTICAST,
)
_STAGE = {
    **dict.fromkeys(_SOCKET, Stage.SOCKET),
    **dict.fromkeys(_MALFORMED, Stage.MALFORMED),
    **dict.fromkeys(_INVALID, Stage.INVALID),
}

class DropCounts:
    """Drops counted by (interface, reason); ``None`` is "no interface" (a send with no
    link, say). Cheap on the hot path: one dict update per drop."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: Counter[tuple[str | None, Drop]] = Counter()

    def add(self, interface: str | None, reason: Drop, n: int = 1) -> None:
        self._counts[interface, reason] += n

    def merge(self, other: DropCounts) -> None:
        self._counts.update(other._counts)

    def by_reason(self) -> dict[Drop, int]:
        """Summed over interfaces."""
        out: Counter[Drop] = Counter()
        for (_, reason), n in self._counts.items():
            out[reason] += n
        return dict(out)

    def by_key(self) -> dict[tuple[str | None, Drop], int]:
        """(interface, reason) -> count."""
        return dict(self._counts)

    def by_interface(self) -> dict[str | None, dict[Drop, int]]:
        out: dict[str | None, dict[Drop, int]] = {}
        for (interface, reason), n in self._counts.items():
            out.setdefault(interface, {})[reason] = n
        return out

    def __getitem__(self, reason: str) -> int:
        """The count of ``reason`` over every interface (``counts[Drop.X]`` or its text)."""
        return sum(n for (_, r), n in self._counts.items() if r == reason)

    def items(self) -> list[tuple[Drop, int]]:
        return list(self.by_reason().items())

    def __bool__(self) -> bool:
        return bool(self._counts)
