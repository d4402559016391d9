"""The controller API reads and changes the configuration as a reload does: a good change is
applied whole and written to the file; a bad one is refused whole with RFC 8040's error body,
and the running configuration, the kernel and the file stay as they were.

::

    controller --(UNIX socket)--> [ daemon on the fakes ] d1 --- u1, u2
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from api_harness import CONFIG_URL, WRITE_TOKEN, WRITER, serving
from daemon_harness import IGMP, TO_EX, Proto, config, records, status_of, until
from fakes import FakeNetwork, ip

from mcastproxy.api import document
from mcastproxy.config import load_config, parse_config

TWO = {"candidates": "[{interface: u1}, {interface: u2}]"}


def errors(body: dict) -> list[dict]:  # type: ignore[type-arg]
    return body["ietf-restconf:errors"]["error"]  # type: ignore[no-any-return]


async def test_state_and_configuration_are_read(net: FakeNetwork, workdir: Path,
                                                proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (daemon, api):
        status, headers, body = await api.request("GET", "/restconf/data")
        assert status == 200
        assert headers["Content-Type"].startswith("application/yang-data+json")
        state = await status_of(daemon)
        assert set(body["mcastproxy:state"]) == set(state)
        assert body["mcastproxy:state"]["upstreams"].keys() == state["upstreams"].keys()
        assert body["mcastproxy:config"]["upstream"] == {"candidates": [{"interface": "u1"}]}
        # Subtrees, with list keys as RFC 8040 writes them.
        status, _, body = await api.request("GET",
                                            "/restconf/data/mcastproxy:state/upstreams=u1")
        assert status == 200
        assert body["mcastproxy:u1"]["usable"] is True
        status, _, body = await api.request(
            "GET", "/restconf/data/mcastproxy:config/upstream/candidates=u1")
        assert (status, body) == (200, {"mcastproxy:u1": {"interface": "u1"}})
        status, _, body = await api.request("GET", "/restconf/data/mcastproxy:state/nothing")
        assert status == 404
        assert errors(body)[0]["error-tag"] == "invalid-value"
        # The ETag names the version, and an unchanged one is not sent again.
        _, tag = await api.config()
        status, _, _ = await api.request("GET", CONFIG_URL, headers={"If-None-Match": tag})
        assert status == 304


async def test_a_put_is_applied_and_written(net: FakeNetwork, workdir: Path,
                                           proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (daemon, api):
        doc, tag = await api.config()
        doc["upstream"] = {"candidates": [{"interface": "u1"},
                                          {"interface": "u2", "priority": 5}]}
        status, headers, _ = await api.write("PUT", doc, tag)
        assert status == 204
        assert headers["ETag"] != tag
        assert (await status_of(daemon))["upstreams"]["u2"]["priority"] == 5
        assert net.routers[proto.family].tables.keys() == {"u1", "u2"}
        # In the file, for a restart and for check: the same configuration.
        assert load_config(daemon.config_path) == daemon.config
        assert (await api.config()) == (doc, headers["ETag"])
        # The engine has it: a join goes to the preferred upstream.
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u2")))


async def test_a_patch_merges_and_moves_a_channel(net: FakeNetwork, workdir: Path,
                                                 proto: Proto) -> None:
    group = f"{proto.group}/{32 if proto is IGMP else 128}"
    cands = f"[{{interface: u1, records: [{{group: '{group}'}}]}}, {{interface: u2}}]"
    async with serving(net, workdir, config(proto, candidates=cands)) as (daemon, api):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
        _, tag = await api.config()
        patch = {"upstream": {"candidates": [{"interface": "u1"},
                                             {"interface": "u2", "records": [{"group": group}]}]}}
        status, _, body = await api.write("PATCH", patch, tag)
        assert status == 204, body
        # A controller's change moves what runs at once (unlike a SIGHUP, which keeps
        # remembered selections): joined on u2, make before break.
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u2")))
        assert proto.group in (await status_of(daemon))["upstreams"]["u2"]["groups"]
        # null removes a member (RFC 7396); the rest stays.
        doc, tag = await api.config()
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 204
        _, tag = await api.config()
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": None}}, tag)
        assert status == 204
        assert (await api.config())[0] == doc


async def test_an_upstream_taken_out_moves_its_channels_at_once(
    net: FakeNetwork, workdir: Path, proto: Proto,
) -> None:
    group = f"{proto.group}/{32 if proto is IGMP else 128}"
    cands = f"[{{interface: u1, records: [{{group: '{group}'}}]}}]"
    async with serving(net, workdir, config(proto, candidates=cands)) as (daemon, api):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u1")))
        _, tag = await api.config()
        patch = {"upstream": {"candidates": [{"interface": "u2", "records": [{"group": group}]}]}}
        status, _, body = await api.write("PATCH", patch, tag)
        assert status == 204, body
        # Applied before the answer: the engine holds the join on u2 by then (it is sent
        # once netlink says u2 is up: on the fakes, a turn of the loop later).
        assert proto.group in daemon.status()["upstreams"]["u2"]["groups"]
        await until(lambda: (TO_EX, ip(proto.group)) in records(sock.messages("u2")))
        assert net.routers[proto.family].tables.keys() == {"u2"}


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"upstream": {"default": "u9"}}, "upstream.default", "not a candidate"),
    ({"upstream": {"candidates": [{"interface": "u1", "records": [{"group": "10.0.0.0/8"}]}]}},
     "upstream.candidates[0].records[0].group", "not multicast"),
    ({"downstream": [{"interface": "d1", "colour": "red"}]}, "downstream[0].colour",
     "unknown key"),
    ({"downstream": [{"interface": "u1"}]}, "upstream.candidates[0].interface",
     "both downstream and upstream"),
])
async def test_an_invalid_change_is_refused_whole(
    net: FakeNetwork, workdir: Path, change: dict, field: str, words: str,  # type: ignore[type-arg]
) -> None:
    async with serving(net, workdir, config(IGMP, **TWO)) as (daemon, api):
        before, file = daemon.config, daemon.config_path.read_bytes()
        router = net.routers[IGMP.family]
        calls = list(router.calls)
        doc, tag = await api.config()
        status, headers, body = await api.write("PATCH", change, tag)
        assert status == 400
        assert headers["Content-Type"].startswith("application/yang-data+json")
        [error] = [e for e in errors(body) if e["error-info"]["mcastproxy:field"] == field]
        assert error["error-type"] == "application"
        assert error["error-tag"] == "invalid-value"
        assert error["error-path"].startswith("/mcastproxy:config/")
        assert words in error["error-message"]
        assert daemon.config is before
        assert daemon.config_path.read_bytes() == file
        assert router.calls == calls
        assert (await api.config()) == (doc, tag)
        assert not list(workdir.glob(".*.tmp"))  # nothing left beside the file


async def test_what_the_running_proxy_cannot_move_to_is_refused(
    net: FakeNetwork, workdir: Path,
) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        before, file = daemon.config, daemon.config_path.read_bytes()
        _, tag = await api.config()
        status, _, body = await api.write("PATCH", {"igmp": None, "mld": {"version": 2}}, tag)
        assert status == 400
        assert "needs a restart" in errors(body)[0]["error-message"]
        assert daemon.config is before
        assert daemon.config_path.read_bytes() == file


async def test_a_failed_write_of_the_file_undoes_the_change(
    net: FakeNetwork, workdir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        before, file = daemon.config, daemon.config_path.read_bytes()

        def full(*_: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(document.os, "replace", full)
        _, tag = await api.config()
        status, _, body = await api.write("PATCH", {"upstream": {"candidates": [
            {"interface": "u1"}, {"interface": "u2"}]}}, tag)
        assert status == 500
        assert "No space left on device" in errors(body)[0]["error-message"]
        assert daemon.config == before  # applied, then the old one again
        assert net.routers[IGMP.family].tables.keys() == {"u1"}
        assert daemon.config_path.read_bytes() == file
        assert not list(workdir.glob(".*.tmp"))


async def test_if_match_is_needed_and_a_stale_one_refused(net: FakeNetwork,
                                                          workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        doc, tag = await api.config()
        status, _, body = await api.write("PUT", doc, None)
        assert status == 428
        assert "If-Match" in errors(body)[0]["error-message"]
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 204
        status, headers, body = await api.write("PATCH", {"upstream": {"takeover": True}}, tag)
        assert status == 412
        assert errors(body)[0]["error-tag"] == "operation-failed"
        assert headers["ETag"] != tag  # the current one, to GET
        assert daemon.config.upstream.takeover is False
        # "*" is an explicit "whatever is there".
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": True}}, "*")
        assert status == 204


async def test_two_controllers_racing_one_wins(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP, **TWO), tokens=[WRITER],
                       token=WRITE_TOKEN) as (daemon, api):
        _, tag = await api.config()
        one = api.write("PATCH", {"upstream": {"default": "u1"}}, tag)
        two = api.write("PATCH", {"upstream": {"default": "u2"}}, tag)
        results = await asyncio.gather(one, two)
        assert sorted(r[0] for r in results) == [204, 412]
        winner = "u1" if results[0][0] == 204 else "u2"
        assert daemon.config.upstream.default == winner
        assert load_config(daemon.config_path).upstream.default == winner


async def test_the_host_sections_are_the_operators(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        before = daemon.config
        _, tag = await api.config()
        for change in ({"accounting": {"session-log": "/etc/passwd"}},
                       {"api": {"socket": "/tmp/elsewhere.sock"}},
                       {"metrics": {"listen": "0.0.0.0:9100"}}):
            status, _, body = await api.write("PATCH", change, tag)
            assert status == 403, change
            [error] = errors(body)
            assert error["error-tag"] == "access-denied"
            assert error["error-path"] == f"/mcastproxy:config/{next(iter(change))}"
        assert daemon.config is before


async def test_a_sighup_and_an_edited_file_are_seen(net: FakeNetwork, workdir: Path) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        daemon.config_path.chmod(0o640)
        mode = 0o640
        _, tag = await api.config()
        text = daemon.config_path.read_text().replace("{interface: u1}",
                                                      "{interface: u1, priority: 7}")
        daemon.config_path.write_text(text)
        daemon.reload()
        doc, new_tag = await api.config()
        assert new_tag != tag
        assert doc["upstream"]["candidates"][0]["priority"] == 7
        daemon.config_path.write_text(text.replace("priority: 7", "priority: 8"))
        daemon.reload()
        assert (await api.config())[0]["upstream"]["candidates"][0]["priority"] == 8
        # Edited and refused at a reload: the API shows no document rather than one that
        # does not run, and takes a PUT with If-Match: * only.
        daemon.config_path.write_text(text.replace("priority: 7", "priority: 9") + "bad: 1\n")
        daemon.reload()
        assert daemon.config.upstream.candidates[0].priority == 8
        doc, tag = await api.config()  # the file no longer runs, but the document does
        assert doc["upstream"]["candidates"][0]["priority"] == 8
        # A PUT of what was read would write over the refused edit: only with If-Match: *.
        doc, tag = await api.config()
        assert (await api.write("PUT", doc, tag))[0] == 409
        status, _, _ = await api.write("PUT", doc, "*")
        assert status == 204
        assert parse_config(daemon.config_path.read_text()) == daemon.config
        assert os.stat(daemon.config_path).st_mode & 0o777 == mode  # kept


async def test_an_edit_of_the_file_not_yet_applied_is_not_written_over(
    net: FakeNetwork, workdir: Path,
) -> None:
    async with serving(net, workdir, config(IGMP)) as (daemon, api):
        _, tag = await api.config()
        edited = daemon.config_path.read_text() + "# the operator's note, not yet applied\n"
        daemon.config_path.write_text(edited)
        status, _, body = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 409
        assert "was edited since it was applied" in errors(body)[0]["error-message"]
        assert daemon.config_path.read_text() == edited
        assert daemon.config.upstream.takeover is True
        # Once applied (SIGHUP), the edit is the document changes are made from.
        daemon.reload()
        _, tag = await api.config()
        status, _, _ = await api.write("PATCH", {"upstream": {"takeover": False}}, tag)
        assert status == 204


CLEAR = "/restconf/operations/ietf-igmp-mld:clear-groups"


async def test_clear_groups_forgets_what_it_names_and_refuses_bad_input(
        net: FakeNetwork, workdir: Path, proto: Proto) -> None:
    async with serving(net, workdir, config(proto)) as (daemon, api):
        sock = net.sockets[proto.family]
        sock.inject_message("d1", proto.host, proto.join())
        key = f"d1/{proto.family.protocol}"
        await until(lambda: proto.group in daemon.status()["downstream"][key]["groups"])
        for bad, field in (({"interface-name": "u1"}, "interface-name"),
                           ({"group": "10.0.0.1"}, "group"),
                           ({"group": "nope"}, "group"),
                           ({"source-address": "239.1.1.1"}, "source-address"),
                           ({"colour": "red"}, "interface-name"),
                           ([1, 2], "JSON object")):
            status, _, body = await api.request("POST", CLEAR, {"ietf-igmp-mld:input": bad}
                                                if isinstance(bad, dict) else bad)
            assert status == 400, (bad, body)
            assert field in str(body)
        assert proto.group in daemon.status()["downstream"][key]["groups"]  # untouched
        status, _, _ = await api.request("POST", CLEAR, {"ietf-igmp-mld:input": {
            "interface-name": "d1", "group": proto.group}})
        assert status == 204
        assert daemon.status()["downstream"][key]["groups"] == {}
        # The subscriber's next report makes it again.
        sock.inject_message("d1", proto.host, proto.join())
        await until(lambda: proto.group in daemon.status()["downstream"][key]["groups"])


async def test_a_read_token_cannot_clear_groups(net: FakeNetwork, workdir: Path) -> None:
    from api_harness import READ_TOKEN, READER  # noqa: PLC0415

    async with serving(net, workdir, config(IGMP), tokens=[WRITER, READER],
                       token=READ_TOKEN) as (_, reader):
        status, _, _ = await reader.request("POST", CLEAR, {})
    assert status == 403
