"""The configuration file: what it accepts, and every refusal with its field path and reason,
through ``mcastproxy check``."""

from __future__ import annotations

import os
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from mcastproxy.cli import main
from mcastproxy.config import (
    MAX_ALIAS_NODES,
    MAX_FILE_SIZE,
    ConfigError,
    parse_config,
    parse_duration,
)

GOOD = """
igmp: {version: 3}
mld: {version: 2}
timers: {query-interval: 60s, query-response-interval: 5000ms}
downstream:
  - interface: d1
    fast-leave: true
    timers: {robustness: 3, last-member-query-interval: 200ms}
  - interface: d2
upstream:
  default: u1
  takeover: true
  active-interval: 250s
  candidates:
    - interface: u1
      priority: 10
      records:
        - {group: 232.1.0.0/16}
        - {source: 10.0.1.0/24, group: 232.2.0.0/16}
        - {subscriber: 10.1.1.128/25}
        - {group: "ff3e::/16"}
        - {subscriber: "fe80::ff:fe00:d100/120"}
    - interface: u2
      priority: 5
      address: 192.0.2.1
      active-interval: 300ms
"""


def run_check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "mcastproxy.yaml"
    path.write_text(textwrap.dedent(text))
    code = main(["check", "-c", str(path)])
    out = capsys.readouterr()
    return code, (out.out + out.err).replace(f"{path}: ", "")


def test_good_config_is_accepted_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_check(tmp_path, GOOD, capsys)
    assert code == 0
    assert out.startswith("ok: IGMPv3 and MLDv2; downstream d1, d2;")
    assert "u1 (priority 10, 5 records)" in out
    # One line of summary; the rest are this host's warnings (its interfaces: checks.py).
    assert [line for line in out.splitlines() if not line.startswith("warning: ")] == [
        out.splitlines()[0]]


def test_values_parsed() -> None:
    cfg = parse_config(GOOD)
    assert cfg.timers.query_interval == 60.0
    assert cfg.timers.query_response_interval == 5.0
    d1 = cfg.downstream_timers("d1")
    assert (d1.robustness, d1.last_member_query_interval, d1.query_interval) == (3, 0.2, 60.0)
    assert cfg.downstream_timers("d2") == cfg.timers
    assert d1.effective_last_member_query_count == 3
    assert cfg.timers.effective_startup_query_interval == 15.0
    assert cfg.active_interval("u1") == 250.0
    assert cfg.active_interval("u2") == 0.3
    assert cfg.downstream[0].fast_leave
    # A bare address is a host prefix.
    cfg2 = parse_config(GOOD.replace("10.1.1.128/25", "10.1.1.129"))
    assert str(cfg2.upstream.candidates[0].records[2].subscriber) == "10.1.1.129/32"


