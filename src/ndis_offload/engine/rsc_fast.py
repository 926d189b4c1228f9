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
from itertools import compress
from operator import and_
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.rsc_rules import (
    FORBIDDEN_FLAGS,
    M32,
    NO_TS_OFFSET,
    TS_NOP_NOP,
    ip_match,
    match_word,
)
from ndis_offload.packet.locate import Layer, locate
from ndis_offload.packet.proto import ETH_HEADER_LEN, TCP_ACK, TCP_PSH, Frame

IntArray = npt.NDArray[np.int64]

_MOD = np.int64(0xFFFF)
_WORDS = 24
"""32-bit words read at most per frame: frame bytes -2 .. 94 (VLAN + IPv6 + TCP timestamps)."""
_ARANGE = np.arange(4096, dtype=np.int64)
_PADS = (b"\0" * 4, b"\0" * 3, b"\0" * 2, b"\0" * 5)
"""``_PADS[len & 3]`` rounds a frame plus two bytes up to a multiple of 4 bytes: the next
frame starts at ``2 (mod 4)`` and the rest of a frame's last word is zeros."""
_TAIL = bytes(4 * _WORDS + 8)
_HASH = np.array(
    [(0x9E3779B97F4A7C15 * (i + 1)) & ((1 << 64) - 1) | 1 for i in range(32)], dtype=np.uint64
)
"""Odd multipliers of the flow-key hash, one per key word (multiples of the 64-bit golden
ratio; a fixed table, no randomness)."""

FIELDS = (
    "index", "match", "nxt", "ack", "tsval", "tsecr", "win", "flags", "ttl", "shape", "size",
    "plen", "psum", "pend",
)  # fmt: skip
"""Rows of :attr:`FastSegments.table`: ``match`` .. ``tsecr`` are a unit's fields after the
segment (``rsc_rules.UNIT_FIELDS``; ``nxt`` is ``SEG.SEQ + SEG.LEN``)."""
(
    F_INDEX, F_MATCH, F_NXT, F_ACK, F_TSVAL, F_TSECR, F_WIN, F_FLAGS, F_TTL, F_SHAPE, F_SIZE,
    F_PLEN, F_PSUM, F_PEND,
) = range(len(FIELDS))  # fmt: skip

# Rows of the per-shape header matrix ``g`` (big-endian words; the general path then shifts
# and masks them): 0-6 the table's F_NXT .. F_TTL (SEQ in place of NXT); 7-11 whole words
# checked by the templates (0-2 IP header, 3 the first TCP option word, 4 data offset /
# flags / window); 12-16 the fields of the linear part (IPv4: TOS, DF, data offset, ECE /
# CWR, total length; IPv6: word 0, -, data offset, ECE / CWR, payload length); 17 the
# EtherType and one row per VLAN tag (its TPID); then (from ``_Shape.key_row``) the flow-key
# words. In a batch of one layout rows 7 .. key_row - 1 are equal in every frame under
# ``_Shape.umask``; its path gathers all rows but 12-16 (``_Shape.lay_cols``: they repeat
# words of rows 7-11 with fewer bits).
_G_TEMPLATE, _G_FIELDS, _G_DOFF, _G_L2 = 7, 12, 14, 17
_LAY_SKIP = _G_L2 - _G_FIELDS
_LIN = ("match", "size", "plen", "pend", "pseudo")
"""Rows of ``lin @ g[12:17] + const``: the linear functions of the fields."""


