"""The gateway against the lab's relay (``mcastlab.amtrelay.RelayCore``), in memory, on a
virtual clock: whole exchanges, a relay that restarts or goes away, Teardown as the relay
sees it. The same relay runs in the namespace tests (test_lab_*.py)."""

from __future__ import annotations

import pytest
from amt_harness import (
    CHANNEL,
    GATEWAY,
    GATEWAY_PORT,
    OTHER_CHANNEL,
    Net,
    allow,
    block,
    current,
    make_gateway,
    make_net,
    states,
)

from mcastlab.amtrelay import RelayCore
from mcastproxy.amt.actions import GatewayState
from mcastproxy.amt.events import MembershipChanged, Refresh, Start, Stop
from mcastproxy.family import Family
from mcastproxy.wire.amt import MembershipUpdate, RelayDiscovery, Request, Teardown

FAMILIES = [Family.V4, Family.V6]
COMBOS = [(f, t) for f in FAMILIES for t in FAMILIES]
COMBO_IDS = [f"inner{f}-transport{t}" for f, t in COMBOS]


def joined(family: Family = Family.V4, transport: Family = Family.V4, **kwargs: object) -> Net:
    net = make_net(family, transport, **kwargs)  # type: ignore[arg-type]
    net.handle(Start())
    net.handle(MembershipChanged(current(family, CHANNEL[family]),
                                 (allow(family, CHANNEL[family]),)))
    assert net.gateway.state is GatewayState.ESTABLISHED
    return net


def relay_channels(net: Net) -> list:
    return [tunnel.channels() for tunnel in net.relay.tunnels.values()]


@pytest.mark.parametrize(("family", "transport"), COMBOS, ids=COMBO_IDS)
def test_a_joined_channel_flows_and_no_other(family: Family, transport: Family) -> None:
    net = joined(family, transport)
    assert relay_channels(net) == [[CHANNEL[family]]]
    net.stream(CHANNEL[family], 5)
    net.stream(OTHER_CHANNEL[family], 5)
    assert len(net.delivered) == 5
    assert all(p[-4:] == i.to_bytes(4, "big") for i, p in enumerate(net.delivered))


def test_the_discovery_takes_three_messages_and_the_join_one_more() -> None:
    net = joined()
    kinds = [type(m).__name__ for _, m in net.sent]
    assert kinds == ["RelayDiscovery", "Request", "MembershipUpdate"]
    assert states(net.actions) == ["discovering", "relay found", "requesting", "established"]


def test_a_second_channel_and_a_leave_reach_the_relay_at_once() -> None:
    f = Family.V4
    net = joined(f)
    net.handle(MembershipChanged(current(f, CHANNEL[f], OTHER_CHANNEL[f]),
                                 (allow(f, OTHER_CHANNEL[f]),)))
    assert sorted(relay_channels(net)[0]) == sorted([CHANNEL[f], OTHER_CHANNEL[f]])
    net.handle(MembershipChanged(current(f, OTHER_CHANNEL[f]), (block(f, CHANNEL[f]),)))
    assert relay_channels(net) == [[OTHER_CHANNEL[f]]]
    net.stream(CHANNEL[f], 3)
    assert net.delivered == []


def test_the_tunnel_is_refreshed_every_query_interval() -> None:
    net = joined(query_interval=10)
    net.advance(35)
    requests = [t for t, m in net.sent if isinstance(m, Request)]
    assert requests == [0.0, 10.0, 20.0, 30.0]
    assert len(net.messages(MembershipUpdate)) == 4  # each query answered with the state


@pytest.mark.parametrize("family", FAMILIES)
def test_a_restarted_relay_learns_the_channels_again_at_the_next_query(family: Family) -> None:
    net = joined(family, query_interval=10)
    net.stream(CHANNEL[family], 2)
    net.advance(3)
    net.restart_relay()  # no tunnels, a new secret
    net.stream(CHANNEL[family], 2)
    assert len(net.delivered) == 2  # lost meanwhile
    net.advance(7)  # the query interval: a Request, the new relay's query, the state again
    assert relay_channels(net) == [[CHANNEL[family]]]
    net.stream(CHANNEL[family], 2)
    assert len(net.delivered) == 4
    assert net.gateway.status().dropped == {}


def test_a_restarted_relay_is_found_sooner_when_asked() -> None:
    net = joined(query_interval=125)
    net.restart_relay()
    net.handle(Refresh())  # say, per-channel liveness saw the data stop
    net.stream(CHANNEL[Family.V4], 1)
    assert len(net.delivered) == 1