def test_rfc_defaults() -> None:
    cfg = parse_config(
        "igmp: {}\ndownstream: [{interface: d1}]\nupstream: {candidates: [{interface: u1}]}"
    )
    t = cfg.timers
    assert (t.robustness, t.query_interval, t.query_response_interval) == (2, 125.0, 10.0)
    assert (t.last_member_query_interval, t.effective_last_member_query_count) == (1.0, 2)
    assert (t.effective_startup_query_interval, t.effective_startup_query_count) == (31.25, 2)
    assert cfg.igmp is not None
    assert cfg.igmp.version == 3
    assert cfg.mld is None
    assert cfg.upstream.takeover is True
    assert cfg.active_interval("u1") == 250.0  # draft §5.2: about twice the query interval


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("125s", 125.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), (7, 7.0), ("1.5", 1.5),
     (" 10 s ", 10.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "5 days", True, None, "1e3s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


BASE = """
igmp: {version: 3}
downstream: [{interface: d1}]
upstream:
  candidates:
    - interface: u1
"""


def with_(**parts: str) -> str:
    """BASE with some top-level sections replaced."""
    sections = {
        "igmp": "igmp: {version: 3}",
        "downstream": "downstream: [{interface: d1}]",
        "upstream": "upstream:\n  candidates:\n    - interface: u1",
        **parts,
    }
    return "\n".join(v for v in sections.values() if v) + "\n"


def records(*recs: str) -> str:
    """A whole configuration whose one candidate holds these records."""
    upstream = "upstream:\n  candidates:\n    - interface: u1\n      records:\n" + "".join(
        f"        - {r}\n" for r in recs
    )
    return with_(upstream=upstream)


REFUSALS = [
    (with_(extra="colour: blue"), "colour", "unknown key"),
    (with_(igmp="igmp: {version: 3, robust: 2}"), "igmp.robust", "unknown key"),
    (records("{group: 10.0.0.0/8}"), "upstream.candidates[0].records[0].group", "not multicast"),
    (records("{group: 2001:db8::/32}"), "upstream.candidates[0].records[0].group",
     "not multicast"),
    (records("{subscriber: 232.1.1.0/24}"), "upstream.candidates[0].records[0].subscriber",
     "multicast, not unicast"),
    (records('{source: "ff3e::1"}'), "upstream.candidates[0].records[0].source",
     "multicast, not unicast"),
    (records("{source: 0.0.0.0/0}"), "upstream.candidates[0].records[0].source",
     "covers multicast"),
    (records("{subscriber: 127.0.0.1}"), "upstream.candidates[0].records[0].subscriber",
     "not a unicast host"),
    (records("{source: 10.1.1.1/24}"), "upstream.candidates[0].records[0].source",
     "host bits set; did you mean 10.1.1.0/24"),
    (records("{group: banana}"), "upstream.candidates[0].records[0].group",
     "not an address prefix"),
    (records('{source: 10.0.0.0/8, group: "ff3e::/16"}'), "upstream.candidates[0].records[0]",
     "mixes IPv4 and IPv6"),
    (records("{}"), "upstream.candidates[0].records[0]", "needs at least one"),
    (records("{group: 232.1.0.0/16}", "{group: 232.1.0.0/16}"),
     "upstream.candidates[0].records[1]", "duplicates records[0]"),
    (records("{subscriber: 10.0.0.1}", "{subscriber: 10.0.0.1/32}"),
     "upstream.candidates[0].records[1]", "duplicates records[0]"),
    (with_(downstream="downstream: [{interface: d1}, {interface: d1}]"),
     "downstream[1].interface", "interface d1 is listed twice"),
    (with_(downstream="downstream: [{interface: u1}]"), "upstream.candidates[0].interface",
     "interface u1 is both downstream and upstream"),
    (with_(upstream="upstream:\n  default: u9\n  candidates: [{interface: u1}]"),
     "upstream.default", "u9 is not a candidate upstream"),
    (with_(upstream="upstream:\n  candidates: [{interface: u1}, {interface: u1}]"),
     "upstream.candidates[1].interface", "listed twice"),
    (with_(upstream="upstream:\n  candidates: []"), "upstream.candidates",
     "needs at least one candidate"),
    (with_(downstream="downstream: []"), "downstream", "needs at least one downstream"),
    (with_(downstream="downstream: [" + ", ".join(
        f"{{interface: d{i}}}" for i in range(32)) + "]"), "downstream", "MAXVIFS"),
    (with_(downstream="downstream: [{interface: this-name-is-too-long}]"),
     "downstream[0].interface", "not a valid Linux interface name"),
    (with_(igmp="igmp: {version: 4}"), "igmp.version", "1, 2 or 3"),
    (with_(igmp="mld: {version: 3}"), "mld.version", "1 or 2"),
    (with_(igmp=""), "", "neither igmp nor mld"),
    (with_(extra="timers: {query-interval: 10s, query-response-interval: 10s}"), "timers",
     "query-response-interval (10s) must be less than query-interval (10s)"),
    (with_(extra="timers: {robustness: 0}"), "timers.robustness", "greater than or equal to 1"),
    (with_(extra="timers: {robustness: 8}"), "timers.robustness", "less than or equal to 7"),
    (with_(extra="timers: {query-interval: 40000s}"), "timers.query-interval",
     "less than or equal to 31744"),
    (with_(extra="timers: {last-member-query-interval: soon}"),
     "timers.last-member-query-interval", "not a duration"),
    (with_(downstream="downstream: [{interface: d1, timers: {query-response-interval: 200s}}]"),
     "downstream[0].timers", "must be less than query-interval"),
    (with_(upstream="upstream:\n  candidates: [{interface: u1, priority: high}]"),
     "upstream.candidates[0].priority", "valid integer"),
    (with_(upstream="upstream:\n  candidates: [{interface: u1, address: 10.0.0.300}]"),
     "upstream.candidates[0].address[0]", "not an IP address"),
    (with_(upstream="upstream:\n  active-interval: 0s\n  candidates: [{interface: u1}]"),
     "upstream.active-interval", "greater than 0"),
    (with_(igmp='igmp: {ssm-ranges: ["ff3e::/32"]}'), "igmp.ssm-ranges",
     "ff3e::/32 is not an IPv4 prefix"),
    (with_(igmp="igmp: {ssm-ranges: [10.0.0.0/8]}"), "igmp.ssm-ranges[0]", "not multicast"),
    (with_(upstream="upstream:\n  candidates: [{interface: u1, liveness: {data: 5ms}}]"),
     "upstream.candidates[0].liveness.data", "must be at least 20ms"),
    (with_(upstream="upstream:\n  resilient: [{}]\n  candidates: [{interface: u1}]"),
     "upstream.resilient[0]", "needs at least one"),
    ("igmp: [unclosed\n", "", "YAML syntax error at line"),
    ("- a list\n", "", "must hold a mapping"),
]


@pytest.mark.parametrize(("text", "path", "reason"), REFUSALS)
def test_refusals_name_the_field_and_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, path: str, reason: str
) -> None:
    code, out = run_check(tmp_path, text, capsys)
    assert code == 2
    lines = out.splitlines()
    expected = f"{path}: " if path else ""
    assert any(line.startswith(expected) and reason in line for line in lines), out


