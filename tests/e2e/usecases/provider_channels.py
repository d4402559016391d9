"""The channels of the use-case scenarios, per family, and what a subscriber received of them.

On ``topologies.proxy_lab()`` provider 1 (prov1, behind u1) sends channel ``g1`` and
provider 2 (prov2, behind u2) channel ``g2``, each from its own address (``prov_addr``).
The channels are outside the SSM ranges (232/8, ff3x::/32), where any-source joins count
(RFC 4604).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcastlab import JoinMode


@dataclass(frozen=True)
class Fam:
    v: int
    asm: JoinMode
    g1: str  # a channel of provider 1
    g2: str  # a channel of provider 2
    prov_addr: dict[str, str]  # provider -> its source address


FAMS = {
    4: Fam(4, JoinMode.IGMPV3_ASM, "239.1.1.1", "239.2.2.2",
           {"prov1": "10.0.1.2", "prov2": "10.0.2.2"}),
    6: Fam(6, JoinMode.MLDV2_ASM, "ff1e::1:1", "ff1e::2:2",
           {"prov1": "fd00:1::2", "prov2": "fd00:2::2"}),
}


def delivered(rx, group: str) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Sequence numbers received per sender for ``group``."""
    out: dict[str, list[int]] = {}
    for p in rx.packets(group):
        out.setdefault(p.sender, []).append(p.seq)
    return out
