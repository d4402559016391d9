"""Random and mutated configurations: the loader refuses what it cannot take with one-line
issues and never raises anything else; and a reload of any of them on a running daemon (the
fakes of ``tests/daemon``) applies wholly or not at all.

The inputs: random octets; the examples cut short anywhere; the examples with octets
changed, dropped, repeated or put in; random YAML trees in the file's own words (the policy
sections' too); the examples' own trees with a branch replaced by a random one; and policy
sections built of the policy's own words, put in a valid configuration (``policies``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_harness import ADDRESSES, IGMP, MLD, until
from fakes import FakeNetwork
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mcastlab.amtinert import inert_options
from mcastproxy.amt.upstream import AmtUpstreams
from mcastproxy.config import Config, ConfigError, parse_config
from mcastproxy.daemon import Daemon, query_status
from mcastproxy.family import Family
from mcastproxy.policy import EdgePolicy

EXAMPLES = [p.read_bytes() for p in
            sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))]

# The file's words, so that random trees get past "unknown key" to the values' checks.
KEYS = ["igmp", "mld", "version", "ssm-ranges", "timers", "query-interval", "robustness",
        "query-response-interval", "last-member-query-interval", "downstream", "interface",
        "fast-leave", "upstream", "default", "takeover", "active-interval", "hold-down",
        "resilient", "leave-on-stop", "candidates", "priority", "address", "liveness", "link",
        "queries", "hellos", "data", "routers", "records", "subscriber", "source", "group",
        "<<",
        # the policy sections (policyconfig)
        "policy", "group-policy", "action", "ssm-only", "max-groups", "max-group-sources",
        "max-entries", "max-groups-per-interface", "exceptions", "subscribers", "prefix"]
WORDS = ["d1", "d2", "u1", "u2", "eth0", "125s", "500ms", "never", "232.1.0.0/16",
         "10.0.1.0/24", "ff3e::/16", "fe80::1", "192.0.2.1", "239.1.1.1", "0.0.0.0/0", "",
         ".", "d\x00", "a" * 16, "é" * 9, "permit", "deny", "unlimited", "fe80::/64",
         "10.1.1.0/24", "232.0.1.1"]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.sampled_from(WORDS) | st.text(max_size=20))
trees = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=6)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children,
                                        max_size=6)),
    max_leaves=40)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """An example with a few octets changed, dropped, repeated or put in."""
    data = bytearray(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["change", "drop", "repeat", "insert"]))
        if edit == "change" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "drop":
            del data[at:at + draw(st.integers(1, 16))]
        elif edit == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8)
                               | st.sampled_from([b"&a ", b"*a", b"[", b"{", b": ", b"\n- ",
                                                  b"  ", b"\t", b"\xc3", b"!!binary "]))
    return bytes(data)


@st.composite
def grafted(draw: st.DrawFn) -> bytes:
    """An example's tree with one branch replaced by a random tree."""
    tree = copy.deepcopy(yaml.safe_load(draw(st.sampled_from(EXAMPLES))))
    node: Any = tree
    for _ in range(draw(st.integers(0, 5))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=str)))
        elif isinstance(node, list) and node:
            key = draw(st.integers(0, len(node) - 1))
        else:
            break
        if not isinstance(node[key], dict | list) or draw(st.booleans()):
            node[key] = draw(trees)
            break
        node = node[key]
    return yaml.safe_dump(tree, allow_unicode=draw(st.booleans())).encode()


def cut(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(data)).map(lambda n: data[:n])


# Policy sections in the policy's own words, right and wrong, in a configuration otherwise valid.
PREFIXES = ["232.1.0.0/16", "232.1.1.0/24", "232.1.1.1", "239.0.0.0/8", "ff3e::/16",
            "ff3e::1:0/112", "192.0.2.0/24", "192.0.2.1", "2001:db8::/32", "10.1.0.0/16",
            "10.1.1.0/24", "fe80::/64", "fe80::ff:fe00:d100/120", "0.0.0.0/0", "224.0.0.0/4",
            "10.1.1.1/24", "bad", 7]
prefixes = st.sampled_from(PREFIXES)
limits = st.sampled_from([0, 1, 2, 512, "unlimited", -1, 2**32, "many", True, 1.5, None])
actions = st.sampled_from(["permit", "deny", "allow", None])
rules = st.lists(st.fixed_dictionaries(
    {"action": actions}, optional={"source": prefixes, "group": prefixes}), max_size=4)
patterns = st.lists(st.fixed_dictionaries({}, optional={"source": prefixes, "group": prefixes}),
                    max_size=3)
each = st.fixed_dictionaries({}, optional={"max-groups": limits, "max-group-sources": limits})
level = {"default": actions, "ssm-only": st.sampled_from([True, False, None, "yes"]),
         "group-policy": rules, "subscriber": each, "exceptions": patterns}
link_level = st.fixed_dictionaries({}, optional={
    **level, "max-groups": limits,
    "subscribers": st.lists(st.fixed_dictionaries({"prefix": prefixes}, optional={
        "default": actions, "group-policy": rules, "max-groups": limits,
        "max-group-sources": limits}), max_size=3)})
global_level = st.fixed_dictionaries({}, optional={
    **level, "max-entries": limits, "max-groups-per-interface": limits})


@st.composite
def policies(draw: st.DrawFn) -> bytes:
    tree: dict[str, Any] = {
        "igmp": {"version": 3}, "mld": {"version": 2},
        "downstream": [{"interface": "d1"}, {"interface": "d2"}],
        "upstream": {"candidates": [{"interface": "u1"}, {"interface": "u2"}]},
        "policy": draw(global_level)}
    for link in tree["downstream"]:
        if draw(st.booleans()):
            link["policy"] = draw(link_level)
    return yaml.safe_dump(tree).encode()


