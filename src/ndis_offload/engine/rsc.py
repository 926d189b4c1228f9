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

import numpy as np

from ndis_offload.engine.batch import batch_words, locate_batch
from ndis_offload.engine.receive import (
    IP_SUCCEEDED,
    TCP_SUCCEEDED,
    Frame,
    receive_info,
    receive_word,
    validate_word,
)
from ndis_offload.errors import PacketError
from ndis_offload.packet.checksum import (
    finish,
    ones_complement_sum,
    pseudo_header_sum_ipv4,
    pseudo_header_sum_ipv6,
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
        "word",
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
        """:meth:`push` every frame (one receive DPC's worth), validating all checksums and
        locating all headers in one vectorized pass."""
        out: list[CoalescedFrame] = []
        self._expire(now, out)
        if not frames:
            return out
        layout = locate_batch(frames)
        words = batch_words(layout, frames, slow=False)
        fast = layout.fast & (layout.proto == IPPROTO_TCP) & (layout.l4_len >= 20)
        v4 = layout.version == 4
        l3, l4, end = layout.l3, layout.l4, layout.end
        seq, ack = layout.u32(l4 + 4), layout.u32(l4 + 8)
        off, flags, win = layout.u8(l4 + 12), layout.u8(l4 + 13), layout.u16(l4 + 14)
        poff = l4 + layout.l4_len
        word0 = layout.u32(l3)
        frag = layout.u16(l3 + 6)
        ts_std = (layout.l4_len == 32) & (layout.u32(l4 + 20) == _TS_NOP_NOP)
        opts_ok = (layout.l4_len == 20) | ts_std
        ts_rel = np.where(ts_std, 24, -1)
        tsval = np.where(ts_std, layout.u32(l4 + 24), -1)
        tsecr = np.where(ts_std, layout.u32(l4 + 28), -1)
        want = np.where(v4, _SCU_CHECKSUM, TCP_SUCCEEDED)
        ok = opts_ok & ~layout.fragment & (layout.l3_len == np.where(v4, 20, 40))
        ok &= (words & _SCU_CHECKSUM) == want
        ok &= ((off & 0xF) == 0) & ((flags & ~_ALLOWED_FLAGS) == 0) & ((flags & TCP_ACK) != 0)
        ip_match = np.where(v4, ((word0 >> 16) & 0xFF) << 1 | (frag >> 14) & 1, (1 << 38) | word0)
        match = ip_match << 24 | (ts_rel & 0x3F) << 16 | (poff - l4) << 8 | flags & TCP_ECN_FLAGS
        ttl = np.where(v4, layout.u8(l3 + 8), layout.u8(l3 + 7))
        starts = layout.starts
        rows = zip(
            fast.tolist(), ok.tolist(), seq.tolist(), ack.tolist(), win.tolist(),
            flags.tolist(), (end - poff).tolist(), match.tolist(), ttl.tolist(),
            tsval.tolist(), tsecr.tolist(), (l3 - starts).tolist(), (l4 - starts).tolist(),
            (poff - starts).tolist(), (end - starts).tolist(), words.tolist(), starts.tolist(),
            v4.tolist(), (layout.fast & (layout.proto != IPPROTO_TCP)).tolist(), strict=True,
        )  # fmt: skip
        buffer = layout.buffer
        process = self._process
        for frame, row in zip(frames, rows, strict=True):
            if not row[0]:
                if row[18]:  # located, not TCP: indicated as received
                    self._alone(frame, row[15], out)
                    continue
                seg_, key_, word_ = _scalar_seg(frame)
                process(frame, seg_, key_, word_, now, out)
                continue
            base = row[16]
            key = _key(buffer, base, base + row[11], base + row[12], row[17])
            seg: _Seg = (key, *row[1:16])
            process(frame, seg, key, row[15], now, out)
        return out

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
        payload = b"".join(scu.chunks)
        if scu.v4:
            _H.pack_into(header, l3 + 2, poff - l3 + len(payload))
            header[l3 + 8] = scu.ttl
            header[l3 + 10 : l3 + 12] = b"\0\0"
            _H.pack_into(header, l3 + 10, finish(ones_complement_sum(header[l3 : l3 + 20])))
            pseudo = pseudo_header_sum_ipv4(
                bytes(header[l3 + 12 : l3 + 16]), bytes(header[l3 + 16 : l3 + 20]),
                IPPROTO_TCP, len(header) - l4 + len(payload),
            )  # fmt: skip
        else:
            _H.pack_into(header, l3 + 4, poff - l3 - 40 + len(payload))
            header[l3 + 7] = scu.ttl
            pseudo = pseudo_header_sum_ipv6(
                bytes(header[l3 + 8 : l3 + 24]), bytes(header[l3 + 24 : l3 + 40]),
                IPPROTO_TCP, len(header) - l4 + len(payload),
            )  # fmt: skip
        _I.pack_into(header, l4 + 8, scu.ack)
        header[l4 + 13] |= scu.psh
        _H.pack_into(header, l4 + 14, scu.win)
        ts_rel = (scu.match >> 16) & 0x3F
        delta = 0
        if scu.tsval >= 0 and ts_rel != 0x3F:
            _II.pack_into(header, l4 + ts_rel, scu.tsval, scu.tsecr)
            delta = (scu.tsval - scu.tsval0) & _M32
        header[l4 + 16 : l4 + 18] = b"\0\0"
        total = ones_complement_sum(header[l4:], pseudo)  # TCP header length is even
        _H.pack_into(header, l4 + 16, finish(ones_complement_sum(payload, total)))
        count = scu.data_segs or (1 if scu.dup else 0)
        return CoalescedFrame(
            bytes(header) + payload,
            NdisRscNblInfoInfo(CoalescedSegCount=count, DupAckCount=scu.dup),
            receive_info(_SCU_CHECKSUM),
            delta,
        )


__all__ = ["CoalescedFrame", "RscCoalescer"]
