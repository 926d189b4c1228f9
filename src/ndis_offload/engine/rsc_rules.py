"""The NDIS RSC rules, written once for the per-frame path (``RscCoalescer.push``) and the
batch path (``push_batch``).

Doc pages: "Rules for coalescing TCP/IP packets" (the flowcharts for data, pure ACKs, window
updates, duplicate ACKs and timestamps), "Exception conditions that terminate coalescing"
(E1-E8), "Updating the IP headers for coalesced segments" and "Indicating coalesced
segments". The continuation rule is one table (``CONTINUITY``) evaluated for one segment
against a unit (:func:`breaks`) or for many pairs at once (:func:`breaks_many`); sequence
numbers, ACKs and timestamps compare modulo 2**32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.receive import IP_SUCCEEDED, TCP_SUCCEEDED
from ndis_offload.packet.proto import TCP_ACK, TCP_ECN_FLAGS, TCP_PSH

ALLOWED_FLAGS = TCP_ACK | TCP_PSH | TCP_ECN_FLAGS
"""Exception E3: a segment with any other TCP flag is never coalesced (ECE / CWR must not
change within an SCU: exception E8)."""
FORBIDDEN_FLAGS = 0xFF & ~ALLOWED_FLAGS
"""FIN, SYN, RST, URG (the 8-bit flags byte; NS lives in the data-offset byte)."""
MAX_IP_DATAGRAM = 0xFFFF
"""Exception E7: an SCU's IP datagram must not exceed 65535 bytes (IPv4 total length /
IPv6 payload length plus header)."""
SCU_CHECKSUM = IP_SUCCEEDED | TCP_SUCCEEDED
"""Exception E2 / "Indicating coalesced segments": segments need good IP and TCP checksums;
an SCU is indicated with ``IpChecksumSucceeded`` and ``TcpChecksumSucceeded``."""
TS_NOP_NOP = 0x0101080A
"""NOP, NOP, kind 8, length 10: the usual 12-byte timestamp option block (exception E4
allows the timestamp option only)."""
HALF = 1 << 31
M32 = 0xFFFFFFFF
NO_TS_OFFSET = 0x3F
"""The 6-bit TSval offset recorded in ``match`` for a segment without timestamps."""

_T = TypeVar("_T", int, npt.NDArray[np.int64])


def goes_back(old: _T, new: _T) -> _T:
    """Non-zero when ``new`` is before ``old`` modulo 2**32 (bit 31 of the difference)."""
    return (new - old) & HALF


def ip_match(v4: bool, ip_word0: int, frag: int) -> int:
    """Header bits that must be equal within an SCU ("Updating the IP headers": IPv4 TOS
    (ECN included) and DF; IPv6 version, traffic class and flow label), bit 62 for IPv6."""
    if v4:
        return ((ip_word0 >> 16) & 0xFF) << 1 | (frag >> 14) & 1
    return (1 << 38) | ip_word0


def match_word(ip_bits: int, ts_offset: int, tcp_header_len: int, flags: int) -> int:
    """``match``: what must not change within an SCU -- the IP bits of :func:`ip_match`,
    the TCP option layout (TSval offset, header length) and ECE / CWR (exception E8)."""
    return ip_bits << 24 | (ts_offset & NO_TS_OFFSET) << 16 | tcp_header_len << 8 | (
        flags & TCP_ECN_FLAGS
    )  # fmt: skip


def ts_offset(match: int) -> int:
    """The TSval offset from the TCP header recorded in ``match`` (``NO_TS_OFFSET``: none)."""
    return (match >> 16) & NO_TS_OFFSET


UNIT_FIELDS = ("match", "nxt", "ack", "tsval", "tsecr")
"""What a unit keeps to decide whether a segment continues it, in this order: ``match``,
``H.NXT``, ``H.ACK``, ``H.TSval``, ``H.TSecr`` (the segment's own: ``match``, ``SEG.SEQ``,
``SEG.ACK``, ``SEG.TSval``, ``SEG.TSecr``)."""
CONTINUITY = (-1, M32, HALF, HALF, HALF)
"""The continuation rule, one mask per field of ``UNIT_FIELDS``: a segment continues a unit
when ``(segment field - unit field) & mask`` is 0 for every field -- ``match`` equal
(exception E8, the IP header fields of "Updating the IP headers for coalesced segments"),
``SEG.SEQ == H.NXT`` (the data flowchart), and neither ``SEG.ACK`` nor ``SEG.TSval`` /
``SEG.TSecr`` before the unit's (the timestamp flowchart), modulo 2**32. Without
timestamps TSval / TSecr are -1 on both sides (equal ``match``: equal option layout)."""
_CONTINUITY_ROWS = np.array(CONTINUITY, dtype=np.int64)[:, None]


_MATCH_MASK, _NXT_MASK, _ACK_MASK, _TSVAL_MASK, _TSECR_MASK = CONTINUITY


def breaks(unit: Sequence[int], segment: Sequence[int], length: int) -> bool:
    """True when a segment of ``length`` payload bytes whose own fields after it are
    ``segment`` (``UNIT_FIELDS`` order: its NXT is ``SEG.SEQ + length``) cannot continue
    ``unit`` (``CONTINUITY``, one field at a time)."""
    u_match, u_nxt, u_ack, u_tsval, u_tsecr = unit
    s_match, s_nxt, s_ack, s_tsval, s_tsecr = segment
    return bool(
        (s_match - u_match) & _MATCH_MASK
        or (s_nxt - length - u_nxt) & _NXT_MASK
        or (s_ack - u_ack) & _ACK_MASK
        or (s_tsval - u_tsval) & _TSVAL_MASK
        or (s_tsecr - u_tsecr) & _TSECR_MASK
    )


def breaks_many(
    diff: npt.NDArray[np.int64], out: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.int64]:
    """:func:`breaks` for many pairs at once: ``diff`` holds segment minus unit fields, a
    row per field of ``UNIT_FIELDS`` (the NXT row less the segment's length), a column per
    pair; non-zero where a pair breaks (``diff`` is overwritten; the result is written to
    ``out`` when given)."""
    diff &= _CONTINUITY_ROWS
    result: npt.NDArray[np.int64] = np.bitwise_or.reduce(diff, axis=0, out=out)
    return result


E1_RESOURCES, E2_CHECKSUM, E3_FLAGS, E4_TCP_OPTIONS, E5_IP_OPTIONS, E6_FRAGMENT = 1, 2, 3, 4, 5, 6
E7_DATAGRAM_SIZE, E8_ECN = 7, 8
"""The numbered exceptions of "Exception conditions that terminate coalescing" (index into
``RscCoalescer.exceptions``). ``OID_TCP_RSC_STATISTICS``: ``Aborts`` counts every one but
E7 ("an exception other than the IP datagram length being exceeded")."""
ABORT_EXCEPTIONS = (1, 2, 3, 4, 5, 6, 8)

_ECN_V4 = 3 << 25 | TCP_ECN_FLAGS
"""``match`` bits of exception E8 for IPv4: the TOS ECN field (``ip_match`` puts TOS at bit
1, ``match_word`` the IP bits at 24) and ECE / CWR."""
_ECN_V6 = 3 << 44 | TCP_ECN_FLAGS
"""For IPv6: the traffic class ECN field (bits 20-21 of the first header word) and ECE /
CWR."""


def ecn_differs(old: int, new: int) -> bool:
    """Exception E8 between two ``match`` words of one flow: the IP ECN field or the TCP
    ECE / CWR flags differ."""
    return bool((old ^ new) & (_ECN_V6 if old >> 62 else _ECN_V4))


def ecn_differs_many(match: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """:func:`ecn_differs` for every adjacent pair of ``match`` words (one per pair)."""
    before, after = match[:-1], match[1:]
    mask = np.where(before >> 62, _ECN_V6, _ECN_V4)
    result: npt.NDArray[np.bool_] = ((before ^ after) & mask) != 0
    return result


def intrinsic_exception(
    *,
    options_ok: bool,
    fragment: bool,
    ip_header_len: int,
    v4: bool,
    checksum_word: int,
    ns_and_reserved: int,
    flags: int,
) -> int:
    """The segment-intrinsic exception a segment triggers, or 0 (it may be coalesced). The
    structural ones first (a fragment's TCP checksum cannot be verified): E6 fragment, E5 IPv4
    options / IPv6 extension headers, E3 flags (a segment without ACK counted here), E4 TCP
    options, then E2 checksum."""
    if fragment:
        return E6_FRAGMENT
    if ip_header_len != (20 if v4 else 40):
        return E5_IP_OPTIONS
    if ns_and_reserved or flags & ~ALLOWED_FLAGS or not flags & TCP_ACK:
        return E3_FLAGS
    if not options_ok:
        return E4_TCP_OPTIONS
    want = SCU_CHECKSUM if v4 else TCP_SUCCEEDED
    if checksum_word & SCU_CHECKSUM != want:
        return E2_CHECKSUM
    return 0


__all__ = [
    "ABORT_EXCEPTIONS",
    "ALLOWED_FLAGS",
    "FORBIDDEN_FLAGS",
    "HALF",
    "M32",
    "MAX_IP_DATAGRAM",
    "NO_TS_OFFSET",
    "SCU_CHECKSUM",
    "TS_NOP_NOP",
    "CONTINUITY",
    "UNIT_FIELDS",
    "breaks",
    "breaks_many",
    "ecn_differs",
    "ecn_differs_many",
    "intrinsic_exception",
    "goes_back",
    "ip_match",
    "match_word",
    "ts_offset",
]
