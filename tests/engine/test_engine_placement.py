"""Upstream admission through the engine (``placement``): tied upstreams share channels by
their room (``ties: share``), upstream budgets steer and refuse, takeover moves channels onto
what is left, and counts follow what is asked.

    u1 (upstream) --+
                    +-- proxy -- d1: hosts 10.1.0.x / fe80::d1:x
    u2 (upstream) --+        \\- d2
"""

from __future__ import annotations

import pytest
from harness import World
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcastproxy.config import parse_config
from mcastproxy.drops import Drop
from mcastproxy.events import ConfigChanged, InterfaceDown

M = 1_000_000
GROUPS = {4: "239.1.1.{}", 6: "ff1e::1:{}"}
HOSTS = {4: "10.1.0.{}", 6: "fe80::d1:{}"}
TABLE = ("bandwidth: {channels: [{group: 239.1.1.200/32, rate: 1M, class: mandatory}, "
         "{group: 239.1.1.0/24, rate: 4M}, "
         "{group: 'ff1e::1:0/112', rate: 4M}]}")


def config(ties: str = "share", u1: str = "", u2: str = "", policy: str = "") -> str:
    return ("igmp: {version: 3}\nmld: {version: 2}\n"
            f"policy: {{{TABLE}{', ' + policy if policy else ''}}}\n"
            "downstream: [{interface: d1}, {interface: d2}]\n"
            f"upstream: {{ties: {ties}, candidates: [{{interface: u1{', ' + u1 if u1 else ''}}}, "
            f"{{interface: u2{', ' + u2 if u2 else ''}}}]}}\n")


def asked(w: World) -> dict[str, set[str]]:
    """upstream -> the groups it is asked for now (from the engine's snapshot)."""
    from mcastproxy.status import document  # noqa: PLC0415

    doc = document(w.engine.snapshot(), ["d1", "d2"])
    return {u: set(entry["groups"]) for u, entry in doc["upstreams"].items()}


def group(v: int, n: int) -> str:
    return GROUPS[v].format(n)


def host(v: int, n: int) -> str:
    return HOSTS[v].format(n + 10)  # .1 is the proxy's own


