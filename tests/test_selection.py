"""Upstream selection: the draft's rules one by one, in IPv4 and IPv6, and a property test of
the compiled lookup against a direct evaluation of the rules."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcastproxy.config import Config, parse_config
from mcastproxy.selection import Rule, Selector

# Symbolic addresses, one spelling per family, so each case is written once.
FAMILIES: dict[str, dict[str, str]] = {
    "ipv4": {
        "H_net": "10.1.1.0/24", "H_net_long": "10.1.1.0/28", "H": "10.1.1.7",
        "H_other": "10.2.2.2", "S_net": "10.0.1.0/24", "S_net_long": "10.0.1.0/28",
        "S": "10.0.1.5", "S_other": "10.9.9.9", "G_net": "232.1.0.0/16",
        "G_net_long": "232.1.2.0/24", "G": "232.1.2.3", "G_other": "239.9.9.9",
        "addr_low": "192.0.2.1", "addr_high": "192.0.2.9", "igmp_or_mld": "igmp",
    },
    "ipv6": {
        "H_net": "fe80::ff:fe00:d100/120", "H_net_long": "fe80::ff:fe00:d100/124",
        "H": "fe80::ff:fe00:d107", "H_other": "fe80::ff:fe00:e201", "S_net": "2001:db8:1::/48",
        "S_net_long": "2001:db8:1::/64", "S": "2001:db8:1::5", "S_other": "2001:db8:9::9",
        "G_net": "ff3e::/96", "G_net_long": "ff3e::100:0/104", "G": "ff3e::101:203",
        "G_other": "ff3e:1::9", "addr_low": "2001:db8:ff::1", "addr_high": "2001:db8:ff::9",
        "igmp_or_mld": "mld",
    },
}


@pytest.fixture(params=sorted(FAMILIES))
def fam(request: pytest.FixtureRequest) -> dict[str, str]:
    return FAMILIES[request.param]


def config(fam: dict[str, str], upstream: str) -> Config:
    text = (
        "igmp: {version: 3}\nmld: {version: 2}\ndownstream:\n  - interface: d1\n"
        "upstream:\n" + upstream.format(**fam)
    )
    return parse_config(text)


def packed(text: str | None) -> bytes | None:
    return None if text is None else ipaddress.ip_address(text).packed


def select(
    cfg: Config, h: str | None, s: str | None, g: str, down: tuple[str, ...] = ()
) -> tuple[set[str], Rule, Any]:
    sel = Selector(cfg).select(packed(h), packed(s), ipaddress.ip_address(g).packed,
                               frozenset(down))
    return set(sel.upstreams), sel.rule, sel


# --- draft §4.1: address prefix records ------------------------------------------------------


def test_subscriber_record_outranks_channel_records(fam: dict[str, str]) -> None:
    # §4.1: "The candidate upstream interface having the configuration of subscriber address
    # prefix is prioritized", even over an exact (S,G) record elsewhere.
    cfg = config(fam, """
  candidates:
    - interface: u1
      records: [{{subscriber: "{H_net}"}}]
    - interface: u2
      priority: 100
      records: [{{source: "{S_net}", group: "{G_net}"}}]
""")
    assert select(cfg, fam["H"], fam["S"], fam["G"])[:2] == ({"u1"}, Rule.RECORD)
    # Another subscriber is not covered by the subscriber record.
    assert select(cfg, fam["H_other"], fam["S"], fam["G"])[0] == {"u2"}


def test_null_prefixes_are_wildcards(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: u1
      records: [{{group: "{G_net}"}}]
    - interface: u2
""")
    # Group-only record: any subscriber, any source (or none) within G_net.
    for h in (fam["H"], fam["H_other"], None):
        for s in (fam["S"], fam["S_other"], None):
            assert select(cfg, h, s, fam["G"])[0] == {"u1"}
    assert select(cfg, fam["H"], None, fam["G_other"])[:2] == ({"u2"}, Rule.PRIORITY)


def test_subscriber_record_with_channel(fam: dict[str, str]) -> None:
    # (subscriber, (source, group)): all three must contain the membership.
    cfg = config(fam, """
  candidates:
    - interface: u1
      records: [{{subscriber: "{H_net}", source: "{S_net}", group: "{G_net}"}}]
    - interface: u2
""")
    assert select(cfg, fam["H"], fam["S"], fam["G"])[0] == {"u1"}
    assert select(cfg, fam["H"], fam["S_other"], fam["G"])[0] == {"u2"}
    assert select(cfg, fam["H"], None, fam["G"])[0] == {"u2"}  # any source cannot match S_net
    assert select(cfg, None, fam["S"], fam["G"])[0] == {"u2"}  # unknown subscriber


