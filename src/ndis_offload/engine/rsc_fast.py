"""The vectorized scan behind :meth:`RscCoalescer.push_batch`.

One pass over a receive DPC's frames picks out the segments the coalescer can take without
its per-frame parser, and decodes them in a handful of numpy operations:

* Ethernet II, untagged or with one 802.1Q / 802.1ad tag; IPv4 with a 20-byte header that is
  not a fragment, or IPv6 directly followed by TCP; TCP without options or with the usual
  ``NOP, NOP, Timestamps`` block; ACK set and no flag other than ACK / PSH / ECE / CWR; some
  payload; correct IPv4 header and TCP checksums. These are exactly the data segments
  ``_scalar_seg`` reports as ``ok`` with ``plen > 0``; every other frame is left to it.
* Frames are joined at offsets ``== 2 (mod 4)``, so every L3 and L4 header (14 or 18 bytes
  in) and every payload starts on a 4-byte word: the first 96 bytes of each frame are one
  gather of 24 words, read through a structured dtype per header shape, and all checksums
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
U64Array = npt.NDArray[np.uint64]

_TS_NOP_NOP = 0x0101080A
_MOD = 0xFFFF
_WORDS = 24
"""32-bit words gathered per frame: frame bytes -2 .. 94 (VLAN + IPv6 + TCP timestamps)."""
_K = np.arange(_WORDS, dtype=np.int64)
_ARANGE = np.arange(4096, dtype=np.int64)
_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")
"""``_PADS[len & 3]`` rounds a frame up to a multiple of 4 bytes."""
_TAIL = bytes(4 * _WORDS + 8)

FIELDS = (
    "index", "seq", "tcpw", "ack", "tsval", "tsecr", "plen", "psum", "match", "ttl", "size",
    "pend", "shape",
)  # fmt: skip
"""Rows of :attr:`FastSegments.table`."""
(
    F_INDEX, F_SEQ, F_TCPW, F_ACK, F_TSVAL, F_TSECR, F_PLEN, F_PSUM, F_MATCH, F_TTL, F_SIZE,
    F_PEND, F_SHAPE,
) = range(len(FIELDS))  # fmt: skip


def _template(v4: bool) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(mask, value) over the first six gathered words of a coalescible segment."""
    if v4:  # version / IHL 0x45; no MF, no offset; protocol TCP
        ip = [(0xFF000000, 0x45000000), (0x3FFF, 0), (0x00FF0000, 0x00060000)]
    else:  # version 6; next header TCP
        ip = [(0xF0000000, 0x60000000), (0x0000FF00, 0x00000600), (0, 0)]
    # seq; no reserved / NS bits, no FIN / SYN / RST / URG, ACK set; ack
    tcp = [(0, 0), (0x0F370000, 0x00100000), (0, 0)]
    pairs = np.array(ip + tcp, dtype=np.int64)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


_SHAPES = {code: (l3, v4, *_template(v4)) for code, l3, v4 in (
    (1, 14, True), (2, 14, False), (5, 18, True), (6, 18, False))}  # fmt: skip
