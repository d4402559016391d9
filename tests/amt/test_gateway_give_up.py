"""A gateway that gives up on a relay that does not answer (``give_up``: a relay found by
DRIAD, RFC 8777 §4.2.1, with others to fall back on), on a virtual clock.

With the harness's back-off (1 s, doubling) and the default robustness (2), the first send
and two more go unanswered at 0, 1 and 3 s; at 7 s the gateway is UNANSWERED: nothing more is
sent and no timer runs, and the caller moves its channels on. Without ``give_up`` the same
silence only starts another round (``test_gateway``).
"""

from __future__ import annotations

import pytest
from amt_harness import CHANNEL, RELAY, Driver, advertisement, current, make_gateway, query, sends
from amt_harness import states as state_names

from mcastproxy.amt.actions import GatewayState
from mcastproxy.amt.events import MembershipChanged, Refresh, Start, Stop
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.amt import RelayDiscovery, Request

V4 = Family.V4
N1, N2, N3 = 0x1000, 0x1001, 0x1002


def driver(*, discover: bool) -> Driver:
    d = Driver(make_gateway(V4, V4, discover=discover, give_up=True))
    d.handle(Start())
    return d


def test_an_unanswered_discovery_gives_up_after_its_retransmissions() -> None:
    d = driver(discover=True)
    assert sends(d.next()) == [RelayDiscovery(N1)]  # 1 s
    assert sends(d.next()) == [RelayDiscovery(N1)]  # 3 s
    actions = d.next()  # 7 s: the first and [Robustness] more went unanswered
    assert d.now == 7.0
    assert sends(actions) == []
    assert state_names(actions) == ["unanswered"]
    assert d.gateway.next_deadline() is None
    assert d.gateway.status().discoveries_sent == 3


@pytest.mark.parametrize("discover", [True, False], ids=["discovered", "relay-address"])
def test_an_unanswered_request_gives_up(discover: bool) -> None:
    d = driver(discover=discover)
    if discover:
        d.receive(RELAY[V4], advertisement(N1, RELAY[V4]))
    nonce = N2 if discover else N1
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))  # the Request, at 0
    assert sends(d.next()) == [Request(nonce, V4)]
    assert sends(d.next()) == [Request(nonce, V4)]
    actions = d.next()
    assert d.now == 7.0
    assert (sends(actions), state_names(actions)) == ([], ["unanswered"])
    assert d.gateway.state is GatewayState.UNANSWERED
    assert d.gateway.next_deadline() is None


def test_a_relay_that_stops_answering_is_given_up_too() -> None:
    # An established tunnel whose refreshes go unanswered (QRV 1: two Requests).
    d = driver(discover=False)
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    d.receive(RELAY[V4], query(V4, N1, qqi=10, qrv=1))
    assert sends(d.next()) == [Request(N2, V4)]  # 10 s
    assert sends(d.next()) == [Request(N2, V4)]  # 11 s
    actions = d.next()  # 13 s
    assert state_names(actions) == ["unanswered"]
    assert d.gateway.status().tunnel is None


def test_nothing_more_is_done_once_given_up() -> None:
    d = driver(discover=False)
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    for _ in range(3):
        d.next()
    assert d.gateway.state is GatewayState.UNANSWERED
    # The relay's answer, too late: unexpected, counted; nothing sent.
    assert d.receive(RELAY[V4], query(V4, N1)) == []
    assert d.gateway.dropped.by_reason() == {Drop.AMT_UNEXPECTED: 1}
    assert d.handle(Refresh()) == []
    assert d.handle(MembershipChanged(current(V4))) == []
    assert d.gateway.next_deadline() is None
    # Stop ends it with no Teardown: there was no tunnel.
    actions = d.handle(Stop())
    assert (sends(actions), state_names(actions)) == ([], ["stopped"])


def test_an_answer_in_time_is_taken_as_ever() -> None:
    d = driver(discover=False)
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    d.next()
    d.next()  # two sends unanswered: the third is answered
    d.receive(RELAY[V4], query(V4, N1))
    assert d.gateway.state is GatewayState.ESTABLISHED
    assert d.gateway.next_deadline() == 3.0 + 10.0  # the query interval, not a give-up
