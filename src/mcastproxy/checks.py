"""What ``mcastproxy check`` warns of: a file that is valid but will not do what it says here.

The configuration's own validation refuses what can never work anywhere (``config``). These
warnings are about the file on this host, or about parts of it that can never take effect:

- an interface the file names that does not exist on this host (it may come later: the
  proxy follows interfaces as they appear, so this is a warning, not a refusal);
- a downstream link without an address to speak from for a protocol that is on: an IPv4
  address for IGMP, an IPv6 link-local address for MLD (RFC 9777 §5.1.14); until it has one,
  the proxy is not its querier and sends nothing there;
- a record, a resilient channel, a policy rule or an exception of a family whose protocol
  is off (an IPv6 prefix with no ``mld``): it can never match.

``warnings(config, addresses)`` takes the host's view as a function (interface name -> its
addresses, or None if it does not exist), so tests give one of their own; ``host_view``
reads this host's through netlink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from mcastproxy.amt.tun import is_tun
from mcastproxy.config import Config, Record
from mcastproxy.configtypes import Network
from mcastproxy.family import Family

Addresses = Callable[[str], list[bytes] | None]


def warnings(config: Config, addresses: Addresses) -> list[str]:
    """Each warning as "path: reason", in the file's order."""
    out: list[str] = []
    for i, d in enumerate(config.downstream):
        out += _interface(f"downstream[{i}].interface", d.interface, config, addresses,
                          downstream=True)
    for i, c in enumerate(config.upstream.candidates):
        if c.amt is not None:
            # An AMT upstream's TUN is made by the proxy at start: an interface of that name
            # that exists already must be a TUN device (the start refuses anything else).
            if addresses(c.interface) is not None and is_tun(c.interface) is False:
                out.append(f"upstream.candidates[{i}].interface: {c.interface} exists and is "
                           "not a TUN device: the AMT upstream cannot use it")
            continue
        out += _interface(f"upstream.candidates[{i}].interface", c.interface, config,
                          addresses, downstream=False)
    out += _never_matching(config)
    return out


def _interface(path: str, name: str, config: Config, addresses: Addresses,
               downstream: bool) -> list[str]:
    have = addresses(name)
    if have is None:
        return [f"{path}: {name} does not exist on this host (the proxy will take it up "
                "when it appears)"]
    if not downstream:
        return []
    out = []
    if config.igmp is not None and not any(len(a) == 4 for a in have):
        out.append(f"{path}: {name} has no IPv4 address: IGMP is not spoken there until it "
                   "has one")
    if config.mld is not None and not any(len(a) == 16 and a[:2] == b"\xfe\x80"
                                          for a in have):
        out.append(f"{path}: {name} has no IPv6 link-local address: MLD is not spoken "
                   "there until it has one (RFC 9777 §5.1.14)")
    return out


def _never_matching(config: Config) -> list[str]:
    off = {f for f, proto in ((Family.V4, config.igmp), (Family.V6, config.mld))
           if proto is None}
    if not off:
        return []
    out = []
    for path, prefixes in _prefixes(config):
        for p in prefixes:
            if p is not None and Family(p.version) in off:
                name = "IGMP" if p.version == 4 else "MLD"
                out.append(f"{path}: {p} is an IPv{p.version} prefix and {name} is off: it "
                           "never matches")
                break
    return out


def _prefixes(config: Config) -> Iterator[tuple[str, Iterable[Network | None]]]:
    def records(path: str, rs: Iterable[Record]) -> Iterator[tuple[str, list[Network | None]]]:
        for j, r in enumerate(rs):
            yield f"{path}[{j}]", [r.subscriber, r.source, r.group]

    for i, c in enumerate(config.upstream.candidates):
        yield from records(f"upstream.candidates[{i}].records", c.records)
    yield from records("upstream.resilient", config.upstream.resilient)
    glob = config.policy
    for j, rule in enumerate(glob.group_policy):
        yield f"policy.group-policy[{j}]", [rule.source, rule.group]
    for j, ex in enumerate(glob.exceptions):
        yield f"policy.exceptions[{j}]", [ex.source, ex.group]
    for i, d in enumerate(config.downstream):
        at = f"downstream[{i}].policy"
        for j, rule in enumerate(d.policy.group_policy):
            yield f"{at}.group-policy[{j}]", [rule.source, rule.group]
        for j, ex in enumerate(d.policy.exceptions):
            yield f"{at}.exceptions[{j}]", [ex.source, ex.group]
        for j, sub in enumerate(d.policy.subscribers):
            yield f"{at}.subscribers[{j}].prefix", [sub.prefix]


def host_view(config: Config) -> Addresses:
    """This host's view of the file's interfaces (``system.interface_addresses``, netlink):
    name -> its addresses, or None if it does not exist."""
    from mcastproxy.system import interface_addresses  # noqa: PLC0415 - I/O, for `check`

    names = [d.interface for d in config.downstream]
    names += [c.interface for c in config.upstream.candidates]
    found = interface_addresses(names)
    return lambda name: [a.packed for a in found[name]] if name in found else None
