"""The ``mcastproxy`` command line."""

from __future__ import annotations

import argparse
import datetime
import errno
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcastproxy import __version__, build, settlement
from mcastproxy.bandwidth import format_rate
from mcastproxy.config import Config, ConfigError, load_config
from mcastproxy.family import Family
from mcastproxy.policy import UNLIMITED, EdgePolicy
from mcastproxy.selection import Selector
from mcastproxy.statusview import VIEWS, text, view
from mcastproxy.system import interface_addresses

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcastproxy",
        description="IGMP/MLD proxy (RFC 4605) with several upstream interfaces.",
    )
    parser.add_argument("--version", action="version",
                        version=f"mcastproxy {__version__} ({build()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="validate a configuration file")
    check.add_argument("-c", "--config", required=True, metavar="FILE")
    check.set_defaults(func=cmd_check)

    explain = sub.add_parser(
        "explain", help="show which upstream(s) a membership is requested from, and why, "
                        "and what the edge policy and limits say of it"
    )
    explain.add_argument("-c", "--config", required=True, metavar="FILE")
    explain.add_argument("--subscriber", metavar="H", help="the reporting host's address")
    explain.add_argument("--source", metavar="S", help="the source (omit for any source)")
    explain.add_argument("--group", required=True, metavar="G", help="the multicast group")
    explain.add_argument("--link", metavar="D",
                         help="the downstream link the subscriber is on (default: each)")
    explain.add_argument(
        "--down", action="append", default=[], metavar="U1,U2",
        help="mark these upstream candidates unusable, to show what takeover does",
    )
    explain.add_argument(
        "--live", nargs="?", const="", default=None, metavar="SOCKET",
        help="take which upstreams are unusable from the running proxy (its status socket)",
    )
    explain.add_argument("--json", action="store_true", help="print a JSON object")
    explain.set_defaults(func=cmd_explain)

    run = sub.add_parser("run", help="run the proxy in the foreground, logging to stderr")
    run.add_argument("-c", "--config", required=True, metavar="FILE")
    run.add_argument("--status-socket", default=None, metavar="PATH",
                     help="UNIX socket for `mcastproxy status` (default "
                          "/run/mcastproxy/mcastproxy.sock)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=cmd_run, platform=None)

    status = sub.add_parser("status", help="show the running proxy's state")
    status.add_argument("view", nargs="?", choices=VIEWS, metavar="VIEW",
                        help=f"one part of it, as rows: {', '.join(VIEWS)}")
    status.add_argument("--socket", default=None, metavar="PATH")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.add_argument("--subscriber", metavar="H", help="rows of this subscriber only")
    status.add_argument("--group", metavar="G", help="rows of this group only")
    status.add_argument("--interface", metavar="I", help="rows of this interface only")
    status.set_defaults(func=cmd_status)

    top = sub.add_parser("top", help="a live view of the running proxy: upstreams, links, the "
                                     "busiest channels and their rates, refusals")
    top.add_argument("--socket", default=None, metavar="PATH")
    top.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS",
                     help="between two refreshes (default 1)")
    top.add_argument("--rows", type=int, default=20, metavar="N", help="channels shown")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.set_defaults(func=cmd_top)

    accounting = sub.add_parser(
        "accounting", help="sum the session log (and its rotated files) for billing and "
                           "settlement: sessions, duration, packets and bytes")
    accounting.add_argument("--log", required=True, metavar="PATH",
                            help="the session log (accounting.session-log); PATH.1 ... too")
    accounting.add_argument("--since", metavar="T", type=_time,
                            help="sessions that ended at or after T (ISO 8601; UTC if no zone)")
    accounting.add_argument("--until", metavar="T", type=_time,
                            help="sessions that ended before T")
    accounting.add_argument("--by", choices=settlement.BY,
                            help="one row per upstream, link, subscriber or channel")
    accounting.add_argument("--json", action="store_true", help="print a JSON object")
    accounting.set_defaults(func=cmd_accounting)
    return parser


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0.1 "
                                         "to 3600")
    return value


