"""Wire codec throughput: messages per second on one core.

Run: .venv/bin/python bench/bench_wire.py   (about 15 s)

Each figure is the best of 3 runs of about 1/3 s each (time.perf_counter). Decoding repeats
one packet, as a proxy sees the same shapes of report again and again; the line marked
"first sight" decodes a report whose shape has no plan yet (see wire/_records.py). A short
report (a join, a zap, an answer to a query) is kept decoded by its bytes, which every host
sending it sends alike (``igmp.DECODED_SIZE``): repeated, the 1-record line measures finding
it; the line "new bytes each time" cycles through 8,192 reports of different groups, more
than the cache holds, so that each is decoded as at first sight (and kept, and the cache
emptied when full: the worst case).
The "context" lines show what this machine allows at all: the checksum alone, and making
the result's objects alone (one struct call for the 110 addresses, 10 NamedTuples).
"IGMPv3 report 1 record" is a join as a host sends it (one TO_EX record, no sources), the
shape most of a busy link's reports have.

It runs the mcastproxy that is installed (the compiled build, in .venv-compiled), else the
sources of this tree, and says which: compare the builds by running it with each Python.
"""

from __future__ import annotations

import importlib.util
import itertools
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if importlib.util.find_spec("mcastproxy") is None:  # not installed: the sources here
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import mcastproxy
from mcastproxy.wire import (
    GroupRecord,
    Query,
    RecordType,
    Report,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_mld,
)
from mcastproxy.wire import igmp as igmp_module

TARGET = 200_000
TARGET_ONE = 1_500_000  # one-record report, compiled build (issue 16)
RUN_SECONDS = 0.33


def rate(function: Callable[..., Any], *args: Any) -> float:
    """Calls per second: best of 3 runs of about RUN_SECONDS each."""
    number = 1
    while True:  # calibrate
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        number *= 4
    number = max(1, int(number * RUN_SECONDS / elapsed))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        best = min(best, time.perf_counter() - start)
    return number / best


def line(label: str, per_second: float) -> None:
    print(f"{label:<44} {per_second:>11,.0f}/s  ({1e6 / per_second:6.2f} µs)")


def main() -> None:
    types = list(RecordType)
    v4 = Report(
        3,
        tuple(
            GroupRecord(
                types[i % 6], bytes([232, 1, 0, i]), tuple(bytes([10, 0, i, j]) for j in range(10))
            )
            for i in range(10)
        ),
    )
    v6 = Report(
        2,
        tuple(
            GroupRecord(
                types[i % 6],
                bytes([0xFF, 0x3E]) + bytes(13) + bytes([i]),
                tuple(
                    bytes([0x20, 0x01, 0x0D, 0xB8]) + bytes(10) + bytes([i, j]) for j in range(10)
                ),
            )
            for i in range(10)
        ),
    )
    query4 = Query(3, bytes(4), 10.0, qrv=2, qqi=125)
    query6 = Query(2, bytes(16), 10.0, qrv=2, qqi=125)
    src = bytes([0xFE, 0x80]) + bytes(13) + b"\x02"
    dst = bytes([0xFF, 0x02]) + bytes(13) + b"\x16"
    join4 = Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, bytes([239, 1, 2, 3])),))
    one4 = build_igmp(join4)
    assert parse_igmp(one4) == join4
    report4, report6 = build_igmp(v4), build_mld(v6, src, dst)
    q4, q6 = build_igmp(query4), build_mld(query6, src, dst)
    assert parse_igmp(report4) == v4
    assert parse_mld(report6, src, dst) == v6
    assert parse_igmp(q4) == query4
    assert parse_mld(q6, src, dst) == query6

    print(f"mcastproxy ({mcastproxy.build()}) from {Path(mcastproxy.__file__).parent}")
    print(f"Python {sys.version.split()[0]}; one core; best of 3 runs of ~{RUN_SECONDS} s")
    one = rate(parse_igmp, one4)
    line("IGMPv3 report 1 record decode", one)
    distinct = [build_igmp(Report(3, (GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE,
                                                  bytes([239, 2, i >> 8, i & 0xFF])),)))
                for i in range(8192)]
    turn = itertools.cycle(distinct)
    one_new = rate(lambda: parse_igmp(next(turn)))
    base = rate(lambda: next(turn))  # the loop alone, taken off
    one_new = 1 / (1 / one_new - 1 / base)
    line("IGMPv3 report 1 record decode, new bytes each", one_new)
    decode = rate(parse_igmp, report4)
    line("IGMPv3 report 10x10 decode", decode)
    line("IGMPv3 report 10x10 encode", rate(build_igmp, v4))
    line("MLDv2 report 10x10 decode", rate(parse_mld, report6, src, dst))
    line("MLDv2 report 10x10 encode", rate(build_mld, v6, src, dst))
    line("IGMPv3 query decode", rate(parse_igmp, q4))
    line("IGMPv3 query encode", rate(build_igmp, query4))
    line("MLDv2 query decode", rate(parse_mld, q6, src, dst))
    line("MLDv2 query encode", rate(build_mld, query6, src, dst))

    walk = igmp_module._walk_records  # an inner path, for the first-sight figure
    from_bytes = int.from_bytes

    def first_sight(data: bytes) -> object:
        total = from_bytes(data, "little")  # the same checksum test as parse_igmp
        assert total % 0xFFFF == 0
        return walk(data, 8, 10, len(data))

    line("IGMPv3 report 10x10 decode, first sight", rate(first_sight, report4))
    line(
        "context: IGMP checksum of that report alone",
        rate(lambda d: from_bytes(d, "little") % 0xFFFF, report4),
    )
    addresses = struct.Struct("!" + "4s" * 110).unpack_from
    new = tuple.__new__
    group_type = RecordType.MODE_IS_INCLUDE

    def objects_only(data: bytes) -> object:
        fields = addresses(data, 0)
        return tuple(
            [
                new(GroupRecord, (group_type, fields[k], fields[k + 1 : k + 11], b""))
                for k in range(0, 110, 11)
            ]
        )

    line("context: its objects alone, no checks", rate(objects_only, report4))
    verdict = "met" if decode >= TARGET else "not met"
    print(f"target >= {TARGET:,}/s (IGMPv3 report 10x10 decode): {verdict} ({decode:,.0f}/s)")
    verdict = "met" if one >= TARGET_ONE else "not met"
    print(f"target >= {TARGET_ONE:,}/s compiled (IGMPv3 report 1 record decode): {verdict} "
          f"({one:,.0f}/s; new bytes each time: {one_new:,.0f}/s)")


if __name__ == "__main__":
    main()
