"""The vectorized scan behind :meth:`RscCoalescer.push_batch`.

One pass over a receive DPC's frames picks out the segments the coalescer can take without
its per-frame parser, and decodes them in a handful of numpy operations:

* Ethernet II, untagged or with one 802.1Q / 802.1ad tag; IPv4 with a 20-byte header that is
  not a fragment, or IPv6 directly followed by TCP; TCP without options or with the usual
  ``NOP, NOP, Timestamps`` block; ACK set and no flag other than ACK / PSH / ECE / CWR; some
  payload; correct IPv4 header and TCP checksums. These are exactly the data segments
  ``_scalar_seg`` reports as ``ok`` with ``plen > 0``; every other frame is left to it.
* Frames are joined at offsets ``== 2 (mod 4)``, so every L3 and L4 header (14 or 18 bytes
  in) and every payload starts on a 4-byte word: one gather per header shape reads the
  needed header words of every frame as rows (a row per word, a column per frame), shifts
  and masks pick the fields, two templates check them, and one small integer matrix
  product turns them into the table's derived fields; all checksums
  are sums of little-endian 32-bit words (RFC 1071 §2: ``x * 2**16 == x (mod 0xFFFF)``,
  and byte order only multiplies a sum by 256, which is invertible mod 0xFFFF).
* Each segment's payload sum is kept (big-endian, mod 0xFFFF), so a coalesced unit's TCP
  checksum needs no second pass over its payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.receive import Frame

IntArray = npt.NDArray[np.int64]

_TS_NOP_NOP = 0x0101080A
_MOD = 0xFFFF
_M32 = 0xFFFFFFFF
_WORDS = 24
"""32-bit words read at most per frame: frame bytes -2 .. 94 (VLAN + IPv6 + TCP timestamps)."""
_ARANGE = np.arange(4096, dtype=np.int64)
_PADS = (b"\0" * 4, b"\0" * 3, b"\0" * 2, b"\0" * 5)
"""``_PADS[len & 3]`` rounds a frame plus two bytes up to a multiple of 4 bytes: the next
frame starts at ``2 (mod 4)`` and the rest of a frame's last word is zeros."""
_TAIL = bytes(4 * _WORDS + 8)

FIELDS = (
    "index", "seq", "tcpw", "ack", "tsval", "tsecr", "match", "size", "plen", "psum", "ttl",
    "pend", "shape",
)  # fmt: skip
"""Rows of :attr:`FastSegments.table`."""
(
    F_INDEX, F_SEQ, F_TCPW, F_ACK, F_TSVAL, F_TSECR, F_MATCH, F_SIZE, F_PLEN, F_PSUM, F_TTL,
    F_PEND, F_SHAPE,
) = range(len(FIELDS))  # fmt: skip

# Columns of the per-shape header matrix ``g`` (big-endian words, then shifted and masked):
# 0-8 whole words (0-2 IP header, 3 the first TCP option word, 4 seq, 5 offset / flags /
# window, 6 ack, 7 tsval, 8 tsecr), 9-14 fields (IPv4: TOS, DF, data offset, ECE / CWR, TTL,
# total length; IPv6: word 0, -, data offset, ECE / CWR, hop limit, payload length).
_G_SEQ, _G_TSECR, _G_FIELDS, _G_DOFF, _G_TTL = 4, 8, 9, 11, 13
_LIN = ("match", "size", "plen", "pend", "pseudo")
"""Columns of ``g[:, 9:15] @ lin + const``: the linear functions of the fields."""


@dataclass(frozen=True, slots=True)
class _Shape:
    """Constants of one header shape (column vectors where they apply to rows of ``g``)."""

    l3: int
    v4: bool
    cols: IntArray
    shift: IntArray
    mask: IntArray
    tmask: IntArray
    tvalue: IntArray
    lin: IntArray
    const: IntArray
    parts: IntArray
    chk: IntArray
    keyw: IntArray