def test_a_relay_gone_for_a_while_is_rediscovered_and_the_state_sent_again() -> None:
    net = joined(query_interval=10)
    net.relay_up = False
    net.advance(60)  # the refresh at 10 goes unanswered: rediscovery, retried with back-off
    assert net.gateway.state is GatewayState.DISCOVERING
    net.relay_up = True
    net.restart_relay()
    net.advance(10)  # the next discovery retry finds it
    assert net.gateway.state is GatewayState.ESTABLISHED
    assert relay_channels(net) == [[CHANNEL[Family.V4]]]
    net.stream(CHANNEL[Family.V4], 1)
    assert len(net.delivered) == 1


@pytest.mark.parametrize("transport", FAMILIES)
def test_the_relay_sees_the_teardown_on_stop(transport: Family) -> None:
    net = joined(Family.V4, transport)
    net.handle(Stop())
    assert net.relay.tunnels == {}
    assert net.relay.pop_events()[-1]["event"] == "teardown"


def test_the_relay_sees_the_teardown_on_the_last_leave() -> None:
    f = Family.V6
    net = joined(f)
    net.handle(MembershipChanged((), (block(f, CHANNEL[f]),)))
    assert net.relay.tunnels == {}
    assert [e["event"] for e in net.relay.pop_events()][-2:] == ["update", "teardown"]


def test_a_nat_rebinding_moves_the_tunnel_and_the_old_one_is_torn_down() -> None:
    net = joined(query_interval=10)
    old = net.endpoint
    net.endpoint = (GATEWAY[Family.V4], GATEWAY_PORT + 1)  # the NAT's new mapping
    net.advance(10)
    assert list(net.relay.tunnels) == [net.endpoint]  # the old endpoint's state is gone
    assert old not in net.relay.tunnels
    (teardown,) = net.messages(Teardown)
    assert teardown.gateway_port == GATEWAY_PORT  # type: ignore[union-attr]


def test_a_relay_at_capacity_is_not_used() -> None:
    net = make_net(limit=True)
    net.handle(Start())
    net.handle(MembershipChanged(current(Family.V4, CHANNEL[Family.V4])))
    assert net.gateway.state is GatewayState.REQUESTING
    assert net.relay.tunnels == {}
    net.advance(7)  # unanswered, as far as the gateway is concerned: discovery again
    assert [t for t, m in net.sent if isinstance(m, RelayDiscovery)] == [0.0, 7.0]
    assert net.gateway.state is GatewayState.REQUESTING  # the only relay there is, again
    assert "established" not in states(net.actions)


def test_two_gateways_of_both_families_share_a_relay() -> None:
    relay = RelayCore(b"\x0a\x1e\x02\x02", secret=b"s", query_interval=10)
    nets = {
        f: Net(make_gateway(f, nonce_start=0x1000 * int(f)), relay,
               (GATEWAY[Family.V4], GATEWAY_PORT + int(f)))
        for f in FAMILIES
    }  # fmt: skip
    for f, net in nets.items():
        net.handle(Start())
        net.handle(MembershipChanged(current(f, CHANNEL[f])))
    assert len(relay.tunnels) == 2
    for f, net in nets.items():
        net.stream(CHANNEL[f], 3)
    for f, net in nets.items():
        assert len(net.delivered) == 3
        assert all(p[0] >> 4 == f for p in net.delivered)


def test_a_join_made_while_the_relay_is_silent_reaches_it_once_it_answers() -> None:
    # RFC 7450 §5.2.3.5: the Request is sent again until a query comes; the join made
    # meanwhile (no tunnel to send its report in) goes in the answer to that query.
    f = Family.V4
    net = make_net(discover=False, query_interval=10)
    net.relay.muted = True
    net.handle(Start())
    net.handle(MembershipChanged(current(f, CHANNEL[f]), (allow(f, CHANNEL[f]),)))
    net.advance(2)  # Requests at 0 and 1 s: both unanswered
    assert [e["event"] for e in net.relay.pop_events()] == ["muted", "muted"]
    assert net.gateway.state is GatewayState.REQUESTING
    net.relay.muted = False
    net.advance(1)  # the third, at 3 s, is answered
    assert net.gateway.state is GatewayState.ESTABLISHED
    assert [t.channels() for t in net.relay.tunnels.values()] == [[CHANNEL[f]]]


def test_a_gateway_that_gives_up_stops_asking_a_silent_relay() -> None:
    f = Family.V4
    relay = RelayCore(b"\x0a\x1e\x02\x02", secret=b"s", query_interval=10, muted=True)
    net = Net(make_gateway(f, discover=False, give_up=True), relay)
    net.handle(Start())
    net.handle(MembershipChanged(current(f, CHANNEL[f])))
    net.advance(60)
    assert [t for t, m in net.sent if isinstance(m, Request)] == [0.0, 1.0, 3.0]
    assert net.gateway.state is GatewayState.UNANSWERED
    assert relay.tunnels == {}