def test_all_errors_are_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = records("{group: 10.0.0.0/8}", "{source: 232.0.0.0/8}").replace(
        "igmp: {version: 3}", "igmp: {version: 9}").replace(
        "downstream: [{interface: d1}]", "downstream: [{interface: d1, bogus: 1}]")
    code, out = run_check(tmp_path, text, capsys)
    assert code == 2
    for path in ("igmp.version", "downstream[0].bogus", "upstream.candidates[0].records[0].group",
                 "upstream.candidates[0].records[1].source"):
        assert any(line.startswith(path + ":") for line in out.splitlines()), (path, out)


def test_cross_field_errors_are_all_reported() -> None:
    text = with_(
        downstream="downstream: [{interface: d1}, {interface: d1}, {interface: u1}]",
        upstream="upstream:\n  default: nope\n  candidates: [{interface: u1}]",
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert [i.path for i in err.value.issues] == [
        "downstream[1].interface", "upstream.candidates[0].interface", "upstream.default"]


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_links_timers_must_hold_with_the_global_ones_they_overlay() -> None:
    # Each alone is valid; together the link would query with a Max Response Time longer
    # than its query interval (RFC 9776 §8.3). Refused at check, not when the link comes up.
    text = textwrap.dedent("""
        igmp: {version: 3}
        timers: {query-interval: 12s}
        downstream: [{interface: d1}, {interface: d2, timers: {query-response-interval: 15s}}]
        upstream: {candidates: [{interface: u1}]}
    """)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert [i.path for i in caught.value.issues] == ["downstream[1].timers"]
    assert "query-response-interval (15s) must be less than query-interval (12s)" in str(
        caught.value)


# --- a downstream link's trust: querier, routers, ceilings, rate, validity ---------------------


def link(settings: str) -> str:
    return with_(downstream=f"downstream: [{{interface: d1, {settings}}}]")


def test_a_downstream_links_trust_defaults_to_the_access_edges() -> None:
    d1 = parse_config(with_()).downstream[0]
    assert (d1.querier, d1.routers, d1.max_robustness, d1.max_query_interval) == (
        "always", (), 4, 300.0)
    assert (d1.specific_query_rate, d1.require_router_alert, d1.verify_source_subnet) == (
        100, None, False)
    policy = d1.querier_policy()
    assert (policy.mode.value, policy.routers) == ("always", frozenset())


def test_a_downstream_links_trust_is_read() -> None:
    d1 = parse_config(link(
        'querier: elect, routers: [10.1.0.2, "fe80::2"], max-robustness: 3, '
        "max-query-interval: 2m, specific-query-rate: 0, require-router-alert: true, "
        "verify-source-subnet: true")).downstream[0]
    assert d1.querier == "elect"
    assert [str(r) for r in d1.routers] == ["10.1.0.2", "fe80::2"]
    assert (d1.max_robustness, d1.max_query_interval, d1.specific_query_rate) == (3, 120.0, 0)
    assert (d1.require_router_alert, d1.verify_source_subnet) == (True, True)
    policy = d1.querier_policy()
    assert policy.routers == {bytes([10, 1, 0, 2]), bytes.fromhex("fe80" + "0" * 27 + "2")}
    assert (policy.max_robustness, policy.max_query_interval) == (3, 120.0)
    one = parse_config(link("querier: elect, routers: 10.1.0.2")).downstream[0]
    assert [str(r) for r in one.routers] == ["10.1.0.2"]


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ("querier: sometimes", "'always' or 'elect'"),
        ("querier: always, routers: [10.1.0.2]", "need querier: elect"),
        ('querier: elect, routers: ["2001:db8::1"]', "not link-local"),
        ("querier: elect, routers: [224.0.0.1]", "not a unicast address"),
        ("querier: elect, routers: [0.0.0.0]", "not a unicast address"),
        ("querier: elect, routers: [router-b]", "not an IP address"),
        ("querier: elect, routers: [10.1.0.0/24]", "not an IP address"),
        ("max-robustness: 0", "greater than or equal to 1"),
        ("max-robustness: 8", "less than or equal to 7"),
        ("max-robustness: many", "valid integer"),
        ("max-query-interval: 500ms", "greater than or equal to 1"),
        ("max-query-interval: 31745s", "less than or equal to 31744"),
        ("max-query-interval: soon", "not a duration"),
        ("specific-query-rate: -1", "greater than or equal to 0"),
        ("specific-query-rate: 1000001", "less than or equal to 1000000"),
        ("specific-query-rate: 2.5", "valid integer"),
        ("require-router-alert: maybe", "valid boolean"),
        ("verify-source-subnet: [d1]", "valid boolean"),
        ("verify-source-subnets: true", "unknown key"),
    ],
)
def test_a_downstream_links_trust_is_refused_with_the_field_and_reason(
    settings: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(link(settings))
    issues = caught.value.issues
    assert len(issues) == 1, issues
    assert issues[0].path.startswith("downstream[0]"), issues
    assert reason in issues[0].reason, issues


# --- interface names: whatever the kernel would refuse, check refuses -------------------------

NAMES_REFUSED = [
    ('"d\\0x"', "it holds a NUL"),
    ("d234567890123456", "16 octets, the kernel's limit is 15"),
    ("ééééééééé", "18 octets, the kernel's limit is 15"),  # 9 letters
    ('"d 1"', "white space"),
    ('"d\\t1"', "white space"),
    ('"d\\u00a01"', "white space"),  # no-break space: octet 0xa0, a space to the kernel
    ("dà", "white space"),  # "à" is c3 a0 in UTF-8: the kernel sees the same 0xa0
    ('"d\\u20031"', "white space"),  # em space
    ('"d\\x01"', "control character"),
    ("d/1", "it holds '/'"),
    ('"d:1"', "it holds ':'"),
    ("eth%d", "it holds '%'"),
    ('"."', "names a directory"),
    ('".."', "names a directory"),
    ('""', "expected an interface name"),
    ("7", "expected an interface name"),
]


@pytest.mark.parametrize(("name", "reason"), NAMES_REFUSED)
def test_interface_names_the_kernel_refuses_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str,
) -> None:
    code, out = run_check(tmp_path, with_(downstream=f"downstream: [{{interface: {name}}}]"),
                          capsys)
    assert code == 2
    assert out.count("\n") == 1, out  # one line
    assert out.startswith("downstream[0].interface: ")
    assert reason in out


