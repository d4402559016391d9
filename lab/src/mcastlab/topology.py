"""A lab network described as data: hosts, veth links, bridged LANs, addresses, routes, sysctls.

A ``Topology`` says what to build; ``mcastlab.Lab`` builds it in network namespaces and
tears it down. Nothing here touches the system, so a topology can be made, checked and
printed anywhere.

Vocabulary:

- A **host** is one network namespace (a proxy, a provider sending multicast, a subscriber).
  It has sysctls and routes of its own.
- An **interface** (``Iface``) is one end of a link: the host it lives in, the name chosen by
  the caller (``u1``, ``eth0``), its addresses (``"10.0.1.1/24"``, ``"fd00:1::1/64"``), and
  optionally a MAC address (which fixes the EUI-64 link-local address), an MTU and an
  interface index.
- A **veth** joins two interfaces, point to point.
- A **bridge** is a shared LAN. It lives in a namespace of its own (a plain switch), or in one
  of the hosts, where the bridge device is that host's interface on the LAN (and carries its
  addresses). Each interface attached to it is joined by a veth to a port of the bridge.

Example, the proxy with one upstream provider and two subscribers sharing one LAN::

    t = Topology()
    proxy, prov, sub1, sub2 = t.hosts("proxy", "prov1", "sub1", "sub2")
    t.veth(proxy.iface("u1", "10.0.1.1/24"), prov.iface("eth0", "10.0.1.2/24"))
    lan = t.bridge("lan1")
    lan.attach(proxy.iface("d1", "10.1.1.1/24"), sub1.iface("eth0", "10.1.1.11/24"),
               sub2.iface("eth0", "10.1.1.12/24"))
    prov.route("224.0.0.0/4", dev="eth0")

Every IPv6 address is added with ``nodad`` and every namespace gets ``accept_dad=0``, so
addresses, link-local ones included, are usable as soon as the links are up.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

IFNAMSIZ = 16
"""Linux interface names hold at most IFNAMSIZ - 1 = 15 characters."""

_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_IFACE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class TopologyError(ValueError):
    """The topology is not buildable: a bad name, a duplicate, an address that does not parse."""


def _check_host_name(name: str) -> None:
    if not _HOST_NAME.match(name):
        raise TopologyError(
            f"host or bridge name {name!r}: use 1-32 of a-z, 0-9, '_' and '-', starting alnum"
        )


def _check_iface_name(name: str) -> None:
    if not _IFACE_NAME.match(name) or name in {"lo", ".", ".."}:
        raise TopologyError(
            f"interface name {name!r}: use 1-{IFNAMSIZ - 1} of A-Z, a-z, 0-9, '_', '.', '-'"
            " (and not 'lo')"
        )


@dataclass(frozen=True, slots=True)
class Iface:
    """One end of a link: ``name`` inside ``host``, with its addresses (interface notation)."""

    host: str
    name: str
    addrs: tuple[str, ...] = ()
    mac: str | None = None
    mtu: int | None = None
    index: int | None = None  # the interface index in its namespace (default: the next free)

    def __post_init__(self) -> None:
        _check_iface_name(self.name)
        for a in self.addrs:
            try:
                ipaddress.ip_interface(a)
            except ValueError as e:
                raise TopologyError(f"{self.host}:{self.name}: address {a!r}: {e}") from None
            if "/" not in a:
                raise TopologyError(f"{self.host}:{self.name}: address {a!r} needs a /prefix")
        if self.mac is not None and not _MAC.match(self.mac):
            raise TopologyError(f"{self.host}:{self.name}: MAC {self.mac!r} is not aa:bb:..:ff")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise TopologyError(f"{self.host}:{self.name}: MTU {self.mtu} out of range")
        if self.index is not None and not 2 <= self.index < 2**31:
            raise TopologyError(f"{self.host}:{self.name}: index {self.index} out of range")

    @property
    def ipv4(self) -> list[str]:
        """The IPv4 addresses, without prefix length."""
        return [a.split("/")[0] for a in self.addrs if ipaddress.ip_interface(a).version == 4]

    @property
    def ipv6(self) -> list[str]:
        """The IPv6 addresses, without prefix length."""
        return [a.split("/")[0] for a in self.addrs if ipaddress.ip_interface(a).version == 6]

    def __str__(self) -> str:
        return f"{self.host}:{self.name}"


@dataclass(frozen=True, slots=True)
class Veth:
    """A point-to-point link between two interfaces (in two hosts, or one)."""

    a: Iface
    b: Iface


@dataclass(frozen=True, slots=True)
class Route:
    """A route in a host, in ``ip route`` words.

    ``dst`` is a prefix or ``"default"``; ``via`` a gateway; ``dev`` an interface; ``table``
    a routing table; ``extra`` any further ``ip route add`` words (``("metric", "10")``).
    ``Route("224.0.0.0/4", dev="eth0")`` is the multicast route a sender without
    ``IP_MULTICAST_IF`` needs.
    """

    dst: str
    via: str | None = None
    dev: str | None = None
    table: str | int | None = None
    extra: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        """The address family (4 or 6), from the destination, else from the gateway."""
        if self.dst != "default":
            return ipaddress.ip_network(self.dst, strict=False).version
        if self.via is not None:
            return ipaddress.ip_address(self.via).version
        return 4

    def words(self) -> list[str]:
        """The arguments after ``ip route add``."""
        dst = self.dst
        if dst == "default":  # batch lines take no -6, so say the family in the prefix
            dst = "::/0" if self.version == 6 else "0.0.0.0/0"
        out = [dst]
        if self.via is not None:
            out += ["via", self.via]
        if self.dev is not None:
            out += ["dev", self.dev]
        if self.table is not None:
            out += ["table", str(self.table)]
        return out + list(self.extra)


@dataclass(slots=True)
class Host:
    """A network namespace of the lab: its sysctls and routes. Interfaces come from links."""

    name: str
    sysctls: dict[str, str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_host_name(self.name)

    def iface(
        self,
        name: str,
        *addrs: str,
        mac: str | None = None,
        mtu: int | None = None,
        index: int | None = None,
    ) -> Iface:
        """An interface of this host, to pass to ``Topology.veth`` or ``Bridge.attach``."""
        return Iface(self.name, name, tuple(addrs), mac, mtu, index)

    def route(
        self,
        dst: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        table: str | int | None = None,
        extra: Iterable[str] = (),
    ) -> Host:
        """Add a route; returns the host, so calls chain."""
        self.routes.append(Route(dst, via, dev, table, tuple(extra)))
        return self

    def sysctl(self, key: str, value: object) -> Host:
        """Set a sysctl in this namespace (dotted, or slashed where a name holds a dot)."""
        self.sysctls[key] = str(value)
        return self

    def forwarding(self, on: bool = True) -> Host:
        """Turn IPv4 and IPv6 unicast forwarding on (a router or a proxy)."""
        v = "1" if on else "0"
        self.sysctls["net.ipv4.ip_forward"] = v
        self.sysctls["net.ipv6.conf.all.forwarding"] = v
        return self

    def ipv6_disabled(self, ifname: str) -> bool:
        """Whether this host's sysctls turn IPv6 off on ``ifname``."""
        keys = ("all", "default", ifname)
        return any(self.sysctls.get(f"net.ipv6.conf.{k}.disable_ipv6") == "1" for k in keys)


