"""The batch path of RSC: :meth:`RscCoalescer.push_batch` over one receive DPC's frames.

The scanned data segments (:func:`~ndis_offload.engine.rsc_fast.scan`, grouped by flow) are
cut into blocks where :func:`~ndis_offload.engine.rsc_rules.breaks` says a segment cannot
continue the previous one of its flow (or PSH ends a unit); each block then extends its
flow's SCU, or starts one, with one :meth:`Scu.extend` call. Frames the scan leaves alone,
and every frame of a flow that has one, take the per-frame path; the outputs are ordered as
per-frame ``push`` would emit them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ndis_offload.engine.receive import TCP_SUCCEEDED, Frame
from ndis_offload.engine.rsc import _scalar_seg
from ndis_offload.engine.rsc_fast import (
    F_ACK,
    F_FLAGS,
    F_INDEX,
    F_MATCH,
    F_PEND,
    F_PLEN,
    F_PSUM,
    F_SEQ,
    F_SHAPE,
    F_SIZE,
    F_TSECR,
    F_TSVAL,
    F_TTL,
    F_WIN,
    FastSegments,
    scan,
    shape_of,
)  # fmt: skip
from ndis_offload.engine.rsc_rules import (
    M32,
    MAX_IP_DATAGRAM,
    SCU_CHECKSUM,
    TCP_PSH,
    breaks,
)
from ndis_offload.engine.rsc_unit import CoalescedFrame, Scu, placed_sum

if TYPE_CHECKING:
    from ndis_offload.engine.rsc import RscCoalescer, _Seg

_Event = tuple[int, int, CoalescedFrame]
"""(index of the frame whose arrival emits it, order among that frame's outputs, frame)."""
_PSH_BIT = TCP_PSH.bit_length() - 1


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
            slow[index] = _scalar_seg(frames[index])
        demote = {key for _, key, _ in slow.values()}.intersection(keys)
        if demote:  # a flow with any other frame in this batch: all of it per frame
            keep = [key not in demote for key in keys]
            sizes = np.diff(heads)
            columns = np.repeat(np.array(keep), sizes)
            for index in table[F_INDEX][~columns].tolist():
                slow[index] = _scalar_seg(frames[index])
            table = table[:, columns]
            kept = sizes[np.array(keep)].tolist()
            heads = [0]
            for size in kept:
                heads.append(heads[-1] + size)
            keys = [key for key, k in zip(keys, keep, strict=True) if k]
    flows = rsc._flows
    if rsc.timeout <= 0 or (
        len(flows) + len(keys) + len(slow) > rsc.max_flows
        and len(flows)
        + len(set(keys).union(key for _, key, _ in slow.values() if key is not None) - set(flows))
        > rsc.max_flows
    ):
        # Expiry inside the batch or evictions may happen: every frame in arrival order.
        for index, frame in enumerate(frames):
            seg, key, word = slow.get(index) or _scalar_seg(frame)
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
        _coalesce(rsc, frames, FastSegments(fast.buffer, table, heads, keys), now, events, moved)
    if len(events) > 1:
        events.sort(key=_event_order)
    out += [event[2] for event in events]
    if old is not None:
        moved = [key for key, scu in flows.items() if old.get(key) is not scu]
    if len(moved) > 1:  # (re)started SCUs: in the order of their first segments
        for key in sorted(moved, key=lambda key: flows[key].order):
            flows[key] = flows.pop(key)
    return out


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
    seq, plen, match = t[F_SEQ], t[F_PLEN], t[F_MATCH]
    ack, tsval, tsecr = t[F_ACK], t[F_TSVAL], t[F_TSECR]
    nxt = seq + plen
    nxt &= M32
    psh = t[F_FLAGS] >> _PSH_BIT
    psh &= 1
    # A block ends before a segment that does not continue the previous one of its flow.
    brk = np.empty(count, dtype=np.bool_)
    cut = breaks(nxt[:-1], match[:-1], ack[:-1], tsval[:-1], tsecr[:-1],
                 seq[1:], match[1:], ack[1:], tsval[1:], tsecr[1:])  # fmt: skip
    if flush:
        cut |= psh[:-1]
    np.not_equal(cut, 0, out=brk[1:])
    brk[heads[:-1]] = True
    first_at = brk.nonzero()[0]
    starts: list[int] = first_at.tolist()
    starts.append(count)
    last_at = np.subtract(first_at[1:], 1)
    last_at = np.append(last_at, count - 1)
    # Per block: payload bytes and sums, PSH, minimum TTL; the first segment's fields; the
    # last segment's NXT, ACK, window and timestamps (Scu.extend's arguments).
    block_len, block_sum = np.add.reduceat(t[F_PLEN : F_PSUM + 1], first_at, axis=1).tolist()
    block_psh: list[int] = (np.maximum.reduceat(psh, first_at) << _PSH_BIT).tolist()
    block_ttl: list[int] = np.minimum.reduceat(t[F_TTL], first_at).tolist()
    firsts: list[list[int]] = t[:, first_at].T.tolist()
    lasts: list[list[int]] = np.stack([nxt[last_at], ack[last_at], t[F_WIN][last_at],
                                       tsval[last_at], tsecr[last_at]]).T.tolist()  # fmt: skip
    last_index: list[int] = t[F_INDEX][last_at].tolist()
    odd = int(np.bitwise_or.reduce(plen)) & 1
    cols: list[list[int]] | None = None  # per-segment columns, for the rare paths
    view = memoryview(fast.buffer)
    pends: list[int] = t[F_PEND].tolist()
    plens: list[int] = plen.tolist()
    payloads = list(map(view.__getitem__, map(slice, map(int.__sub__, pends, plens), pends)))
    b = 0
    for flow, key in enumerate(keys):
        end = heads[flow + 1]
        scu = flows.get(key)
        joins = False
        if scu is not None:
            first = firsts[b]
            joins = not scu.dup and not breaks(
                scu.nxt, scu.match, scu.ack, scu.tsval, scu.tsecr,
                first[F_SEQ], first[F_MATCH], first[F_ACK], first[F_TSVAL], first[F_TSECR],
            )  # fmt: skip
            if not joins:  # the first segment ends the carried SCU
                events.append((first[F_INDEX], 0, flows.pop(key).finalize()))
        while starts[b] < end:
            k0, k1 = starts[b], starts[b + 1]
            length = block_len[b]
            held = scu.size if joins and scu is not None else firsts[b][F_SIZE] - plens[k0]
            if held + length > MAX_IP_DATAGRAM:  # exception E7: split the block
                if cols is None:
                    cols = t.tolist()
                cap = k0
                while cap < k1 and held + plens[cap] <= MAX_IP_DATAGRAM:
                    held += plens[cap]
                    cap += 1
                if cap == k0 and joins:  # the carried SCU cannot take even the first segment
                    assert scu is not None
                    events.append((cols[F_INDEX][k0], 0, flows.pop(key).finalize()))
                    joins = False
                    continue
                cap = max(cap, k0 + 1)  # a new unit always takes its first segment
                starts.insert(b + 1, cap)
                lo = (cap, k1)
                block_len[b : b + 1] = [sum(plens[k0:cap]), sum(plens[cap:k1])]
                block_sum[b : b + 1] = [sum(cols[F_PSUM][k0:cap]), sum(cols[F_PSUM][slice(*lo)])]
                flags = cols[F_FLAGS]
                block_psh[b : b + 1] = [max(flags[k] & TCP_PSH for k in range(k0, cap)),
                                        max(flags[k] & TCP_PSH for k in range(*lo))]  # fmt: skip
                block_ttl[b : b + 1] = [min(cols[F_TTL][k0:cap]), min(cols[F_TTL][slice(*lo)])]
                firsts.insert(b + 1, [column[cap] for column in cols])
                k = cap - 1
                lasts.insert(b, [(cols[F_SEQ][k] + plens[k]) & M32, cols[F_ACK][k],
                                 cols[F_WIN][k], cols[F_TSVAL][k], cols[F_TSECR][k]])  # fmt: skip
                last_index.insert(b, cols[F_INDEX][k])
                k1, length = cap, block_len[b]
            if joins and scu is not None:
                offset = scu.size - scu.poff + scu.l3  # payload bytes held
            else:
                first = firsts[b]
                code = first[F_SHAPE]
                l3, l4, v4 = shape_of(code)
                scu = Scu.start(
                    frames[first[F_INDEX]], l3, l4, l4 + ((first[F_MATCH] >> 8) & 0xFF), v4,
                    first[F_SEQ], 0, first[F_ACK], first[F_WIN], first[F_FLAGS], first[F_TTL],
                    first[F_MATCH], first[F_TSVAL], first[F_TSECR],
                    SCU_CHECKSUM if v4 else TCP_SUCCEEDED, now, first[F_INDEX],
                )  # fmt: skip
                scu.csum = offset = 0
            # Payload sums are little-endian words: x256 (mod 0xFFFF) at even offsets.
            if not odd and not offset & 1:
                psum = block_sum[b] << 8
            else:
                if cols is None:
                    cols = t.tolist()
                psum = placed_sum(cols[F_PSUM][k0:k1], plens[k0:k1], offset)
            segs = k1 - k0
            last_nxt, last_ack, last_win, last_tsval, last_tsecr = lasts[b]
            scu.extend(payloads[k0:k1], length, segs if joins else segs - 1, segs, block_psh[b],
                       block_ttl[b], last_nxt, last_ack, last_win, last_tsval, last_tsecr,
                       psum)  # fmt: skip
            if flush and block_psh[b]:  # PSH ends the unit after it (a block's last)
                if joins:
                    del flows[key]
                events.append((last_index[b], 1, scu.finalize()))
            elif k1 < end:  # the next block of the flow does not continue it
                if joins:
                    del flows[key]
                events.append((firsts[b + 1][F_INDEX], 0, scu.finalize()))
            elif not joins:
                flows[key] = scu
                moved.append(key)
            joins = False
            b += 1


__all__ = ["push_batch"]
