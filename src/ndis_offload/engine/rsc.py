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

The rules live in :mod:`~ndis_offload.engine.rsc_rules`, the unit and the indicated frame in
:mod:`~ndis_offload.engine.rsc_unit` (:meth:`Scu.extend` is the one place a unit grows); this
module is the per-frame path, :mod:`~ndis_offload.engine.rsc_batch` the batch path.

Time only arrives as ``now``: SCUs older than ``timeout`` leave on the next ``push`` or on
``flush(now)`` (the docs' "must not delay the indication" is the caller's DPC boundary:
call ``flush()`` at its end). Frames must not be modified while the coalescer holds them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ndis_offload.engine.receive import TCP_SUCCEEDED, receive_info, receive_word, validate_word
from ndis_offload.engine.rsc_pending import Pending, settle
from ndis_offload.engine.rsc_rules import (
    ALLOWED_FLAGS,
    E1_RESOURCES,
    E7_DATAGRAM_SIZE,
    E8_ECN,
    HALF,
    M32,
    MAX_IP_DATAGRAM,
    SCU_CHECKSUM,
    TS_NOP_NOP,
    breaks,
    ecn_differs,
    goes_back,
    intrinsic_exception,
    ip_match,
    match_word,
)
from ndis_offload.engine.rsc_unit import CoalescedFrame, Scu, alone
from ndis_offload.errors import PacketError
from ndis_offload.packet.headers import parse_frame, plain_tcp
from ndis_offload.packet.proto import IPPROTO_TCP, TCP_ACK, TCP_PSH, Frame
from ndis_offload.structs.nbl_info import NdisRscNblInfoInfo

_H = struct.Struct("!H")
_I = struct.Struct("!I")
_II = struct.Struct("!II")
_TCP = struct.Struct("!IIBBH")  # seq, ack, offset/NS byte, flags, window

_Seg = tuple[bytes, bool, int, int, int, int, int, int, int, int, int, int, int, int, int, int]
"""(key, ok, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, l3, l4, poff, end, word);
``ok`` is false for a segment-intrinsic exception; ``tsval`` is -1 without timestamps."""


def _tcp_options(view: memoryview, start: int, stop: int) -> tuple[bool, int]:
    """(only NOP / EOL / timestamps present, TSval offset from ``start - 20`` or -1)."""
    if stop - start == 12 and _I.unpack_from(view, start)[0] == TS_NOP_NOP:
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
    ok = not intrinsic_exception(
        options_ok=opts_ok,
        fragment=layout.is_fragment,
        ip_header_len=layout.l3_len,
        v4=v4,
        checksum_word=word,
        ns_and_reserved=off & 0xF,
        flags=flags,
    )
    word0 = _I.unpack_from(view, l3)[0]
    ip_bits = ip_match(v4, word0, _H.unpack_from(view, l3 + 6)[0] if v4 else 0)
    match = match_word(ip_bits, ts_rel, poff - l4, flags)
    ttl = view[l3 + 8] if v4 else view[l3 + 7]
    tsval, tsecr = _II.unpack_from(view, l4 + ts_rel) if ts_rel >= 0 else (-1, -1)
    seg = (key, ok, seq, ack, win, flags, end - poff, match, ttl, tsval, tsecr, l3, l4, poff, end,
           word)  # fmt: skip
    return seg, key, word


_NOT_COALESCED = NdisRscNblInfoInfo()
_ACK_CHECKSUM = {True: receive_info(SCU_CHECKSUM), False: receive_info(TCP_SUCCEEDED)}
"""The verdicts of a pure ACK the fast path takes (both checksums good), by ``IPv4``."""


def _pure_ack(frame: bytes) -> tuple[int, bool] | None:
    """(TCP offset, IPv4) when ``frame`` is a pure ACK (no payload) in the commonest layout
    (:func:`~ndis_offload.packet.headers.plain_tcp`) that carries none of the exceptions
    E2-E6 (flags within ACK / PSH / ECE / CWR with ACK set, only NOP / EOL / timestamp
    options, both checksums good); else ``None`` and :meth:`RscCoalescer.push` takes the
    general path. ``_scalar_seg`` would find it ``ok`` with a payload length of 0."""
    found = plain_tcp(frame)
    if found is None:
        return None
    l4, end, doff = found
    if end != l4 + doff:  # a payload
        return None
    v4 = l4 == 34
    if v4 and int.from_bytes(frame[14:34]) % 0xFFFF:  # the header's ones' complement sum
        return None  # is 0xFFFF (non-zero words: never a folded 0)
    flags = frame[l4 + 13]
    if frame[l4 + 12] & 0xF or flags & ~ALLOWED_FLAGS or not flags & TCP_ACK:
        return None
    if doff > 20 and not _tcp_options(memoryview(frame), l4 + 20, l4 + doff)[0]:
        return None
    # The addresses lie just before the TCP header: one sum covers them, the header and the
    # rest of the pseudo-header, protocol and TCP length (RFC 9293 3.1). An even number of
    # bytes read as one big-endian integer is their 16-bit word sum modulo 0xFFFF
    # (2**16 == 1 mod 0xFFFF); a good segment's ones' complement sum is 0xFFFF.
    addresses = 26 if v4 else 22
    if (int.from_bytes(frame[addresses:end]) + IPPROTO_TCP + doff) % 0xFFFF:
        return None
    return l4, v4


