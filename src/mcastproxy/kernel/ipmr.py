"""Multicast routing in the Linux kernel: ipmr (IPv4) and ip6mr (IPv6), one table per upstream.

The only code in mcastproxy that sets MRT_* / MRT6_* options. Theory of operation:

- A table per upstream interface (DESIGN.md). Linux ties a table to the raw socket that
  owns it: MRT_TABLE on a fresh socket picks (and creates) the table, MRT_INIT makes the
  socket its "mroute socket", and closing the socket (or MRT_DONE) flushes the table's VIFs
  and entries. So each upstream has a socket of its own, and a multicast rule
  ``iif UPSTREAM lookup TABLE`` (a FIB rule of family RTNL_FAMILY_IPMR / IP6MR, written by
  ``rtnl``) makes the kernel look packets arriving on that upstream up in its table.
  Packets arriving elsewhere fall through to the kernel's default rule and table, which
  mcastproxy leaves alone.
- Table ids are ``table_base`` .. ``table_base + table_count - 1`` (default 4600..4855) and
  rules go at priority ``rule_priority`` (default 4600). At start, rules pointing into that
  range are stale (a run killed outright leaves its rules; the kernel flushed its tables
  when its sockets closed) and are removed, unless a live program still owns the table
  (MRT_INIT says EADDRINUSE), which is refused. Linux has no way to delete an empty table:
  it stays, a few hundred octets, and is reused next time.
- VIFs by interface index (VIFF_USE_IFINDEX; an ip6mr MIF names the index anyway). The
  upstream is VIF 0 of its table; each downstream has the same VIF index in every table
  (1..31), kept while the interface is configured, even while it does not exist, so routes
  naming it come back to life when it does. The kernel allows 32 VIFs per table (MAXVIFS).
- An interface that does not exist is remembered; ``interface_changed`` (on netlink link
  events) adds its VIFs when it appears, and re-adds them when it comes back with a new
  index. The kernel removes a VIF itself when its device is unregistered.
- Routes are MFC entries, recorded here too: an entry's outgoing thresholds are computed
  by the kernel only for VIFs that exist when it is added, so entries naming an interface
  are re-added when its VIF is. An entry never forwards back out of its arrival interface.
- Upcalls: ipmr raises NOCACHE for data with no entry (and WRONGVIF, WHOLEPKT with asserts
  and PIM, which we do not turn on; they would be counted). Each table's upcalls come on
  its socket. ``fileno()`` is an epoll descriptor over all the table sockets, so the daemon
  registers one reader whatever tables come and go.
- An IPv4 mroute socket is a raw IGMP socket, and MRT_INIT also puts it in the Router
  Alert chain: it receives IGMP packets as well (every IGMP packet with Router Alert that
  arrives on a VIF interface, to any group, and local IGMP to joined groups). mcastproxy
  receives IGMP on sockets of its own (``netio``: a raw socket and a packet socket), so a BPF
  filter on each mroute socket
  keeps only upcalls: an ``igmpmsg`` overlays the IP header with protocol octet 0, IGMP has 2.
  An IPv6 mroute socket is a raw ICMPv6 socket: an ICMP6_FILTER blocking every type does
  the same, as ip6mr queues its upcalls on the socket past that filter.
- Counters by SIOCGETSGCNT / SIOCGETSGCNT_IN6 per recorded entry, on the table's socket:
  ~4-5 µs an entry, faster than decoding a netlink dump of the same entries in Python
  (~7 µs an entry; ``rtnl.Rtnl.mroutes`` is kept for diagnostics).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import select
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from mcastproxy.family import Family
from mcastproxy.kernel import structs
from mcastproxy.kernel.api import KernelError, Role, RouteCounters, Upcall
from mcastproxy.kernel.rtnl import RTNL_FAMILY_IP6MR, RTNL_FAMILY_IPMR, Rtnl, Rule, is_gone
from mcastproxy.kernel.structs import MAXVIFS, RawUpcall, UpcallKind
from mcastproxy.netio import sockopts

DEFAULT_TABLE_BASE = 4600
DEFAULT_TABLE_COUNT = 256
DEFAULT_RULE_PRIORITY = 4600
UPSTREAM_VIF = 0
_RCVBUF = 1 << 20  # a burst of new flows queues one ~800-octet upcall each
_MAX_UPCALLS_PER_READ = 4096
_U32 = struct.Struct("@I")
_INT = struct.Struct("@i")


@dataclass(frozen=True, slots=True)
class _FamilyOps:
    """What differs between ipmr and ip6mr."""

    family: Family
    address_family: socket.AddressFamily
    protocol: int
    level: int
    rtnl_family: int
    vif: Callable[[int, int], bytes]
    del_vif: Callable[[int, int], bytes]
    mfc: Callable[[bytes, bytes, int, frozenset[int]], bytes]
    sg_req: Callable[[bytes, bytes], bytes]
    parse_upcall: Callable[[bytes], RawUpcall | None]
    name: str


_IPV4 = _FamilyOps(
    family=Family.V4,
    address_family=socket.AF_INET,
    protocol=socket.IPPROTO_IGMP,
    level=socket.IPPROTO_IP,
    rtnl_family=RTNL_FAMILY_IPMR,
    vif=structs.vifctl,
    del_vif=structs.vifctl,  # MRT_DEL_VIF reads a whole vifctl, uses vifc_vifi
    mfc=structs.mfcctl,
    sg_req=structs.sioc_sg_req,
    parse_upcall=structs.parse_igmpmsg,
    name="IPv4",
)
_IPV6 = _FamilyOps(
    family=Family.V6,
    address_family=socket.AF_INET6,
    protocol=socket.IPPROTO_ICMPV6,
    level=socket.IPPROTO_IPV6,
    rtnl_family=RTNL_FAMILY_IP6MR,
    vif=structs.mif6ctl,
    del_vif=lambda mifi, _ifindex: struct.pack("@H", mifi),  # MRT6_DEL_MIF reads a mifi_t
    mfc=structs.mf6cctl,
    sg_req=structs.sioc_sg_req6,
    parse_upcall=structs.parse_mrt6msg,
    name="IPv6",
)

# Keep only upcalls on an IPv4 mroute socket: A = octet 9 (the IP protocol; igmpmsg's
# im_mbz); accept if 0, else drop.
_UPCALLS_ONLY = (
    sockopts.bpf(sockopts.BPF_LD_B_ABS, 0, 0, 9),
    sockopts.bpf(sockopts.BPF_JEQ_K, 0, 1, 0),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0xFFFF),
    sockopts.bpf(sockopts.BPF_RET_K, 0, 0, 0),
)


@dataclass(slots=True)
class _Route:
    iif: str
    oifs: frozenset[str]
    sg_req: bytes


@dataclass(slots=True)
class _Table:
    upstream: str
    id: int
    sock: socket.socket
    routes: dict[tuple[bytes, bytes], _Route] = field(default_factory=dict)
    # interface name -> VIF index, for the VIFs currently in the kernel (existing devices)
    live: dict[str, int] = field(default_factory=dict)


def _describe(err: OSError) -> str:
    return err.strerror or str(err)


class MulticastRouter:
    """Multicast routing of one family through the kernel, a table per upstream interface."""

    def __init__(
        self,
        family: Family,
        *,
        table_base: int = DEFAULT_TABLE_BASE,
        table_count: int = DEFAULT_TABLE_COUNT,
        rule_priority: int = DEFAULT_RULE_PRIORITY,
        ifindex: Callable[[str], int | None] | None = None,
    ) -> None:
        if not (table_base > 0 and table_count > 0 and table_base + table_count < 2**32):
            raise ValueError("table ids must lie in 1..2**32-1")
        if table_base <= 255 < table_base + table_count:
            raise ValueError("the table range must not hold the kernel's tables 253-255")
        self.family = Family(family)  # ValueError if it is no family
        self._ops = _IPV4 if self.family is Family.V4 else _IPV6
        self.table_base = table_base
        self.table_count = table_count
        self.rule_priority = rule_priority
        self._lookup_ifindex = ifindex or _if_nametoindex
        self._tables: dict[str, _Table] = {}
        self._slots: dict[str, int] = {}  # downstream -> VIF index, the same in every table
        self._ifindex: dict[str, int | None] = {}  # known interfaces -> index now (or None)
        self._rtnl: Rtnl | None = None
        self._epoll: select.epoll | None = None
        self._by_fd: dict[int, _Table] = {}
        self.upcall_counts: Counter[UpcallKind] = Counter()
        """Upcalls read, by kind (WRONGVIF and WHOLEPKT are counted and not returned)."""
        self.ignored = 0
        """Messages read from a mroute socket that were not upcalls."""

    # -- start and stop ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether ``start`` has been called and ``stop`` not yet."""
        return self._rtnl is not None

    @property
    def table_ids(self) -> dict[str, int]:
        """Upstream interface -> its kernel table id."""
        return {name: t.id for name, t in self._tables.items()}

    def start(self, upstreams: list[str], downstreams: list[str]) -> None:
        """Create a table per upstream (socket, rule, VIFs), after removing stale ones."""
        if self.running:
            raise RuntimeError("already started")
        names = [*upstreams, *downstreams]
        if len(set(names)) != len(names):
            raise ValueError("an interface is named twice")
        if len(upstreams) > self.table_count:
            raise KernelError(f"{len(upstreams)} upstreams, but {self.table_count} tables")
        self._check_vif_count(len(downstreams))
        try:
            self._rtnl = Rtnl()
        except OSError as e:
            raise _system_error(e, "netlink") from e
        self._epoll = select.epoll()
        try:
            for name in downstreams:
                self._slots[name] = len(self._slots) + 1
                self._ifindex[name] = self._lookup_ifindex(name)
            for name in upstreams:
                self._ifindex[name] = self._lookup_ifindex(name)
                self._new_table(name, self.table_base + len(self._tables))
            self._remove_stale_rules()
            for table in list(self._tables.values()):
                self._add_rule(table)
                self._sync_vifs(table)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every table socket (the kernel flushes its VIFs and entries) and delete the
        rules. Idempotent; safe from a signal handler (no processes, no blocking calls)."""
        rtnl, self._rtnl = self._rtnl, None
        tables, self._tables = self._tables, {}
        for table in tables.values():
            self._close_table(table)
        if rtnl is not None:
            for table in tables.values():
                with contextlib.suppress(OSError):
                    rtnl.delete_rule(self._rule(table))
            rtnl.close()
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self._by_fd.clear()
        self._slots.clear()
        self._ifindex.clear()

    def _check_vif_count(self, downstreams: int) -> None:
        if downstreams + 1 > MAXVIFS:
            raise KernelError(
                f"{downstreams} downstream interfaces: a multicast routing table holds at most "
                f"{MAXVIFS} VIFs (MAXVIFS), one upstream and {MAXVIFS - 1} downstreams"
            )

    def _open_table(self, table_id: int) -> socket.socket:
        ops = self._ops
        try:
            sock = socket.socket(ops.address_family, socket.SOCK_RAW, ops.protocol)
        except PermissionError as e:
            raise _permission_error(e) from e
        except OSError as e:
            raise _system_error(e, f"{ops.name} raw socket") from e
        try:
            sock.setblocking(False)
            # Filter before MRT_INIT, so no IGMP/ICMPv6 is ever queued, then drain what came
            # in between socket() and the filter.
            if ops.family is Family.V4:
                sockopts.attach_filter(sock, _UPCALLS_ONLY)
            else:
                sock.setsockopt(
                    socket.IPPROTO_ICMPV6, sockopts.ICMP6_FILTER, sockopts.icmp6_filter(())
                )
            _drain(sock)
            sockopts.set_rcvbuf(sock, _RCVBUF)
            v6 = "" if ops.family is Family.V4 else "V6"
            try:
                sock.setsockopt(ops.level, structs.MRT_TABLE, _U32.pack(table_id))
            except OSError as e:
                if e.errno == errno.ENOPROTOOPT:
                    raise KernelError(
                        f"this kernel has no {ops.name} multicast routing with several tables "
                        f"(CONFIG_IP{v6}_MROUTE, CONFIG_IP{v6}_MROUTE_MULTIPLE_TABLES)",
                        e.errno,
                    ) from e
                raise
            try:
                sock.setsockopt(ops.level, structs.MRT_INIT, _INT.pack(1))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise KernelError(
                        f"{ops.name} multicast routing table {table_id} is in use by another "
                        "program (another mcastproxy, or a multicast router using that table)",
                        e.errno,
                    ) from e
                raise
        except KernelError:
            sock.close()
            raise
        except PermissionError as e:
            sock.close()
            raise _permission_error(e) from e
        except OSError as e:
            sock.close()
            raise _system_error(e, f"{ops.name} table {table_id}") from e
        return sock

    def _new_table(self, upstream: str, table_id: int) -> _Table:
        table = _Table(upstream, table_id, self._open_table(table_id))
        self._tables[upstream] = table
        self._by_fd[table.sock.fileno()] = table
        assert self._epoll is not None
        self._epoll.register(table.sock.fileno(), select.EPOLLIN)
        return table

    def _close_table(self, table: _Table) -> None:
        fd = table.sock.fileno()
        if fd >= 0:
            self._by_fd.pop(fd, None)
            if self._epoll is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(fd)
            with contextlib.suppress(OSError):
                table.sock.setsockopt(self._ops.level, structs.MRT_DONE, _INT.pack(1))
        table.sock.close()

    def _rule(self, table: _Table) -> Rule:
        return Rule(self._ops.rtnl_family, self.rule_priority, table.id, table.upstream)

    def _add_rule(self, table: _Table) -> None:
        assert self._rtnl is not None
        try:
            self._rtnl.add_rule(self._rule(table))
        except OSError as e:
            raise _system_error(e, f"rule iif {table.upstream} lookup {table.id}") from e

    def _ours(self, table_id: int) -> bool:
        return self.table_base <= table_id < self.table_base + self.table_count

    def _remove_stale_rules(self) -> None:
        """Delete rules into our table range left by an earlier run; refuse if a live
        program still owns one of those tables."""
        assert self._rtnl is not None
        mine = {t.id for t in self._tables.values()}
        try:
            rules = self._rtnl.rules(self._ops.rtnl_family)
        except OSError as e:
            raise _system_error(e, "rule dump") from e
        for rule in rules:
            if not self._ours(rule.table):
                continue
            if rule.table not in mine:
                # Owned by someone alive? MRT_INIT on it says so; if not, this probe
                # takes it and closing the probe flushes whatever is left in it.
                self._open_table(rule.table).close()
            try:
                self._rtnl.delete_rule(rule)
            except OSError as e:
                raise _system_error(e, f"stale rule {rule}") from e

    # -- interfaces -------------------------------------------------------------------------

    def add_interface(self, name: str, role: Role) -> None:
        """Use ``name`` from now on; its VIFs are added now if it exists, else when it does."""
        self._require_running()
        role = Role(role)
        if name in self._tables or name in self._slots:
            current = Role.UPSTREAM if name in self._tables else Role.DOWNSTREAM
            if current != role:
                raise ValueError(f"{name} is already a {current} interface")
            self.interface_changed(name)
            return
        self._ifindex[name] = self._lookup_ifindex(name)
        if role == Role.UPSTREAM:
            used = {t.id for t in self._tables.values()}
            free = list(range(self.table_base, self.table_base + self.table_count))
            table_id = next((i for i in free if i not in used), None)
            if table_id is None:
                raise KernelError(f"no table left in {self.table_base}..{free[-1]}")
            table = self._new_table(name, table_id)
            try:
                self._add_rule(table)
                self._sync_vifs(table)
            except BaseException:
                self.remove_interface(name)
                raise
        else:
            used_slots = set(self._slots.values())
            slot = next((v for v in range(1, MAXVIFS) if v not in used_slots), None)
            if slot is None:
                self._check_vif_count(len(self._slots) + 1)
                raise AssertionError("unreachable")
            self._slots[name] = slot
            for table in self._tables.values():
                self._sync_vifs(table)

    def remove_interface(self, name: str) -> None:
        """Stop using ``name``: an upstream's table goes (socket, rule, entries); a
        downstream's VIFs go, and routes naming it are rewritten without it."""
        self._require_running()
        if name in self._tables:
            table = self._tables.pop(name)
            self._close_table(table)
            assert self._rtnl is not None
            with contextlib.suppress(OSError):
                self._rtnl.delete_rule(self._rule(table))
        elif name in self._slots:
            for table in self._tables.values():
                for key, route in list(table.routes.items()):
                    if route.iif == name:
                        self._delete_entry(table, key)
                    elif name in route.oifs:
                        self._write_route(table, key, route.iif, route.oifs - {name})
                if name in table.live:
                    self._del_vif(table, name)
            del self._slots[name]
        else:
            raise ValueError(f"{name} is not an interface of this router")
        self._ifindex.pop(name, None)

    def interface_changed(self, name: str) -> None:
        """Re-read ``name``'s index (call on netlink link events): add its VIFs if it has
        appeared or came back with a new index, forget them if it is gone."""
        self._require_running()
        if name not in self._ifindex:
            return  # not ours
        self._ifindex[name] = self._lookup_ifindex(name)
        for table in self._tables.values():
            self._sync_vifs(table)

    def _vif_of(self, table: _Table, name: str) -> int | None:
        if name == table.upstream:
            return UPSTREAM_VIF
        return self._slots.get(name)

    def _sync_vifs(self, table: _Table) -> None:
        """Make the table's VIFs match the interfaces that exist now; re-add the entries
        naming an interface whose VIF was (re)added."""
        added = set()
        for name in [table.upstream, *self._slots]:
            vifi = self._vif_of(table, name)
            assert vifi is not None
            index = self._ifindex.get(name)
            if table.live.get(name) == index and index is not None:
                continue
            if name in table.live:
                self._del_vif(table, name)
            if index is not None and self._add_vif(table, name, vifi, index):
                added.add(name)
        if added:
            for key, route in list(table.routes.items()):
                if route.iif in added or route.oifs & added:
                    self._write_route(table, key, route.iif, route.oifs)

    def _add_vif(self, table: _Table, name: str, vifi: int, index: int) -> bool:
        ops = self._ops
        try:
            table.sock.setsockopt(ops.level, structs.MRT_ADD_VIF, ops.vif(vifi, index))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                # Left over (a device that went away and came back): replace it.
                self._del_vif_index(table, vifi)
                try:
                    table.sock.setsockopt(ops.level, structs.MRT_ADD_VIF, ops.vif(vifi, index))
                except OSError as e2:
                    raise _system_error(e2, f"VIF {vifi} ({name}) in table {table.id}") from e2
            elif e.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
                # Gone since we looked (or, IPv4, no IPv4 on it): wait for the next change.
                self._ifindex[name] = None
                return False
            else:
                raise _system_error(e, f"VIF {vifi} ({name}) in table {table.id}") from e
        table.live[name] = index
        return True

    def _del_vif(self, table: _Table, name: str) -> None:
        table.live.pop(name, None)
        vifi = self._vif_of(table, name)
        if vifi is not None:
            self._del_vif_index(table, vifi)

    def _del_vif_index(self, table: _Table, vifi: int) -> None:
        try:
            table.sock.setsockopt(self._ops.level, structs.MRT_DEL_VIF, self._ops.del_vif(vifi, 0))
        except OSError as e:
            if not is_gone(e):  # the kernel removed it with its device: fine
                raise _system_error(e, f"delete VIF {vifi} in table {table.id}") from e

    # -- routes -----------------------------------------------------------------------------

    def set_route(
        self, table: str, source: bytes, group: bytes, iif: str, oifs: frozenset[str]
    ) -> None:
        """Install or replace (source, group) in ``table``: arriving on ``iif``, forwarded
        out of ``oifs`` (empty: forwards nothing, still counts)."""
        t = self._table(table)
        self._check_addresses(source, group)
        for name in (iif, *oifs):
            if self._vif_of(t, name) is None:
                raise ValueError(f"{name} is not an interface of table {table}")
        self._write_route(t, (source, group), iif, frozenset(oifs))

    def delete_route(self, table: str, source: bytes, group: bytes) -> None:
        """Remove (source, group) from ``table``; already gone is not an error."""
        t = self._table(table)
        self._check_addresses(source, group)
        self._delete_entry(t, (source, group))

    def routes(self, table: str) -> dict[tuple[bytes, bytes], tuple[str, frozenset[str]]]:
        """The routes set in ``table``: (source, group) -> (iif, oifs)."""
        return {k: (r.iif, r.oifs) for k, r in self._table(table).routes.items()}

    def _write_route(
        self, table: _Table, key: tuple[bytes, bytes], iif: str, oifs: frozenset[str]
    ) -> None:
        ops = self._ops
        parent = self._vif_of(table, iif)
        assert parent is not None
        out = frozenset(v for o in oifs if o != iif and (v := self._vif_of(table, o)) is not None)
        try:
            table.sock.setsockopt(ops.level, structs.MRT_ADD_MFC, ops.mfc(*key, parent, out))
        except OSError as e:
            raise _system_error(e, f"route in table {table.id}") from e
        route = table.routes.get(key)
        if route is None:
            table.routes[key] = _Route(iif, oifs, ops.sg_req(*key))
        else:
            route.iif, route.oifs = iif, oifs

    def _delete_entry(self, table: _Table, key: tuple[bytes, bytes]) -> None:
        ops = self._ops
        route = table.routes.pop(key, None)
        parent = self._vif_of(table, route.iif) if route is not None else UPSTREAM_VIF
        try:
            table.sock.setsockopt(
                ops.level, structs.MRT_DEL_MFC, ops.mfc(*key, parent or 0, frozenset())
            )
        except OSError as e:
            if not is_gone(e):
                raise _system_error(e, f"delete route in table {table.id}") from e

    def _check_addresses(self, source: bytes, group: bytes) -> None:
        size = self._ops.family.length
        if len(source) != size or len(group) != size:
            raise ValueError(f"{self._ops.name} addresses are {size} octets")

    def _table(self, name: str) -> _Table:
        self._require_running()
        try:
            return self._tables[name]
        except KeyError:
            raise ValueError(f"no table for upstream {name!r}") from None

    def _require_running(self) -> None:
        if not self.running:
            raise RuntimeError("the router is not started")

    # -- upcalls ----------------------------------------------------------------------------

    def fileno(self) -> int:
        """An epoll descriptor, readable when any table has upcalls (for ``add_reader``).
        Valid from ``start`` to ``stop``."""
        self._require_running()
        assert self._epoll is not None
        return self._epoll.fileno()

    def read_upcalls(self) -> list[Upcall]:
        """The upcalls queued on every table, without blocking. NOCACHE ones are returned;
        other kinds are only counted in ``upcall_counts``."""
        if self._epoll is None:
            return []
        out: list[Upcall] = []
        for fd, _ in self._epoll.poll(0):
            table = self._by_fd.get(fd)
            if table is not None:
                self._read_table(table, out)
        return out

    def _read_table(self, table: _Table, out: list[Upcall]) -> None:
        parse = self._ops.parse_upcall
        names = {self._vif_of(table, n): n for n in table.live}
        for _ in range(_MAX_UPCALLS_PER_READ):
            try:
                data = table.sock.recv(256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            raw = parse(data)
            if raw is None:
                self.ignored += 1
                continue
            try:
                kind = UpcallKind(raw.kind)
            except ValueError:
                self.ignored += 1
                continue
            self.upcall_counts[kind] += 1
            if kind == UpcallKind.NOCACHE:
                out.append(Upcall(kind, table.upstream, names.get(raw.vif), raw.source, raw.group))

    # -- counters ---------------------------------------------------------------------------

    def counters(self, table: str | None = None) -> dict[tuple[str, bytes, bytes], RouteCounters]:
        """Packets, octets and wrong-interface arrivals of every route set (SIOCGETSGCNT)."""
        self._require_running()
        tables = [self._table(table)] if table is not None else list(self._tables.values())
        out: dict[tuple[str, bytes, bytes], RouteCounters] = {}
        family = self.family
        request = structs.SIOCGETSGCNT
        ioctl = fcntl.ioctl
        for t in tables:
            fd = t.sock.fileno()
            for (source, group), route in t.routes.items():
                try:
                    reply = ioctl(fd, request, route.sg_req)
                except OSError:
                    continue  # no such entry (cannot happen for a recorded route)
                out[t.upstream, source, group] = RouteCounters(*structs.sg_counts(reply, family))
        return out

    def route_counters(self, table: str, source: bytes, group: bytes) -> RouteCounters | None:
        """The counters of one route set (one ioctl); None if no such route is set."""
        t = self._tables.get(table)
        if t is None:
            return None
        route = t.routes.get((source, group))
        if route is None:
            return None
        try:
            reply = fcntl.ioctl(t.sock.fileno(), structs.SIOCGETSGCNT, route.sg_req)
        except OSError:
            return None  # the kernel holds no such entry (someone else deleted it)
        return RouteCounters(*structs.sg_counts(reply, self.family))

    def __repr__(self) -> str:
        tables = ", ".join(f"{n}:{t.id}" for n, t in self._tables.items())
        state = "running" if self.running else "stopped"
        return f"<MulticastRouter IPv{self.family} {state} {tables}>"


def _if_nametoindex(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while True:
            sock.recv(65535)


def _permission_error(e: OSError) -> KernelError:
    return KernelError("multicast routing needs root (CAP_NET_ADMIN and CAP_NET_RAW)", e.errno)


def _system_error(e: OSError, what: str) -> KernelError:
    if e.errno in (errno.EPERM, errno.EACCES):
        return _permission_error(e)
    if e.errno == errno.ENOPROTOOPT:
        return KernelError(f"{what}: this kernel has no multicast routing (CONFIG_IP_MROUTE)")
    return KernelError(f"{what}: {_describe(e)}", e.errno)