def cmd_top(args: argparse.Namespace) -> int:
    from mcastproxy import daemon, top  # noqa: PLC0415

    path = Path(args.socket) if args.socket else daemon.DEFAULT_STATUS_SOCKET
    try:
        return top.run(path, args.interval, args.once, max(1, args.rows))
    except OSError as exc:
        print(f"mcastproxy top: {_no_answer(path, exc)}", file=sys.stderr)
        return 1


def _time(text: str) -> datetime.datetime:
    try:
        return settlement.parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time "
                                         "(2026-12-03T13:00:00Z)") from None


def cmd_accounting(args: argparse.Namespace) -> int:
    path = Path(args.log)
    files = settlement.log_files(path)
    if not files:
        print(f"mcastproxy accounting: no log at {path} (nor {path}.1)", file=sys.stderr)
        return 1
    summary = settlement.summarize(files, since=args.since, until=args.until, by=args.by)
    print(json.dumps(summary.as_dict(args.by), indent=2) if args.json
          else settlement.table(summary, args.by))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mcastproxy import daemon  # noqa: PLC0415 - the daemon pulls in the I/O layers
    from mcastproxy.logs import configure  # noqa: PLC0415 - only the daemon logs

    configure(args.log_level)
    sock = Path(args.status_socket) if args.status_socket else daemon.DEFAULT_STATUS_SOCKET
    return daemon.run(Path(args.config), status_socket=sock, platform=args.platform)


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from mcastproxy import daemon  # noqa: PLC0415

    path = Path(args.socket) if args.socket else daemon.DEFAULT_STATUS_SOCKET
    try:
        state = asyncio.run(daemon.query_status(path))
    except OSError as exc:
        print(f"mcastproxy status: {_no_answer(path, exc)}", file=sys.stderr)
        return 1
    if args.view is not None or args.subscriber or args.group or args.interface:
        try:
            rows = view(state, args.view or "memberships", subscriber=args.subscriber,
                        group=args.group, interface=args.interface)
        except ValueError as exc:
            print(f"mcastproxy status: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(json.dumps(rows, indent=2) if args.json else text(args.view or "memberships",
                                                                  rows))
        return 0
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    for name, up in state["upstreams"].items():
        use = "usable" if up["usable"] else "UNUSABLE"
        why = (up.get("liveness") or {}).get("inactive_because")
        use += f": {why}" if why and not up["usable"] else ""
        print(f"upstream {name} ({use}, priority {up['priority']}):")
        for group, g in up["groups"].items():
            srcs = f" sources {', '.join(g['sources'])}" if g["sources"] else ""
            print(f"  {group} {g['mode']}{srcs}")
    for name, link in state["downstream"].items():
        print(f"downstream {name}{' (querier)' if link.get('is-querier') else ''}:")
        adm = link.get("admission")
        if adm:
            print(f"  admission: {adm['groups-count']} groups of max-groups {adm['max-groups']},"
                  f" {adm['subscribers']} subscribers")
            for prefix, reasons in adm["refused"].items():
                who = "no subscriber prefix" if prefix == "-" else f"subscribers {prefix}"
                print(f"  refused ({who}): "
                      + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        for group, g in link["groups"].items():
            print(f"  {group} from {', '.join(g['upstreams']) or '-'}: "
                  f"{', '.join(g['subscribers']) or 'untracked listeners'}")
    for r in state["routes"]:
        data = f" [data {r['data']}]" if "data" in r else ""
        print(f"route ({r['source']}, {r['group']}) {r['upstream']} -> "
              f"{', '.join(r['downstream']) or '(standby)'}{data}")
    if state.get("events"):
        print("events: " + ", ".join(f"{k} {v}" for k, v in sorted(state["events"].items())))
    accounting = state.get("accounting")
    if accounting:
        for kind, key in (("received", "upstreams"), ("delivered", "links")):
            for name, t in sorted(accounting[key].items()):
                print(f"{kind} {name}: {t['bytes']:,} bytes, {t['packets']:,} packets")
    if state.get("drops"):
        for interface, reasons in sorted(state["drops"].items()):
            where = "no interface" if interface == "-" else interface
            print(f"dropped on {where}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        sockets = {k: v for k, v in state["dropped"].items() if k.startswith("socket: ")}
        if sockets:
            print("dropped by the sockets: " + ", ".join(
                f"{k.removeprefix('socket: ')} {v}" for k, v in sockets.items()))
    elif state["dropped"]:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in state["dropped"].items()))
    if state.get("admission"):
        adm = state["admission"]
        print(f"admission: {adm['entries-count']} entries of max-entries {adm['max-entries']}")
    engine = state.get("engine") or {}
    if engine.get("resets"):
        print(f"engine resets: {engine['resets']} (last: {engine['last-error']})")
    return 0


