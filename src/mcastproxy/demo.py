"""The demo: a lab of network namespaces, real kernel hosts joining channels, and mcastproxy's
protocol engine deciding, for each report, which upstream it is requested from.

    prov1 (channels 232.1/16, ff3e::1:0/112)     prov2 (channels 232.2/16, ff3e::2:0/112)
                 u1 ----------------- proxy ----------------- u2
                 d1 (LAN: sub1, sub2)              d2 (sub3)

Each subscriber joins with its own kernel's IGMP/MLD stack. The reports are captured on the
proxy's downstream links, decoded, and handed to the engine, which prints what it sends on
each upstream and why. Then upstream u1 fails, and its channels move to u2.

Run as root: ``python -m mcastproxy.demo`` (``./scripts/demo`` installs what it needs first).
"""

from __future__ import annotations

import ipaddress
import random
import sys
import time

from mcastproxy.actions import Log, SendPacket
from mcastproxy.config import parse_config
from mcastproxy.engine import Engine
from mcastproxy.events import InterfaceDown, InterfaceUp, PacketReceived
from mcastproxy.lab import JoinMode, Lab, topologies, wait_until
from mcastproxy.selection import Selector
from mcastproxy.wire import parse_igmp, parse_mld
from mcastproxy.wire.messages import Leave, Message, Query, RecordType, Report

CONFIG = """
igmp: {version: 3}
mld: {version: 2}
downstream:
  - {interface: d1, fast-leave: true}
  - {interface: d2, fast-leave: true}
upstream:
  takeover: true
  candidates:
    - interface: u1
      priority: 10
      records:
        - {group: 232.1.0.0/16}
        - {group: "ff3e::1:0/112"}
    - interface: u2
      priority: 5
      records:
        - {group: 232.2.0.0/16}
        - {group: "ff3e::2:0/112"}
        - {subscriber: 10.1.1.12}        # sub2 is a customer of provider 2 for everything
"""

# name: (link, IPv4 address, IPv6 link-local address, which MLD reports come from)
SUBSCRIBERS = {
    "sub1": ("d1", "10.1.1.11", "fe80::ff:fe00:d111"),
    "sub2": ("d1", "10.1.1.12", "fe80::ff:fe00:d112"),
    "sub3": ("d2", "10.1.2.13", "fe80::ff:fe00:d213"),
}
BOLD, DIM, END = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def describe(message: Message) -> str:
    if isinstance(message, Report):
        parts = []
        for r in message.records:
            name = RecordType(r.type).name.replace("CHANGE_TO_", "TO_").replace("_MODE", "")
            name = name.replace("_NEW_SOURCES", "").replace("_OLD_SOURCES", "")
            srcs = ", ".join(str(ipaddress.ip_address(s)) for s in r.sources)
            parts.append(f"{name}({ipaddress.ip_address(r.group)}{'; ' + srcs if srcs else ''})")
        return " ".join(parts)
    if isinstance(message, Leave):
        return f"LEAVE({ipaddress.ip_address(message.group)})"
    if isinstance(message, Query):
        return f"QUERY({ipaddress.ip_address(message.group)})"
    return repr(message)


def _interesting(message: Message) -> bool:
    """Reports and leaves of routable groups (not the hosts' own link-scope ones)."""
    if isinstance(message, Query):
        return False
    groups = ([r.group for r in message.records] if isinstance(message, Report)
              else [message.group])
    return any(not ipaddress.ip_address(g).is_link_local and g[:2] != b"\xff\x02"
               for g in groups)


