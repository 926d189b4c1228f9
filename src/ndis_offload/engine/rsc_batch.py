"""The batch path of RSC: :meth:`RscCoalescer.push_batch` over one receive DPC's frames.

The scanned data segments (:func:`~ndis_offload.engine.rsc_fast.scan`, grouped by flow) are
cut into blocks where :func:`~ndis_offload.engine.rsc_rules.breaks` says a segment cannot
continue the previous one of its flow (or PSH ends a unit); each block then extends its
flow's SCU, or starts one, with one :meth:`Scu.extend` call. In a bulk DPC (one block per
flow) the blocks whose first segments' fields are their units' tails as they stand (the usual
case: the same ACK and timestamps, ``SEG.SEQ == H.NXT``) extend their units with one
:func:`~ndis_offload.engine.rsc_unit.extend_units` call for the DPC (a call per flow was a
third of the time per flow and DPC; ``test_bulk_dpcs_of_many_flows_equal_push`` holds this
to per-frame ``push``); once a DPC of a mix of many flows has gone that way, the growth of
the next DPCs of the mix is held as arrays (:mod:`~ndis_offload.engine.rsc_pending`). Frames
the scan leaves alone, and every frame of a flow that has one, take the per-frame path; the
outputs are ordered as per-frame ``push`` would emit them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import sub
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ndis_offload.engine.receive import TCP_SUCCEEDED
from ndis_offload.engine.rsc_fast import (
    F_ACK,
    F_FLAGS,
    F_INDEX,
    F_MATCH,
    F_NXT,
    F_PEND,
    F_PLEN,
    F_PSUM,
    F_SHAPE,
    F_TSECR,
    F_TSVAL,
    F_TTL,
    F_WIN,
    FastSegments,
    scan,
    shape_of,
)  # fmt: skip
from ndis_offload.engine.rsc_pending import Pending, hold
from ndis_offload.engine.rsc_rules import (
    E7_DATAGRAM_SIZE,
    E8_ECN,
    M32,
    MAX_IP_DATAGRAM,
    SCU_CHECKSUM,
    breaks,
    breaks_many,
    ecn_differs,
    ecn_differs_many,
)
from ndis_offload.engine.rsc_unit import CoalescedFrame, Scu, extend_units, placed_sum
from ndis_offload.packet.proto import TCP_PSH, Frame

if TYPE_CHECKING:
    from ndis_offload.engine.rsc import RscCoalescer, _Seg

_Event = tuple[int, int, CoalescedFrame]
"""(index of the frame whose arrival emits it, order among that frame's outputs, frame)."""


def _event_order(event: _Event) -> tuple[int, int]:
    return event[0], event[1]


def push_batch(rsc: RscCoalescer, frames: Sequence[Frame], now: float) -> list[CoalescedFrame]:
    """:meth:`RscCoalescer.push` every frame at the same ``now`` (see the module docstring)."""
    out: list[CoalescedFrame] = []
    rsc._expire(now, out)
    if not frames:
        return out
    fast = scan(frames)
    table, heads, keys = fast.table, fast.heads, fast.keys
    slow: dict[int, tuple[_Seg | None, bytes | None, int]] = {}
    if table.shape[1] < len(frames):
        slow_mask = np.ones(len(frames), dtype=np.bool_)
        slow_mask[table[F_INDEX]] = False
        for index in np.flatnonzero(slow_mask).tolist():
            slow[index] = _rsc._scalar_seg(frames[index])
        demote = {key for _, key, _ in slow.values()}.intersection(keys)
        if demote:  # a flow with any other frame in this batch: all of it per frame
            keep = [key not in demote for key in keys]
            sizes = np.diff(heads)
            columns = np.repeat(np.array(keep), sizes)
            for index in table[F_INDEX][~columns].tolist():
                slow[index] = _rsc._scalar_seg(frames[index])
            table = table[:, columns]
            kept = sizes[np.array(keep)].tolist()
            heads = [0]
            for size in kept:
                heads.append(heads[-1] + size)
            keys = [key for key, k in zip(keys, keep, strict=True) if k]
    pending = rsc._pending
    if pending is not None and (slow or keys is not pending.keys):
        rsc._settle()  # (a batch of another mix, or with frames for the per-frame path)
    flows = rsc._flows
    if rsc.timeout <= 0 or (
        len(flows) + len(keys) + len(slow) > rsc.max_flows
        and len(flows)
        + len(set(keys).union(key for _, key, _ in slow.values() if key is not None) - set(flows))
        > rsc.max_flows
    ):
        # Expiry inside the batch or evictions may happen: every frame in arrival order.
        rsc._settle()
        for index, frame in enumerate(frames):
            seg, key, word = slow.get(index) or _rsc._scalar_seg(frame)
            rsc._process(frame, seg, key, word, now, out)
        return out
    events: list[_Event] = []
    old = dict(flows) if slow else None
    for index in sorted(slow):
        seg, key, word = slow[index]
        before = flows.get(key) if key is not None else None
        emitted: list[CoalescedFrame] = []
        rsc._process(frames[index], seg, key, word, now, emitted)
        events += [(index, sub, frame) for sub, frame in enumerate(emitted)]
        scu = flows.get(key) if key is not None else None
        if scu is not None and scu is not before:
            scu.order = index
    moved: list[bytes] = []
    if keys:
        if table is not fast.table:  # flows demoted to the per-frame path: the rest
            fast = FastSegments(fast.buffer, table, heads, keys, fast.one_match)
        _coalesce(rsc, frames, fast, now, events, moved)
    if len(events) > 1:
        events.sort(key=_event_order)
    out += [event[2] for event in events]
    if old is not None:
        moved = [key for key, scu in flows.items() if old.get(key) is not scu]
    if len(moved) > 1:  # (re)started SCUs: in the order of their first segments
        # (They are the last SCUs in ``flows``, in ``moved``'s order: kept when sorted.)
        ordered = sorted(moved, key=lambda key: flows[key].order)
        if ordered != moved:
            for key in ordered:
                flows[key] = flows.pop(key)
    return out


_STRIDED_BLOCK = 16
"""When a batch's blocks are at least this many segments long on average, each block of at
least ``_STRIDED_MIN`` segments of one payload length (but perhaps the last), evenly spaced
in the batch buffer (a bulk flow), is copied out as one piece (and the last segment's view)
instead of a view per segment; shorter blocks on average: a view per segment."""
_STRIDED_MIN = 4
"""(A send's tail or head cut by a DPC boundary: a copy of 4 segments beats 4 views.)"""
_FEW_BLOCKS = 4
"""Up to this many blocks, their end columns are read as Python lists (fewer array
operations); more, as arrays first."""
_HOLD_FLOWS = 16
"""From this many flows in a bulk DPC on, the growth of the next ones is held as arrays
(``rsc_pending``): a steady 32-flow DPC takes ~35 us instead of ~53 (the per-unit work of
the bulk path); with 8 flows a held DPC costs about what it saves and the settling (views
made DPCs ago, touched again) makes the benchmark's 8-flow row ~4 us per DPC slower."""
_FIRST_ONLY = np.zeros(1, dtype=np.int64)
_FIRST_ONLY.flags.writeable = False


_FLOW_COLUMNS: list[tuple[list[int], npt.NDArray[np.int64]]] = []
"""The latest batch layouts' heads and :func:`_flow_columns`, the latest first (a recurring
mix of flows: its bulk DPCs, and the last of each send, of another layout)."""
_LAYOUTS = 4


def _flow_columns(heads: list[int]) -> npt.NDArray[np.int64]:
    """The first column of each flow, then the last one of each (``heads``: a scan's flow
    heads, shared by the batches of one mix of flows and never changed)."""
    for known, columns in _FLOW_COLUMNS:
        if known is heads:
            return columns
    columns = np.array(heads[:-1] + [h - 1 for h in heads[1:]], dtype=np.int64)
    columns.flags.writeable = False
    _FLOW_COLUMNS.insert(0, (heads, columns))
    del _FLOW_COLUMNS[_LAYOUTS:]
    return columns


class _Payloads:
    """The payloads of a batch's scanned segments (table columns), handed to units as the
    pieces :meth:`Scu.extend` joins: a view per segment, or for a long evenly spaced block
    one ``bytes`` copied through a 2-D view (so the unit joins one or two pieces, not
    dozens)."""

    __slots__ = ("buffer", "table", "views", "lists", "stride", "ordered")

    def __init__(
        self, buffer: bytes, table: npt.NDArray[np.int64], stride: int,
        edges: tuple[list[int], list[int]] | None = None,
    ) -> None:  # fmt: skip
        """``edges``: the first and the last column as lists, when already read."""
        self.buffer = buffer
        self.table = table
        self.views: list[Frame] | None = None
        self.lists: tuple[list[int], list[int]] | None = None
        self.stride: tuple[int, int, int, int, int] | None = None
        self.ordered = stride < 0
        if stride > 0:  # (pend, plen) of the first and the last column
            if edges is not None:
                first, last = edges
                plen0, pend0, plen_last, pend_last = (
                    first[F_PLEN], first[F_PEND], last[F_PLEN], last[F_PEND]
                )  # fmt: skip
            else:
                (plen0, plen_last), (pend0, pend_last) = table[
                    F_PLEN::2, :: table.shape[1] - 1
                ].tolist()
            self.stride = (stride, plen0, pend0, plen_last, pend_last)

    def _rows(self, first: int, step: int, size: int, even: int) -> bytes:
        return np.ndarray((even, size), np.uint8, self.buffer, first - size, (step, 1)).tobytes()

    def block(self, k0: int, k1: int) -> list[Frame]:
        """The payloads of columns ``k0`` .. ``k1 - 1``, in order."""
        count = k1 - k0
        if count >= _STRIDED_MIN:
            if self.stride is not None:  # the frames in order, evenly spaced
                step, size, pend0, plen_last, pend_last = self.stride
                if k1 < self.table.shape[1] or plen_last == size:
                    return [self._rows(pend0 + k0 * step, step, size, count)]
                rows = self._rows(pend0 + k0 * step, step, size, count - 1)
                return [rows, memoryview(self.buffer)[pend_last - plen_last : pend_last]]
            pends, plens = self._columns()
            size = plens[k0]
            first = pends[k0]
            step = pends[k0 + 1] - first
            # A send's last segment may be shorter (its tail): a piece of its own.
            even = count if plens[k1 - 1] == size else count - 1
            if (
                step >= size > 0
                and plens[k0 : k0 + even].count(size) == even
                and (
                    self.ordered
                    or pends[k0 : k0 + even] == list(range(first, first + step * even, step))
                )
            ):
                rows = self._rows(first, step, size, even)
                if even == count:
                    return [rows]
                end = pends[k1 - 1]
                return [rows, memoryview(self.buffer)[end - plens[k1 - 1] : end]]
        if self.views is not None or count == self.table.shape[1]:
            return self.segment_views()[k0:k1]
        pends, plens = self._columns()  # a short block: views of its segments alone
        view = memoryview(self.buffer)
        ends = pends[k0:k1]
        return [view[end - size : end] for end, size in zip(ends, plens[k0:k1], strict=True)]

    def segment_views(self) -> list[Frame]:
        """A view of every column's payload (made once per batch)."""
        views = self.views
        if views is None:
            pends, plens = self._columns()
            view = memoryview(self.buffer)  # (a slice in a comprehension: the fastest)
            views = self.views = [view[b - n : b] for b, n in zip(pends, plens, strict=True)]
        return views

    def _columns(self) -> tuple[list[int], list[int]]:
        """The payload ends and lengths of every column."""
        if self.lists is None:
            plens, pends = self.table[F_PLEN : F_PEND + 1 : F_PEND - F_PLEN].tolist()
            self.lists = pends, plens
        return self.lists


def _start_empty(frames: Sequence[Frame], first: list[int], seq: int, now: float) -> Scu:
    """A unit with the headers of the scanned segment ``first`` (a table column but
    ``nxt``; ``seq`` its SEG.SEQ) and no payload yet: the block it starts joins it with
    :meth:`Scu.extend`."""
    l3, l4, v4 = shape_of(first[F_SHAPE])
    match = first[F_MATCH]
    index = first[F_INDEX]
    scu = Scu.start(
        frames[index], l3, l4, l4 + ((match >> 8) & 0xFF), v4,
        seq, 0, first[F_ACK], first[F_WIN], first[F_FLAGS],
        first[F_TTL], match, first[F_TSVAL], first[F_TSECR],
        SCU_CHECKSUM if v4 else TCP_SUCCEEDED, now, index,
    )  # fmt: skip
    scu.csum = 0
    return scu


def _exceeding(
    rsc: RscCoalescer, frames: Sequence[Frame], scu: Scu, joins: bool, key: bytes,
    cols: list[list[int]], ks: range, payloads: _Payloads, now: float, events: list[_Event],
) -> tuple[Scu, bool]:  # fmt: skip
    """Exception E7 inside a block: its segments ``ks`` one at a time, a new unit whenever
    the next segment would take the datagram past 65535 bytes. Returns (unit, whether it is
    still the flow's carried unit)."""
    for k in ks:
        plen = cols[F_PLEN][k]
        held = joins or scu.data_segs
        if held and scu.size + plen > MAX_IP_DATAGRAM:
            rsc.exceptions[E7_DATAGRAM_SIZE] += 1
            if joins:
                del rsc._flows[key]
                joins = False
            events.append((cols[F_INDEX][k], 0, scu.finalize()))
            first = [column[k] for column in cols]
            scu = _start_empty(frames, first, (first[F_NXT] - plen) & M32, now)
            held = False
        offset = scu.size - (scu.poff - scu.l3)
        psum = placed_sum([cols[F_PSUM][k]], [plen], offset) if scu.csum is not None else None
        tail = (cols[F_MATCH][k], cols[F_NXT][k], cols[F_ACK][k], cols[F_TSVAL][k],
                cols[F_TSECR][k])  # fmt: skip
        scu.extend(payloads.block(k, k + 1), plen, 1 if held else 0, 1, cols[F_FLAGS][k] & TCP_PSH,
                   cols[F_TTL][k], tail, cols[F_WIN][k], psum)  # fmt: skip
    return scu, joins


def _held(
    rsc: RscCoalescer, pending: Pending, fast: FastSegments, cols_at: npt.NDArray[np.int64],
    sums: npt.NDArray[np.int64], ttls: npt.NDArray[np.int64],
) -> bool:  # fmt: skip
    """Whether a batch of ``pending``'s mix, a block per flow (first and last columns
    ``cols_at``, SEG.SEQ in the first ones' ``nxt``; payload bytes and sums ``sums``,
    minimum TTLs ``ttls``), continues every unit as it stands: if so, its growth is held."""
    t = fast.table
    nflows = len(pending.scus)
    if fast.heads is not pending.heads or list(map(rsc._flows.get, fast.keys)) != pending.scus:
        return False
    if np.count_nonzero(cols_at[F_MATCH : F_TSECR + 1, :nflows] != pending.tail):
        return False  # a first segment's fields are not its unit's tail
    size = pending.size + sums[0]
    if int(size.max()) > MAX_IP_DATAGRAM:  # exception E7
        return False
    odd = fast.odd if fast.odd >= 0 else int(np.bitwise_or.reduce(t[F_PLEN])) & 1
    if odd:  # payload sums placed at odd offsets
        return False
    psh = cols_at[F_FLAGS, nflows:] if rsc.flush_on_psh else t[F_FLAGS]
    if np.count_nonzero(psh & TCP_PSH):  # PSH ends (or joins) a unit
        return False
    pending.tail = cols_at[F_MATCH : F_TSECR + 1, nflows:]
    pending.size = size
    pending.length += sums[0]
    pending.psum += sums[1]
    np.minimum(pending.ttl, ttls, out=pending.ttl)
    pending.win = cols_at[F_WIN, nflows:]
    pending.batches += 1
    pending.views.append(_Payloads(fast.buffer, t, 0).segment_views())
    return True


def _coalesce(
    rsc: RscCoalescer,
    frames: Sequence[Frame],
    fast: FastSegments,
    now: float,
    events: list[_Event],
    moved: list[bytes],
) -> None:
    """Apply the rules to the scanned segments of flows with no other frames here; the keys
    of the SCUs started are added to ``moved``."""
    flows = rsc._flows
    flush = rsc.flush_on_psh
    t, heads, keys = fast.table, fast.heads, fast.keys
    count = t.shape[1]
    nflows = len(keys)
    # Blocks: a block ends before a segment that does not continue the previous one of its
    # flow (the continuation rule, or PSH ending a unit), and at every flow's end.
    first_at = [0]
    at = _FIRST_ONLY  # first_at as an array (index arrays cost numpy no conversion)
    flow_at: npt.NDArray[np.int64] | None = None  # set when the blocks are the flows
    if count > 1:
        rows = t[F_MATCH : F_TSECR + 1]
        diff = rows[:, 1:] - rows[:, :-1]
        diff[1] -= t[F_PLEN, 1:]  # SEG.SEQ - H.NXT
        starts = np.empty(count, dtype=np.int64)  # non-zero where a block starts
        starts[0] = 1
        cut = breaks_many(diff, starts[1:])
        if flush:
            cut |= t[F_FLAGS, :-1] & TCP_PSH
        if nflows > 1:
            flow_cols = _flow_columns(heads)
            starts[flow_cols[1:nflows]] = 1
        if not fast.one_match and diff[0].any():  # ``match`` changes (E8 may be met)
            ecn = ecn_differs_many(t[F_MATCH])  # exception E8 between segments of a unit
            if flush:
                ecn &= (t[F_FLAGS, :-1] & TCP_PSH) == 0
            if nflows > 1:  # (not between one flow's last segment and the next's first)
                ecn[flow_cols[nflows:-1]] = False
            rsc.exceptions[E8_ECN] += int(np.count_nonzero(ecn))
        if nflows > 1 and np.count_nonzero(starts) == nflows:  # a block per flow
            flow_at = flow_cols
            at = flow_at[:nflows]
            first_at = heads[:-1]
        else:
            at = starts.nonzero()[0]
            first_at = at.tolist()
    nblocks = len(first_at)
    # Per block: payload bytes and sums, minimum TTL; the unit fields of its first segment
    # (SEG.SEQ in place of NXT: what a unit it continues holds) and of its last (what the
    # unit holds after it), the last one's window, index and flags.
    len_sum = np.add.reduceat(t[F_PLEN : F_PSUM + 1], at, axis=1)
    ttl_min = np.minimum.reduceat(t[F_TTL], at)
    block_len, block_sum = len_sum.tolist()
    block_ttl: list[int] = ttl_min.tolist()
    if nblocks <= _FEW_BLOCKS:  # a few blocks: their end columns as lists
        rsc._settle()
        last_at = [b - 1 for b in first_at[1:]]
        last_at.append(count - 1)
        picked = t[:, :: count - 1] if nblocks == 1 and count > 1 else t.take(first_at + last_at, 1)
        ends: list[list[int]] | None = picked.T.tolist()
        assert ends is not None
        firsts: list[list[int]] = []
        lasts: list[list[int]] = []
        last_index: list[int] = []
        last_win: list[int] = []
        last_flags: list[int] = []
        for e in ends[:nblocks]:
            firsts.append([e[F_MATCH], (e[F_NXT] - e[F_PLEN]) & M32, *e[F_ACK : F_TSECR + 1]])
        for e in ends[nblocks:]:
            lasts.append(e[F_MATCH : F_TSECR + 1])
            last_index.append(e[F_INDEX])
            last_win.append(e[F_WIN])
            last_flags.append(e[F_FLAGS])
    else:  # many: as arrays, then lists
        ends = None
        if flow_at is not None:  # a block per flow
            ends_at = flow_at
        else:  # each block's first and last column
            ends_at = np.empty(2 * nblocks, dtype=np.int64)
            ends_at[:nblocks] = at
            np.subtract(at[1:], 1, out=ends_at[nblocks:-1])
            ends_at[-1] = count - 1
        cols_at = t.take(ends_at, 1)
        seq = cols_at[F_NXT, :nblocks]
        seq -= cols_at[F_PLEN, :nblocks]
        seq &= M32
        pending = rsc._pending
        if pending is not None:
            if flow_at is not None and _held(rsc, pending, fast, cols_at, len_sum, ttl_min):
                return
            rsc._settle()
        tails = cols_at[F_MATCH : F_TSECR + 1].T.tolist()
        firsts, lasts = tails[:nblocks], tails[nblocks:]
        last_index = cols_at[F_INDEX, nblocks:].tolist()
        last_win, last_flags = cols_at[F_WIN : F_FLAGS + 1, nblocks:].tolist()
    block_psh = [flags & TCP_PSH for flags in last_flags] if flush else (
        np.bitwise_or.reduceat(t[F_FLAGS], at) & TCP_PSH
    ).tolist()  # fmt: skip
    first_at.append(count)
    odd = fast.odd if fast.odd >= 0 else int(np.bitwise_or.reduce(t[F_PLEN])) & 1
    payloads = _Payloads(
        fast.buffer, t, fast.stride if count >= _STRIDED_MIN else 0,
        None if ends is None else (ends[0], ends[-1]),  # columns 0 and count - 1
    )  # fmt: skip
    if count < _STRIDED_BLOCK * nblocks:  # short blocks: a view per segment
        views = payloads.segment_views()
        pairs = zip(first_at, first_at[1:], strict=False)
        pieces: list[list[Frame]] = [views[k0:k1] for k0, k1 in pairs]
    else:
        pieces = [payloads.block(k0, k1) for k0, k1 in zip(first_at, first_at[1:], strict=False)]
    cols: list[list[int]] | None = None  # per-segment columns, for exception E7
    starting = ends  # the blocks' first columns as lists (from ``cols_at``, when needed)

    def general(f: int, key: bytes, b: int, b_end: int) -> None:
        """Flow ``f``'s blocks ``b`` .. ``b_end - 1``: every rule."""
        nonlocal cols, starting
        scu = flows.get(key)
        joins = False
        if scu is not None:  # does the first segment continue the carried SCU?
            first = firsts[b]
            tail = scu.tail
            joins = not scu.dup and not breaks(tail, first, 0)
            if not joins:
                if ecn_differs(tail[0], first[0]):
                    rsc.exceptions[E8_ECN] += 1
                del flows[key]
                events.append((int(t[F_INDEX, first_at[b]]), 0, scu.finalize()))
        while b < b_end:
            k0, k1 = first_at[b], first_at[b + 1]
            length = block_len[b]
            if not joins:
                if starting is None:
                    starting = cols_at[:, :nblocks].T.tolist()
                scu = _start_empty(frames, starting[b], firsts[b][1], now)
            assert scu is not None
            if scu.size + length > MAX_IP_DATAGRAM:  # exception E7
                if cols is None:
                    cols = t.tolist()
                scu, joins = _exceeding(rsc, frames, scu, joins, key, cols, range(k0, k1),
                                        payloads, now, events)  # fmt: skip
            else:
                if scu.csum is None:
                    psum = None
                elif not odd and not scu.size & 1:  # (header lengths are even)
                    psum = block_sum[b]  # a sum at an even offset (``Scu.csum``)
                else:
                    if cols is None:
                        cols = t.tolist()
                    psum = placed_sum(cols[F_PSUM][k0:k1], cols[F_PLEN][k0:k1],
                                      scu.size - (scu.poff - scu.l3))  # fmt: skip
                segs = k1 - k0
                scu.extend(pieces[b], length, segs if joins else segs - 1, segs, block_psh[b],
                           block_ttl[b], lasts[b], last_win[b], psum)  # fmt: skip
            if flush and block_psh[b]:  # PSH ends the unit after it (a block's last)
                if joins:
                    del flows[key]
                events.append((last_index[b], 1, scu.finalize()))
            elif b + 1 < b_end:  # the next block of the flow does not continue it
                if joins:
                    del flows[key]
                events.append((int(t[F_INDEX, k1]), 0, scu.finalize()))
            elif not joins:
                flows[key] = scu
                moved.append(key)
            joins = False
            b += 1

    if nflows == 1:
        general(0, keys[0], 0, nblocks)
        return
    if nblocks != nflows:
        fb: list[int] = np.searchsorted(at, heads).tolist()
        for f, key in enumerate(keys):
            general(f, key, fb[f], fb[f + 1])
        return
    # One block per flow (a bulk DPC): the blocks that continue their flows' units as they
    # stand (the first segment's fields are the unit's tail, no exception 7, payload sums
    # placed at an even offset) extend them in one ``extend_units`` call; any other block
    # takes every rule.
    if odd:  # payload sums placed at odd offsets: every rule
        for f, key in enumerate(keys):
            general(f, key, f, f + 1)
        return
    scus = list(map(flows.get, keys))
    joins = [
        scu is not None and first == scu.tail and not scu.dup and scu.csum is not None
        and not scu.size & 1 and scu.size + length <= MAX_IP_DATAGRAM
        for scu, first, length in zip(scus, firsts, block_len, strict=True)
    ]  # fmt: skip
    segments = list(map(sub, first_at[1:], first_at))
    columns: tuple[list[Any], ...] = (
        scus, pieces, block_len, segments, block_psh, block_ttl, lasts, last_win, block_sum,
        last_index, keys,
    )  # fmt: skip
    if False in joins:
        for f, key in enumerate(keys):
            if not joins[f]:
                general(f, key, f, f + 1)
        columns = tuple(list(compress(column, joins)) for column in columns)
    units, chunks, lengths, segs, pshs, ttls, tails, wins, sums, indexes, unit_keys = columns
    extend_units(
        zip(units, chunks, lengths, segs, segs, pshs, ttls, tails, wins, sums, strict=True)
    )
    if flush and any(pshs):  # PSH ends the unit after it
        for scu, psh, index, key in zip(units, pshs, indexes, unit_keys, strict=True):
            if psh:
                del flows[key]
                events.append((index, 1, scu.finalize()))
    elif len(units) == nflows >= _HOLD_FLOWS and ends is None:
        # Every unit continued: the next batches' growth is held (``rsc_pending``).
        rsc._pending = hold(heads, keys, units, cols_at[F_MATCH : F_TSECR + 1, nflows:])


# The per-frame parser lives in ``rsc``, which imports this module's ``push_batch`` at its
# end: imported here, after ``push_batch``, either module may be imported first.
from ndis_offload.engine import rsc as _rsc  # noqa: E402

__all__ = ["push_batch"]
