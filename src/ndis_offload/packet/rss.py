"""The RSS Toeplitz hash (``rss-hashing-functions``; verified against the table of
``verifying-the-rss-hash-calculation`` in ``tests/packet/test_rss.py``).

The input is source address, destination address, then (for the TCP hash types) source
port and destination port, each in network byte order: ``hash_input``. Scalar and clear;
a later issue vectorizes it.
"""

from __future__ import annotations

import ipaddress

from ndis_offload.errors import PacketError

MICROSOFT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
"""The 40-byte secret key of the verification page."""


def toeplitz(key: bytes, data: bytes) -> int:
    """``ComputeHash``: for each input bit from the left, XOR in the leftmost 32 bits of the
    key, shifting the key left one bit per input bit."""
    if len(key) < len(data) + 4:
        raise PacketError(f"an RSS key of {len(key)} bytes cannot hash {len(data)} input bytes")
    window = int.from_bytes(key, "big")
    width = 8 * len(key)
    result = 0
    for index, byte in enumerate(data):
        for bit in range(8):
            if byte & (0x80 >> bit):
                shift = width - 32 - (8 * index + bit)
                result ^= (window >> shift) & 0xFFFFFFFF
    return result


def hash_input(src: str | bytes, dst: str | bytes, sport: int | None = None,
               dport: int | None = None) -> bytes:  # fmt: skip
    """Source address, destination address[, source port, destination port]."""

    def packed(addr: str | bytes) -> bytes:
        return addr if isinstance(addr, bytes) else ipaddress.ip_address(addr).packed

    out = packed(src) + packed(dst)
    if sport is not None and dport is not None:
        out += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return out