@pytest.fixture(params=[4, 6], ids=["igmp", "mld"])
def v(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def test_robust_ties_ask_every_tied_upstream(v: int) -> None:
    w = World.make(config(ties="robust"))
    w.join("d1", host(v, 7), group(v, 1))
    up = asked(w)
    assert group(v, 1) in up["u1"]
    assert group(v, 1) in up["u2"]


def test_shared_ties_spread_channels_and_keep_a_channel_on_one_upstream(v: int) -> None:
    w = World.make(config())
    for n in range(1, 7):
        w.join("d1", host(v, 7), group(v, n))
    up = asked(w)
    assert up["u1"].isdisjoint(up["u2"])
    assert len(up["u1"]) == len(up["u2"]) == 3  # no budgets: an even spread
    # More subscribers of those channels, on both links: no second copy anywhere.
    for n in range(1, 7):
        w.join("d1", host(v, 8), group(v, n))
        w.join("d2", "10.2.0.7" if v == 4 else "fe80::d2:7", group(v, n))
    assert asked(w) == up


def test_budgets_place_by_room_and_refuse_what_no_upstream_can_carry(v: int) -> None:
    w = World.make(config(u1="max-bandwidth: 10M", u2="max-bandwidth: 20M"))
    for n in range(1, 8):  # 7 x 4M = 28M of the 30M
        w.join("d1", host(v, n), group(v, n))
    up = asked(w)
    assert up["u1"].isdisjoint(up["u2"])
    assert len(up["u1"]) * 4 * M <= 10 * M
    assert len(up["u2"]) * 4 * M <= 20 * M
    assert len(up["u1"]) + len(up["u2"]) == 7
    from mcastproxy.status import document  # noqa: PLC0415

    loads = {u: entry["admission"] for u, entry in
             document(w.engine.snapshot(), ["d1", "d2"])["upstreams"].items()}
    assert loads["u1"]["bandwidth-used"] == len(up["u1"]) * 4 * M
    assert loads["u2"]["max-bandwidth"] == 20 * M
    assert loads["u1"]["channels"] + loads["u2"]["channels"] == 7
    w.join("d1", host(v, 20), group(v, 8))
    assert group(v, 8) not in set().union(*asked(w).values())
    dropped = w.engine.dropped.by_interface()["d1"]
    assert dropped[Drop.UPSTREAM_MAX_BANDWIDTH] == 1
    (logged,) = [log for log in w.logs if log.event == "join-refused"
                 and log.fields.get("reason") == "upstream-max-bandwidth"]
    assert "max-bandwidth" in logged.message
    # A subscriber of a channel that is carried already is never refused.
    w.join("d1", host(v, 21), group(v, 1))
    assert dropped == w.engine.dropped.by_interface()["d1"]


def test_a_mandatory_channel_is_carried_over_budget() -> None:
    w = World.make(config(u1="max-bandwidth: 4M", u2="max-bandwidth: 4M"))
    w.join("d1", "10.1.0.11", "239.1.1.1")
    w.join("d1", "10.1.0.12", "239.1.1.2")
    w.join("d1", "10.1.0.13", "239.1.1.200")  # mandatory: in, over budget
    assert "239.1.1.200" in set().union(*asked(w).values())
    w.join("d1", "10.1.0.14", "239.1.1.3")
    assert "239.1.1.3" not in set().union(*asked(w).values())


def test_upstream_max_groups_refuses_a_group_past_it(v: int) -> None:
    w = World.make(config(ties="robust", u1="max-groups: 2", u2="priority: -1"))
    for n in (1, 2, 3):
        w.join("d1", host(v, 7), group(v, n))
    assert asked(w)["u1"] == {group(v, 1), group(v, 2)}
    assert w.engine.dropped.by_interface()["d1"][Drop.UPSTREAM_MAX_GROUPS] == 1


def test_takeover_moves_a_failed_upstreams_channels_onto_the_other(v: int) -> None:
    w = World.make(config())
    for n in range(1, 5):
        w.join("d1", host(v, 7), group(v, n))
    before = asked(w)
    assert before["u1"]
    assert before["u2"]
    w.handle(InterfaceDown("u1"))
    w.run_for(1)
    assert asked(w)["u2"] == {group(v, n) for n in range(1, 5)}


def test_leaving_gives_the_room_back(v: int) -> None:
    w = World.make(config(u1="max-bandwidth: 4M", u2="max-bandwidth: 4M"))
    w.join("d1", host(v, 1), group(v, 1))
    w.join("d1", host(v, 2), group(v, 2))
    w.join("d1", host(v, 3), group(v, 3))
    assert group(v, 3) not in set().union(*asked(w).values())
    w.leave("d1", host(v, 1), group(v, 1))
    w.run_for(30)  # the last-member queries go unanswered
    w.join("d1", host(v, 3), group(v, 3))
    assert group(v, 3) in set().union(*asked(w).values())


def test_a_reload_that_sets_budgets_counts_what_is_asked_already() -> None:
    w = World.make(config(ties="robust"))
    w.join("d1", "10.1.0.11", "239.1.1.1")
    w.join("d1", "10.1.0.12", "239.1.1.2")
    w.handle(ConfigChanged(parse_config(config(u1="max-bandwidth: 8M",
                                               u2="max-bandwidth: 8M"))))
    # Both channels are on both upstreams (robust, then kept): 8M each, full.
    w.join("d1", "10.1.0.13", "239.1.1.3")
    assert "239.1.1.3" not in set().union(*asked(w).values())
    assert w.engine.dropped.by_interface()["d1"][Drop.UPSTREAM_MAX_BANDWIDTH] == 1


def test_forged_subscribers_cannot_push_upstreams_past_their_budgets() -> None:
    w = World.make(config(u1="max-bandwidth: 40M", u2="max-bandwidth: 40M"))
    for i in range(400):
        w.join("d1", f"10.1.{i // 200}.{10 + i % 200}", f"239.1.1.{1 + i % 150}")
    up = asked(w)
    assert len(up["u1"]) * 4 * M <= 40 * M
    assert len(up["u2"]) * 4 * M <= 40 * M
    assert len(up["u1"]) + len(up["u2"]) == 20
    assert w.engine.dropped.by_interface()["d1"][Drop.UPSTREAM_MAX_BANDWIDTH] > 0


def test_bad_upstream_settings_are_refused_with_their_field() -> None:
    from mcastproxy.config import ConfigError  # noqa: PLC0415

    for bad, field in (("ties: random", "upstream.ties"),):
        with pytest.raises(ConfigError) as info:
            parse_config(f"igmp: {{}}\ndownstream: [{{interface: d1}}]\n"
                         f"upstream: {{{bad}, candidates: [{{interface: u1}}]}}\n")
        assert field in {i.path for i in info.value.issues}
    for bad, field in (("max-bandwidth: lots", "upstream.candidates[0].max-bandwidth"),
                       ("max-groups: -1", "upstream.candidates[0].max-groups")):
        with pytest.raises(ConfigError) as info:
            parse_config(f"igmp: {{}}\ndownstream: [{{interface: d1}}]\n"
                         f"upstream: {{candidates: [{{interface: u1, {bad}}}]}}\n")
        assert field in {i.path for i in info.value.issues}




@settings(max_examples=60, deadline=None)
@example([(0, 1, True, "d1"), (1, 1, True, "d1"), (0, 1, False, "d1")])  # a shared choice
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4), st.booleans(),
                          st.sampled_from(["d1", "d2"])), max_size=40))
def test_placement_counts_follow_what_subscribers_ask(ops: list[tuple[int, int, bool, str]],
                                                      ) -> None:
    """Whatever the order of joins and leaves (several subscribers of a channel sharing one
    choice, on two links), each upstream carries exactly the channels some subscriber asks,
    counted at their rate."""
    yaml = config(ties="robust", u1="max-bandwidth: 1000M", u2="max-bandwidth: 1000M")
    w = World.make(yaml.replace("{interface: d1}, {interface: d2}",
                                "{interface: d1, fast-leave: true}, "
                                "{interface: d2, fast-leave: true}"))
    holding: set[tuple[str, int, int]] = set()
    for h, g, join, link in ops:
        hostname = f"10.{1 if link == 'd1' else 2}.0.{10 + h}"
        if join:
            w.join(link, hostname, group(4, g))
            holding.add((link, h, g))
        else:
            w.leave(link, hostname, group(4, g))
            holding.discard((link, h, g))
    from mcastproxy.status import document  # noqa: PLC0415

    doc = document(w.engine.snapshot(), ["d1", "d2"])
    wanted = {g for _, _, g in holding}
    for u in ("u1", "u2"):
        admission = doc["upstreams"][u]["admission"]
        assert admission["groups-count"] == len(wanted)
        assert admission["channels"] == len(wanted)
        assert admission["bandwidth-used"] == 4 * M * len(wanted)