def _exception_of(frame: Frame) -> int:
    """The segment-intrinsic exception (E2-E6) of a frame ``_scalar_seg`` found not ``ok``
    (parsed again: only exceptional frames take this path)."""
    view = memoryview(frame)
    layout = parse_frame(view)
    l4 = layout.l4_offset
    _, _, off, flags, _ = _TCP.unpack_from(view, l4 + 4)
    return intrinsic_exception(
        options_ok=_tcp_options(view, l4 + 20, layout.payload_offset)[0],
        fragment=layout.is_fragment,
        ip_header_len=layout.l3_len,
        v4=layout.ip_version == 4,
        checksum_word=receive_word(view, layout),
        ns_and_reserved=off & 0xF,
        flags=flags,
    )


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
        self._flows: dict[bytes, Scu] = {}
        self._pending: Pending | None = None
        """Growth held for the units of a bulk mix of flows (``rsc_pending``)."""
        self.exceptions = [0] * 9
        """``exceptions[n]``: how often exception ``n`` of "Exception conditions that
        terminate coalescing" was met (E1 an SCU given up for want of flow slots, E2-E6 a
        segment indicated alone for what it carries, E7 a unit ended at 65535 bytes, E8 an
        ECN change); the rule outcomes of the flowcharts (gaps, pure ACKs, timestamps going
        back) are not exceptions here. ``rsc_rules.ABORT_EXCEPTIONS`` make ``Aborts``."""

    @property
    def flow_count(self) -> int:
        """Flows with an SCU being tracked."""
        return len(self._flows)

    # --- public entry points --------------------------------------------------------------

    def push(self, frame: Frame, now: float) -> list[CoalescedFrame]:
        """Receive one frame; returns the frames indicated as a result, in order."""
        out: list[CoalescedFrame] = []
        if self._pending is not None:
            self._settle()
        flows = self._flows
        if flows:
            self._expire(now, out)
        if type(frame) is bytes and not self.coalesce_dup_acks:
            # A pure ACK with no SCU held for its flow is indicated as received (the rules'
            # "other pure ACKs"): the fast path skips the segment decode, same output.
            ack = _pure_ack(frame)
            if ack is not None:
                l4, v4 = ack
                if not flows or _key(frame, 0, 14, l4, v4) not in flows:
                    out.append(
                        CoalescedFrame(frame, rsc=_NOT_COALESCED, checksum=_ACK_CHECKSUM[v4])
                    )
                    return out
        seg, key, word = _scalar_seg(frame)
        self._process(frame, seg, key, word, now, out)
        return out

    def push_batch(self, frames: Sequence[Frame], now: float) -> list[CoalescedFrame]:
        """:meth:`push` every frame (one receive DPC's worth) at the same ``now``.

        The common data segments are decoded, checksummed and grouped by flow in one
        vectorized pass (:mod:`~ndis_offload.engine.rsc_fast`) and the rules applied to
        them with array operations (:mod:`~ndis_offload.engine.rsc_batch`); other frames,
        and every frame of a flow that has one, go through the per-frame rules; outputs
        are ordered as :meth:`push` would emit them.
        """
        return _push_batch(self, frames, now)

    def flush(self, now: float | None = None) -> list[CoalescedFrame]:
        """Indicate every SCU (``now=None``) or those older than ``timeout`` at ``now``."""
        out: list[CoalescedFrame] = []
        self._settle()
        if now is None:
            for scu in self._flows.values():
                out.append(scu.finalize())
            self._flows.clear()
        else:
            self._expire(now, out)
        return out

    # --- the per-frame path ---------------------------------------------------------------

    def _settle(self) -> None:
        """Join the growth held for a bulk mix of flows to their units (``rsc_pending``):
        before anything but ``push_batch``'s bulk path reads or ends a unit."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            settle(pending)

    def _expire(self, now: float, out: list[CoalescedFrame]) -> None:
        flows = self._flows
        limit = now - self.timeout
        while flows:
            key = next(iter(flows))  # insertion order == start order: the oldest first
            if flows[key].started > limit:
                break
            self._settle()
            out.append(flows.pop(key).finalize())

    def _start(
        self, key: bytes, frame: Frame, seg: _Seg, now: float, out: list[CoalescedFrame]
    ) -> None:
        """Start an SCU with ``seg`` (evicting the oldest when ``max_flows`` are held: E1)."""
        flows = self._flows
        if len(flows) >= self.max_flows:
            self.exceptions[E1_RESOURCES] += 1
            oldest = next(iter(flows))
            out.append(flows.pop(oldest).finalize())
        _, _, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, l3, l4, poff, _, word = seg
        scu = Scu.start(frame, l3, l4, poff, match >> 62 == 0, seq, plen, ack, win, flags, ttl,
                        match, tsval, tsecr, word, now, 0)  # fmt: skip
        if scu.psh and self.flush_on_psh and plen:
            out.append(scu.finalize())
        else:
            flows[key] = scu

    def _end(self, key: bytes, out: list[CoalescedFrame]) -> None:
        out.append(self._flows.pop(key).finalize())

    def _process(
        self,
        frame: Frame,
        seg: _Seg | None,
        key: bytes | None,
        word: int,
        now: float,
        out: list[CoalescedFrame],
    ) -> None:
        """Apply the rules to one frame ("Rules for coalescing TCP/IP packets")."""
        scu = self._flows.get(key) if key is not None else None
        if seg is None or not seg[1]:  # not TCP, or exceptions E2-E6: indicate alone
            if seg is not None:
                self.exceptions[_exception_of(frame)] += 1
            if scu is not None and key is not None:
                self._end(key, out)
            out.append(alone(frame, word))
            return
        assert key is not None
        _, _, seq, ack, win, flags, plen, match, ttl, tsval, tsecr, _, _, poff, end, _ = seg
        if scu is None:
            if plen or self.coalesce_dup_acks:
                self._start(key, frame, seg, now, out)
            else:
                out.append(alone(frame, word))
            return
        tail = scu.tail
        if plen:  # data: the continuation rule, no dup ACKs held, E7
            if breaks(tail, (match, (seq + plen) & M32, ack, tsval, tsecr), plen):
                if ecn_differs(tail[0], match):
                    self.exceptions[E8_ECN] += 1
                self._end(key, out)
                self._start(key, frame, seg, now, out)
                return
            if scu.dup or scu.size + plen > MAX_IP_DATAGRAM:
                if not scu.dup:
                    self.exceptions[E7_DATAGRAM_SIZE] += 1
                self._end(key, out)
                self._start(key, frame, seg, now, out)
                return
            psh = flags & TCP_PSH
            scu.extend([memoryview(frame)[poff:end]], plen, 1, 1, psh, ttl,
                       (match, (seq + plen) & M32, ack, tsval, tsecr), win, None)  # fmt: skip
            if psh and self.flush_on_psh:
                self._end(key, out)
            return
        h_match, nxt, h_ack, h_tsval, h_tsecr = tail
        if match != h_match or goes_back(h_tsval, tsval) or goes_back(h_tsecr, tsecr):
            # E8 / differing IP fields / timestamps going back: resume with the segment.
            if ecn_differs(h_match, match):
                self.exceptions[E8_ECN] += 1
            self._end(key, out)
            self._start(key, frame, seg, now, out)
            return
        ack_delta = (ack - h_ack) & M32
        if seq != nxt or ack_delta:  # any other pure ACK ends the SCU, indicated alone
            self._end(key, out)
            if self.coalesce_dup_acks and seq == nxt and ack_delta < HALF:
                self._start(key, frame, seg, now, out)  # a cumulative ACK: track dup ACKs
            else:
                out.append(alone(frame, word))
            return
        if win == scu.win:  # a duplicate ACK
            if not self.coalesce_dup_acks:
                self._end(key, out)
                out.append(alone(frame, word))
                return
            if scu.data_segs:
                self._end(key, out)
                self._start(key, frame, seg, now, out)
                return
            scu.dup += 1
        # a window update (or a counted duplicate ACK): coalesced, not a data segment
        scu.extend([], 0, 1, 0, flags & TCP_PSH, ttl, (match, nxt, ack, tsval, tsecr), win, 0)


# The batch path applies the same rules with array operations; it needs this module's
# per-frame path for the frames it cannot take, hence the import at the end.
from ndis_offload.engine.rsc_batch import push_batch as _push_batch  # noqa: E402

__all__ = ["CoalescedFrame", "RscCoalescer"]
