"""The gateway's options for an AMT upstream (``amt.gateway``): the relay's UDP port, and
keeping the querier (the query exchange runs with nothing joined). Virtual clock."""

from __future__ import annotations

import pytest
from amt_harness import (
    CHANNEL,
    RELAY,
    Driver,
    counter,
    current,
    data,
    query,
    sends,
    states,
)

from mcastproxy.amt.actions import QueryReceived, SendDatagram
from mcastproxy.amt.events import MembershipChanged, Start
from mcastproxy.amt.gateway import Gateway, GatewayTimers
from mcastproxy.drops import Drop
from mcastproxy.family import Family
from mcastproxy.wire.amt import AMT_PORT, Request, Teardown

V4 = Family.V4
PORT = 40268


def gateway(*, port: int = AMT_PORT, keep_querier: bool = False) -> Gateway:
    return Gateway(V4, RELAY[V4], nonce=counter(), discover=False, port=port,
                   keep_querier=keep_querier, timers=GatewayTimers(1.0, 8.0), name="amt1")


def test_a_relay_on_another_port_is_sent_to_and_heard_on_that_port_only() -> None:
    d = Driver(gateway(port=PORT))
    d.handle(Start())
    actions = d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    (request,) = [a for a in actions if isinstance(a, SendDatagram)]
    assert request.port == PORT
    # The relay's answer from the standard port is not the relay's.
    d.receive(RELAY[V4], query(V4, 0x1000), port=AMT_PORT)
    d.receive(RELAY[V4], data(CHANNEL[V4]), port=AMT_PORT)
    assert d.gateway.dropped.by_reason() == {Drop.AMT_NOT_FROM_RELAY: 2}
    assert d.packets == []
    # From its own port it is.
    actions = d.receive(RELAY[V4], query(V4, 0x1000), port=PORT)
    assert states(actions) == ["established"]
    assert all(a.port == PORT for a in actions if isinstance(a, SendDatagram))
    d.receive(RELAY[V4], data(CHANNEL[V4]), port=PORT)
    assert len(d.packets) == 1


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_out_of_range_is_misuse(port: int) -> None:
    with pytest.raises(ValueError, match="UDP port"):
        gateway(port=port)


def test_keeping_the_querier_asks_for_queries_with_nothing_joined() -> None:
    d = Driver(gateway(keep_querier=True))
    actions = d.handle(Start())
    assert states(actions) == ["relay found", "requesting"]
    assert [type(m) for m in sends(actions)] == [Request]
    actions = d.receive(RELAY[V4], query(V4, 0x1000, qqi=10))
    assert states(actions) == ["established"]
    assert any(isinstance(a, QueryReceived) for a in actions)
    assert sends(actions) == []  # nothing joined: no Update
    # The next query is asked for at the relay's query interval, as with a membership.
    assert d.gateway.next_deadline() == 10.0
    assert [type(m) for m in sends(d.next())] == [Request]


def test_keeping_the_querier_the_last_leave_tears_down_and_asks_again() -> None:
    d = Driver(gateway(keep_querier=True))
    d.handle(Start())
    d.receive(RELAY[V4], query(V4, 0x1000))
    d.handle(MembershipChanged(current(V4, CHANNEL[V4])))
    actions = d.handle(MembershipChanged(()))
    kinds = [type(m) for m in sends(actions)]
    assert kinds == [Teardown, Request]  # the old tunnel goes; a fresh nonce asks again
    (request,) = [m for m in sends(actions) if isinstance(m, Request)]
    assert request.nonce == 0x1001
    assert states(actions) == ["relay found", "requesting"]


def test_without_keeping_the_querier_nothing_is_asked_until_something_is_joined() -> None:
    d = Driver(gateway())
    actions = d.handle(Start())
    assert sends(actions) == []
    assert d.gateway.next_deadline() is None
