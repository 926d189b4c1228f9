"""The Toeplitz hash against every row of the verification table of
https://learn.microsoft.com/windows-hardware/drivers/network/verifying-the-rss-hash-calculation
(the table lists the destination first; the hash input is source first)."""

from __future__ import annotations

import pytest

from ndis_offload.errors import PacketError
from ndis_offload.packet.rss import MICROSOFT_KEY, hash_input, toeplitz

# (destination, dst port, source, src port, IP-only hash, IP+TCP hash)
IPV4 = [
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
]
IPV6 = [
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
     0x4B61E985, 0x02D1FEEF),
]  # fmt: skip


@pytest.mark.parametrize(("dst", "dport", "src", "sport", "ip", "tcp"), IPV4 + IPV6)
def test_verification_table(dst: str, dport: int, src: str, sport: int, ip: int, tcp: int) -> None:
    assert toeplitz(MICROSOFT_KEY, hash_input(src, dst)) == ip
    assert toeplitz(MICROSOFT_KEY, hash_input(src, dst, sport, dport)) == tcp


def test_destination_first_is_wrong() -> None:
    dst, dport, src, sport, _, tcp = IPV4[0]
    assert toeplitz(MICROSOFT_KEY, hash_input(dst, src, dport, sport)) != tcp


def test_short_key_is_refused() -> None:
    with pytest.raises(PacketError):
        toeplitz(bytes(8), bytes(12))