"""Shape code (1 IPv4, 2 IPv6, +4 with a VLAN tag) -> (L3 offset, IPv4, template)."""
SHAPES = {code: (l3, l3 + (20 if v4 else 40), v4) for code, (l3, v4, _, _) in _SHAPES.items()}
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
    to the frame, ``size`` is the IP datagram length, ``psum`` the payload's big-endian
    16-bit word sum mod 0xFFFF, ``tsval`` / ``tsecr`` -1 without timestamps)."""
    keys: list[bytes]
    """The flow key of each segment (L2 header, addresses, ports; as ``rsc._key``)."""


def _scan_shape(
    code: int, rows: IntArray | None, words: npt.NDArray[np.uint32],
    w4: npt.NDArray[np.uint32], starts: IntArray, lengths: IntArray,
) -> tuple[IntArray, list[bytes]]:  # fmt: skip
    """(table, keys) of the coalescible rows among ``rows`` (None: all) of one shape."""
    l3, v4, mask, value = _SHAPES[code]
    if rows is not None:
        words, starts, lengths = words[rows], starts[rows], lengths[rows]
    n = len(starts)
    w3 = (l3 + 2) // 4  # the gathered words start 2 bytes before the frame
    l4 = l3 + (20 if v4 else 40)
    w4_ = w3 + (5 if v4 else 10)
    cols = [w3, w3 + 1, w3 + 2, w4_ + 1, w4_ + 3, w4_ + 2, w4_ + 5, w4_ + 6, w4_ + 7]
    g = words[:, cols].view(">u4").astype(np.int64)  # big-endian header words
    ok = ((g[:, :6] & mask) == value).all(axis=1)
    doff4 = g[:, 4] >> 28
    ts = doff4 == 8
    ok &= (doff4 == 5) | (ts & (g[:, 6] == _TS_NOP_NOP))
    if v4:
        size = g[:, 0] & 0xFFFF
        tcp_len = size - 20
    else:
        tcp_len = g[:, 1] >> 16
        size = tcp_len + 40
    plen = tcp_len - (doff4 << 2)
    pend = starts + (l3 + size)
    ok &= (plen > 0) & (pend <= starts + lengths)
    # One reduceat: IPv4 header words 0-2 (IPv4), the addresses, the TCP header, the payload
    # rounded up to a word (the bytes after its end are subtracted), then a gap.
    parts = [w3, w3 + 3, w4_, w4_, 0] if v4 else [w3 + 2, w4_, w4_, 0]
    bounds = (starts >> 2)[:, None] + np.array(parts, dtype=np.int64)
    bounds[:, -2] += doff4
    np.minimum((pend + 3) >> 2, len(w4) - 1, out=bounds[:, -1])
    sums = np.add.reduceat(w4, bounds.ravel(), dtype=np.uint64).reshape(n, len(parts))
    body = sums[:, -2]
    body -= w4[bounds[:, -1] - 1] & _HIGHMASK[pend & 3]
    pseudo = sums[:, -4] + ((6 + tcp_len) << 8).astype(np.uint64)
    ok &= (sums[:, -3] + body + pseudo) % _MOD == 0
    if v4:
        ok &= (sums[:, 0] + sums[:, 1]) % _MOD == 0
        ip_match = ((g[:, 0] >> 16) & 0xFF) << 1 | (g[:, 1] >> 14) & 1
        ttl = g[:, 2] >> 24
    else:
        ip_match = (1 << 38) | g[:, 0]
        ttl = g[:, 1] & 0xFF
    table = np.empty((len(FIELDS), n), dtype=np.int64)
    table[F_INDEX] = rows if rows is not None else _ARANGE[:n] if n <= len(_ARANGE) else range(n)
    table[F_SEQ : F_ACK + 1] = g[:, 3:6].T
    table[F_TSVAL : F_TSECR + 1] = np.where(ts, g[:, 7:9].T, -1)
    table[F_PLEN] = plen
    table[F_MATCH] = ip_match << 24 | (doff4 << 10) | ((g[:, 4] >> 16) & 0xC0)
    table[F_MATCH] |= np.where(ts, 24 << 16, 0x3F << 16)
    table[F_TTL] = ttl
    table[F_SIZE] = size
    table[F_PEND] = pend
    table[F_PSUM] = body
    table[F_SHAPE] = code
    if ok.all():
        kept = words.view(np.uint8)
    else:
        keep = np.flatnonzero(ok)
        table = table[:, keep]
        kept = words[keep].view(np.uint8)
    # Flow keys: frame[0:l3] + addresses and ports (contiguous: they end the IP header).
    key = np.concatenate((kept[:, 2 : l3 + 2], kept[:, l3 + (14 if v4 else 10) : l4 + 6]), 1)
    step = key.shape[1]
    blob = key.tobytes()
    return table, [blob[i : i + step] for i in range(0, len(blob), step)]


def scan(frames: Sequence[Frame]) -> FastSegments:
    """The coalescible data segments among ``frames`` (see the module docstring)."""
    lengths_list = [len(f) for f in frames]
    parts: list[Frame] = [b"\0\0"] * (2 * len(frames) + 2)
    parts[1:-1:2] = frames
    parts[2:-1:2] = [_PADS[size & 3] for size in lengths_list]
    parts[-1] = _TAIL
    buffer = b"".join(parts)
    lengths = np.array(lengths_list, dtype=np.int64)
    padded = (lengths + 3) & ~3
    starts = np.cumsum(padded)
    starts -= padded - 2
    w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
    words = w4[(starts >> 2)[:, None] + _K]
    ether = words[:, 3] >> 16  # frame bytes 12, 13 (little-endian)
    code = _ETHER.get(int(ether[0]), 0)
    if code and bool((ether == ether[0]).all()):
        table, keys = _scan_shape(code, None, words, w4, starts, lengths)
        return FastSegments(buffer, table, keys)
    inner = words[:, 4] >> 16
    tagged = (ether == 0x0081) | (ether == 0xA888) | (ether == 0x0091)
    ether = np.where(tagged, inner, ether)
    codes = (ether == 0x0008) * 1 + (ether == 0xDD86) * 2 + tagged * 4
    tables: list[IntArray] = []
    keys = []
    for code in _SHAPES:
        rows = np.flatnonzero(codes == code)
        if len(rows):
            part, part_keys = _scan_shape(code, rows, words, w4, starts, lengths)
            tables.append(part)
            keys += part_keys
    if not tables:
        return FastSegments(buffer, np.empty((len(FIELDS), 0), dtype=np.int64), [])
    table = np.concatenate(tables, axis=1)
    order = np.argsort(table[F_INDEX], kind="stable")
    order_list: list[int] = order.tolist()
    return FastSegments(buffer, table[:, order], [keys[i] for i in order_list])


__all__ = ["FIELDS", "SHAPES", "FastSegments", "scan"]
