"""Receive segment coalescing (RSC, NDIS 6.30), sans-IO: ``push(frame, now)`` / ``flush(now)``.

Follows the Microsoft docs "Rules for Coalescing TCP/IP Segments", "Exception Conditions
that Terminate Coalescing", "Indicating Coalesced Segments" and "Updating the IP Headers for
Coalesced Segments":

* Exceptions carried by the segment itself (2-6: bad IP / TCP checksum, a flag other than
  ACK / PSH / ECE / CWR, a TCP option other than timestamps, IPv4 options / IPv6 extension
  headers, IPv4 fragments) end the flow's single coalesced unit (SCU) and the segment is
  indicated on its own. Exceptions 7 (SCU would exceed 65535 bytes) and 8 (ECN field / ECE,
  CWR flags differ), and differing DF / DSCP / traffic class / flow label, end the SCU and
  coalescing resumes with the segment.
* Data is coalesced when ``SEG.SEQ == H.NXT``, ``H.DupAckCount == 0`` and the ACK does not go
  back; the SCU carries the last ACK and window (example 4). A pure ACK with ``SEG.ACK ==
  H.ACK`` and a new window is a window update and is coalesced (example 3, not counted). A
  duplicate ACK ends the SCU and is indicated alone; with ``coalesce_dup_acks`` it starts a
  new SCU whose ``DupAckCount`` counts the further duplicates (the "Additional notes on
  Duplicate ACK coalescing"). Other pure ACKs end the SCU and are indicated alone.
* Timestamps: ``SEG.TSval >= H.TSval`` (and TSecr) modulo 2**32, else the SCU ends and
  coalescing resumes; the SCU carries the latest TSval / TSecr and
  ``RscTcpTimestampDelta`` (latest - earliest TSval).
* The SCU keeps the first segment's headers: IPv4 ID of the first segment, TTL / Hop Limit
  the minimum, total / payload length updated, PSH ORed (and, with ``flush_on_psh``, a PSH
  segment ends the SCU after it is included); the IPv4 header and TCP checksums are
  recomputed, and ``IpChecksumSucceeded`` / ``TcpChecksumSucceeded`` are set.
* ``NDIS_RSC_NBL_INFO.CoalescedSegCount`` counts data segments; an SCU that is one unchanged
  segment is indicated as received with count 0 ("a non-coalesced non-RSC segment").

Time only arrives as ``now``: SCUs older than ``timeout`` leave on the next ``push`` or on
``flush(now)`` (the docs' "must not delay the indication" is the caller's DPC boundary:
call ``flush()`` at its end). Frames must not be modified while the coalescer holds them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from ndis_offload.engine.receive import (
    IP_SUCCEEDED,
    TCP_SUCCEEDED,
    Frame,
    receive_info,
    receive_word,
    validate_word,
)
from ndis_offload.engine.rsc_fast import (
    F_ACK,
    F_INDEX,
    F_MATCH,
    F_PEND,
    F_PLEN,
    F_PSUM,
    F_SEQ,
    F_SHAPE,
    F_SIZE,
    F_TCPW,
    F_TSECR,
    F_TSVAL,
    F_TTL,
    SHAPES,
    IntArray,
    scan,
)  # fmt: skip
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    ones_complement_sum,
)
from ndis_offload.packet.headers import IPPROTO_TCP, parse_frame
from ndis_offload.structs.nbl_info import (
    NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive,
)

TCP_ACK = 0x10
TCP_PSH = 0x08
TCP_ECN_FLAGS = 0xC0
"""ECE | CWR: allowed, but must not change within an SCU (exception 8)."""
_ALLOWED_FLAGS = TCP_ACK | TCP_PSH | TCP_ECN_FLAGS
MAX_IP_DATAGRAM = 0xFFFF
_SCU_CHECKSUM = IP_SUCCEEDED | TCP_SUCCEEDED
_TS_NOP_NOP = 0x0101080A
"""NOP, NOP, kind 8, length 10: the usual 12-byte timestamp option block."""
_HALF = 1 << 31
_M32 = 0xFFFFFFFF

_H = struct.Struct("!H")
_I = struct.Struct("!I")
_II = struct.Struct("!II")
_TCP = struct.Struct("!IIBBH")  # seq, ack, offset/NS byte, flags, window


@dataclass(frozen=True, slots=True)
class CoalescedFrame:
    """A frame leaving the coalescer with its ``NET_BUFFER_LIST`` info."""

    frame: bytes
    rsc: NdisRscNblInfoInfo = field(default_factory=NdisRscNblInfoInfo)
    """``NetBufferListInfo[TcpRecvSegCoalesceInfo]``."""
    checksum: NdisTcpIpChecksumNetBufferListInfoReceive = field(
        default_factory=NdisTcpIpChecksumNetBufferListInfoReceive
    )
    """``NetBufferListInfo[TcpIpChecksumNetBufferListInfo].Receive``."""
    timestamp_delta: int = 0
    """``NetBufferListInfo[RscTcpTimestampDelta]``: latest minus earliest TSval."""


_Seg = tuple[bytes, bool, int, int, int, int, int, int, int, int, int, int, int, int, int, int]
"""(key, ok, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, l3, l4, poff, end, word);
``ok`` is false for a segment-intrinsic exception; ``tsval`` is -1 without timestamps."""


class _Scu:
    """The single coalesced unit tracked for one flow."""

    __slots__ = (
        "first", "l3", "l4", "poff", "v4", "seq", "nxt", "ack", "win", "psh", "ttl", "match",
        "tsval0", "tsval", "tsecr", "chunks", "size", "data_segs", "merged", "dup", "started",
        "word", "csum", "order",
    )  # fmt: skip

    def __init__(self, frame: Frame, seg: _Seg, now: float) -> None:
        _, _, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, l3, l4, poff, end, word = seg
        self.first = frame
        self.l3, self.l4, self.poff = l3, l4, poff
        self.v4 = match >> 62 == 0
        self.seq, self.nxt, self.ack, self.win = seq, (seq + plen) & _M32, ack, win
        self.psh = flags & TCP_PSH
        self.ttl, self.match = ttl, match
        self.tsval0, self.tsval, self.tsecr = tsval, tsval, tsecr
        self.chunks: list[Frame] = [memoryview(frame)[poff:end]] if plen else []
        self.size = end - l3
        self.data_segs = 1 if plen else 0
        self.merged = 0
        self.dup = 0
        self.started = now
        self.word = word
        self.csum: int | None = None
        """Big-endian word sum of the payload (mod 0xFFFF) when known."""
        self.order = 0
        """Index in its batch of the frame that started it (``push_batch`` ordering)."""

    @classmethod
    def from_scan(
        cls, frame: Frame, cols: list[list[int]], k: int, chunks: list[Frame], now: float
    ) -> _Scu:
        """An SCU started by a scanned segment (column ``k`` of the scan table ``cols``)."""
        scu = cls.__new__(cls)
        scu.first = frame
        scu.l3, scu.l4, scu.v4 = SHAPES[cols[F_SHAPE][k]]
        match = cols[F_MATCH][k]
        scu.poff = scu.l4 + ((match >> 8) & 0xFF)
        scu.seq = seq = cols[F_SEQ][k]
        scu.nxt = (seq + cols[F_PLEN][k]) & _M32
        tcpw = cols[F_TCPW][k]
        scu.ack, scu.win = cols[F_ACK][k], tcpw & 0xFFFF
        scu.psh = (tcpw >> 16) & TCP_PSH
        scu.ttl, scu.match = cols[F_TTL][k], match
        scu.tsval0 = scu.tsval = cols[F_TSVAL][k]
        scu.tsecr = cols[F_TSECR][k]
        scu.chunks = chunks
        scu.size = cols[F_SIZE][k]
        scu.data_segs, scu.merged, scu.dup = 1, 0, 0
        scu.started = now
        scu.word = _SCU_CHECKSUM if scu.v4 else TCP_SUCCEEDED
        scu.csum = None
        scu.order = cols[F_INDEX][k]
        return scu


def _tcp_options(view: memoryview, start: int, stop: int) -> tuple[bool, int]:
    """(only NOP / EOL / timestamps present, TSval offset from ``start - 20`` or -1)."""
    if stop - start == 12 and _I.unpack_from(view, start)[0] == _TS_NOP_NOP:
        return True, 24
    ts = -1
    pos = start
    while pos < stop:
        kind = view[pos]
        if kind == 0:
            break
        if kind == 1:
            pos += 1
            continue
        if kind != 8 or pos + 10 > stop or view[pos + 1] != 10 or ts >= 0:
            return False, -1
        ts = pos + 2 - (start - 20)
        pos += 10
    return True, ts


def _key(view: memoryview | bytes, base: int, l3: int, l4: int, v4: bool) -> bytes:
    """Flow key: L2 header, addresses and ports (absolute offsets, frame at ``base``)."""
    addr = view[l3 + 12 : l3 + 20] if v4 else view[l3 + 8 : l3 + 40]
    return bytes(view[base:l3]) + bytes(addr) + bytes(view[l4 : l4 + 4])


def _ip_match(v4: bool, ip_word0: int, frag: int) -> int:
    """Header bits that must be equal within an SCU, bit 62 set for IPv6."""
    if v4:
        return ((ip_word0 >> 16) & 0xFF) << 1 | (frag >> 14) & 1
    return (1 << 38) | ip_word0  # version, traffic class (ECN included), flow label


def _scalar_seg(frame: Frame) -> tuple[_Seg | None, bytes | None, int]:
    """(segment fields or None if not TCP, flow key, checksum word) of one frame."""
    view = memoryview(frame)
    try:
        layout = parse_frame(view)
    except PacketError:
        try:
            return None, None, validate_word(view)
        except PacketError:
            return None, None, 0
    word = receive_word(view, layout)
    if layout.l4_proto != IPPROTO_TCP or layout.l4_len == 0 or layout.llc_snap:
        return None, None, word
    l3, l4, poff, end = layout.l3_offset, layout.l4_offset, layout.payload_offset, layout.ip_end
    v4 = layout.ip_version == 4
    key = _key(view, 0, l3, l4, v4)
    seq, ack, off, flags, win = _TCP.unpack_from(view, l4 + 4)
    opts_ok, ts_rel = _tcp_options(view, l4 + 20, poff)
    ok = (
        opts_ok
        and not layout.is_fragment
        and layout.l3_len == (20 if v4 else 40)
        and (word & _SCU_CHECKSUM) == (_SCU_CHECKSUM if v4 else TCP_SUCCEEDED)
        and off & 0xF == 0
        and flags & ~_ALLOWED_FLAGS == 0
        and flags & TCP_ACK != 0
    )
    word0 = _I.unpack_from(view, l3)[0]
    ip_match = _ip_match(v4, word0, _H.unpack_from(view, l3 + 6)[0] if v4 else 0)
    match = ip_match << 24 | (ts_rel & 0x3F) << 16 | (poff - l4) << 8 | flags & TCP_ECN_FLAGS
    ttl = view[l3 + 8] if v4 else view[l3 + 7]
    tsval, tsecr = _II.unpack_from(view, l4 + ts_rel) if ts_rel >= 0 else (-1, -1)
    seg = (key, ok, seq, ack, win, flags, end - poff, match, ttl, tsval, tsecr, l3, l4, poff, end,
           word)  # fmt: skip
    return seg, key, word


def _checksum(total: int) -> int:
    """``finish(total)``: the checksum field for a positive sum of 16-bit words, taken mod
    0xFFFF (the folded sum of non-zero data is 1..0xFFFF, never 0)."""
    return 0xFFFF - ((total - 1) % 0xFFFF + 1)


_RSC_INFO: dict[tuple[int, int], NdisRscNblInfoInfo] = {}
"""Shared (immutable) ``NDIS_RSC_NBL_INFO`` values by (segment count, duplicate ACKs)."""
_SCU_INFO = receive_info(_SCU_CHECKSUM)


def _payload_sum(psums: list[int], plens: list[int], offset: int) -> int:
    """The big-endian word sum (mod 0xFFFF) of payloads with little-endian word sums
    ``psums`` placed one after the other from byte ``offset`` of a unit's payload."""
    total = 0
    for value, size in zip(psums, plens, strict=True):
        total += value if offset & 1 else value << 8
        offset += size
    return total


