"""RSS: the miniport's Toeplitz hash against every row of the verification table of
``verifying-the-rss-hash-calculation``."""

from __future__ import annotations

import ipaddress

from ndis_offload.engine.rss import VERIFICATION_KEY, VERIFICATION_TABLE
from ndis_offload.lab.conformance import frames as fr
from ndis_offload.lab.conformance.check import Check, Context, page, skipped, verdict
from ndis_offload.lab.conformance.result import Family, Verdict

PAGE = page("verifying-the-rss-hash-calculation")


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
    for dst, dport, src, sport, ip_only, with_tcp in VERIFICATION_TABLE:
        for tcp, want in ((True, with_tcp), (False, ip_only)):
            got = hook(VERIFICATION_KEY, _frame(src, dst, sport, dport, tcp))
            if got != want:
                bad.append(f"{src}:{sport} -> {dst}:{dport} {'TCP' if tcp else 'UDP'}: "
                           f"0x{got:08X}, expected 0x{want:08X}")  # fmt: skip
    return verdict(
        not bad,
        f"{2 * len(VERIFICATION_TABLE)} frames (every row, TCP and non-TCP) with the page's key",
        "the page's IP+TCP hash for TCP, its IP-only hash otherwise (input: source address, "
        "destination address, source port, destination port)",
        "; ".join(bad[:3]) or "all rows",
    )


def checks() -> list[Check]:
    return [Check("rss-toeplitz-verification-table", Family.RSS, PAGE, "the Toeplitz hash "
                  "equals every row of the verification table", table,
                  reading="the table lists the destination first; the hash input is source "
                  "first (rss-hashing-functions)")]  # fmt: skip
