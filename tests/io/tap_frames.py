"""Small frames for the TAP tests."""

from __future__ import annotations

import struct


def ipv4_tcp(payload: int = 100) -> bytes:
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + payload, 1, 0x4000, 64, 6, 0,
                     b"\x0a\0\0\x01", b"\x0a\0\0\x02")  # fmt: skip
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 3, 4, 0x50, 0x10, 100, 0, 0)
    return eth + ip + tcp + bytes(payload)


def ipv6_udp(payload: int = 100) -> bytes:
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd"
    ip = struct.pack("!IHBB16s16s", 6 << 28, 8 + payload, 17, 64, b"\1" * 16, b"\2" * 16)
    return eth + ip + struct.pack("!HHHH", 1, 2, 8 + payload, 0) + bytes(payload)
