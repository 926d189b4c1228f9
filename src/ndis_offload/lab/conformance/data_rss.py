"""RSS: the miniport's Toeplitz hash against every row of the verification table of
``verifying-the-rss-hash-calculation``."""

from __future__ import annotations

import ipaddress

from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance.check import Check, Context, page, skipped, verdict
from ndis_offload.lab.conformance.result import Family, Verdict
from ndis_offload.packet.rss import MICROSOFT_KEY

PAGE = page("verifying-the-rss-hash-calculation")

TABLE: tuple[tuple[str, int, str, int, int, int], ...] = (
    ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x323E8FC2, 0x51CCC178),
    ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xD718262A, 0xC626B0EA),
    ("12.22.207.184", 38024, "24.19.198.95", 12898, 0xD2D0A5DE, 0x5C2B394A),
    ("209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xAFC7327F),
    ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x5D1809C5, 0x10E828A2),
    ("3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2CC18CD5, 0x40207D3D),
    ("ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0F0C461C, 0xDDE51BBF),
    ("fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251,
     0x4B61E985, 0x02D1FEEF),
)  # fmt: skip
"""(destination, destination port, source, source port, IP-only hash, IP+TCP hash), as the
page lists them: destination first."""


def _frame(src: str, dst: str, sport: int, dport: int, tcp: bool) -> bytes:
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    version = 4 if len(s) == 4 else 6
    l4: fr.Tcp | fr.Udp = fr.Tcp(sport=sport, dport=dport) if tcp else fr.Udp(sport, dport)
    frame = bytearray(fr.build(version, l4, b"rss"))
    at, size = (fr.ETH_LEN + 12, 4) if version == 4 else (fr.ETH_LEN + 8, 16)
    frame[at : at + size], frame[at + size : at + 2 * size] = s, d
    return bytes(frame)


def table(ctx: Context) -> Verdict:
    rig = ctx.rig(observe=False)
    hook = getattr(rig.miniport, "rss_hash", None) or getattr(
        getattr(rig.miniport, "datapath", None), "rss_hash", None
    )
    if hook is None:
        return skipped("the miniport has no rss_hash(key, frame) hook (its own or its datapath's)")
    bad = []
    for dst, dport, src, sport, ip_only, with_tcp in TABLE:
        for tcp, want in ((True, with_tcp), (False, ip_only)):
            got = hook(MICROSOFT_KEY, _frame(src, dst, sport, dport, tcp))
            if got != want:
                bad.append(f"{src}:{sport} -> {dst}:{dport} {'TCP' if tcp else 'UDP'}: "
                           f"0x{got:08X}, expected 0x{want:08X}")  # fmt: skip
    return verdict(
        not bad,
        f"{2 * len(TABLE)} frames (every row, TCP and non-TCP) with the page's key",
        "the page's IP+TCP hash for TCP, its IP-only hash otherwise (input: source address, "
        "destination address, source port, destination port)",
        "; ".join(bad[:3]) or "all rows",
    )


def checks() -> list[Check]:
    return [Check("rss-toeplitz-verification-table", Family.RSS, PAGE, "the Toeplitz hash "
                  "equals every row of the verification table", table,
                  reading="the table lists the destination first; the hash input is source "
                  "first (rss-hashing-functions)")]  # fmt: skip