def _no_answer(path: Path, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    if exc.errno == errno.EPROTO:  # connected, but no whole answer
        return f"no answer from the proxy at {path}: {why}"
    return f"no running proxy at {path}: {why}"


def _load(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"{path}: {issue}", file=sys.stderr)
        return None


def summarize(config: Config) -> str:
    """One line saying what a configuration does."""
    protocols = [f"IGMPv{config.igmp.version}"] if config.igmp else []
    protocols += [f"MLDv{config.mld.version}"] if config.mld else []
    links = ", ".join(d.interface for d in config.downstream)
    cands = ", ".join(
        f"{c.interface} (priority {c.priority}, {len(c.records)} records)"
        for c in config.upstream.candidates
    )
    default = config.upstream.default or "highest address"
    takeover = "on" if config.upstream.takeover else "off"
    return (
        f"{' and '.join(protocols)}; downstream {links}; upstream {cands}; "
        f"default {default}; takeover {takeover}{_policy_summary(config)}"
    )


def _policy_summary(config: Config) -> str:
    """The edge policy in a few words, if there is one to speak of."""
    glob = config.policy
    rules = len(glob.group_policy) + sum(
        len(d.policy.group_policy) + sum(len(s.group_policy) for s in d.policy.subscribers)
        for d in config.downstream)
    ssm = [d.interface for d in config.downstream
           if (d.policy.ssm_only if d.policy.ssm_only is not None else glob.ssm_only)]
    parts = [f"{rules} rules"] if rules else []
    parts += [f"default {glob.default}"] if glob.default else []
    parts += [f"ssm-only on {', '.join(ssm)}"] if ssm else []
    return f"; edge policy: {', '.join(parts)}" if parts else ""


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    from mcastproxy.checks import host_view, warnings  # noqa: PLC0415 - netlink

    for warning in warnings(config, host_view(config)):
        print(f"{args.config}: warning: {warning}", file=sys.stderr)
    print(f"{args.config}: ok: {summarize(config)}")
    return 0


def _host(text: str | None, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise SystemExit(f"mcastproxy explain: --{what} {text!r} is not an IP address") from None


def cmd_explain(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    group = _host(args.group, "group")
    source = _host(args.source, "source")
    subscriber = _host(args.subscriber, "subscriber")
    assert group is not None
    problems = []
    if not group.is_multicast:
        problems.append(f"--group {group} is not a multicast address")
    for what, addr in (("source", source), ("subscriber", subscriber)):
        if addr is not None and addr.version != group.version:
            problems.append(f"--{what} {addr} is not of the group's address family")
    names = [c.interface for c in config.upstream.candidates]
    down = {name for item in args.down for name in item.split(",") if name}
    liveness: dict[str, object] = {}
    flows: list[dict[str, object]] = []  # the running proxy's routes of this channel
    live: dict[str, Any] | None = None  # what the running proxy counts (--live)
    if args.live is not None:
        import asyncio  # noqa: PLC0415 - only --live talks to the daemon

        from mcastproxy import daemon  # noqa: PLC0415

        path = Path(args.live) if args.live else daemon.DEFAULT_STATUS_SOCKET
        try:
            state = asyncio.run(daemon.query_status(path))
        except OSError as exc:
            print(f"mcastproxy explain: {_no_answer(path, exc)}", file=sys.stderr)
            return 1
        for name, up in state["upstreams"].items():
            liveness[name] = up.get("liveness", {"usable": up["usable"]})
            if not up["usable"] and name in names:
                down.add(name)
        flows = [r for r in state.get("routes", []) if r["group"] == str(group)
                 and (source is None or r["source"] == str(source))]
        live = _live_counts(state, str(group), str(source) if source else "*")
    problems += [f"--down {name} is not a candidate upstream" for name in sorted(down - {*names})]
    links = [d.interface for d in config.downstream]
    if args.link is not None and args.link not in links:
        problems.append(f"--link {args.link} is not a downstream link "
                        f"(downstream: {', '.join(links)})")
    if problems:
        for p in problems:
            print(f"mcastproxy explain: {p}", file=sys.stderr)
        return EXIT_USAGE
    # The §4.4 fallback wants interface addresses: the system's where the interfaces exist.
    try:
        addresses = interface_addresses(names)
    except OSError:
        addresses = {}
    selector = Selector(config, addresses)
    unknown = subscriber is None or subscriber.is_unspecified
    sel = selector.select(
        None if unknown else subscriber.packed,
        source.packed if source else None,
        group.packed,
        frozenset(down),
    )
    admission = {
        link: _admission(config, link, None if unknown else subscriber.packed,
                         source.packed if source else None, group.packed)
        for link in ([args.link] if args.link else links)}
    if args.json:
        print(json.dumps({
            "upstreams": list(sel.upstreams),
            "reason": sel.reason,
            "rule": sel.rule.value,
            "record": sel.record.as_dict() if sel.record else None,
            "priority": sel.priority,
            "skipped": list(sel.skipped),
            "inactive": list(sel.inactive),
            "down": sorted(down),
            "liveness": liveness,
            "flows": flows,
            "membership": {
                "subscriber": None if unknown else str(subscriber),
                "source": str(source) if source else None,
                "group": str(group),
            },
            "policy": admission,
            **({"live": live} if live is not None else {}),
        }, indent=2, ensure_ascii=False))
        return 0
    channel = f"({source or '*'}, {group})"
    who = "an unknown subscriber" if unknown else f"subscriber {subscriber}"
    print(f"{channel} for {who}:")
    print(f"  upstream: {', '.join(sel.upstreams) or 'none'}")
    print(f"  rule:     {sel.rule.value}")
    print(f"  why:      {sel.reason}")
    for name, live in liveness.items():
        if isinstance(live, dict) and not live.get("usable", True):
            why = live.get("inactive_because") or "held down after a return"
            print(f"  {name}:       unusable ({why})")
    for f in flows:
        data = f" (data {f['data']})" if "data" in f else ""
        feeds = ", ".join(f["downstream"]) or "nothing: hot standby"
        print(f"  flow:     ({f['source']}, {f['group']}) from {f['upstream']}{data} feeds {feeds}")
    usable = [n for n in names if n not in down]
    print(
        f"  liveness: usable {', '.join(usable) or 'none'}; "
        f"down {', '.join(sorted(down)) or 'none'}; "
        f"takeover {'on' if config.upstream.takeover else 'off'}"
    )
    if config.upstream.ties == "share" and len(sel.upstreams) > 1:
        print("  ties:     share: the channel is placed on one of them, the one with the most "
              "room")
    for c in config.upstream.candidates:
        if c.interface in sel.upstreams and (c.max_bandwidth is not None
                                             or c.max_groups is not None):
            bw = format_rate(UNLIMITED if c.max_bandwidth in (None, "unlimited")
                             else int(c.max_bandwidth))
            groups = "unlimited" if c.max_groups in (None, "unlimited") else f"{c.max_groups:,}"
            print(f"  budget:   {c.interface} max-bandwidth {bw}, max-groups {groups}")
    for link, said in admission.items():
        print(f"  policy on {link}: {said['verdict']}")
        if said["exception"]:
            print(f"    exception {said['exception']}: no limit counts or refuses it")
        if said.get("bandwidth"):
            bw = said["bandwidth"]
            print(f"    bandwidth: {format_rate(bw['rate'])} {bw['class']} "
                  f"({bw['where'] or 'no table entry'})")
        for lv in said["limits"]:
            value = lv["value"]
            if isinstance(value, int):
                value = format_rate(value) if lv["name"] == "max-bandwidth" else f"{value:,}"
            print(f"    limit: {lv['scope']} {lv['name']} {value} "
                  f"({lv['where'] or 'built-in default'})")
    if live is not None:
        if live["joined"]:
            print(f"  live:     joined on {', '.join(live['joined'])}")
        if live["measured"] is not None:
            print(f"  live:     measured {format_rate(live['measured'])}"
                  f"{' (found empty)' if live['empty'] else ''}")
        elif live["empty"]:
            print("  live:     found empty: asked upstream with no traffic")
        for key, counts in live["links"].items():
            refused = ", ".join(f"{reason} {n:,}" for reason, n in counts["refused"].items())
            print(f"  live {key}: {counts['groups-count']:,} groups of max-groups "
                  f"{counts['max-groups']}; refused: {refused or 'none'}")
    return 0


def _live_counts(state: dict[str, Any], group: str, source: str) -> dict[str, Any]:
    """What the running proxy says of the channel: the upstreams that joined its group, its
    measured rate and whether it was found empty (with ``learning``), and each link's counts
    against its limits with its refusals by reason."""
    joined = sorted(u for u, up in state["upstreams"].items() if group in up.get("groups", {}))
    links = {}
    for key, link in state.get("downstream", {}).items():
        adm = link.get("admission")
        if adm is None:
            continue
        refused: dict[str, int] = {}
        for by_reason in adm.get("refused", {}).values():
            for reason, n in by_reason.items():
                refused[reason] = refused.get(reason, 0) + n
        links[key] = {"groups-count": adm.get("groups-count", 0),
                      "max-groups": adm.get("max-groups"), "refused": refused}
    learning = state.get("learning") or {}
    measured = next((r["rate"] for r in learning.get("rates", [])
                     if r["group"] == group and r["source"] == source), None)
    empty = any(e["group"] == group and e["source"] == source
                for e in learning.get("empty", []))
    return {"joined": joined, "measured": measured, "empty": empty, "links": links}


def _admission(config: Config, link: str, subscriber: bytes | None, source: bytes | None,
               group: bytes) -> dict[str, object]:
    """What link ``link``'s edge policy says of the request, and the limits it is held to."""
    policy = EdgePolicy.from_config(config, link, Family.of(group))
    verdict = policy.verdict(subscriber, source, group)
    exception = policy.exception(source, group)
    cost = policy.rates.of(source, group) if policy.rates is not None else None
    return {
        "permit": verdict.permit,
        "reason": verdict.reason.key if verdict.reason else None,
        "decided-by": verdict.decided_by,
        "level": verdict.level or None,
        "where": verdict.where or None,
        "rule": verdict.rule.describe() if verdict.rule else None,
        "verdict": verdict.describe(),
        "exception": exception.where if exception else None,
        "bandwidth": None if cost is None else {
            "rate": cost.rate, "class": "mandatory" if cost.mandatory else "optional",
            "where": cost.where or None},
        "limits": [{"scope": lv.scope, "name": lv.name,
                    "value": lv.value if lv.value < UNLIMITED else "unlimited",
                    "where": lv.where or None} for lv in policy.limits_for(subscriber)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
