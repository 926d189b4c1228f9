"""The vectorized scan behind :meth:`RscCoalescer.push_batch`.

One pass over a receive DPC's frames picks out the segments the coalescer can take without
its per-frame parser, decodes them in a handful of numpy operations and groups them by flow:

* Ethernet II, untagged or with one 802.1Q / 802.1ad tag; IPv4 with a 20-byte header that is
  not a fragment, or IPv6 directly followed by TCP; TCP without options or with the usual
  ``NOP, NOP, Timestamps`` block; ACK set and no flag other than ACK / PSH / ECE / CWR; some
  payload; correct IPv4 header and TCP checksums. These are exactly the data segments
  ``_scalar_seg`` reports as ``ok`` with ``plen > 0`` (exceptions E2-E6 of "Exception
  conditions that terminate coalescing" are absent); every other frame is left to it.
* Frames are joined at offsets ``== 2 (mod 4)``, so every L3 and L4 header (14 or 18 bytes
  in) and every payload starts on a 4-byte word: one gather per header shape reads the
  needed header words of every frame as rows (a row per word, a column per frame), shifts
  and masks pick the fields, two templates check them, and one small integer matrix
  product turns them into the table's derived fields; all checksums are sums of
  little-endian 32-bit words (RFC 1071 §2: ``x * 2**16 == x (mod 0xFFFF)``, and byte order
  only multiplies a sum by 256, which is invertible mod 0xFFFF).
* Each segment's payload sum is kept, so a coalesced unit's TCP checksum needs no second
  pass over its payload.
* Flows: the flow-key words (L2 header, addresses, ports) of each segment are hashed by one
  matrix product, sorted, and every segment's key is compared with its group's first, so a
  hash collision never merges two flows (it falls back to grouping by the key bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.receive import Frame
from ndis_offload.engine.rsc_rules import FORBIDDEN_FLAGS, M32, NO_TS_OFFSET, TCP_ACK, TS_NOP_NOP
from ndis_offload.packet.headers import ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, VLAN_TPIDS

IntArray = npt.NDArray[np.int64]

_MOD = 0xFFFF
_WORDS = 24
"""32-bit words read at most per frame: frame bytes -2 .. 94 (VLAN + IPv6 + TCP timestamps)."""
_ARANGE = np.arange(4096, dtype=np.int64)
_PADS = (b"\0" * 4, b"\0" * 3, b"\0" * 2, b"\0" * 5)
"""``_PADS[len & 3]`` rounds a frame plus two bytes up to a multiple of 4 bytes: the next
frame starts at ``2 (mod 4)`` and the rest of a frame's last word is zeros."""
_TAIL = bytes(4 * _WORDS + 8)
_HASH = np.random.default_rng(0x45C).integers(1, 1 << 63, 32, dtype=np.uint64) | np.uint64(1)
"""Odd multipliers of the flow-key hash (one per key word)."""

FIELDS = (
    "index", "seq", "ack", "tsval", "tsecr", "win", "flags", "ttl", "match", "size", "plen",
    "psum", "pend", "shape",
)  # fmt: skip
"""Rows of :attr:`FastSegments.table`."""
(
    F_INDEX, F_SEQ, F_ACK, F_TSVAL, F_TSECR, F_WIN, F_FLAGS, F_TTL, F_MATCH, F_SIZE, F_PLEN,
    F_PSUM, F_PEND, F_SHAPE,
) = range(len(FIELDS))  # fmt: skip

# Rows of the per-shape header matrix ``g`` (big-endian words, then shifted and masked):
# 0-4 whole words checked by the templates (0-2 IP header, 3 the first TCP option word,
# 4 data offset / flags / window), 5-11 the table's F_SEQ .. F_TTL, 12-16 the fields of the
# linear part (IPv4: TOS, DF, data offset, ECE / CWR, total length; IPv6: word 0, -, data
# offset, ECE / CWR, payload length).
_G_TEMPLATE, _G_TABLE, _G_FIELDS, _G_DOFF = 5, 5, 12, 14
_LIN = ("match", "size", "plen", "pend", "pseudo")
"""Rows of ``lin @ g[12:17] + const``: the linear functions of the fields."""


@dataclass(frozen=True, slots=True)
class _Shape:
    """Constants of one header shape (column vectors where they apply to rows of ``g``)."""

    code: int
    l3: int
    l4: int
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
    hash: npt.NDArray[np.uint64]