@dataclass(frozen=True, slots=True)
class Port:
    """An interface attached to a bridge, and the name of the bridge port it is joined to."""

    member: Iface
    port: str


@dataclass(slots=True)
class Bridge:
    """A shared LAN: a Linux bridge in its own namespace (``host=None``) or in a host.

    A bridge in a host is that host's interface on the LAN; ``addrs`` go on the bridge
    device. Multicast snooping is off unless asked for, so the LAN floods multicast like a
    hub and the lab does not depend on the bridge's own IGMP/MLD logic.
    """

    name: str
    host: str | None = None
    addrs: tuple[str, ...] = ()
    mac: str | None = None
    snooping: bool = False
    ports: list[Port] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.host is None:
            _check_host_name(self.name)
        else:
            _check_iface_name(self.name)
        Iface(self.namespace, self.name, self.addrs, self.mac)  # validates the addresses

    @property
    def namespace(self) -> str:
        """The lab host (namespace) the bridge lives in."""
        return self.host if self.host is not None else self.name

    @property
    def device(self) -> Iface:
        """The bridge device, as an interface of its namespace."""
        return Iface(self.namespace, self.name, self.addrs, self.mac)

    def attach(self, *members: Iface, port: str | None = None) -> Bridge:
        """Join each interface to a new port of this bridge by a veth.

        Ports are named ``<bridge>p<n>`` unless ``port`` is given (one member only).
        """
        if port is not None and len(members) != 1:
            raise TopologyError("port= names one port: attach one interface with it")
        for m in members:
            name = port or f"{self.name}p{len(self.ports) + 1}"
            _check_iface_name(name)
            self.ports.append(Port(m, name))
        return self

    def veths(self) -> list[Veth]:
        """The veths joining members to ports (member side first)."""
        return [Veth(p.member, Iface(self.namespace, p.port)) for p in self.ports]


