"""The demo: ``mcastproxy run`` in a lab of network namespaces, shown live.

    prov1 -- u1 --+                 +-- d1 (LAN) -- sub1, sub2
                  +---- proxy ------+
    prov2 -- u2 --+                 +-- d2 ------- sub3

Both providers send the same numbered channels (239.1.1.1, 232.2.2.2 and ff1e::1:1), so every
packet a subscriber receives says which provider, and so which upstream, it came through. The
proxy's configuration sends channel 239.1/16 and ff1e::1:0/112 to u1, 232.2/16 to u2, and
every channel of sub2 (a customer of provider 2) to u2. Subscribers join with their own
kernel's IGMP/MLD; then a channel change; then u1 loses its link and u2 takes over.

Run as root: ``python -m mcastlab.demo`` (``./scripts/demo`` installs what it needs first,
the lab ``mcastproxy-lab`` among it).
All traffic stays in the lab's namespaces, bounded in rate and time.
"""

from __future__ import annotations

import argparse
import sys
import time

from mcastlab import JoinMode, Lab, topologies

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
        - {group: 239.1.0.0/16}
        - {group: "ff1e::1:0/112"}
    - interface: u2
      priority: 5
      records:
        - {group: 232.2.0.0/16}
        - {subscriber: 10.1.1.12}       # sub2 is a customer of provider 2, for everything
"""

CHANNELS = ("239.1.1.1", "232.2.2.2", "ff1e::1:1")
RATE = 50  # packets per second, per channel and provider
SECONDS = 40  # how long the providers send at most
UPSTREAM_OF = {"prov1": "u1", "prov2": "u2"}
BOLD, DIM, END = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


class Demo:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.proxy = lab.proxy(CONFIG)
        self.log_seen = 0
        self.receivers = {n: lab.receiver(n, "eth0") for n in ("sub1", "sub2", "sub3")}
        for prov, addr4, addr6 in (("prov1", "10.0.1.2", "fd00:1::2"),
                                   ("prov2", "10.0.2.2", "fd00:2::2")):
            for group in CHANNELS:
                lab.start_sender(prov, group, count=RATE * SECONDS, rate=RATE, iface="eth0",
                                 source=addr6 if ":" in group else addr4, sender_id=prov)

    def say(self, text: str) -> None:
        print(f"\n{BOLD}{text}{END}")

    def proxy_log(self) -> None:
        lines = self.proxy.output().splitlines()
        for line in lines[self.log_seen:]:
            print(f"   {DIM}proxy: {line.split(' ', 2)[-1]}{END}")
        self.log_seen = len(lines)

    def table(self, seconds: float = 2.0) -> None:
        """Each subscriber's channels, the upstream each comes through, and its rate."""
        time.sleep(seconds)  # a human-paced demo: let the rates show
        self.proxy_log()
        now = time.monotonic_ns()
        window = 1_000_000_000
        print(f"   {'subscriber':<11}{'channel':<13}{'from':<6}{'packets/s':>10}")
        for name, rx in self.receivers.items():
            rows = 0
            for group in CHANNELS:
                recent = [p for p in rx.packets(group) if now - p.time_ns < window]
                by_prov: dict[str, int] = {}
                for p in recent:
                    by_prov[p.sender or "?"] = by_prov.get(p.sender or "?", 0) + 1
                for prov, n in sorted(by_prov.items()):
                    print(f"   {name:<11}{group:<13}{UPSTREAM_OF.get(prov, prov):<6}{n:>10}")
                    rows += 1
            if not rows:
                print(f"   {name:<11}{DIM}(nothing){END}")

    def run(self) -> None:
        sub1, sub2, sub3 = (self.receivers[n] for n in ("sub1", "sub2", "sub3"))
        self.say("1. Joins. sub1 and sub2 share LAN d1; sub3 is alone on d2.")
        print("   sub1: 239.1.1.1 (channel-based: u1) and ff1e::1:1 (MLDv2: u1)")
        print("   sub2: 239.1.1.1 (subscriber-based: u2; one link is fed by one upstream, "
              "the better-ranked: u2 feeds d1)")
        print("   sub3: 232.2.2.2 (channel-based: u2)")
        sub1.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
        sub1.join(JoinMode.MLDV2_ASM, "ff1e::1:1")
        sub2.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
        sub3.join(JoinMode.IGMPV3_SSM, "232.2.2.2", "10.0.2.2")
        self.table()
        self.say("2. Channel change: sub3 zaps from 232.2.2.2 to 239.1.1.1")
        sub3.leave("232.2.2.2")
        sub3.join(JoinMode.IGMPV3_ASM, "239.1.1.1")
        self.table()
        self.say("3. Upstream u1 loses its link: takeover to u2 (draft §5.1)")
        self.lab.set_link("prov1", "eth0", up=False)
        self.table()
        self.say("4. Everyone leaves: the proxy leaves upstream at once (fast leave)")
        sub1.leave("239.1.1.1")
        sub1.leave("ff1e::1:1")
        sub2.leave("239.1.1.1")
        sub3.leave("239.1.1.1")
        self.table(1.0)
        print(f"\n{DIM}Every packet above crossed the proxy's kernel multicast routing, on the "
              "routes mcastproxy set.{END}")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m mcastlab.demo",
        description="Builds a lab of network namespaces, runs mcastproxy in it and shows live "
        "which channel reaches which subscriber from which upstream; removes it all at the "
        "end. Needs root.",
    ).parse_args(argv)
    print(f"{BOLD}mcastproxy demo{END}: building a lab of network namespaces ...")
    with Lab(topologies.proxy_lab()) as lab:
        Demo(lab).run()
    print("\nlab removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