# --- draft §4.2: channel/session ID ---------------------------------------------------------


def test_source_and_group_outranks_group_only(fam: dict[str, str]) -> None:
    # §4.2: "if a proxy device has two candidate upstream interfaces for the same multicast
    # address prefix and one of them has non-null source address configuration, then that
    # candidate upstream interface is selected for the source and multicast address pair. The
    # other candidate upstream interface is selected for the configured multicast address
    # prefix except the source address configured by the prior interface."
    cfg = config(fam, """
  candidates:
    - interface: A
      records: [{{source: "{S_net}", group: "{G_net}"}}]
    - interface: B
      priority: 50
      records: [{{group: "{G_net}"}}]
""")
    assert select(cfg, fam["H"], fam["S"], fam["G"])[0] == {"A"}
    assert select(cfg, fam["H"], fam["S_other"], fam["G"])[0] == {"B"}
    assert select(cfg, fam["H"], None, fam["G"])[0] == {"B"}


def test_sp_gp_example(fam: dict[str, str]) -> None:
    # §4.2: "source address prefix S_p for the candidate upstream interface A and multicast
    # address prefix G_p for the candidate upstream interface B ... S in S_p, G in G_p ...
    # the proxy device selects the candidate upstream interface A".
    cfg = config(fam, """
  candidates:
    - interface: A
      records: [{{source: "{S_net}"}}]
    - interface: B
      priority: 50
      records: [{{group: "{G_net}"}}]
""")
    ups, rule, sel = select(cfg, fam["H"], fam["S"], fam["G"])
    assert (ups, rule) == ({"A"}, Rule.RECORD)
    assert str(sel.record.source) == fam["S_net"]
    assert select(cfg, fam["H"], fam["S_other"], fam["G"])[0] == {"B"}


def test_summary_ordering(fam: dict[str, str]) -> None:
    # End of §4.2: user first, (S,G) second, (S,*) third, (*,G) fourth. Each candidate holds one
    # kind; removing the winner's kind hands the membership to the next kind down.
    kinds = [
        ("U", '{{subscriber: "{H_net}"}}'),
        ("SG", '{{source: "{S_net}", group: "{G_net}"}}'),
        ("S", '{{source: "{S_net}"}}'),
        ("G", '{{group: "{G_net}"}}'),
    ]
    for start in range(len(kinds)):
        cands = "".join(
            f"    - interface: {name}\n      records: [{rec}]\n" for name, rec in kinds[start:]
        )
        cfg = config(fam, "  candidates:\n" + cands)
        assert select(cfg, fam["H"], fam["S"], fam["G"])[0] == {kinds[start][0]}


def test_longer_prefix_wins_within_a_kind(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: short
      priority: 100
      records: [{{group: "{G_net}"}}, {{subscriber: "{H_net}"}}, {{source: "{S_net}"}}]
    - interface: long
      records: [{{group: "{G_net_long}"}}, {{subscriber: "{H_net_long}"}},
                {{source: "{S_net_long}"}}]
""")
    assert select(cfg, fam["H"], fam["S"], fam["G"])[0] == {"long"}  # subscriber /28 beats /24
    assert select(cfg, fam["H_other"], fam["S"], fam["G"])[0] == {"long"}  # source /28 beats /24
    assert select(cfg, fam["H_other"], None, fam["G"])[0] == {"long"}  # group longer
    assert select(cfg, fam["H_other"], fam["S_other"], fam["G"])[0] == {"long"}


# --- draft §4.3 and §3.3: priorities ---------------------------------------------------------


def test_same_record_highest_priority_wins(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: u1
      priority: 5
      records: [{{group: "{G_net}"}}]
    - interface: u2
      priority: 10
      records: [{{group: "{G_net}"}}]
""")
    ups, rule, sel = select(cfg, fam["H"], None, fam["G"])
    assert (ups, rule, sel.priority, sel.outranked) == ({"u2"}, Rule.RECORD, 10, ("u1",))