@dataclass(slots=True)
class Topology:
    """Hosts, veths and bridges; built by ``Lab``. Use the builder methods or fill it directly."""

    hosts_by_name: dict[str, Host] = field(default_factory=dict)
    links: list[Veth] = field(default_factory=list)
    bridges: list[Bridge] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------

    def host(self, name: str, *, sysctls: Mapping[str, object] | None = None) -> Host:
        """Add a host (namespace), or return the one of that name."""
        if name in self.hosts_by_name:
            h = self.hosts_by_name[name]
        else:
            if any(b.host is None and b.name == name for b in self.bridges):
                raise TopologyError(f"{name!r} is already a bridge's namespace")
            h = self.hosts_by_name[name] = Host(name)
        for k, v in (sysctls or {}).items():
            h.sysctl(k, v)
        return h

    def hosts(self, *names: str) -> list[Host]:
        """Add several hosts at once: ``proxy, sub = t.hosts("proxy", "sub")``."""
        return [self.host(n) for n in names]

    def veth(self, a: Iface, b: Iface) -> Veth:
        """Join two interfaces by a veth pair."""
        link = Veth(a, b)
        self.links.append(link)
        return link

    def bridge(
        self,
        name: str,
        *,
        host: Host | str | None = None,
        addrs: Iterable[str] = (),
        mac: str | None = None,
        snooping: bool = False,
    ) -> Bridge:
        """Add a bridged LAN, in its own namespace ``name`` or, with ``host``, inside a host."""
        hname = host.name if isinstance(host, Host) else host
        if hname is None and name in self.hosts_by_name:
            raise TopologyError(f"bridge {name!r} would share a namespace with host {name!r}")
        if hname is not None and hname not in self.hosts_by_name:
            raise TopologyError(f"bridge {name!r}: no host {hname!r}")
        br = Bridge(name, hname, tuple(addrs), mac, snooping)
        self.bridges.append(br)
        return br

    # -- reading --------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        """Every namespace to create, by lab name: the hosts, then the stand-alone bridges."""
        return list(self.hosts_by_name) + [b.name for b in self.bridges if b.host is None]

    def all_veths(self) -> list[Veth]:
        """Every veth: the links, then the bridge attachments."""
        return self.links + [v for b in self.bridges for v in b.veths()]

    def interfaces(self, namespace: str) -> Iterator[Iface]:
        """Every interface in ``namespace`` (veth ends and bridge devices), lo excluded."""
        for v in self.all_veths():
            for end in (v.a, v.b):
                if end.host == namespace:
                    yield end
        for b in self.bridges:
            if b.namespace == namespace:
                yield b.device

    def find(self, host: str, ifname: str) -> Iface:
        """The interface ``ifname`` of ``host``."""
        for i in self.interfaces(host):
            if i.name == ifname:
                return i
        raise KeyError(f"{host}:{ifname}")

    def bridge_ports(self) -> set[tuple[str, str]]:
        """(namespace, port name) of every bridge port."""
        return {(b.namespace, p.port) for b in self.bridges for p in b.ports}

    def describe(self) -> str:
        """The topology in a few lines of text, one per link, for people (and demo output)."""

        def end(i: Iface) -> str:
            return " ".join([str(i), *i.addrs])

        lines = [f"{end(v.a)} <-> {end(v.b)}" for v in self.links]
        for b in self.bridges:
            where = f"in {b.host}" if b.host else "own namespace"
            lines.append(f"bridge {b.name} ({where}) {' '.join(b.addrs)}".rstrip())
            lines += [f"  {p.port} <-> {end(p.member)}" for p in b.ports]
        for h in self.hosts_by_name.values():
            lines += [f"{h.name}: route {' '.join(r.words())}" for r in h.routes]
            lines += [f"{h.name}: {k} = {v}" for k, v in h.sysctls.items()]
        return "\n".join(lines)

    def validate(self) -> None:
        """Raise ``TopologyError`` unless the topology can be built."""
        namespaces = set(self.namespaces())
        if len(namespaces) != len(self.namespaces()):
            raise TopologyError("a bridge and a host share a name")
        seen: dict[tuple[str, str], str] = {}
        for v in self.all_veths():
            for end in (v.a, v.b):
                if end.host not in namespaces:
                    raise TopologyError(f"{end}: no host {end.host!r} in the topology")
                if (end.host, end.name) in seen:
                    raise TopologyError(f"{end}: interface name used twice")
                seen[end.host, end.name] = "veth"
        for b in self.bridges:
            if b.host is not None and (b.host, b.name) in seen:
                raise TopologyError(f"{b.host}:{b.name}: bridge name clashes with an interface")
            seen[b.namespace, b.name] = "bridge"
        for h in self.hosts_by_name.values():
            for r in h.routes:
                if r.dev is not None and (h.name, r.dev) not in seen and r.dev != "lo":
                    raise TopologyError(f"{h.name}: route {r.dst} via unknown device {r.dev!r}")