@pytest.mark.parametrize("name", ["d23456789012345", "dééééééé", "eth0.100", "br-lan", "veth@x",
                                  "ppp+1", "lo"])
def test_interface_names_the_kernel_takes_are_taken(name: str) -> None:
    assert parse_config(with_(downstream=f"downstream: [{{interface: {name}}}]")
                        ).downstream[0].interface == name


# --- the file: its size, its encoding, its YAML --------------------------------------------


def check_file(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    code = main(["check", "-c", str(path)])
    took = time.perf_counter() - t0
    out = capsys.readouterr()
    return code, (out.out + out.err).replace(f"{path}: ", ""), took


def test_a_file_over_16_mib_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:  # sparse: a hole of 16 MiB, then one more octet
        f.seek(MAX_FILE_SIZE)
        f.write(b"#")
    code, out, took = check_file(path, capsys)
    assert (code, out) == (2, "larger than 16 MiB: too large for a configuration\n")
    assert took < 1.0


@pytest.mark.parametrize(("data", "offset"), [
    (b"igmp: {}\n\xff\xfe", 9), (b"\xc3", 0), ("igmp: {}\n# é".encode("latin-1"), 11),
    ("downstream: [{interface: d1}]".encode("utf-16"), 0),
])
def test_a_file_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, offset: int,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    code, out, _ = check_file(path, capsys)
    assert code == 2
    assert out.startswith("not UTF-8 text: octet 0x")
    assert out.endswith(f" at offset {offset}\n")


def test_a_file_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):  # a FIFO nobody writes to would block; a directory
        code, out, took = check_file(path, capsys)
        assert (code, out) == (2, "cannot read not a regular file\n")  # "cannot read PATH: ..."
        assert took < 1.0


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{a}: &{a} [{', '.join([f'*{p}'] * 9)}]\n" for p, a in zip("abcdefgh", "bcdefghi",
                                                                 strict=True))