def test_equal_priority_selects_all_for_robust_reception(fam: dict[str, str]) -> None:
    # §3.3: same channel ID and identical priorities: all act as upstreams.
    cfg = config(fam, """
  candidates:
    - interface: u1
      priority: 7
      records: [{{group: "{G_net}"}}]
    - interface: u2
      priority: 7
      records: [{{group: "{G_net}"}}]
    - interface: u3
      records: [{{group: "{G_net}"}}]
""")
    ups, _, sel = select(cfg, fam["H"], None, fam["G"])
    assert ups == {"u1", "u2"}
    assert "robust reception" in sel.reason


def test_recordless_candidates_compete_by_priority(fam: dict[str, str]) -> None:
    # §4.3: priority applies "when neither the subscriber address prefix nor the channel/session
    # ID is configured"; default priority is zero, higher is preferred.
    cfg = config(fam, """
  default: u3
  candidates:
    - interface: u1
    - interface: u2
      priority: -1
    - interface: u3
      records: [{{group: "{G_net}"}}]
""")
    assert select(cfg, fam["H"], None, fam["G_other"])[:2] == ({"u1"}, Rule.PRIORITY)
    assert select(cfg, fam["H"], None, fam["G"])[:2] == ({"u3"}, Rule.RECORD)


# --- draft §4.4: default upstream -----------------------------------------------------------


def test_default_upstream_when_nothing_matches(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  default: u2
  candidates:
    - interface: u1
      records: [{{group: "{G_net}"}}]
    - interface: u2
      records: [{{source: "{S_net}"}}]
""")
    assert select(cfg, fam["H"], None, fam["G_other"])[:2] == ({"u2"}, Rule.DEFAULT)


def test_highest_address_without_default(fam: dict[str, str]) -> None:
    # §4.4: "the candidate upstream interface whose IPv4/v6 address is the highest".
    cfg = config(fam, """
  candidates:
    - interface: u1
      address: "{addr_high}"
      records: [{{group: "{G_net}"}}]
    - interface: u2
      address: "{addr_low}"
      records: [{{source: "{S_net}"}}]
""")
    ups, rule, _ = select(cfg, fam["H"], None, fam["G_other"])
    assert (ups, rule) == ({"u1"}, Rule.HIGHEST_ADDRESS)
    # Addresses read from the system take part too, and can change the answer.
    high_net = ipaddress.ip_network(fam["addr_high"])
    bumped = ipaddress.ip_address(int(high_net.network_address) + 1)
    sel = Selector(cfg, {"u2": [bumped]}).select(None, None, ipaddress.ip_address(
        fam["G_other"]).packed)
    assert sel.upstreams == ("u2",)


def test_no_address_known_selects_none(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: u1
      records: [{{group: "{G_net}"}}]
""")
    assert select(cfg, fam["H"], None, fam["G_other"])[:2] == (set(), Rule.NONE)


# --- draft §5.1: takeover ---------------------------------------------------------------------


TAKEOVER = """
  takeover: {takeover}
  default: dflt
  candidates:
    - interface: A
      priority: 10
      records: [{{group: "{G_net}"}}]
    - interface: B
      priority: 5
      records: [{{group: "{G_net}"}}]
    - interface: dflt
      records: [{{source: "{S_net}"}}]
"""


def test_takeover_on_walks_the_ranking(fam: dict[str, str]) -> None:
    cfg = config({**fam, "takeover": "true"}, TAKEOVER)
    assert select(cfg, fam["H"], None, fam["G"])[0] == {"A"}
    ups, rule, sel = select(cfg, fam["H"], None, fam["G"], down=("A",))
    assert (ups, rule, sel.skipped) == ({"B"}, Rule.RECORD, ("A",))
    # Both holders of the record down: on to the default (§5.1 "the default upstream
    # interface takes its role").
    ups, rule, sel = select(cfg, fam["H"], None, fam["G"], down=("A", "B"))
    assert (ups, rule) == ({"dflt"}, Rule.DEFAULT)
    assert set(sel.skipped) == {"A", "B"}


def test_takeover_when_default_is_down(fam: dict[str, str]) -> None:
    cfg = config({**fam, "takeover": "true"}, TAKEOVER)
    # No record matches G_other: default; the default down: highest-priority usable candidate.
    assert select(cfg, fam["H"], None, fam["G_other"])[:2] == ({"dflt"}, Rule.DEFAULT)
    ups, rule, _ = select(cfg, fam["H"], None, fam["G_other"], down=("dflt",))
    assert (ups, rule) == ({"A"}, Rule.TAKEOVER_PRIORITY)


