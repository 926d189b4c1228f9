"""The single coalesced unit (SCU) of one flow: started by a segment, extended by the
segments the rules let join it (:func:`extend_units`, the one place both paths grow units),
and built into the indicated frame (:meth:`Scu.finalize`: "Updating the IP headers for
coalesced segments", "Indicating coalesced segments")."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ndis_offload.engine.receive import receive_info
from ndis_offload.engine.rsc_rules import (
    M32,
    NO_TS_OFFSET,
    SCU_CHECKSUM,
    ts_offset,
)
from ndis_offload.packet.checksum import ones_complement_sum
from ndis_offload.packet.proto import IPPROTO_TCP, TCP_PSH, Frame
from ndis_offload.structs.nbl_info import (
    NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive,
)

_H = struct.Struct("!H")
_II = struct.Struct("!II")
_TTL_PROTO_CHECKSUM = struct.Struct("!BBH")
"""IPv4 TTL, protocol and header checksum (bytes 8-11)."""
_ACK_TO_CHECKSUM = struct.Struct("!IBBHH")
"""TCP acknowledgment number, data offset, flags, window and checksum (bytes 8-17)."""


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


def alone(frame: Frame, word: int) -> CoalescedFrame:
    """A frame indicated as received: its checksum verdicts, no RSC info."""
    return CoalescedFrame(bytes(frame), checksum=receive_info(word))


def checksum_field(total: int) -> int:
    """``finish(total)``: the checksum field for a positive sum of 16-bit words, taken mod
    0xFFFF (the folded sum of non-zero data is 1..0xFFFF, never 0)."""
    return 0xFFFF - ((total - 1) % 0xFFFF + 1)


def placed_sum(psums: list[int], plens: list[int], offset: int) -> int:
    """The word sum, in :attr:`Scu.csum`'s scale, of payloads with little-endian word sums
    ``psums`` placed one after the other from byte ``offset`` of a unit's payload: a sum
    at an even offset as it is, at an odd one times 256 (a sum moved by one byte is
    multiplied by 256, RFC 1071 §2)."""
    total = 0
    for value, size in zip(psums, plens, strict=True):
        total += value << 8 if offset & 1 else value
        offset += size
    return total


_RSC_INFO: dict[tuple[int, int], NdisRscNblInfoInfo] = {}
"""Shared (immutable) ``NDIS_RSC_NBL_INFO`` values by (segment count, duplicate ACKs)."""
_SCU_INFO = receive_info(SCU_CHECKSUM)


class Scu:
    """The SCU tracked for one flow: the first segment's frame and headers, the payloads
    joined so far, and the header fields the rules compare and the SCU carries."""

    __slots__ = (
        "first", "l3", "l4", "poff", "v4", "tail", "win", "psh", "ttl", "tsval0", "chunks",
        "size", "data_segs", "merged", "dup", "started", "word", "csum", "order",
    )  # fmt: skip

    first: Frame
    l3: int
    l4: int
    poff: int
    v4: bool
    tail: Sequence[int]
    """``rsc_rules.UNIT_FIELDS``: match, NXT, the latest ACK, TSval and TSecr."""
    win: int
    psh: int
    ttl: int
    tsval0: int
    chunks: list[Frame]
    size: int
    """IP datagram bytes (header and payload) held."""
    data_segs: int
    merged: int
    """Segments joined after the first (0: the first segment alone, indicated unchanged)."""
    dup: int
    started: float
    word: int
    """The first segment's receive checksum word."""
    csum: int | None
    """The payload's word sum when known, scaled as a little-endian word sum at an even
    offset (the scan's ``psum``): congruent (mod 0xFFFF) to 256 times its big-endian word
    sum (``csum << 8`` is that sum, as 256 * 256 == 1 mod 0xFFFF)."""
    order: int
    """Index in its batch of the frame that started it (``push_batch`` ordering)."""

    @classmethod
    def start(
        cls, frame: Frame, l3: int, l4: int, poff: int, v4: bool, seq: int, plen: int,
        ack: int, win: int, flags: int, ttl: int, match: int, tsval: int, tsecr: int,
        word: int, now: float, order: int,
    ) -> Scu:  # fmt: skip
        """A unit holding one segment ("No SCU for the connection: start one")."""
        scu = cls.__new__(cls)
        scu.first = frame
        scu.l3, scu.l4, scu.poff, scu.v4 = l3, l4, poff, v4
        scu.tail = [match, (seq + plen) & M32, ack, tsval, tsecr]
        scu.win = win
        scu.psh = flags & TCP_PSH
        scu.ttl = ttl
        scu.tsval0 = tsval
        scu.chunks = [memoryview(frame)[poff : poff + plen]] if plen else []
        scu.size = poff - l3 + plen
        scu.data_segs = 1 if plen else 0
        scu.merged = scu.dup = 0
        scu.started = now
        scu.word = word
        scu.csum = None
        scu.order = order
        return scu

    def extend(
        self, chunks: Sequence[Frame], length: int, segs: int, data_segs: int, psh: int, ttl: int,
        tail: Sequence[int], win: int, psum: int | None,
    ) -> None:  # fmt: skip
        """Join segments to this unit: :func:`extend_units` of one unit."""
        extend_units(((self, chunks, length, segs, data_segs, psh, ttl, tail, win, psum),))

    def payload_len(self) -> int:
        """Payload bytes held."""
        return self.size - (self.poff - self.l3)

    def finalize(self) -> CoalescedFrame:
        """The indicated frame ("Updating the IP headers for coalesced segments": the first
        segment's headers and IPv4 ID, lengths updated, TTL / Hop Limit the minimum, the
        latest ACK, window and timestamps, PSH ORed, checksums recomputed; "Indicating
        coalesced segments": ``CoalescedSegCount`` data segments, ``DupAckCount``,
        ``RscTcpTimestampDelta``). A unit of one unchanged segment leaves as received."""
        if not self.merged:
            return CoalescedFrame(bytes(self.first), checksum=receive_info(self.word))
        l3, l4, poff = self.l3, self.l4, self.poff
        header = bytearray(memoryview(self.first)[:poff])
        length = self.size - (poff - l3)  # payload bytes
        if self.v4:
            _H.pack_into(header, l3 + 2, poff - l3 + length)
            _TTL_PROTO_CHECKSUM.pack_into(header, l3 + 8, self.ttl, header[l3 + 9], 0)
            _H.pack_into(header, l3 + 10, checksum_field(int.from_bytes(header[l3 : l3 + 20])))
            addresses = header[l3 + 12 : l3 + 20]
        else:
            _H.pack_into(header, l3 + 4, poff - l3 - 40 + length)
            header[l3 + 7] = self.ttl
            addresses = header[l3 + 8 : l3 + 40]
        match, _, ack, tsval, tsecr = self.tail
        _ACK_TO_CHECKSUM.pack_into(
            header, l4 + 8, ack, header[l4 + 12], header[l4 + 13] | self.psh, self.win, 0
        )  # (the checksum field zero until the sum is taken)
        ts_rel = ts_offset(match)
        delta = 0
        if tsval >= 0 and ts_rel != NO_TS_OFFSET:
            _II.pack_into(header, l4 + ts_rel, tsval, tsecr)
            delta = (tsval - self.tsval0) & M32
        # Big-endian words as one integer: 2**16 == 1 (mod 0xFFFF), so it is congruent to
        # their sum (the TCP header length is even); the pseudo-header length likewise.
        total = int.from_bytes(addresses) + IPPROTO_TCP + len(header) - l4 + length
        total += int.from_bytes(header[l4:])
        csum = self.csum
        total += ones_complement_sum(b"".join(self.chunks)) if csum is None else csum << 8
        _H.pack_into(header, l4 + 16, checksum_field(total))
        count = self.data_segs or (1 if self.dup else 0)
        info = _RSC_INFO.get((count, self.dup))
        if info is None:
            info = NdisRscNblInfoInfo(CoalescedSegCount=count, DupAckCount=self.dup)
            if len(_RSC_INFO) < 4096:
                _RSC_INFO[count, self.dup] = info
        self.chunks.insert(0, header)
        return CoalescedFrame(b"".join(self.chunks), info, _SCU_INFO, delta)


