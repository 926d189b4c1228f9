"""Test vectors shared by the RSS tests: the verification tables of the NDIS page "Verifying
the RSS hash calculation" and the pseudocode of "RSS hashing functions" (a bit-by-bit
reference independent of the table-driven implementation)."""

from __future__ import annotations

# The page's tables list the DESTINATION first; the hash input is source, destination,
# source port, destination port.
# (destination, destination port, source, source port, address-only hash, with-TCP hash)
IPV4_TABLE = [
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
]
IPV6_TABLE = [
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    (
        "fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
        0x4B61E985, 0x02D1FEEF,
    ),
]  # fmt: skip
TABLE = IPV4_TABLE + IPV6_TABLE


def reference_hash(key: bytes, data: bytes) -> int:
    """ComputeHash exactly as the pseudocode of "RSS hashing functions" writes it."""
    k = int.from_bytes(key, "big")
    key_bits = len(key) * 8
    result = 0
    for i in range(len(data) * 8):
        if data[i // 8] >> (7 - i % 8) & 1:
            result ^= (k >> (key_bits - 32 - i)) & 0xFFFFFFFF
    return result