def test_takeover_with_nothing_usable_keeps_the_answer(fam: dict[str, str]) -> None:
    cfg = config({**fam, "takeover": "true"}, TAKEOVER)
    ups, rule, sel = select(cfg, fam["H"], None, fam["G"], down=("A", "B", "dflt"))
    assert (ups, rule, sel.inactive) == ({"A"}, Rule.RECORD, ("A",))


def test_takeover_off_stays_on_the_inactive_upstream(fam: dict[str, str]) -> None:
    # §5.1: accounting policies may need the proxy to keep the inactive upstream.
    cfg = config({**fam, "takeover": "false"}, TAKEOVER)
    ups, rule, sel = select(cfg, fam["H"], None, fam["G"], down=("A",))
    assert (ups, rule, sel.inactive, sel.skipped) == ({"A"}, Rule.RECORD, ("A",), ())
    assert "unusable but kept" in sel.reason


def test_takeover_subscriber_based(fam: dict[str, str]) -> None:
    cfg = config({**fam, "takeover": "true"}, """
  takeover: {takeover}
  candidates:
    - interface: sub
      records: [{{subscriber: "{H_net}"}}]
    - interface: chan
      records: [{{group: "{G_net}"}}]
    - interface: rest
""")
    assert select(cfg, fam["H"], None, fam["G"])[0] == {"sub"}
    assert select(cfg, fam["H"], None, fam["G"], down=("sub",))[0] == {"chan"}
    assert select(cfg, fam["H"], None, fam["G_other"], down=("sub",))[0] == {"rest"}


def test_families_do_not_mix() -> None:
    cfg = parse_config("""
igmp: {}
mld: {}
downstream: [{interface: d1}]
upstream:
  candidates:
    - interface: v4
      records: [{group: 232.0.0.0/8}]
    - interface: v6
      records: [{group: "ff3e::/16"}]
    - interface: any
""")
    sel = Selector(cfg)
    assert sel.select(None, None, ipaddress.ip_address("232.1.1.1").packed).upstreams == ("v4",)
    assert sel.select(None, None, ipaddress.ip_address("ff3e::1").packed).upstreams == ("v6",)
    assert sel.select(None, None, ipaddress.ip_address("ff05::1").packed).upstreams == ("any",)


# --- property: the compiled lookup equals a direct evaluation of the rules ------------------


def _matches(rec: Any, h: Any, s: Any, g: Any) -> bool:
    for net, addr in ((rec.subscriber, h), (rec.source, s), (rec.group, g)):
        if net is not None and (addr is None or addr not in net):
            return False
    return True


def _key(rec: Any) -> tuple[int, ...]:
    def length(net: Any) -> int:
        return -1 if net is None else net.prefixlen

    channel = {(True, True): 3, (True, False): 2, (False, True): 1, (False, False): 0}[
        (rec.source is not None, rec.group is not None)
    ]
    return (rec.subscriber is not None, channel, length(rec.subscriber), length(rec.source),
            length(rec.group))