def _shape(l3: int, v4: bool) -> _Shape:
    w3 = (l3 + 2) // 4  # the gathered words start 2 bytes before the frame
    w4 = w3 + (5 if v4 else 10)
    l4 = l3 + (20 if v4 else 40)
    # (word, shift, mask) of each row of ``g``
    ip2 = w3 + 2 if v4 else w3
    whole = [(w, 0, _M32) for w in (w3, w3 + 1, ip2, w4 + 5, w4 + 1, w4 + 3, w4 + 2, w4 + 6,
                                    w4 + 7)]  # fmt: skip
    tcp = [(w4 + 3, 28, 0xF), (w4 + 3, 16, 0xC0)]
    if v4:
        fields = [(w3, 16, 0xFF), (w3 + 1, 14, 1), *tcp, (w3 + 2, 24, 0xFF), (w3, 0, 0xFFFF)]
    else:
        fields = [(w3, 0, _M32), (w3, 0, 0), *tcp, (w3 + 1, 0, 0xFF), (w3 + 1, 16, 0xFFFF)]
    spec = np.array(whole + fields, dtype=np.int64)
    # Templates over rows 0-7, without / with the timestamp block: version / IHL 0x45,
    # no MF, no offset, protocol TCP (IPv4) or version 6, next header TCP (IPv6); data
    # offset 5 / 8, no reserved / NS bits, no FIN / SYN / RST / URG, ACK set.
    if v4:
        ip = [(0xFF000000, 0x45000000), (0x3FFF, 0), (0x00FF0000, 0x00060000)]
    else:
        ip = [(0xF0000000, 0x60000000), (0x0000FF00, 0x00000600), (0, 0)]
    templates = [
        [*ip, (0, 0), (0, 0), (0xFF370000, 0x50100000), (0, 0), (0, 0)],
        [*ip, (_M32, _TS_NOP_NOP), (0, 0), (0xFF370000, 0x80100000), (0, 0), (0, 0)],
    ]
    pairs = np.array(templates, dtype=np.int64)[:, :, :, None]
    # match = IP bits << 24 | TSval offset (24, or 0x3F without: 0x3F - 13 * (doff - 5))
    # << 16 | TCP header length << 8 | ECE / CWR
    ts_bits = [(1 << 10) - (13 << 16), 1, 0, 0]
    if v4:  # fields: TOS, DF, doff, ECN, TTL, total length
        lin = [[1 << 25, 1 << 24, *ts_bits], [0, 0, 0, 0, 0, 1], [0, 0, -4, 0, 0, 1],
               [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 256]]  # fmt: skip
        const = [(0x3F + 65) << 16, 0, -20, l3, -14 * 256]
    else:  # fields: word 0, -, doff, ECN, hop limit, payload length
        lin = [[1 << 24, 0, *ts_bits], [0, 0, 0, 0, 0, 1], [0, 0, -4, 0, 0, 1],
               [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 256]]  # fmt: skip
        const = [(1 << 62) | (0x3F + 65) << 16, 40, 0, l3 + 40, 6 * 256]
    # One reduceat per row: IPv4 header words 0-2 (IPv4), the addresses, the TCP header,
    # the payload rounded up to a word, then a gap; the checks are sums of these.
    parts = [w3, w3 + 3, w4, w4, 0] if v4 else [w3 + 2, w4, w4, 0]
    chk = [[1, 1, 0, 0, 0], [0, 1, 1, 1, 0]] if v4 else [[0, 0, 0, 0], [1, 1, 1, 0]]
    # Flow key: frame[0:l3] + addresses and ports (they end the IP header): words from
    # frame byte -2, all but the first two bytes.
    addr = l3 + (12 if v4 else 8)
    keyw = [*range((l3 + 2) // 4), *range((addr + 2) // 4, (l4 + 4 + 2) // 4)]
    assert (addr + 2) % 4 == 0 and (l3 + 2) % 4 == 0 and (l4 + 6) % 4 == 0
    return _Shape(
        l3, v4, spec[:, :1].copy(), spec[:, 1:2].copy(), spec[:, 2:].copy(),
        pairs[:, :, 0].copy(), pairs[:, :, 1].copy(), np.array(lin, dtype=np.int64),
        np.array(const, dtype=np.int64)[:, None], np.array(parts, dtype=np.int64),
        np.array(chk, dtype=np.int64), np.array(keyw, dtype=np.int64),
    )  # fmt: skip


_SHAPES = {code: _shape(l3, v4) for code, l3, v4 in (
    (1, 14, True), (2, 14, False), (5, 18, True), (6, 18, False))}  # fmt: skip
"""Shape code (1 IPv4, 2 IPv6, +4 with a VLAN tag) -> its constants."""
SHAPES = {code: (s.l3, s.l3 + (20 if s.v4 else 40), s.v4) for code, s in _SHAPES.items()}
"""Shape code -> (L3 offset, L4 offset, IPv4)."""
_ETHER = {0x0008: 1, 0xDD86: 2}
"""The EtherType as the high half of a little-endian word -> shape code."""
_HIGHMASK = np.array([0, 0xFFFFFF00, 0xFFFF0000, 0xFF000000], dtype=np.uint32)
"""``_HIGHMASK[end & 3]``: the bytes of the word at ``end & ~3`` from ``end`` on."""


@dataclass(frozen=True, slots=True)
class FastSegments:
    """The coalescible data segments of a batch, in arrival order."""

    buffer: bytes
    """The joined frames; ``pend - plen`` .. ``pend`` (the payloads) index into it."""
    table: IntArray
    """``len(FIELDS)`` rows, one column per segment (offsets ``l3`` .. ``poff`` are relative
    to the frame, ``size`` is the IP datagram length, ``psum`` the payload's little-endian
    32-bit word sum (a multiple of its 16-bit word sum, mod 0xFFFF), ``tsval`` / ``tsecr``
    -1 without timestamps)."""
    keys: list[bytes]
    """The flow key of each segment (L2 header, addresses, ports; as ``rsc._key``)."""


def _scan_shape(
    code: int, rows: IntArray | None, w4: npt.NDArray[np.uint32], starts: IntArray,
    lengths: IntArray,
) -> tuple[IntArray, list[bytes]]:  # fmt: skip
    """(table, keys) of the coalescible rows among ``rows`` (None: all) of one shape."""
    s = _SHAPES[code]
    if rows is not None:
        starts, lengths = starts[rows], lengths[rows]
    n = len(starts)
    ws = starts >> 2  # the word holding frame bytes -2 .. 1
    g = w4[s.cols + ws].view(">u4").astype(np.int64)  # one row per header word / field
    g >>= s.shift
    g &= s.mask
    same = ((g[:8] & s.tmask) == s.tvalue).all(axis=1)  # per template
    ok = same[0] | same[1]
    lin = s.lin @ g[_G_FIELDS:]
    lin += s.const
    plen, rel = lin[2], lin[3]
    ok &= plen > 0
    exact = bool((rel == lengths).all())
    if not exact:
        ok &= rel <= lengths
    table = np.empty((len(FIELDS), n), dtype=np.int64)
    pend = np.add(starts, rel, out=table[F_PEND])
    # One reduceat: the parts (see ``_shape``) of each row, in words.
    bounds = ws[:, None] + s.parts
    bounds[:, -2] += g[_G_DOFF]
    ends = bounds[:, -1]
    np.add(pend, 3, out=ends)
    ends >>= 2
    np.minimum(ends, len(w4) - 1, out=ends)
    sums = np.add.reduceat(w4, bounds.ravel(), dtype=np.int64).reshape(n, len(s.parts)).T
    body = sums[-2]
    check = s.chk @ sums
    tcp = check[1]
    tcp += lin[4]
    if not exact:  # bytes after the datagram in its last word (else zeros: see _PADS)
        tail = w4[ends - 1] & _HIGHMASK[pend & 3]
        body -= tail
        tcp -= tail
    check %= _MOD
    ok &= (check[0] | tcp) == 0
    table[F_INDEX] = rows if rows is not None else _ARANGE[:n] if n <= len(_ARANGE) else range(n)
    table[F_SEQ : F_TSECR + 1] = g[_G_SEQ : _G_TSECR + 1]
    ts = same[1]
    if not ts.all():
        table[F_TSVAL : F_TSECR + 1, ~ts] = -1
    table[F_MATCH : F_PLEN + 1] = lin[:3]
    table[F_PSUM] = body
    table[F_TTL] = g[_G_TTL]
    table[F_SHAPE] = code
    if not ok.all():
        keep = np.flatnonzero(ok)
        table = table[:, keep]
        ws = ws[keep]
    key = w4[ws[:, None] + s.keyw].view(np.uint8)
    step = key.shape[1] - 2
    blob = key[:, 2:].tobytes()
    return table, [blob[i : i + step] for i in range(0, len(blob), step)]


def scan(frames: Sequence[Frame]) -> FastSegments:
    """The coalescible data segments among ``frames`` (see the module docstring)."""
    lengths_list = list(map(len, frames))
    parts: list[Frame] = [b"\0\0"] * (2 * len(frames) + 2)
    parts[1:-1:2] = frames
    parts[2:-1:2] = [_PADS[size & 3] for size in lengths_list]
    parts[-1] = _TAIL
    buffer = b"".join(parts)
    lengths = np.array(lengths_list, dtype=np.int64)
    padded = lengths + 5
    padded &= ~3
    starts = np.add.accumulate(padded)
    starts -= padded
    starts += 2
    w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
    ether = w4[(starts >> 2) + 3] >> 16  # frame bytes 12, 13 (little-endian)
    code = _ETHER.get(int(ether[0]), 0)
    if code and bool((ether == ether[0]).all()):
        table, keys = _scan_shape(code, None, w4, starts, lengths)
        return FastSegments(buffer, table, keys)
    inner = w4[(starts >> 2) + 4] >> 16
    tagged = (ether == 0x0081) | (ether == 0xA888) | (ether == 0x0091)
    ether = np.where(tagged, inner, ether)
    codes = (ether == 0x0008) * 1 + (ether == 0xDD86) * 2 + tagged * 4
    tables: list[IntArray] = []
    keys = []
    for code in _SHAPES:
        rows = np.flatnonzero(codes == code)
        if len(rows):
            part, part_keys = _scan_shape(code, rows, w4, starts, lengths)
            tables.append(part)
            keys += part_keys
    if not tables:
        return FastSegments(buffer, np.empty((len(FIELDS), 0), dtype=np.int64), [])
    table = np.concatenate(tables, axis=1)
    order = np.argsort(table[F_INDEX], kind="stable")
    order_list: list[int] = order.tolist()
    return FastSegments(buffer, table[:, order], [keys[i] for i in order_list])


__all__ = ["FIELDS", "SHAPES", "FastSegments", "scan"]