class Demo:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.engine = Engine(parse_config(CONFIG), rng=random.random)
        self.selector = Selector(self.engine.config)
        self.start = time.monotonic()
        self.captures = {d: lab.capture("proxy", d) for d in ("d1", "d2")}
        self.seen = dict.fromkeys(self.captures, 0)
        for iface in ("u1", "u2", "d1", "d2"):
            addrs = [ipaddress.ip_address(a.split("%")[0]).packed
                     for a in lab.addresses("proxy", iface)]
            self.engine.handle(InterfaceUp(iface, tuple(addrs)), self.now())
        self.engine.pop_actions()  # startup queries: not the story here

    def now(self) -> float:
        return time.monotonic() - self.start

    def say(self, text: str) -> None:
        print(f"\n{BOLD}{text}{END}")

    def step(self, who: str, mode: JoinMode, group: str, *sources: str, leave: bool = False
             ) -> None:
        rx = self.receivers[who]
        if leave:
            rx.leave(group, *sources)
        else:
            rx.join(mode, group, *sources)
        link, v4, v6 = SUBSCRIBERS[who]
        cap = self.captures[link]
        source = v4 if mode.family == 4 else v6
        wait_until(
            lambda: any(p.src == source and _interesting(m)
                        for p, m in cap.messages(self.seen[link])),
            5.0, message=f"no report from {who}",
        )
        self.feed(link)

    def feed(self, link: str) -> None:
        cap = self.captures[link]
        for packet, message in cap.messages(self.seen[link]):
            if packet.outgoing or not _interesting(message):
                continue
            who = next((n for n, (_, a, b) in SUBSCRIBERS.items() if packet.src in (a, b)),
                       packet.src)
            print(f"  {who:>5} on {link}: {describe(message)}")
            src = ipaddress.ip_address(packet.src).packed
            dst = ipaddress.ip_address(packet.dst).packed
            self.engine.handle(PacketReceived(link, packet.family, src, dst, packet.payload),
                               self.now())
            self.show_actions()
        self.seen[link] = cap.mark()

    def show_actions(self) -> None:
        for action in self.engine.pop_actions():
            if isinstance(action, SendPacket) and action.interface.startswith("u"):
                msg = (parse_igmp(action.payload) if action.family == 4 else
                       parse_mld(action.payload, self.link_local(action.interface),
                                 action.destination))
                print(f"        {BOLD}-> proxy sends on {action.interface}: "
                      f"{describe(msg)}{END}")
            elif isinstance(action, Log) and action.event != "config":
                print(f"        {DIM}({action.message}){END}")

    def link_local(self, iface: str) -> bytes:
        return ipaddress.ip_address(self.lab.link_local("proxy", iface)).packed

    def why(self, subscriber: str, group: str) -> None:
        sel = self.selector.select(ipaddress.ip_address(subscriber).packed, None,
                                   ipaddress.ip_address(group).packed, self.engine.unusable)
        print(f"        {DIM}why: {sel.reason}{END}")

    def run(self) -> None:
        lab = self.lab
        self.receivers = {n: lab.receiver(n, "eth0") for n in SUBSCRIBERS}
        self.say("1. Channel-based selection: each provider's channels from its own upstream")
        self.step("sub1", JoinMode.IGMPV3_ASM, "232.1.1.1")
        self.why("10.1.1.11", "232.1.1.1")
        self.step("sub3", JoinMode.IGMPV3_SSM, "232.2.2.2", "10.0.2.2")
        self.why("10.1.2.13", "232.2.2.2")
        self.say("2. Subscriber-based selection: sub2 is provider 2's customer, for anything")
        self.step("sub2", JoinMode.IGMPV3_ASM, "232.1.1.1")
        self.why("10.1.1.12", "232.1.1.1")
        self.say("3. MLDv2 too: an IPv6 source-specific channel")
        self.step("sub1", JoinMode.MLDV2_SSM, "ff3e::1:1", "fd00:1::2")
        self.say("4. Upstream u1 fails: takeover moves its channels to u2 (draft §5.1)")
        self.engine.handle(InterfaceDown("u1"), self.now())
        self.show_actions()
        self.why("10.1.1.11", "232.1.1.1")
        self.say("5. Leaves: the last subscriber of a channel leaves, the upstream leaves at once")
        self.step("sub1", JoinMode.IGMPV3_ASM, "232.1.1.1", leave=True)
        self.step("sub2", JoinMode.IGMPV3_ASM, "232.1.1.1", leave=True)
        print(f"\n{DIM}Reports were made by the subscribers' own kernels and captured on the "
              "proxy's links; every line marked '->' is what mcastproxy's engine sends.")
        print("Coming next: `mcastproxy run`, forwarding these channels through the kernel's "
              f"multicast routing, live.{END}")


def main() -> int:
    print(f"{BOLD}mcastproxy demo{END}: building a lab of network namespaces ...")
    with Lab(topologies.proxy_lab()) as lab:
        Demo(lab).run()
    print("\nlab removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
