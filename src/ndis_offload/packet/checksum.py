"""RFC 1071 internet checksum: single buffers, pseudo-headers, RFC 1624 updates, numpy batches.

Sums are computed on little-endian machine words and byte-swapped at the end: the ones'
complement sum is byte-order independent (RFC 1071 §2(B)), so this equals summing the
big-endian 16-bit words, without a byte-swapping pass over the data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import PacketError
from ndis_offload.packet.proto import Frame, byte_view

Buffer = Frame
"""Anything exposing contiguous bytes."""

_M32 = 0xFFFFFFFF
_U64 = np.uint64
_LOWMASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=_U64)
"""``_LOWMASK[k]`` keeps the low ``k`` bytes of a little-endian 64-bit word."""


def fold(value: int) -> int:
    """Fold a non-negative integer to 16 bits with end-around carry (0 stays 0)."""
    while value >> 16:
        value = (value & 0xFFFF) + (value >> 16)
    return value


_LE32 = np.dtype("<u4")
_REDUCE = np.add.reduce
_FROMBUFFER = np.frombuffer
_SMALL = 640
"""Up to this many bytes, one ``int.from_bytes`` and one ``%`` beat a numpy reduction
(about 0.12 us for 20 bytes and 0.5 us for 256, against 1.3 us and more)."""


def _le_sum(data: Buffer) -> int:
    """An integer congruent (mod 0xFFFF) to the little-endian 16-bit word sum; 0 iff all zero.

    Small buffers: the bytes read as one little-endian integer, ``sum(word_k * 2**(16k))``,
    taken mod 0xFFFF (``2**16 == 1 (mod 0xFFFF)``; an odd last byte is the low byte of a
    zero-padded word). Large buffers: one numpy reduction of the ``uint32`` lanes into a
    ``uint64`` (each lane is two little-endian words). Exact alternatives measured slower at
    64 KiB (numpy 2.4): a wrapping ``uint64`` sum of the words plus one of the words shifted by
    4 bytes (recovers every carry, but the shifted view is misaligned, so numpy copies it),
    the same rows as one 2-D view, a ``uint64`` view at a 4-byte stride, strided half-word
    views, and ``int.from_bytes`` (over 20 us): ``benchmarks/bench_checksum.py --formulations``.
    """
    n = len(data)
    if n <= _SMALL:
        value = int.from_bytes(data, "little")
        return value % 0xFFFF or (0xFFFF if value else 0)
    total = int(_REDUCE(_FROMBUFFER(data, _LE32, n >> 2), 0, _U64))
    if n & 3:
        total += int.from_bytes(data[n & ~3 : n], "little")
    return total


def ones_complement_sum(data: Buffer, initial: int = 0) -> int:
    """The folded 16-bit ones' complement sum of ``data`` as big-endian words, plus ``initial``.

    An odd trailing byte is padded with a zero byte (RFC 1071). The little-endian sum ``x``
    becomes the big-endian one as ``256 * x (mod 0xFFFF)`` (a byte swap, since
    ``256 * 256 == 1 (mod 0xFFFF)``); 0 stays 0 and a non-zero multiple of 0xFFFF folds to
    0xFFFF, as with end-around carry.
    """
    if type(data) is not bytes:
        data = byte_view(data)
    total = (_le_sum(data) << 8) + initial
    return (total - 1) % 0xFFFF + 1 if total else 0


def internet_checksum(data: Buffer, initial: int = 0) -> int:
    """The RFC 1071 checksum: the complement of :func:`ones_complement_sum`."""
    if type(data) is not bytes:
        data = byte_view(data)
    total = (_le_sum(data) << 8) + initial
    return 0xFFFE - (total - 1) % 0xFFFF if total else 0xFFFF


def finish(partial_sum: int) -> int:
    """Complement a (possibly unfolded) sum into a checksum field value."""
    return ~fold(partial_sum) & 0xFFFF


def finish_udp(partial_sum: int) -> int:
    """Like :func:`finish`, but a computed 0 is sent as 0xFFFF (RFC 768 / RFC 8200)."""
    return finish(partial_sum) or 0xFFFF


def _words_sum(addresses: bytes) -> int:
    return sum(struct.unpack(f">{len(addresses) // 2}H", addresses))


def pseudo_header_sum_ipv4(src: bytes, dst: bytes, protocol: int, length: int | None) -> int:
    """Folded IPv4 pseudo-header sum; ``length=None`` leaves the L4 length out (NDIS LSO)."""
    if len(src) != 4 or len(dst) != 4:
        raise PacketError("IPv4 pseudo-header needs 4-byte addresses")
    total = _words_sum(src + dst) + protocol
    if length is not None:
        total += length
    return fold(total)


def pseudo_header_sum_ipv6(src: bytes, dst: bytes, next_header: int, length: int | None) -> int:
    """Folded IPv6 pseudo-header sum (RFC 8200 §8.1); ``length=None`` leaves the length out."""
    if len(src) != 16 or len(dst) != 16:
        raise PacketError("IPv6 pseudo-header needs 16-byte addresses")
    total = _words_sum(src + dst) + next_header
    if length is not None:
        total += (length >> 16) + (length & 0xFFFF)
    return fold(total)


def update_checksum(checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes: ~(~HC + ~m + m')."""
    return ~fold((~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word) & 0xFFFF


def update_checksum_bytes(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 update for an even-length field (aligned at an even offset) changing."""
    if len(old) != len(new) or len(old) % 2:
        raise PacketError("incremental update needs equal, even-length old and new fields")
    old_sum = ones_complement_sum(old)
    return ~fold((~checksum & 0xFFFF) + (~old_sum & 0xFFFF) + ones_complement_sum(new)) & 0xFFFF


IntArray = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]


def _lohi(words: U64Array) -> U64Array:
    return (words & _U64(_M32)) + (words >> _U64(32))


def _ranged_sum(values: U64Array, first: IntArray, last: IntArray) -> U64Array:
    """Wrapping sums of ``values[first:last]`` for each pair (empty -> 0); ``first`` sorted."""
    out = np.zeros(len(first), dtype=_U64)
    live = last > first
    if not live.any():
        return out
    idx = np.empty(2 * int(live.sum()), dtype=np.int64)
    idx[0::2] = first[live]
    idx[1::2] = last[live]
    # The separator slots (last[i], first[i + 1]) are discarded; with sorted ``first`` their
    # total work is bounded by the buffer size.
    sums = np.add.reduceat(values, idx)[0::2]
    out[live] = sums
    return out


_DENSE = 48
"""Ranges per buffer word above which one prefix sum beats ``reduceat`` (about 35 ns per
range and pass against about 1 ns per word): a capture chunk, not a few LSO segments."""


def batch_sums(buffer: Buffer, offsets: npt.ArrayLike, lengths: npt.ArrayLike) -> U64Array:
    """Folded big-endian ones' complement sums of ``buffer[offsets[i]:offsets[i]+lengths[i]]``.

    Ranges at a constant stride with one length (frames back to back, a send's segments)
    are the rows of one 2-D view of 32-bit lanes. Otherwise one vectorized pass over
    aligned little-endian 64-bit words. Few ranges: each is
    summed with ``np.add.reduceat`` (wrapping), and a second ``reduceat`` over the words
    shifted by 4 bytes recovers the lost carries exactly. Many ranges (``_DENSE``): one
    prefix sum of each word's two 32-bit lanes (exact in 64 bits), read at both ends of
    every range. Partial first/last words are masked.
    """
    view = byte_view(buffer)
    n = len(view)
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    length = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if off.shape != length.shape:
        raise PacketError("offsets and lengths differ in count")
    if off.size == 0:
        return np.zeros(0, dtype=_U64)
    end = off + length
    if (off < 0).any() or (length < 0).any() or (end > n).any():
        bad = int(np.argmax((off < 0) | (length < 0) | (end > n)))
        raise PacketError(
            f"range {int(off[bad])}+{int(length[bad])} outside a {n}-byte buffer",
            frame_index=bad,
            offset=int(off[bad]),
        )
    if len(off) >= _STRIDED_MIN:
        strided = _strided_sums(view, off, length)
        if strided is not None:
            return strided
    return _general_sums(view, off, end)


def _general_sums(view: memoryview, off: IntArray, end: IntArray) -> U64Array:
    """:func:`batch_sums` for any ranges (checked by the caller)."""
    if off.size * _DENSE >= len(view) // 8:
        return _finish_sums(view, off, end, _prefix_sums(view, off, end))
    order = np.argsort(off, kind="stable")
    o, e = off[order], end[order]
    out = np.empty(len(o), dtype=_U64)
    out[order] = _finish_sums(view, o, e, _reduceat_sums(view, o, e))
    return out


_STRIDED_MIN = 16
"""From this many ranges on, equal-length ranges at a constant stride take the 2-D path."""


def _fold16(total: U64Array) -> U64Array:
    """Fold sums to 16 bits with end-around carry (0 stays 0)."""
    for _ in range(4):
        total = (total & _U64(0xFFFF)) + (total >> _U64(16))
    return total


def _swap16(folded: U64Array) -> U64Array:
    """Byte-swap 16-bit values: a little-endian word sum becomes the big-endian one."""
    swapped: U64Array = ((folded & _U64(0xFF)) << _U64(8)) | (folded >> _U64(8))
    return swapped


def _strided_sums(view: memoryview, off: IntArray, length: IntArray) -> U64Array | None:
    """:func:`batch_sums` for ranges at a constant stride that all have the first one's
    length but perhaps the last (frames back to back in a capture chunk or a receive batch,
    the segments of a send), else None: the ranges are the rows of one 2-D view of
    ``uint32`` lanes, summed into ``uint64`` row by row (a row of ``L`` bytes sums below
    ``2**32 * L``), plus the 1-3 trailing bytes of each row as a partial lane; a last range
    of another length is summed on its own."""
    size = int(length[0])
    first = int(off[0])
    stride = int(off[1]) - first
    if stride <= 0 or (length[:-1] != size).any():
        return None
    if (np.diff(off) != stride).any():
        return None
    count = len(off)
    last = int(length[-1])
    rows = count if last == size else count - 1
    lanes, rest = divmod(size, 4)
    total = np.zeros(count, dtype=_U64)
    if lanes:
        # The last row ends inside the buffer (checked by the caller), so this view does too.
        grid = np.ndarray((rows, lanes), dtype=_LE32, buffer=view, offset=first,
                          strides=(stride, 4))  # fmt: skip
        np.add.reduce(grid, axis=1, dtype=_U64, out=total[:rows])
    if rest:
        tail = np.ndarray((rows, rest), dtype=np.uint8, buffer=view, offset=first + 4 * lanes,
                          strides=(stride, 1))  # fmt: skip
        total[:rows] += tail @ _LANE_WEIGHTS[:rest]
    if rows < count:
        start = int(off[-1])
        total[-1] = _le_sum(view[start : start + last])
    return _swap16(_fold16(total))


_LANE_WEIGHTS = np.array([1, 1 << 8, 1 << 16], dtype=_U64)
"""A partial little-endian lane of 1-3 bytes as an integer."""


@dataclass(frozen=True, slots=True)
class _Words:
    """The buffer's whole little-endian 64-bit words and, per range, what lies in them."""

    words: U64Array
    main: npt.NDArray[np.bool_]
    """The range has whole words."""
    first: IntArray
    last: IntArray
    w_first: U64Array
    w_last: U64Array
    head: U64Array
    """The bytes of the first word before the range."""
    tail: U64Array
    """The bytes of the last word after the range (or past the buffer's whole words)."""


def _whole_words(view: memoryview, o: IntArray, e: IntArray) -> _Words | None:
    """:class:`_Words` of the ranges ``[o, e)``, or None when none has a whole word."""
    nf = len(view) // 8
    mend = np.minimum(e, 8 * nf)
    main = mend > o
    if not main.any():
        return None
    f = np.where(main, o // 8, 0)
    last = np.where(main, (mend - 1) // 8, 0)
    words = np.frombuffer(view, dtype="<u8", count=nf)
    w_f, w_l = words[f], words[last]
    head = w_f & _LOWMASK[np.where(main, o - 8 * f, 0)]
    tail = w_l & ~_LOWMASK[np.where(main, mend - 8 * last, 8)]
    return _Words(words, main, f, last, w_f, w_l, head, tail)


def _prefix_sums(view: memoryview, o: IntArray, e: IntArray) -> U64Array:
    """Unfolded lane sums of the ranges' whole-word parts: one prefix sum over the buffer."""
    w = _whole_words(view, o, e)
    if w is None:
        return np.zeros(len(o), dtype=_U64)
    nf = len(w.words)
    # One pass: the running sum of the 32-bit lanes, widened as it goes; word k starts at
    # lane 2k.
    prefix = np.empty(2 * nf + 1, dtype=_U64)
    prefix[0] = 0
    np.cumsum(np.frombuffer(view, dtype=_LE32, count=2 * nf), dtype=_U64, out=prefix[1:])
    total = prefix[2 * w.last + 2] - prefix[2 * w.first] - _lohi(w.head) - _lohi(w.tail)
    return np.where(w.main, total, _U64(0))


def _reduceat_sums(view: memoryview, o: IntArray, e: IntArray) -> U64Array:
    """:func:`_prefix_sums` for ranges sorted by start, with two ``reduceat`` passes."""
    w = _whole_words(view, o, e)
    if w is None:
        return np.zeros(len(o), dtype=_U64)
    words, main, f, last, w_f, w_l = w.words, w.main, w.first, w.last, w.w_first, w.w_last
    nf = len(words)
    s = _ranged_sum(words, f, last) + w_l
    multi = last > f
    t = np.zeros(len(o), dtype=_U64)
    if nf >= 2 and multi.any():
        shifted = np.frombuffer(view, dtype="<u8", count=nf - 1, offset=4)
        lm1 = np.where(multi, last - 1, 0)
        t = np.where(multi, _ranged_sum(shifted, f, lm1) + shifted[lm1], _U64(0))
    m32 = _U64(_M32)
    hi_l = w_l >> _U64(32)
    b_mod = ((t & m32) + hi_l) & m32
    a = (((s >> _U64(32)) - b_mod) & m32) << _U64(32) | (s & m32)
    b = ((((t >> _U64(32)) - (a - (w_f & m32))) & m32) << _U64(32) | (t & m32)) + hi_l
    return np.where(main, a + b - _lohi(w.head) - _lohi(w.tail), _U64(0))


def _finish_sums(view: memoryview, o: IntArray, e: IntArray, total: U64Array) -> U64Array:
    """Add the bytes past the last whole word, fold, and swap to big-endian order."""
    n = len(view)
    nf = n // 8
    if n > 8 * nf:
        part = _U64(int.from_bytes(view[8 * nf :], "little"))
        ts = np.maximum(o, 8 * nf)
        has = e > ts
        keep = part & _LOWMASK[np.clip(e - 8 * nf, 0, 8)] & ~_LOWMASK[np.clip(ts - 8 * nf, 0, 8)]
        total = total + np.where(has, _lohi(keep), _U64(0))
    folded = _fold16(total)
    # Words were summed at absolute alignment: swap unless the range starts at an odd offset.
    return np.where(o & 1, folded, _swap16(folded))


def batch_checksums(
    buffer: Buffer, offsets: npt.ArrayLike, lengths: npt.ArrayLike
) -> npt.NDArray[np.uint16]:
    """RFC 1071 checksums of many ranges of ``buffer`` in one vectorized pass."""
    sums = batch_sums(buffer, offsets, lengths)
    return (~sums & _U64(0xFFFF)).astype(np.uint16)