@dataclass(frozen=True, slots=True)
class _Shape:
    """Constants of one header shape (column vectors where they apply to rows of ``g``)."""

    code: int
    l3: int
    l4: int
    v4: bool
    key_row: int
    cols: IntArray
    lay_cols: IntArray
    """``cols`` but rows 12-16: the rows of ``g`` in the one-layout path."""
    shift: IntArray
    mask: IntArray
    tmask: IntArray
    tvalue: IntArray
    umask: tuple[tuple[int, ...], tuple[int, ...]]
    """Per template: the bits of rows 7-11 and 17 to ``key_row - 1`` every frame of one
    layout shares, the IP length field included (it differs as the frame lengths do)."""
    len_row: int
    """The row of ``g[7:]`` holding the IP length field (IPv4 total length: the low 16 bits
    of row 0; IPv6 payload length: the high 16 bits of row 1)."""
    tmasks: tuple[tuple[int, ...], tuple[int, ...]]
    tvalues: tuple[tuple[int, ...], tuple[int, ...]]
    """``tmask`` / ``tvalue`` of each template as tuples of ints, for one frame."""
    lin: IntArray
    const: IntArray
    parts: IntArray
    parts_ts: IntArray
    """``parts`` with the TCP header's end for data offset 5 / 8."""
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
    table = [(w4 + 1, 0, M32), (w4 + 2, 0, M32), (w4 + 6, 0, M32), (w4 + 7, 0, M32),
             (w4 + 3, 0, 0xFFFF), (w4 + 3, 16, 0xFF),
             (w3 + 2, 24, 0xFF) if v4 else (w3 + 1, 0, 0xFF)]  # fmt: skip
    whole = [(w, 0, M32) for w in (w3, w3 + 1, ip2, w4 + 5, w4 + 3)]
    tcp = [(w4 + 3, 28, 0xF), (w4 + 3, 16, 0xC0)]
    if v4:
        fields = [(w3, 16, 0xFF), (w3 + 1, 14, 1), *tcp, (w3, 0, 0xFFFF)]
    else:
        fields = [(w3, 0, M32), (w3, 0, 0), *tcp, (w3 + 1, 16, 0xFFFF)]
    tags = (l3 - ETH_HEADER_LEN) // 4
    l2 = [(w3 - 1 - tag, 0, 0xFFFF) for tag in range(tags + 1)]  # EtherType, TPIDs
    # Flow key: frame[0:l3] + addresses and ports (they end the IP header): words from
    # frame byte -2, all but the first two bytes.
    addr = l3 + (12 if v4 else 8)
    keyw = [*range((l3 + 2) // 4), *range((addr + 2) // 4, (l4 + 4 + 2) // 4)]
    assert (addr + 2) % 4 == 0 and (l3 + 2) % 4 == 0 and (l4 + 6) % 4 == 0
    key = [(w, 0, M32) for w in keyw]
    spec = np.array(table + whole + fields + l2 + key, dtype=np.int64)
    # Templates over rows 7-11, without / with the timestamp block: version / IHL 0x45,
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
    # Shared by a batch of one layout: IPv4 version to TOS, flags / fragment, protocol; IPv6
    # word 0 and next header; the option word (timestamps); the data offset and the flags
    # but PSH; the EtherType and TPID.
    shared_ip = [0xFFFF0000, 0xFFFF, 0x00FF0000] if v4 else [M32, 0x0000FF00, M32]
    tcp_shared = (0xFF00 | (0xFF & ~TCP_PSH)) << 16
    raw_fields = [m << sh for _, sh, m in fields[:4]]  # the raw bits of the fields, not the length
    length_bits = [0xFFFF, 0] if v4 else [0, 0xFFFF0000]
    shared_ip = [m | bits for m, bits in zip(shared_ip, [*length_bits, 0], strict=True)]
    umask = tuple((*shared_ip, option, tcp_shared, *[0xFFFF] * len(l2)) for option in (0, M32))
    for (word, _, _), raw in zip(fields[:4], raw_fields, strict=True):
        # Rows 12-15 (not gathered in the one-layout path) repeat shared bits of rows 7-11.
        rows_7_11 = zip(whole, umask[0][:5], strict=True)
        assert any(w == word and raw & ~m == 0 for (w, _, _), m in rows_7_11)
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
    code = len(_CODES)
    _CODES.append((l3, v4))
    return _Shape(
        code, l3, l4, v4, _G_L2 + len(l2), spec[:, :1].copy(),
        np.delete(spec[:, :1], np.s_[_G_FIELDS:_G_L2], 0), spec[:, 1:2].copy(),
        spec[:, 2:].copy(),
        pairs[:, :, 0].copy(), pairs[:, :, 1].copy(),
        (umask[0], umask[1]), 0 if v4 else 1,
        (tuple(m for m, _ in templates[0]), tuple(m for m, _ in templates[1])),
        (tuple(v for _, v in templates[0]), tuple(v for _, v in templates[1])),
        np.array(lin, dtype=np.int64),
        np.array(const, dtype=np.int64)[:, None], np.array(parts, dtype=np.int64),
        np.array([[*parts[:-2], w4 + doff, 0] for doff in (5, 8)], dtype=np.int64)[:, None, :],
        np.array(chk, dtype=np.int64), np.array(keyw, dtype=np.int64), _HASH[: len(keyw)],
    )  # fmt: skip


_CODES: list[tuple[int, bool]] = []
"""Shape code (the ``shape`` row of the table) -> (L3 offset, IPv4)."""


def shape_of(code: int) -> tuple[int, int, bool]:
    """(L3 offset, L4 offset, IPv4) of a shape code."""
    l3, v4 = _CODES[code]
    return l3, l3 + (20 if v4 else 40), v4


_U32, _BE32 = np.dtype("<u4"), np.dtype(">u4")
_HIGHMASK = np.array([0, 0xFFFFFF00, 0xFFFF0000, 0xFF000000], dtype=np.uint32)
"""``_HIGHMASK[end & 3]``: the bytes of the word at ``end & ~3`` from ``end`` on."""
_EMPTY = np.empty((len(FIELDS), 0), dtype=np.int64)


class FastSegments(NamedTuple):
    """The coalescible data segments of a batch, grouped by flow."""

    buffer: bytes
    """The joined frames; ``pend - plen`` .. ``pend`` (the payloads) index into it."""
    table: IntArray
    """``len(FIELDS)`` rows, one column per segment, sorted by flow and in arrival order
    within a flow (offsets are relative to the frame, ``size`` is the IP datagram length,
    ``psum`` the payload's little-endian 32-bit word sum (a multiple of its 16-bit word
    sum, mod 0xFFFF), ``tsval`` / ``tsecr`` -1 without timestamps)."""
    heads: list[int]
    """Flow ``f`` holds columns ``heads[f]`` .. ``heads[f + 1]`` (shared with later batches:
    not to be changed)."""
    keys: list[bytes]
    """The flow key of each flow (L2 header, addresses, ports; as ``rsc._key``); shared
    with later batches of the same flows: not to be changed."""
    one_match: bool = False
    """Every segment has one ``match`` word (a batch of one layout)."""
    stride: int = 0
    """When not 0: the columns are the frames of one layout in arrival order (one flow);
    above 0, they are ``stride`` bytes apart in :attr:`buffer` and all but the last have
    the first one's payload length; -1, frames of one payload length are evenly spaced
    (their pads are equal)."""
    odd: int = -1
    """1 when some payload length may be odd, 0 when none is, -1 when not known."""


def _flow_key(w4: npt.NDArray[np.uint32], w: int, s: _Shape) -> bytes:
    """The flow key of the segment whose frame starts at word ``w`` (as ``rsc._key``)."""
    return w4[s.keyw + w].tobytes()[2:]


def _group(
    key: IntArray, ws: IntArray, w4: npt.NDArray[np.uint32], s: _Shape,
    varies: list[bool] | None = None,
) -> tuple[IntArray | None, list[int], list[bytes]]:  # fmt: skip
    """(column order sorted by flow or None if unchanged, flow heads, flow keys) of the
    segments whose key words are the columns of ``key`` and whose frames start at words
    ``ws`` (``varies``: which key words differ from the first segment's, when known). When
    at most two key words vary (ports; an address) they are the sort key;
    otherwise a hash of the words is, and each segment's key is compared with its
    neighbour's so that a collision never merges two flows."""
    n = key.shape[1]
    width = 4 * len(s.keyw)
    if varies is None:
        varies = np.logical_or.reduce(key != key[:, :1], axis=1).tolist()
    if True not in varies:
        return None, [0, n], [_flow_key(w4, int(ws[0]), s)]
    words = list(compress(range(len(varies)), varies))
    cached: tuple[int, int, bytes, bytes] | None = None
    if len(words) <= 2:
        sort_key = key[words[0]] if len(words) == 1 else key[words[0]] << 32 | key[words[1]]
        # The other key words are the first segment's, so these name every segment's key:
        # the grouping of a recurring mix of flows is made once.
        cached = (words[0], words[-1], sort_key.tobytes(), key[:, 0].tobytes())
        found = _GROUPS.get(cached)
        if found is not None:
            return found
    new = np.empty(n, dtype=np.bool_)
    new[0] = True
    if len(words) <= 2:
        order = sort_key.argsort(kind="stable")
        ordered = sort_key[order]
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    else:
        hashes = s.hash @ key.view(np.uint64)
        order = hashes.argsort(kind="stable")
        ordered_keys = key[:, order]
        np.logical_or.reduce(ordered_keys[:, 1:] != ordered_keys[:, :-1], out=new[1:])
        ordered_hashes = hashes[order]
        if (new[1:] & (ordered_hashes[1:] == ordered_hashes[:-1])).any():
            # Two keys with one hash: group by the key bytes.
            blob = w4[ws[:, None] + s.keyw].tobytes()
            ids: dict[bytes, int] = {}
            fid = [ids.setdefault(blob[i + 2 : i + width], len(ids))
                   for i in range(0, n * width, width)]  # fmt: skip
            fids = np.array(fid, dtype=np.int64)
            order = fids.argsort(kind="stable")
            heads = np.searchsorted(fids[order], np.arange(len(ids) + 1)).tolist()
            return order, heads, list(ids)
    heads = new.nonzero()[0].tolist()
    heads.append(n)
    blob = w4[ws[order[new]][:, None] + s.keyw].tobytes()
    keys = _KEY_LISTS.get(blob)
    if keys is None:  # the flows of a batch recur in the next ones: their keys made once
        keys = [blob[i + 2 : i + width] for i in range(0, len(blob), width)]
        if len(_KEY_LISTS) >= _LAYOUTS_LIMIT:
            _KEY_LISTS.clear()
        _KEY_LISTS[blob] = keys
    if cached is not None:
        if len(_GROUPS) >= _LAYOUTS_LIMIT:
            _GROUPS.clear()
        order.flags.writeable = False
        _GROUPS[cached] = order, heads, keys
    return order, heads, keys


_KEY_LISTS: dict[bytes, list[bytes]] = {}
"""Flow keys (read-only lists) by the key words of a batch's flows, in sorted order."""
_GROUPS: dict[tuple[int, int, bytes, bytes], tuple[IntArray, list[int], list[bytes]]] = {}
""":func:`_group`'s (read-only) answers by the key words that vary (at most two), their
values in every segment and the first segment's key words."""


def _gather(s: _Shape, w4: npt.NDArray[np.uint32], ws: IntArray) -> IntArray:
    """The header matrix ``g`` (see ``_G_*``) of the frames starting at words ``ws``."""
    g: IntArray = w4.take(s.cols + ws).view(">u4").astype(np.int64)  # a row per word / field
    g >>= s.shift
    g &= s.mask
    return g


def _scan_shape(
    s: _Shape, rows: IntArray | None, w4: npt.NDArray[np.uint32], starts: IntArray,
    lengths: IntArray,
) -> tuple[IntArray, list[int], list[bytes]]:  # fmt: skip
    """(table, heads, keys) of the coalescible rows among ``rows`` (None: all) of a shape:
    every frame checked on its own."""
    if rows is not None:
        starts, lengths = starts[rows], lengths[rows]
    n = len(starts)
    ws = starts >> 2  # the word holding frame bytes -2 .. 1
    g = _gather(s, w4, ws)
    same = np.logical_and.reduce((g[_G_TEMPLATE:_G_FIELDS] & s.tmask) == s.tvalue, axis=1)
    ok = same[0] | same[1]
    lin = s.lin @ g[_G_FIELDS:_G_L2]
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
    table[F_NXT : F_TTL + 1] = g[:_G_TEMPLATE]
    nxt = table[F_NXT]
    nxt += plen
    nxt &= M32
    ts = same[1]
    if not ts.all():
        table[F_TSVAL : F_TSECR + 1, ~ts] = -1
    table[F_MATCH] = lin[0]
    table[F_SIZE : F_PLEN + 1] = lin[1:3]
    table[F_PSUM] = body
    table[F_SHAPE] = s.code
    if not ok.all():
        keep = np.flatnonzero(ok)
        if not len(keep):
            return _EMPTY, [0], []
        table = table[:, keep]
        ws = ws[keep]
        g = g[:, keep]
    order, heads, keys = _group(g[s.key_row :], ws, w4, s)
    if order is not None:
        table = table.take(order, 1)
    return table, heads, keys


@dataclass(frozen=True, slots=True)
class _Layout:
    """Per (shape, timestamps, batch pattern: the frames' lengths): gather indices, reduceat
    bounds, the pseudo-header length terms and the table's constant rows."""

    ws: IntArray
    idx: IntArray
    bounds: IntArray
    pseudo: IntArray
    """Per check (IPv4 header, TCP) and frame: the checked sum's constant term."""
    table: IntArray
    datagram: int
    """The first frame's IPv4 total length / IPv6 payload length."""
    shortest: int
    """The shortest frame's length, 0 when a datagram is too long for its length field."""
    pairs: IntArray
    """``reduceat`` bounds over the XOR of neighbouring columns of the flattened rows 7..
    of ``g``: even results are the rows (columns 0..n-2), odd ones a row's last column
    against the next row's first (ignored)."""
    corr: IntArray | None
    """How each frame's length field differs (XOR) from the previous frame's, placed as
    the XOR of neighbouring columns (``pairs``); None when it does not."""
    shift: IntArray
    mask: IntArray
    """``_Shape.shift`` / ``mask`` of ``g``'s rows 0-6, one column per frame."""
    tables: dict[tuple[int, int, int], IntArray]
    """``table`` with the ``match`` row filled (read-only), by the first frame's words the
    match is made of (IP word 0, the low half of IP word 1, TCP data offset and flags)."""


_LAYOUTS_LIMIT = 64
_MATCHES_LIMIT = 8


def _per_count(s: _Shape, n: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """(``_Layout.pairs``, ``shift``, ``mask``, a table with the index and shape rows) of
    ``n`` frames of shape ``s``."""
    key = (s.code, n)
    found = _PER_COUNT.get(key)
    if found is None:
        if len(_PER_COUNT) >= _LAYOUTS_LIMIT:
            _PER_COUNT.clear()
        rows = len(s.lay_cols) - _G_TEMPLATE
        pairs = np.empty(2 * rows - 1, dtype=np.int64)
        pairs[0::2] = np.arange(rows) * n
        pairs[1::2] = pairs[0:-1:2] + n - 1
        shift = np.repeat(s.shift[:_G_TEMPLATE], n, 1)
        mask = np.repeat(s.mask[:_G_TEMPLATE], n, 1)
        blank = np.zeros((len(FIELDS), n), dtype=np.int64)
        blank[F_INDEX] = np.arange(n)
        blank[F_SHAPE] = s.code
        found = _PER_COUNT[key] = (pairs, shift, mask, blank)
    return found


_PER_COUNT: dict[tuple[int, int], tuple[IntArray, IntArray, IntArray, IntArray]] = {}


def _layout(s: _Shape, ts: int, joined: _Joining) -> _Layout:
    """The cached constants of the frames of a pattern (``joined``, from :func:`_join`)."""
    key = (s.code, ts)
    entry = joined.layouts.get(key)
    if entry is None:
        starts, lengths = joined.starts, joined.lengths
        n = len(lengths)
        ws = starts >> 2
        bounds = s.parts_ts[ts] + ws[:, None]
        bounds[:, -1] += (lengths + 5) >> 2  # the word after the datagram's last byte
        pairs, shift, mask, blank = _per_count(s, n)
        table = blank.copy()
        np.add(starts, lengths, table[F_PEND])
        size_plen = table[F_SIZE : F_PLEN + 1]  # (F_PLEN is F_SIZE + 1)
        np.subtract(lengths, [[s.l3], [s.l4 + (32 if ts else 20)]], size_plen)
        # TCP length and protocol, as big-endian words summed little-endian (x256).
        pseudo = np.zeros((2, n), dtype=np.int64)
        np.multiply(lengths - (s.l4 - 6), 256, pseudo[1])
        datagram = table[F_SIZE] if s.v4 else table[F_SIZE] - 40
        steps = datagram[1:] ^ datagram[:-1]
        corr = None
        if steps.any():
            corr = np.zeros((len(s.lay_cols) - _G_TEMPLATE, n), dtype=np.int64)
            corr[s.len_row, 1:] = steps << (0 if s.v4 else 16)
            corr = corr.ravel()[1:]
        shortest = int(lengths.min()) if datagram.max() <= 0xFFFF and n > 1 else 0
        entry = joined.layouts[key] = _Layout(
            ws, s.lay_cols + ws, bounds.ravel(), pseudo, table, int(datagram[0]), shortest, pairs,
            corr, shift, mask, {},
        )  # fmt: skip
    return entry


def _scan_layout(
    s: _Shape, frames: Sequence[Frame], w4: npt.NDArray[np.uint32], joined: _Joining
) -> tuple[IntArray, list[int], list[bytes]] | None:
    """(table, heads, keys) of a batch whose frames all have the first frame's layout (a bulk
    transfer), or None when they do not: the first frame is checked against the templates
    and every other one against it (``_Shape.umask``, lengths that fill the frame), then
    every checksum."""
    first = frames[0]
    if len(first) < s.l4 + 20:
        return None
    offset = first[s.l4 + 12] >> 4  # the TCP data offset picks the template to try
    if offset != 8 and offset != 5:
        return None
    ts = 1 if offset == 8 else 0
    tcp_end = s.l4 + (32 if ts else 20)
    u = _layout(s, ts, joined)
    if u.shortest <= tcp_end:  # every frame holds a payload (and fits its length field; n > 1)
        return None
    g = w4.take(u.idx).view(_BE32).astype(np.int64)
    # The first frame passes the template; every frame equals it under the shared bits
    # (template rows; the flow-key rows may vary: which do is the flow grouping's sort key),
    # and its IPv4 total length / IPv6 payload length ends the datagram where the frame
    # ends (the first frame's is checked; the others differ from it as their lengths do):
    # every frame equals the one before it.
    words = g[_G_TEMPLATE:_G_FIELDS, 0].tolist()
    if tuple(map(and_, words, s.tmasks[ts])) != s.tvalues[ts]:
        return None
    if (words[0] & 0xFFFF if s.v4 else words[1] >> 16) != u.datagram:
        return None
    rows = g[_G_TEMPLATE:].ravel()
    differs = rows[1:] ^ rows[:-1]
    if u.corr is not None:  # the length field differs as the frame lengths do
        differs ^= u.corr
    bits = np.bitwise_or.reduceat(differs, u.pairs).tolist()[::2]  # the bits that vary, per row
    if any(map(and_, bits, s.umask[ts])):
        return None
    keyed = bits[s.key_row - _LAY_SKIP - _G_TEMPLATE :]
    varies: list[bool] | None = None  # None: no row varies (one flow)
    if any(keyed):
        varies = [bool(b) for b in keyed]
    sums = np.add.reduceat(w4.astype(np.int64), u.bounds).reshape(len(frames), len(s.parts)).T
    check = s.chk @ sums
    check += u.pseudo
    np.remainder(check, _MOD, check)
    if np.count_nonzero(check):
        return None
    made_of = (words[0], words[1] & 0xFFFF, words[4] >> 16)
    base = u.tables.get(made_of)
    if base is None:
        ip_bits = ip_match(s.v4, words[0], words[1] & 0xFFFF)
        match = match_word(ip_bits, 24 if ts else -1, tcp_end - s.l4, words[4] >> 16)
        if len(u.tables) >= _MATCHES_LIMIT:
            u.tables.clear()
        base = u.tables[made_of] = u.table.copy()
        base[F_MATCH] = match
        base.flags.writeable = False
    table = base.copy()
    fields = table[F_NXT : F_TTL + 1]
    np.right_shift(g[:_G_TEMPLATE], u.shift, fields)
    fields[0] += base[F_PLEN]  # NXT = SEQ + LEN (mod 2**32: the mask)
    fields &= u.mask
    if not ts:
        table[F_TSVAL : F_TSECR + 1] = -1
    table[F_PSUM] = sums[-2]
    if varies is None:  # one flow, in arrival order
        key = bytes(first[: s.l3]) + bytes(first[s.l3 + (12 if s.v4 else 8) : s.l4 + 4])
        return table, [0, len(frames)], [key]  # (the key words of ``_Shape.keyw``)
    order, heads, keys = _group(g[s.key_row - _LAY_SKIP :], u.ws, w4, s, varies)
    if order is not None:
        table = table.take(order, 1)
    return table, heads, keys


@dataclass(frozen=True, slots=True)
class _Joining:
    """How the frames of one pattern (:func:`_join`) are joined, where they land, and the
    constants of their header layouts (:func:`_layout`)."""

    pattern: tuple[int, ...]
    starts: IntArray
    lengths: IntArray
    odd: int
    sep: bytes | None
    """The pad after every frame when all are equal (the frames are joined with it as the
    separator, after ``head``), else None."""
    head: bytes
    pieces: list[Frame]
    """The joining pieces but the frames (one pad per frame), when ``sep`` is None."""
    stride: int
    """``starts[1] - starts[0]`` (0 for one frame)."""
    layouts: dict[tuple[int, int], _Layout]
    """By (shape code, timestamps)."""


_PATTERNS: dict[tuple[int, ...], _Joining] = {}
"""How batches are joined, by pattern (:func:`_join`): read-only."""


def _joining(pattern: tuple[int, ...], lengths_list: list[int]) -> _Joining:
    """The starts, lengths and pieces of frames of ``lengths_list`` joined at ``2 (mod 4)``."""
    pads = {size & 3 for size in lengths_list}
    sep = _PADS[pads.pop()] if len(pads) == 1 else None
    offset = 6 if sep is not None and len(sep) != 2 else 2  # where the first frame starts
    head = bytes(offset - len(sep)) if sep is not None else b""
    pieces: list[Frame] = []
    if sep is None:
        pieces = [b"\0\0"] * (2 * len(lengths_list) + 2)
        pieces[2:-1:2] = [_PADS[size & 3] for size in lengths_list]
        pieces[-1] = _TAIL
    lengths = np.array(lengths_list, dtype=np.int64)
    starts = np.empty(len(lengths), dtype=np.int64)
    starts[0] = 0
    np.cumsum(((lengths[:-1] + 5) >> 2) << 2, out=starts[1:])
    starts += offset
    starts.flags.writeable = lengths.flags.writeable = False
    odd = int(np.bitwise_or.reduce(lengths)) & 1
    stride = int(starts[1] - starts[0]) if len(starts) > 1 else 0
    return _Joining(pattern, starts, lengths, odd, sep, head, pieces, stride, {})


def _join(frames: Sequence[Frame]) -> tuple[bytes, _Joining]:
    """(buffer, joining): the frames joined at ``2 (mod 4)``, each followed by the zeros
    that make the next start there (``_PADS``); the pattern names the lengths (``(-count,
    first, last)`` when all but the last have the first one's length, else the lengths),
    and keys the joining (:class:`_Joining`: where the frames start, the cached arrays of
    the batch's layouts), so a stream of batches of recurring lengths reuses them."""
    lengths_list = list(map(len, frames))
    first = lengths_list[0]
    count = len(lengths_list)
    same = lengths_list.count(first)
    last = lengths_list[-1]
    if same == count or (same == count - 1 and last != first):
        # One length (a bulk transfer), or all but the last (a send's tail).
        pattern: tuple[int, ...] = (-count, first, last)
    else:
        pattern = tuple(lengths_list)
    entry = _PATTERNS.get(pattern)
    if entry is None:
        if len(_PATTERNS) >= _LAYOUTS_LIMIT:
            _PATTERNS.clear()
        entry = _PATTERNS[pattern] = _joining(pattern, lengths_list)
    if entry.sep is not None:
        buffer = entry.sep.join([entry.head, *frames, _TAIL])
    else:
        parts = entry.pieces.copy()
        parts[1:-1:2] = frames
        buffer = b"".join(parts)
    return buffer, entry


def _type_fields(frame: Frame, s: _Shape) -> bytes:
    """The EtherType and VLAN TPIDs of ``frame`` where shape ``s`` has them."""
    if s.l3 == ETH_HEADER_LEN:
        return bytes(frame[ETH_HEADER_LEN - 2 : ETH_HEADER_LEN])
    return b"".join(frame[at : at + 2] for at in range(s.l3 - 2, ETH_HEADER_LEN - 4, -4))


def _shape_of_frame(frame: Frame) -> _Shape | None:
    """The shape of a frame as the frame locator walks it: Ethernet, any VLAN stack, then
    IPv4 or IPv6 (None for any other link path: LLC/SNAP, MPLS, no IP, a cut header). A
    frame whose type fields equal those of a recently located frame has its shape."""
    for s, fields in _RECENT:
        if len(frame) > s.l3 and _type_fields(frame, s) == fields:
            return s
    hops = locate(frame).hops
    for position, hop in enumerate(hops):
        if hop.kind in (Layer.IPV4, Layer.IPV6):
            if position and all(h.kind in _L2_HOPS for h in hops[:position]):
                s = _shape(hop.offset, hop.kind == Layer.IPV4)
                _RECENT.insert(0, (s, _type_fields(frame, s)))
                del _RECENT[_MAX_CLASSES:]
                return s
            return None
    return None


_RECENT: list[tuple[_Shape, bytes]] = []
"""Recently located link layouts and their type fields, the latest first."""


_L2_HOPS = frozenset({Layer.ETHERNET, Layer.VLAN})
_MAX_CLASSES = 4
"""Link layouts located per batch; frames of further layouts take the per-frame path."""


def scan(frames: Sequence[Frame]) -> FastSegments:
    """The coalescible data segments among ``frames`` (see the module docstring).

    The frame locator (:func:`~ndis_offload.packet.locate.locate`) walks the first frame;
    every frame whose EtherType and VLAN TPIDs sit where that frame's do, with the same
    values, has its link layout. When that is all of them (a bulk transfer) they are
    checked against the first frame at once; otherwise each layout class is scanned frame
    by frame and the next unclassified frame located, up to ``_MAX_CLASSES`` layouts.
    """
    if not frames:
        return FastSegments(b"", _EMPTY, [0], [])
    buffer, joined = _join(frames)
    starts, lengths = joined.starts, joined.lengths
    w4 = np.frombuffer(buffer, _U32, len(buffer) >> 2)
    shape = _shape_of_frame(frames[0])
    if shape is not None and len(frames) > 1:
        found = _scan_layout(shape, frames, w4, joined)
        if found is not None:
            # Every frame is a segment of one header layout: (header lengths are even)
            # payload parities are those of the frame lengths. With one length but perhaps
            # the last, one flow keeps the frames' order.
            if len(found[1]) != 2:
                stride = 0
            else:
                stride = joined.stride if joined.pattern[0] < 0 else -1
            return FastSegments(buffer, *found, True, stride, joined.odd)
    tables: list[IntArray] = []
    heads: list[int] = [0]
    keys: list[bytes] = []
    rest = np.arange(len(frames), dtype=np.int64)
    classes = 0
    while len(rest) and classes < _MAX_CLASSES:
        first = int(rest[0])
        if first:
            shape = _shape_of_frame(frames[first])
        if shape is None:  # not a link layout the scan takes: the per-frame path
            rest = rest[1:]
        else:
            classes += 1
            # The frames whose type fields equal the located frame's: its link layout.
            at = (starts[rest] >> 2)[:, None] + shape.cols[_G_L2 : shape.key_row, 0]
            words = w4[at] >> 16
            same = np.logical_and.reduce(words == words[:1], axis=1)
            part, part_heads, part_keys = _scan_shape(shape, rest[same], w4, starts, lengths)
            if part.shape[1]:
                tables.append(part)
                heads += [heads[-1] + h for h in part_heads[1:]]
                keys += part_keys
            rest = rest[~same]
    if not tables:
        return FastSegments(buffer, _EMPTY, [0], [])
    table = tables[0] if len(tables) == 1 else np.concatenate(tables, axis=1)
    return FastSegments(buffer, table, heads, keys)


__all__ = ["FIELDS", "FastSegments", "scan", "shape_of"]