UnitGrowth = tuple[Scu, Sequence[Frame], int, int, int, int, int, Sequence[int], int, int | None]
"""One unit and what joins it: (unit, chunks, length, segs, data_segs, psh, ttl, tail, win,
psum), as :func:`extend_units` takes them."""


def extend_units(rows: Iterable[UnitGrowth]) -> None:
    """Join to each unit the segments the rules let continue it: ``segs`` segments
    (``data_segs`` of them with data, ``length`` payload bytes in ``chunks``). The SCU takes
    the last segment's NXT, ACK, window and timestamps (``tail``, ``win``), ORs PSH and
    keeps the minimum TTL / Hop Limit ("Updating the IP headers for coalesced segments").
    ``psum`` is the payload's word sum placed at the unit's payload offset
    (:func:`placed_sum`, in :attr:`Scu.csum`'s scale), or None when not known. The one
    place a unit grows: per frame (:meth:`Scu.extend`), per block, and for all the flows of
    a bulk DPC in one call (one row per unit)."""
    for scu, pieces, length, seg, data, psh, ttl, tail, win, psum in rows:
        if length:
            scu.chunks += pieces
            scu.size += length
            csum = scu.csum
            if csum is not None:
                scu.csum = None if psum is None else csum + psum
        scu.data_segs += data
        scu.merged += seg
        scu.tail = tail
        scu.win = win
        scu.psh |= psh
        if ttl < scu.ttl:
            scu.ttl = ttl


__all__ = [
    "CoalescedFrame", "Scu", "UnitGrowth", "alone", "checksum_field", "extend_units", "placed_sum",
]  # fmt: skip