def reference(cfg: Config, h: Any, s: Any, g: Any, down: frozenset[str]) -> set[str]:
    """The rules of DESIGN.md evaluated directly, by scanning every record."""
    addrs = {c.interface: max((a for a in c.address if a.version == g.version), default=None)
             for c in cfg.upstream.candidates}

    def rules(cands: list[Any]) -> set[str]:
        matching = [(_key(r), c) for c in cands for r in c.records
                    if r.family == g.version and _matches(r, h, s, g)]
        if matching:
            best = max(k for k, _ in matching)
            holders = [c for k, c in matching if k == best]
        else:
            holders = [c for c in cands if not c.records]
        if holders:
            top = max(c.priority for c in holders)
            return {c.interface for c in holders if c.priority == top}
        names = {c.interface for c in cands}
        if cfg.upstream.default is not None:
            return {cfg.upstream.default} if cfg.upstream.default in names else set()
        known = [(addrs[c.interface], c.interface) for c in cands if addrs[c.interface]]
        return {max(known)[1]} if known else set()

    everything = list(cfg.upstream.candidates)
    if not down or not cfg.upstream.takeover:
        return rules(everything)
    usable = [c for c in everything if c.interface not in down]
    if not usable:
        return rules(everything)
    chosen = rules(usable)
    if chosen:
        return chosen
    best = max(usable, key=lambda c: (c.priority, int(addrs[c.interface] or -1)))
    return {best.interface}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Config, Any, Any, Any, frozenset[str]]:
    # A tiny address space (the low 3 bits vary) so that prefixes overlap often.
    v6 = draw(st.booleans())

    def addr(base: str) -> Any:
        return ipaddress.ip_address(base) + draw(st.integers(0, 7))

    def prefix(base: str) -> str | None:
        if not draw(st.booleans()):
            return None
        a = addr(base)
        plen = a.max_prefixlen - draw(st.integers(0, 3))
        return str(ipaddress.ip_network(f"{a}/{plen}", strict=False))

    bases = ("fe80::10", "2001:db8::10", "ff3e::10") if v6 else (
        "10.1.1.16", "10.0.0.16", "232.1.1.16")
    names = [f"u{i}" for i in range(draw(st.integers(1, 4)))]
    cand_text = []
    for name in names:
        records: set[tuple[str | None, ...]] = set()
        for _ in range(draw(st.integers(0, 4))):
            rec = (prefix(bases[0]), prefix(bases[1]), prefix(bases[2]))
            if any(rec):
                records.add(rec)
        recs = ", ".join(
            "{" + ", ".join(f'{k}: "{v}"' for k, v in zip(("subscriber", "source", "group"), r,
                                                          strict=True) if v) + "}"
            for r in sorted(records, key=str)
        )
        address = f'"{addr("2001:db8:f::")}"' if v6 else f'"{addr("192.0.2.0")}"'
        cand_text.append(
            f"    - interface: {name}\n      priority: {draw(st.integers(0, 2))}\n"
            f"      address: {address if draw(st.booleans()) else '[]'}\n"
            f"      records: [{recs}]\n"
        )
    default = draw(st.sampled_from([None, *names]))
    text = (
        "igmp: {}\nmld: {}\ndownstream: [{interface: d1}]\nupstream:\n"
        f"  takeover: {str(draw(st.booleans())).lower()}\n"
        + (f"  default: {default}\n" if default else "")
        + "  candidates:\n" + "".join(cand_text)
    )
    cfg = parse_config(text)
    h = addr(bases[0]) if draw(st.booleans()) else None
    s = addr(bases[1]) if draw(st.booleans()) else None
    g = addr(bases[2])
    down = frozenset(draw(st.sets(st.sampled_from(names))))
    return cfg, h, s, g, down


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_compiled_selection_equals_direct_evaluation(
    scenario: tuple[Config, Any, Any, Any, frozenset[str]],
) -> None:
    cfg, h, s, g, down = scenario
    sel = Selector(cfg).select(h.packed if h else None, s.packed if s else None, g.packed, down)
    assert set(sel.upstreams) == reference(cfg, h, s, g, down)
    assert sel.reason  # every answer can be explained


def test_source_records_for_any_source_joins(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: A
      records: [{{source: "{S_net}", group: "{G_net}"}}, {{source: "{S_net_long}"}}]
    - interface: B
      priority: 3
      records: [{{source: "{S_net}", group: "{G_net}"}}]
    - interface: C
      records: [{{subscriber: "{H_net}", source: "{S_net}"}}, {{group: "{G_net}"}}]
""")
    sel = Selector(cfg)
    h, g = packed(fam["H"]), ipaddress.ip_address(fam["G"]).packed
    found = {(str(net), ups) for net, ups in sel.source_records(h, g)}
    assert found == {(fam["S_net"], ("B",)), (fam["S_net_long"], ("A",)), (fam["S_net"], ("C",))}
    # Unknown subscriber: the subscriber-bearing record cannot apply; B down: A holds it.
    found = {(str(net), ups) for net, ups in sel.source_records(None, g, frozenset({"B"}))}
    assert found == {(fam["S_net"], ("A",)), (fam["S_net_long"], ("A",))}
    # A group outside G_net sees only the group-less source records.
    other = ipaddress.ip_address(fam["G_other"]).packed
    found = {(str(net), ups) for net, ups in sel.source_records(h, other)}
    assert found == {(fam["S_net"], ("C",)), (fam["S_net_long"], ("A",))}


def test_rank_orders_selections(fam: dict[str, str]) -> None:
    cfg = config(fam, """
  candidates:
    - interface: A
      records: [{{group: "{G_net}"}}]
    - interface: B
      records: [{{subscriber: "{H_net}"}}]
    - interface: C
""")
    sel = Selector(cfg)
    g = ipaddress.ip_address(fam["G"]).packed
    by_sub = sel.select(packed(fam["H"]), None, g)
    by_group = sel.select(packed(fam["H_other"]), None, g)
    fallback = sel.select(None, None, ipaddress.ip_address(fam["G_other"]).packed)
    assert by_sub.rank > by_group.rank > fallback.rank
