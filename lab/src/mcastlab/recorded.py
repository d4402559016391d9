"""``python -m mcastlab.recorded run -c FILE [...]``: mcastproxy's daemon with its multicast
routes recorded in memory rather than installed in the kernel.

Everything else is the daemon as ``mcastproxy run`` starts it: the same command line, the
real IGMP and MLD sockets on the lab's links, netlink, the status socket, reloads, signals.
Only the kernel adapter is ``mcastproxy.kernel.fake.FakeRouter``, so the daemon runs on a
kernel built without multicast routing (``CONFIG_IP_MROUTE``), where ``mcastproxy run``
refuses to start. What it decides to forward shows in its status (``routes``), not in
traffic: tests of what the proxy says and hears on the wire (queries, reports upstream,
what it drops) run here on any kernel; tests of what it forwards need the kernel's routing.
``Lab.proxy(config, forwarding="recorded")`` starts it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mcastproxy import cli
from mcastproxy.kernel.fake import FakeRouter
from mcastproxy.platform import Platform


def main(argv: Sequence[str] | None = None) -> int:
    """``mcastproxy run``'s arguments; its exit status."""
    args = cli.build_parser().parse_args(argv)
    if args.command != "run":
        print("mcastlab.recorded: only `run` (the daemon) is recorded", file=sys.stderr)
        return cli.EXIT_USAGE
    args.platform = Platform(router=FakeRouter)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
