"""Struct layouts of the multicast socket options, as the x86_64 kernel reads them."""

from __future__ import annotations

import socket
import struct

from mcastlab import sockopts


def test_group_source_req_has_padding_after_the_interface() -> None:
    raw = sockopts.group_source_req("ff3e::1", "fd00::1", 7)
    assert len(raw) == 4 + 4 + 128 + 128  # sizeof(struct group_source_req) on x86_64
    assert struct.unpack_from("=I", raw, 0)[0] == 7
    assert raw[4:8] == bytes(4)
    # gsr_group at 8, gsr_source at 136: sockaddr_in6 (family, port, flowinfo, addr, scope)
    assert struct.unpack_from("=H", raw, 8)[0] == socket.AF_INET6
    assert raw[8 + 8 : 8 + 24] == socket.inet_pton(socket.AF_INET6, "ff3e::1")
    assert struct.unpack_from("=H", raw, 136)[0] == socket.AF_INET6
    assert raw[136 + 8 : 136 + 24] == socket.inet_pton(socket.AF_INET6, "fd00::1")


def test_group_req_and_ipv4_sockaddr() -> None:
    raw = sockopts.group_req("232.1.1.1", 3)
    assert len(raw) == 136
    assert struct.unpack_from("=IxxxxH", raw)[1] == socket.AF_INET
    assert raw[12:16] == socket.inet_aton("232.1.1.1")  # sin_addr after family and port


def test_ipv4_structs() -> None:
    assert sockopts.ip_mreqn("239.1.1.1", 5) == (
        socket.inet_aton("239.1.1.1") + bytes(4) + struct.pack("=i", 5)
    )
    assert sockopts.ip_mreq_source("232.1.1.1", "10.0.0.2", "10.0.0.1") == (
        socket.inet_aton("232.1.1.1") + socket.inet_aton("10.0.0.2") + socket.inet_aton("10.0.0.1")
    )


def test_ipv6_mreq() -> None:
    raw = sockopts.ipv6_mreq("ff1e::5", 9)
    assert raw == socket.inet_pton(socket.AF_INET6, "ff1e::5") + struct.pack("=i", 9)