def test_an_alias_bomb_is_refused_at_once_and_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert len(BOMB) < 400  # 9 aliases of 9 aliases, 9 deep: 9^9 nodes
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    tracemalloc.start()
    try:
        code, out, took = check_file(path, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2
    assert out.startswith(f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes, at line ")
    assert took < 1.0
    assert peak < 8 * 2**20


def test_anchors_and_aliases_within_bounds_are_taken() -> None:
    cfg = parse_config(textwrap.dedent("""
        igmp: {}
        downstream: [{interface: d1, <<: &fast {fast-leave: true}}, {interface: d2, <<: *fast}]
        upstream:
          candidates:
            - {interface: u1, records: &iptv [{group: 239.1.0.0/16}, {group: 232.1.0.0/16}]}
            - {interface: u2, records: *iptv}
    """))
    assert [d.fast_leave for d in cfg.downstream] == [True, True]
    assert cfg.upstream.candidates[0].records == cfg.upstream.candidates[1].records


@pytest.mark.parametrize(("text", "reason"), [
    ("[" * 100_000, "nested more than 16 deep at line 1"),
    ("[" * 5_000 + "]" * 5_000, "nested more than 16 deep at line 1"),
    ("".join("  " * i + "- \n" for i in range(50)), "nested more than 16 deep at line 17"),
    ("a: &a [[[[[[[[1]]]]]]]]\nb: &b [[[[[[[[*a]]]]]]]]\nc: [*b]\n",
     "nested more than 16 deep, aliases expanded, at line 3"),
    ("a: &a [*a]\n", "an alias names a node it is in, at line 1"),
    ("a: &a {b: *a}\n", "an alias names a node it is in, at line 1"),
    ("a: *nowhere\n", "YAML syntax error at line 1, column 4: found undefined alias"),
    ("a: \x00\n", "YAML syntax error at character 4: unacceptable character #x0000"),
    ("1: x\n", "a key is a name: '1' is not, at line 1"),
    ("? [a]\n: 1\n", "a key is a name: 'a collection' is not, at line 1"),
    ("igmp: {version: " + "1" * 5000 + "}\n", "cannot be read as YAML: ValueError: Exceeds"),
    (with_(extra="timers: {query-interval: .inf}"), "timers.query-interval: inf is not a finite"),
    (with_(upstream="upstream:\n  hold-down: .nan\n  candidates: [{interface: u1}]"),
     "upstream.hold-down: nan is not a finite number"),
    ("", "the file must hold a mapping of settings"),
])
def test_what_yaml_can_do_to_a_reader_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code, out, took = check_file(path, capsys)
    assert code == 2
    assert out.count("\n") == 1, out
    assert reason in out
    assert took < 2.0


def test_parse_config_takes_utf8_bytes() -> None:
    assert parse_config(GOOD.encode()) == parse_config(GOOD)
    with pytest.raises(ConfigError, match="not UTF-8 text: octet 0xe9 at offset 0"):
        parse_config("é".encode("latin-1"))


def test_a_key_given_twice_is_refused_rather_than_the_first_dropped() -> None:
    # YAML keeps the last of two equal keys: a second `igmp:` would silently replace the first.
    text = ("igmp: {version: 3}\nigmp: {version: 2}\ndownstream: [{interface: d1}]\n"
            "upstream: {candidates: [{interface: u1, priority: 1, priority: 2}]}\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert [str(i) for i in err.value.issues] == [
        "key 'igmp' is given twice in one mapping, at line 2"]
    nested = text.replace("igmp: {version: 2}\n", "")
    with pytest.raises(ConfigError, match="key 'priority' is given twice"):
        parse_config(nested)
    # A merge key (<<) may bring keys the mapping also has: that is what it is for.
    merged = parse_config("igmp: {version: 3}\ndownstream:\n"
                          "  - &link {interface: d1, fast-leave: true}\n"
                          "  - {<<: *link, interface: d2}\n"
                          "upstream: {candidates: [{interface: u1}]}\n")
    assert [(d.interface, d.fast_leave) for d in merged.downstream] == [
        ("d1", True), ("d2", True)]