def _event_order(event: tuple[int, int, CoalescedFrame]) -> tuple[int, int]:
    return event[0], event[1]


class RscCoalescer:
    """Software RSC over a stream of received frames (any mix of flows), sans-IO.

    ``timeout`` (seconds, compared with ``now``) bounds how long an SCU is held;
    ``max_flows`` bounds the tracked flows (the oldest SCU is indicated to make room).
    """

    def __init__(
        self,
        *,
        timeout: float = 0.0005,
        max_flows: int = 64,
        flush_on_psh: bool = True,
        coalesce_dup_acks: bool = False,
    ) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.timeout = timeout
        self.max_flows = max_flows
        self.flush_on_psh = flush_on_psh
        self.coalesce_dup_acks = coalesce_dup_acks
        self._flows: dict[bytes, _Scu] = {}

    @property
    def flow_count(self) -> int:
        """Flows with an SCU being tracked."""
        return len(self._flows)

    # --- public entry points --------------------------------------------------------------

    def push(self, frame: Frame, now: float) -> list[CoalescedFrame]:
        """Receive one frame; returns the frames indicated as a result, in order."""
        out: list[CoalescedFrame] = []
        self._expire(now, out)
        seg, key, word = _scalar_seg(frame)
        self._process(frame, seg, key, word, now, out)
        return out

    def push_batch(self, frames: Sequence[Frame], now: float) -> list[CoalescedFrame]:
        """:meth:`push` every frame (one receive DPC's worth) at the same ``now``.

        The common data segments (see :mod:`~ndis_offload.engine.rsc_fast`) are decoded and
        checksummed in one vectorized pass and their flows' rules decided with array
        operations; each coalesced unit is then built once. Other frames, and every frame
        of a flow that has one, go through the per-frame rules; outputs are ordered as
        :meth:`push` would emit them.
        """
        out: list[CoalescedFrame] = []
        self._expire(now, out)
        if not frames:
            return out
        fast = scan(frames)
        ids: dict[bytes, int] = {}
        fids = [ids.setdefault(key, len(ids)) for key in fast.keys]
        table = fast.table
        slow: dict[int, tuple[_Seg | None, bytes | None, int]] = {}
        if table.shape[1] < len(frames):
            slow_mask = np.ones(len(frames), dtype=np.bool_)
            slow_mask[table[F_INDEX]] = False
            for index in np.flatnonzero(slow_mask).tolist():
                slow[index] = _scalar_seg(frames[index])
        demote = {key for _, key, _ in slow.values() if key in ids}
        if demote:  # a flow with any other frame in this batch: all of it per frame
            keep = [key not in demote for key in fast.keys]
            for index in table[F_INDEX][~np.array(keep)].tolist():
                slow[index] = _scalar_seg(frames[index])
            table = table[:, np.array(keep)]
            ids = {}
            fids = [
                ids.setdefault(key, len(ids)) for key, k in zip(fast.keys, keep, strict=True) if k
            ]
        flows = self._flows
        if (
            len(flows) + len(ids) + len(slow) > self.max_flows
            and len(flows)
            + len(
                set(ids)
                .union(key for _, key, _ in slow.values() if key is not None)
                .difference(flows)
            )
            > self.max_flows
        ):
            # Evictions may happen: the exact order of every start matters.
            for index, frame in enumerate(frames):
                seg, key, word = slow.get(index) or _scalar_seg(frame)
                self._process(frame, seg, key, word, now, out)
            return out
        events: list[tuple[int, int, CoalescedFrame]] = []
        old = dict(flows)
        for index in sorted(slow):
            seg, key, word = slow[index]
            before = flows.get(key) if key is not None else None
            emitted: list[CoalescedFrame] = []
            self._process(frames[index], seg, key, word, now, emitted)
            events += [(index, sub, frame) for sub, frame in enumerate(emitted)]
            scu = flows.get(key) if key is not None else None
            if scu is not None and scu is not before:
                scu.order = index
        if ids:
            self._coalesce(frames, fast.buffer, table, list(ids), fids, now, events)
        events.sort(key=_event_order)
        out += [event[2] for event in events]
        moved = [key for key, scu in flows.items() if old.get(key) is not scu]
        if len(moved) > 1:  # (re)started SCUs: in the order of their first segments
            for key in sorted(moved, key=lambda key: flows[key].order):
                flows[key] = flows.pop(key)
        return out

    def _coalesce(
        self,
        frames: Sequence[Frame],
        buffer: bytes,
        table: IntArray,
        keys: list[bytes],
        fids: list[int],
        now: float,
        events: list[tuple[int, int, CoalescedFrame]],
    ) -> None:
        """Apply the rules to the scanned segments of flows with no other frames here."""
        flows = self._flows
        count = table.shape[1]
        brk = np.empty(count, dtype=np.bool_)
        if len(keys) > 1:
            fid_array = np.array(fids, dtype=np.int64)
            t = table[:, fid_array.argsort(kind="stable")]  # by flow, arrival order within
            heads = list(accumulate(np.bincount(fid_array).tolist(), initial=0))
        else:
            t = table
            heads = [0, count]
        # A unit ends before a segment that does not continue the previous one of its flow.
        seq, plen, match = t[F_SEQ], t[F_PLEN], t[F_MATCH]
        nxt = seq + plen
        nxt &= _M32
        cut = nxt[:-1] ^ seq[1:]  # non-zero: a break
        cut |= match[:-1] ^ match[1:]
        # ACK / TSval / TSecr going back: bit 31 of a difference (no timestamps: -1 throughout)
        mono = t[F_ACK : F_TSECR + 1]
        back = np.bitwise_or.reduce(mono[:, 1:] - mono[:, :-1], axis=0)
        back &= _HALF
        cut |= back
        psh = (t[F_TCPW] >> 19) & 1
        flush = self.flush_on_psh
        if flush:
            cut |= psh[:-1]
        np.not_equal(cut, 0, out=brk[1:])
        brk[heads[:-1]] = True
        first_at = brk.nonzero()[0]
        starts: list[int] = first_at.tolist()
        starts.append(count)
        # Per-block payload bytes and sums, PSH, minimum TTL (recomputed for split blocks).
        added: list[list[int]] = np.add.reduceat(t[F_PLEN : F_PSUM + 1], first_at, axis=1).tolist()
        block_len, block_sum = added
        block_psh: list[int] = np.maximum.reduceat(psh, first_at).tolist()
        block_ttl: list[int] = np.minimum.reduceat(t[F_TTL], first_at).tolist()
        odd = int(np.bitwise_or.reduce(plen)) & 1
        cols: list[list[int]] = t.tolist()
        index, plens, ttls, psums = cols[F_INDEX], cols[F_PLEN], cols[F_TTL], cols[F_PSUM]
        seqs, acks, tcpws = cols[F_SEQ], cols[F_ACK], cols[F_TCPW]
        tsvals, tsecrs, matches, sizes = cols[F_TSVAL], cols[F_TSECR], cols[F_MATCH], cols[F_SIZE]
        nxts: list[int] = nxt.tolist()
        pshs: list[int] = psh.tolist()
        view = memoryview(buffer)
        payloads: list[Frame] = [
            view[e - p : e] for e, p in zip(cols[F_PEND], plens, strict=True)
        ]  # fmt: skip
        pos = 0
        for flow, key in enumerate(keys):
            end = heads[flow + 1]
            k0 = starts[pos]
            # The first segment of a flow against the SCU carried over from an earlier batch.
            scu = flows.get(key)
            joins = False
            if scu is not None:
                tsval = tsvals[k0]
                joins = (
                    not scu.dup
                    and seqs[k0] == scu.nxt
                    and matches[k0] == scu.match
                    and (acks[k0] - scu.ack) & _M32 < _HALF
                    and (
                        tsval < 0
                        or (
                            (tsval - scu.tsval) & _M32 < _HALF
                            and (tsecrs[k0] - scu.tsecr) & _M32 < _HALF
                        )
                    )
                )
                k = end - 1
                if (
                    joins
                    and starts[pos + 1] == end
                    and scu.size + block_len[pos] <= MAX_IP_DATAGRAM
                    and not (flush and pshs[k])
                ):  # the common case: all of the flow's segments join its SCU, which stays
                    csum = scu.csum
                    if csum is not None:
                        offset = scu.size - scu.poff + scu.l3  # payload bytes held
                        if not odd and not offset & 1:
                            total = block_sum[pos] << 8
                        else:
                            total = _payload_sum(psums[k0:end], plens[k0:end], offset)
                        scu.csum = (csum + total) % 0xFFFF
                    scu.chunks += payloads[k0:end]
                    scu.size += block_len[pos]
                    scu.data_segs += end - k0
                    scu.merged += end - k0
                    scu.nxt = nxts[k]
                    scu.ack = acks[k]
                    scu.win = tcpws[k] & 0xFFFF
                    if block_psh[pos]:
                        scu.psh = TCP_PSH
                    if block_ttl[pos] < scu.ttl:
                        scu.ttl = block_ttl[pos]
                    if tsvals[k] >= 0:
                        scu.tsval, scu.tsecr = tsvals[k], tsecrs[k]
                    pos += 1
                    continue
                if not joins:  # the first segment ends the carried SCU
                    events.append((index[k0], 0, self._finalize(flows.pop(key))))
            while starts[pos] < end:
                k0, k1 = starts[pos], starts[pos + 1]
                held = scu.size if joins and scu is not None else sizes[k0] - plens[k0]
                if held + block_len[pos] > MAX_IP_DATAGRAM:  # exception 7: split the block
                    cap = k0 if joins else k0 + 1
                    held += 0 if joins else plens[k0]
                    while held + plens[cap] <= MAX_IP_DATAGRAM:
                        held += plens[cap]
                        cap += 1
                    if cap == k0:  # the carried SCU cannot take even the first segment
                        events.append((index[k0], 0, self._finalize(flows.pop(key))))
                        joins = False
                        continue
                    starts.insert(pos + 1, cap)
                    for part in (pos, pos + 1):
                        lo, hi = starts[part], starts[part + 1]
                        values = (sum(plens[lo:hi]), sum(psums[lo:hi]), int(any(pshs[lo:hi])),
                                  min(ttls[lo:hi]))  # fmt: skip
                        for column, value in zip(
                            (block_len, block_sum, block_psh, block_ttl), values, strict=True
                        ):
                            if part == pos:
                                column[pos] = value
                            else:
                                column.insert(pos + 1, value)
                    k1 = cap
                if joins and scu is not None:
                    offset = scu.size - scu.poff + scu.l3  # payload bytes held
                    scu.chunks += payloads[k0:k1]
                    scu.size += block_len[pos]
                    scu.data_segs += k1 - k0
                    scu.merged += k1 - k0
                else:
                    offset = 0
                    scu = _Scu.from_scan(frames[index[k0]], cols, k0, payloads[k0:k1], now)
                    scu.size += block_len[pos] - plens[k0]
                    scu.data_segs, scu.merged, scu.csum = k1 - k0, k1 - k0 - 1, 0
                csum = scu.csum
                if csum is not None:
                    # Payload sums are little-endian words: x256 (mod 0xFFFF) at even offsets.
                    if not odd and not offset & 1:
                        total = block_sum[pos] << 8
                    else:
                        total = _payload_sum(psums[k0:k1], plens[k0:k1], offset)
                    scu.csum = (csum + total) % 0xFFFF
                k = k1 - 1
                scu.nxt = nxts[k]
                scu.ack = acks[k]
                scu.win = tcpws[k] & 0xFFFF
                if block_psh[pos]:
                    scu.psh = TCP_PSH
                if block_ttl[pos] < scu.ttl:
                    scu.ttl = block_ttl[pos]
                if tsvals[k] >= 0:
                    scu.tsval, scu.tsecr = tsvals[k], tsecrs[k]
                psh_end = flush and pshs[k]
                if psh_end or k1 < end:
                    if joins:
                        del flows[key]
                    at = (index[k], 1) if psh_end else (index[k1], 0)
                    events.append((*at, self._finalize(scu)))
                elif not joins:
                    flows[key] = scu
                joins = False
                pos += 1

    def flush(self, now: float | None = None) -> list[CoalescedFrame]:
        """Indicate every SCU (``now=None``) or those older than ``timeout`` at ``now``."""
        out: list[CoalescedFrame] = []
        if now is None:
            for scu in self._flows.values():
                out.append(self._finalize(scu))
            self._flows.clear()
        else:
            self._expire(now, out)
        return out

    # --- the rules ------------------------------------------------------------------------

    def _expire(self, now: float, out: list[CoalescedFrame]) -> None:
        flows = self._flows
        limit = now - self.timeout
        while flows:
            key = next(iter(flows))  # insertion order == start order: the oldest first
            if flows[key].started > limit:
                break
            out.append(self._finalize(flows.pop(key)))

    def _start(
        self, key: bytes, frame: Frame, seg: _Seg, now: float, out: list[CoalescedFrame]
    ) -> None:
        flows = self._flows
        if len(flows) >= self.max_flows:
            oldest = next(iter(flows))
            out.append(self._finalize(flows.pop(oldest)))
        scu = _Scu(frame, seg, now)
        if scu.psh and self.flush_on_psh and scu.data_segs:
            out.append(self._finalize(scu))
        else:
            flows[key] = scu

    def _alone(self, frame: Frame, word: int, out: list[CoalescedFrame]) -> None:
        out.append(CoalescedFrame(bytes(frame), checksum=receive_info(word)))

    def _end(self, key: bytes, out: list[CoalescedFrame]) -> None:
        out.append(self._finalize(self._flows.pop(key)))

    def _process(
        self,
        frame: Frame,
        seg: _Seg | None,
        key: bytes | None,
        word: int,
        now: float,
        out: list[CoalescedFrame],
    ) -> None:
        scu = self._flows.get(key) if key is not None else None
        if seg is None or not seg[1]:  # not TCP, or exceptions 2-6: indicate alone
            if scu is not None and key is not None:
                self._end(key, out)
            self._alone(frame, word, out)
            return
        assert key is not None
        _, _, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, _, _, poff, end, _ = seg
        if scu is None:
            if plen or self.coalesce_dup_acks:
                self._start(key, frame, seg, now, out)
            else:
                self._alone(frame, word, out)
            return
        if (
            match != scu.match
            or (tsval >= 0 and ((tsval - scu.tsval) & _M32 >= _HALF))
            or (tsval >= 0 and ((tsecr - scu.tsecr) & _M32 >= _HALF))
        ):
            # Exception 8 / differing IP fields / timestamps going back: resume with seg.
            self._end(key, out)
            self._start(key, frame, seg, now, out)
            return
        ack_delta = (ack - scu.ack) & _M32
        if plen:
            if (
                seq != scu.nxt
                or scu.dup
                or ack_delta >= _HALF
                or scu.size + plen > MAX_IP_DATAGRAM  # exception 7
            ):
                self._end(key, out)
                self._start(key, frame, seg, now, out)
                return
            scu.chunks.append(memoryview(frame)[poff:end])
            scu.csum = None
            scu.size += plen
            scu.nxt = (seq + plen) & _M32
            scu.data_segs += 1
        elif seq == scu.nxt and ack_delta == 0:
            if win == scu.win:  # duplicate ACK
                if not self.coalesce_dup_acks:
                    self._end(key, out)
                    self._alone(frame, word, out)
                    return
                if scu.data_segs:
                    self._end(key, out)
                    self._start(key, frame, seg, now, out)
                    return
                scu.dup += 1
            # else: a window update, coalesced and not counted
        else:  # any other pure ACK ends the SCU and is indicated alone
            self._end(key, out)
            if self.coalesce_dup_acks and seq == scu.nxt and ack_delta < _HALF:
                self._start(key, frame, seg, now, out)  # a cumulative ACK: track dup ACKs
            else:
                self._alone(frame, word, out)
            return
        scu.ack, scu.win = ack, win
        scu.psh |= flags & TCP_PSH
        scu.ttl = min(scu.ttl, ttl)
        if tsval >= 0:
            scu.tsval, scu.tsecr = tsval, tsecr
        scu.merged += 1
        if flags & TCP_PSH and plen and self.flush_on_psh:
            self._end(key, out)

    def _finalize(self, scu: _Scu) -> CoalescedFrame:
        """Build the SCU frame ("Updating the IP Headers for Coalesced Segments")."""
        if not scu.merged:
            return CoalescedFrame(bytes(scu.first), checksum=receive_info(scu.word))
        l3, l4, poff = scu.l3, scu.l4, scu.poff
        header = bytearray(memoryview(scu.first)[:poff])
        length = scu.size - (poff - l3)  # payload bytes
        if scu.v4:
            _H.pack_into(header, l3 + 2, poff - l3 + length)
            header[l3 + 8] = scu.ttl
            header[l3 + 10 : l3 + 12] = b"\0\0"
            _H.pack_into(header, l3 + 10, _checksum(int.from_bytes(header[l3 : l3 + 20])))
            addresses = header[l3 + 12 : l3 + 20]
        else:
            _H.pack_into(header, l3 + 4, poff - l3 - 40 + length)
            header[l3 + 7] = scu.ttl
            addresses = header[l3 + 8 : l3 + 40]
        _I.pack_into(header, l4 + 8, scu.ack)
        header[l4 + 13] |= scu.psh
        _H.pack_into(header, l4 + 14, scu.win)
        ts_rel = (scu.match >> 16) & 0x3F
        delta = 0
        if scu.tsval >= 0 and ts_rel != 0x3F:
            _II.pack_into(header, l4 + ts_rel, scu.tsval, scu.tsecr)
            delta = (scu.tsval - scu.tsval0) & _M32
        header[l4 + 16 : l4 + 18] = b"\0\0"
        # Big-endian words as one integer: 2**16 == 1 (mod 0xFFFF), so it is congruent to
        # their sum (the TCP header length is even); the pseudo-header length likewise.
        total = int.from_bytes(addresses) + IPPROTO_TCP + len(header) - l4 + length
        total += int.from_bytes(header[l4:])
        if scu.csum is None:
            total += ones_complement_sum(b"".join(scu.chunks))
        else:
            total += scu.csum
        _H.pack_into(header, l4 + 16, _checksum(total))
        count = scu.data_segs or (1 if scu.dup else 0)
        info = _RSC_INFO.get((count, scu.dup))
        if info is None:
            info = NdisRscNblInfoInfo(CoalescedSegCount=count, DupAckCount=scu.dup)
            if len(_RSC_INFO) < 4096:
                _RSC_INFO[count, scu.dup] = info
        return CoalescedFrame(b"".join([header, *scu.chunks]), info, _SCU_INFO, delta)


__all__ = ["CoalescedFrame", "RscCoalescer"]