inputs = (st.binary(max_size=512)
          | st.sampled_from(EXAMPLES).flatmap(cut)
          | mutated()
          | trees.map(lambda t: yaml.safe_dump(t).encode())
          | grafted()
          | policies())


def parsed(data: bytes) -> Config | ConfigError:
    try:
        return parse_config(data)
    except ConfigError as exc:
        return exc


@given(inputs)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a shared machine
def test_the_loader_refuses_in_one_line_or_takes_never_raises_else(data: bytes) -> None:
    result = parsed(data)  # anything else raised fails the test
    event("taken" if isinstance(result, Config) else "refused")
    if isinstance(result, ConfigError):
        assert result.issues
        assert all("\n" not in str(issue) for issue in result.issues), result
    else:
        assert parse_config(data.decode()) == result  # as text, the same


@given(policies())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_policy_taken_compiles_for_every_link_and_family(data: bytes) -> None:
    result = parsed(data)
    event("taken" if isinstance(result, Config) else "refused")
    if isinstance(result, ConfigError):
        assert all("\n" not in str(issue) for issue in result.issues), result
        return
    for link in result.downstream:
        for family in Family:
            policy = EdgePolicy.from_config(result, link.interface, family)
            group = family.all_systems  # any group of the family: a verdict, never a raise
            assert policy.verdict(None, None, group).permit == (
                policy.refuses(None, None, group) is None)


# --- the daemon's reload -------------------------------------------------------------------

BOTH = f"""
{IGMP.setting}
{MLD.setting}
downstream: [{{interface: d1}}, {{interface: d2}}]
upstream: {{candidates: [{{interface: u1}}, {{interface: u2}}]}}
"""


def kernel_state(net: FakeNetwork) -> dict[object, tuple[object, ...]]:
    return {f: (list(r.upstreams), list(r.downstreams), r.tables,
                {u: dict(routes) for u, routes in r.routes.items()})
            for f, r in net.routers.items()}


def status(daemon: Daemon) -> dict[str, Any]:
    return {k: v for k, v in daemon.status().items() if k != "errors"}


def _amt_address_changed(old: Config, new: Config) -> bool:
    """Whether ``new`` changes an AMT upstream's address (its TUN's): refused until a restart."""
    was = {c.interface: c.address for c in old.upstream.candidates if c.amt is not None}
    return any(c.amt is not None and c.interface in was and was[c.interface] != c.address
               for c in new.upstream.candidates)


@pytest.fixture
def daemon_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[
        asyncio.AbstractEventLoop, Daemon, FakeNetwork]]:
    """A daemon running ``BOTH`` on a fake network, in a loop of its own that each example
    runs a while."""
    workdir = Path(tmp_path_factory.mktemp("fuzz"))
    net = FakeNetwork()
    for name, addresses in ADDRESSES.items():
        net.up(name, *addresses)
    path = workdir / "mcastproxy.yaml"
    path.write_text(BOTH)
    daemon = Daemon(path, parse_config(BOTH), status_socket=workdir / "s.sock",
                    platform=net.platform())
    # An AMT upstream a reload adds makes no TUN and sends nothing (its relay is fuzzed).
    daemon.amt = AmtUpstreams(parse_config(BOTH), **inert_options())
    loop = asyncio.new_event_loop()
    task = loop.create_task(daemon.run())
    loop.run_until_complete(until(lambda: daemon.ready.is_set() or task.done()))
    assert not task.done()
    try:
        yield loop, daemon, net
    finally:
        daemon.stop()
        assert loop.run_until_complete(task) == 0
        loop.close()


def test_a_reload_of_anything_applies_wholly_or_not_at_all(
    daemon_loop: tuple[asyncio.AbstractEventLoop, Daemon, FakeNetwork],
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, daemon, net = daemon_loop
    caplog.set_level(logging.INFO, logger="mcastproxy")

    @given(inputs)
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def reload_once(data: bytes) -> None:
        loop.run_until_complete(asyncio.sleep(0))  # the daemon runs a little between
        before, kernel, shown = daemon.config, kernel_state(net), status(daemon)
        new = parsed(data)
        daemon.config_path.write_bytes(data)
        daemon.reload()  # anything it raised would fail the test
        same_families = isinstance(new, Config) and (new.igmp is None) == (
            before.igmp is None) and (new.mld is None) == (before.mld is None)
        amt_changed = isinstance(new, Config) and _amt_address_changed(before, new)
        if not same_families or amt_changed:  # refused: nothing of it applied
            event("refused" if isinstance(new, ConfigError) else
                  "refused: AMT address" if same_families else "refused: IGMP or MLD")
            assert daemon.config is before
            assert daemon.engine.config is before
            assert kernel_state(net) == kernel
            assert status(daemon) == shown
            return
        event("applied")
        assert isinstance(new, Config)
        assert daemon.config == new  # applied, whole
        assert daemon.engine.config is daemon.config
        for router in net.routers.values():
            assert set(router.upstreams) == {c.interface for c in new.upstream.candidates}
            assert set(router.downstreams) == {d.interface for d in new.downstream}
        assert net.watchers[0].names == {*router.upstreams, *router.downstreams}

    reload_once()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert set(daemon.errors) <= {"remove interface"}
    # Still serving: the status socket answers.
    assert daemon.status_socket is not None
    assert loop.run_until_complete(query_status(daemon.status_socket))["pid"]