@cache
def _shape(l3: int, v4: bool) -> _Shape:
    """The constants for frames whose IP header starts at byte ``l3`` (``l3 == 2 mod 4``)."""
    w3 = (l3 + 2) // 4  # the gathered words start 2 bytes before the frame
    w4 = w3 + (5 if v4 else 10)
    l4 = l3 + (20 if v4 else 40)
    ip2 = w3 + 2 if v4 else w3
    whole = [(w, 0, M32) for w in (w3, w3 + 1, ip2, w4 + 5, w4 + 3)]
    table = [(w4 + 1, 0, M32), (w4 + 2, 0, M32), (w4 + 6, 0, M32), (w4 + 7, 0, M32),
             (w4 + 3, 0, 0xFFFF), (w4 + 3, 16, 0xFF),
             (w3 + 2, 24, 0xFF) if v4 else (w3 + 1, 0, 0xFF)]  # fmt: skip
    tcp = [(w4 + 3, 28, 0xF), (w4 + 3, 16, 0xC0)]
    if v4:
        fields = [(w3, 16, 0xFF), (w3 + 1, 14, 1), *tcp, (w3, 0, 0xFFFF)]
    else:
        fields = [(w3, 0, M32), (w3, 0, 0), *tcp, (w3 + 1, 16, 0xFFFF)]
    spec = np.array(whole + table + fields, dtype=np.int64)
    # Templates over rows 0-4, without / with the timestamp block: version / IHL 0x45,
    # no MF, no offset, protocol TCP (IPv4) or version 6, next header TCP (IPv6); data
    # offset 5 / 8, no reserved / NS bits, no FIN / SYN / RST / URG, ACK set (E3-E6).
    if v4:
        ip = [(0xFF000000, 0x45000000), (0x3FFF, 0), (0x00FF0000, 0x00060000)]
    else:
        ip = [(0xF0000000, 0x60000000), (0x0000FF00, 0x00000600), (0, 0)]
    flags = (0xFF00 | FORBIDDEN_FLAGS | TCP_ACK) << 16
    templates = [
        [*ip, (0, 0), (flags, (0x5000 | TCP_ACK) << 16)],
        [*ip, (M32, TS_NOP_NOP), (flags, (0x8000 | TCP_ACK) << 16)],
    ]
    pairs = np.array(templates, dtype=np.int64)[:, :, :, None]
    # match = IP bits << 24 | TSval offset (24, or NO_TS_OFFSET without: 0x3F - 13 *
    # (doff - 5)) << 16 | TCP header length << 8 | ECE / CWR (rsc_rules.match_word)
    ts_bits = [(1 << 10) - (13 << 16), 1, 0]
    if v4:  # fields: TOS, DF, doff, ECN, total length
        lin = [[1 << 25, 1 << 24, *ts_bits], [0, 0, 0, 0, 1], [0, 0, -4, 0, 1],
               [0, 0, 0, 0, 1], [0, 0, 0, 0, 256]]  # fmt: skip
        const = [(NO_TS_OFFSET + 65) << 16, 0, -20, l3, -14 * 256]
    else:  # fields: word 0, -, doff, ECN, payload length
        lin = [[1 << 24, 0, *ts_bits], [0, 0, 0, 0, 1], [0, 0, -4, 0, 1],
               [0, 0, 0, 0, 1], [0, 0, 0, 0, 256]]  # fmt: skip
        const = [(1 << 62) | (NO_TS_OFFSET + 65) << 16, 40, 0, l3 + 40, 6 * 256]
    # One reduceat per row: IPv4 header words 0-2 (IPv4), the addresses, the TCP header,
    # the payload rounded up to a word, then a gap; the checks are sums of these.
    parts = [w3, w3 + 3, w4, w4, 0] if v4 else [w3 + 2, w4, w4, 0]
    chk = [[1, 1, 0, 0, 0], [0, 1, 1, 1, 0]] if v4 else [[0, 0, 0, 0], [1, 1, 1, 0]]
    # Flow key: frame[0:l3] + addresses and ports (they end the IP header): words from
    # frame byte -2, all but the first two bytes.
    addr = l3 + (12 if v4 else 8)
    keyw = [*range((l3 + 2) // 4), *range((addr + 2) // 4, (l4 + 4 + 2) // 4)]
    assert (addr + 2) % 4 == 0 and (l3 + 2) % 4 == 0 and (l4 + 6) % 4 == 0
    code = len(_CODES)
    _CODES.append((l3, v4))
    return _Shape(
        code, l3, l4, v4, spec[:, :1].copy(), spec[:, 1:2].copy(), spec[:, 2:].copy(),
        pairs[:, :, 0].copy(), pairs[:, :, 1].copy(), np.array(lin, dtype=np.int64),
        np.array(const, dtype=np.int64)[:, None], np.array(parts, dtype=np.int64),
        np.array(chk, dtype=np.int64), np.array(keyw, dtype=np.int64), _HASH[: len(keyw)],
    )  # fmt: skip


_CODES: list[tuple[int, bool]] = []
"""Shape code (the ``shape`` row of the table) -> (L3 offset, IPv4)."""


def shape_of(code: int) -> tuple[int, int, bool]:
    """(L3 offset, L4 offset, IPv4) of a shape code."""
    l3, v4 = _CODES[code]
    return l3, l3 + (20 if v4 else 40), v4


def _le_high(ethertype: int) -> int:
    """An EtherType as the high half of a little-endian 32-bit word."""
    return int.from_bytes(ethertype.to_bytes(2, "big"), "little")


_ETHER = {_le_high(ETHERTYPE_IPV4): True, _le_high(ETHERTYPE_IPV6): False}
"""The EtherType as the high half of a little-endian word -> IPv4."""
_TPIDS = np.array([_le_high(t) for t in sorted(VLAN_TPIDS)], dtype=np.uint32)
_HIGHMASK = np.array([0, 0xFFFFFF00, 0xFFFF0000, 0xFF000000], dtype=np.uint32)
"""``_HIGHMASK[end & 3]``: the bytes of the word at ``end & ~3`` from ``end`` on."""
_EMPTY = np.empty((len(FIELDS), 0), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class FastSegments:
    """The coalescible data segments of a batch, grouped by flow."""

    buffer: bytes
    """The joined frames; ``pend - plen`` .. ``pend`` (the payloads) index into it."""
    table: IntArray
    """``len(FIELDS)`` rows, one column per segment, sorted by flow and in arrival order
    within a flow (offsets are relative to the frame, ``size`` is the IP datagram length,
    ``psum`` the payload's little-endian 32-bit word sum (a multiple of its 16-bit word
    sum, mod 0xFFFF), ``tsval`` / ``tsecr`` -1 without timestamps)."""
    heads: list[int]
    """Flow ``f`` holds columns ``heads[f]`` .. ``heads[f + 1]``."""
    keys: list[bytes]
    """The flow key of each flow (L2 header, addresses, ports; as ``rsc._key``)."""


def _group(
    key: npt.NDArray[np.uint32], s: _Shape
) -> tuple[IntArray | None, list[int], list[bytes]]:
    """(column order sorted by flow or None if unchanged, flow heads, flow keys) of the key
    words ``key`` (one row per segment)."""
    n = len(key)
    width = 4 * key.shape[1]
    h = key @ s.hash
    if bool((h == h[0]).all()) and bool((key == key[0]).all()):
        return None, [0, n], [key[0].tobytes()[2:]]
    order = h.argsort(kind="stable")
    hs = h[order]
    new = np.empty(n, dtype=np.bool_)
    new[0] = True
    np.not_equal(hs[1:], hs[:-1], out=new[1:])
    first = order[new]
    group = np.cumsum(new, dtype=np.int64)
    group -= 1
    if not bool((key[order] == key[first][group]).all()):  # a collision: group by bytes
        blob = key.tobytes()
        ids: dict[bytes, int] = {}
        fid = [
            ids.setdefault(blob[i + 2 : i + width], len(ids)) for i in range(0, n * width, width)
        ]
        fids = np.array(fid, dtype=np.int64)
        order = fids.argsort(kind="stable")
        heads = np.searchsorted(fids[order], np.arange(len(ids) + 1)).tolist()
        return order, heads, list(ids)
    heads = new.nonzero()[0].tolist()
    heads.append(n)
    blob = key[first].tobytes()
    return order, heads, [blob[i + 2 : i + width] for i in range(0, len(blob), width)]


def _scan_shape(
    s: _Shape, rows: IntArray | None, w4: npt.NDArray[np.uint32], starts: IntArray,
    lengths: IntArray,
) -> tuple[IntArray, list[int], list[bytes]]:  # fmt: skip
    """(table, heads, keys) of the coalescible rows among ``rows`` (None: all) of a shape."""
    if rows is not None:
        starts, lengths = starts[rows], lengths[rows]
    n = len(starts)
    ws = starts >> 2  # the word holding frame bytes -2 .. 1
    g = w4[s.cols + ws].view(">u4").astype(np.int64)  # one row per header word / field
    g >>= s.shift
    g &= s.mask
    same = np.logical_and.reduce((g[:_G_TEMPLATE] & s.tmask) == s.tvalue, axis=1)
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
    table[F_SEQ : F_TTL + 1] = g[_G_TABLE:_G_FIELDS]
    ts = same[1]
    if not ts.all():
        table[F_TSVAL : F_TSECR + 1, ~ts] = -1
    table[F_MATCH : F_PLEN + 1] = lin[:3]
    table[F_PSUM] = body
    table[F_SHAPE] = s.code
    if not ok.all():
        keep = np.flatnonzero(ok)
        if not len(keep):
            return _EMPTY, [0], []
        table = table[:, keep]
        ws = ws[keep]
    order, heads, keys = _group(w4[ws[:, None] + s.keyw], s)
    if order is not None:
        table = table[:, order]
    return table, heads, keys


def _join(frames: Sequence[Frame]) -> tuple[bytes, IntArray, IntArray]:
    """(buffer, frame starts, frame lengths): the frames joined at ``2 (mod 4)``."""
    lengths_list = list(map(len, frames))
    first = lengths_list[0]
    if lengths_list.count(first) == len(lengths_list):
        pad = _PADS[first & 3]
        buffer = b"".join((b"\0\0", pad.join(frames), pad, _TAIL))
        stride = first + len(pad)
        count = len(lengths_list)
        starts = _ARANGE[:count] * stride if count <= len(_ARANGE) else np.arange(count) * stride
        starts += 2
        return buffer, starts, np.full(count, first, dtype=np.int64)
    parts: list[Frame] = [b"\0\0"] * (2 * len(frames) + 2)
    parts[1:-1:2] = frames
    parts[2:-1:2] = [_PADS[size & 3] for size in lengths_list]
    parts[-1] = _TAIL
    lengths = np.array(lengths_list, dtype=np.int64)
    padded = lengths + 5
    padded &= ~3
    starts = np.add.accumulate(padded)
    starts -= padded
    starts += 2
    return b"".join(parts), starts, lengths


def scan(frames: Sequence[Frame]) -> FastSegments:
    """The coalescible data segments among ``frames`` (see the module docstring)."""
    if not frames:
        return FastSegments(b"", _EMPTY, [0], [])
    buffer, starts, lengths = _join(frames)
    w4 = np.frombuffer(buffer, dtype="<u4", count=len(buffer) // 4)
    ether = w4[(starts >> 2) + 3] >> 16  # frame bytes 12, 13 (little-endian)
    v4 = _ETHER.get(int(ether[0]))
    if v4 is not None and bool((ether == ether[0]).all()):
        return FastSegments(buffer, *_scan_shape(_shape(ETH_HEADER_LEN, v4), None, w4, starts,
                                                 lengths))  # fmt: skip
    inner = w4[(starts >> 2) + 4] >> 16
    tagged = np.isin(ether, _TPIDS)
    ether = np.where(tagged, inner, ether)
    tables: list[IntArray] = []
    heads: list[int] = [0]
    keys: list[bytes] = []
    for ethertype, is_v4 in _ETHER.items():
        for tags in (0, 1):
            rows = np.flatnonzero((ether == ethertype) & (tagged == bool(tags)))
            if not len(rows):
                continue
            part, part_heads, part_keys = _scan_shape(
                _shape(ETH_HEADER_LEN + 4 * tags, is_v4), rows, w4, starts, lengths
            )
            if part.shape[1]:
                tables.append(part)
                heads += [heads[-1] + h for h in part_heads[1:]]
                keys += part_keys
    if not tables:
        return FastSegments(buffer, _EMPTY, [0], [])
    table = tables[0] if len(tables) == 1 else np.concatenate(tables, axis=1)
    return FastSegments(buffer, table, heads, keys)


__all__ = ["FIELDS", "FastSegments", "scan", "shape_of"]
