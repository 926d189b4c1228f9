"""Streaming pcap / pcapng reader and writer: a small struct-based codec over large chunks.

Why hand-written: dpkt's pcapng ``Reader`` uses only the first Interface Description Block,
turns timestamps into floats (nanoseconds lost) and drops comments; python-pcapng builds an
object tree per block (slow, and not installed here); scapy's ``RawPcapNgReader`` keeps
per-packet metadata but its writer re-encodes section and interface blocks rather than
keeping them byte for byte, and reads ~10x slower than one ``struct.unpack_from`` per
record. This module reads the file in chunks of a few MiB, walks the record headers with
precompiled ``struct.Struct`` objects and hands out whole chunks (the raw bytes plus numpy
arrays of record offsets and lengths) for vectorized work, or single records. Nothing is
re-encoded that need not be: the pcap file header, every pcapng block other than a packet
(sections, interfaces with their link types and options, name resolution, custom blocks,
comments) and every packet's options and raw 64-bit timestamp pass through verbatim, so
nanosecond (or any ``if_tsresol``) timestamps survive a rewrite exactly.

Formats: pcap in both byte orders, micro- and nanosecond magic; pcapng with several
sections (each with its own byte order) and interfaces; Enhanced, Simple and obsolete Packet
Blocks (the latter two are written back as Enhanced Packet Blocks). Errors name the frame
(0-based ``frame_index``; the CLI prints Wireshark's 1-based number) and the file offset.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, cast

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import BackendError, PacketError
from ndis_offload.packet.proto import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2

IntArray = npt.NDArray[np.int64]
Format = Literal["pcap", "pcapng"]


PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
PCAPNG_IDB = 1
PCAPNG_OPB = 2
PCAPNG_SPB = 3
PCAPNG_EPB = 6
OPT_IF_TSRESOL = 9

CHUNK_BYTES = 4 << 20
"""Bytes read per chunk; memory use is a small multiple of this, whatever the file size."""
MAX_RECORD = 16 << 20
"""A record or block larger than this is taken as corruption, not data."""
MAX_CHUNK_RECORDS = 32768
"""Records per chunk at most, so memory per chunk stays flat even for tiny records."""
WALK_SPAN = 64 * 1600
"""Bytes of pcap records walked one by one after a run of equal-sized records was looked for
and not found; doubled after each such miss (up to :data:`MAX_WALK_SPAN`), so a capture of
mixed sizes is walked in a few long stretches (each stretch costs a few numpy calls) while
one of equal sizes is still found within ~100 KB."""
MAX_WALK_SPAN = 4 << 20
MAX_ERRORS_KEPT = 1000
"""Errors kept in ``CaptureReader.errors`` (``error_count`` counts them all)."""


@dataclass(slots=True)
class Interface:
    """A capture interface (pcap: the file header; pcapng: an Interface Description Block)."""

    linktype: int
    snaplen: int
    ticks_per_second: int


@dataclass(slots=True)
class Packet:
    """One captured frame and what is needed to write it back unchanged."""

    index: int
    """0-based frame number over the whole file."""
    offset: int
    """File offset of the record header / block."""
    data: bytes
    orig_len: int
    linktype: int
    ts_ticks: int
    """Raw timestamp in units of ``1 / ticks_per_second`` seconds."""
    ticks_per_second: int
    interface: int = 0
    options: bytes = b""
    """pcapng packet options (comments, flags), verbatim in the section's byte order."""
    big_endian: bool = False
    """The byte order of the record's section (pcapng) or file (pcap)."""
    ts_fields: tuple[int, int] | None = None
    """pcap: the record header's (seconds, fraction) exactly as stored, even when the
    fraction is out of range (written back unchanged)."""

    @property
    def timestamp_ns(self) -> int:
        """The timestamp in nanoseconds since the epoch (exact for ns / us resolutions)."""
        return self.ts_ticks * 1_000_000_000 // self.ticks_per_second


@dataclass(frozen=True, slots=True)
class Block:
    """A pcapng block other than a packet, verbatim (section, interface, comments, ...)."""

    offset: int
    raw: bytes


@dataclass(slots=True)
class Chunk:
    """A run of consecutive file bytes holding whole records, for vectorized processing.

    Concatenating every chunk's ``buffer`` reproduces the file (minus a truncated tail).
    Array entries describe the packets in order; offsets are relative to ``buffer``.
    """

    buffer: bytes | bytearray
    """The chunk's bytes; the reader hands out a buffer of its own that it never touches
    again (a ``bytearray``: no copy is made to trim it to the chunk)."""
    file_offset: int
    first_index: int
    data_offsets: IntArray
    caplens: IntArray
    origlens: IntArray
    linktypes: IntArray
    record_offsets: IntArray
    ts_ticks: list[int]
    ticks_per_second: list[int]
    interfaces: list[int]
    options: list[tuple[int, int]]
    big_endian: list[bool]
    blocks: list[tuple[int, int, int]] = field(default_factory=list)
    """Non-packet blocks as (packets before it, start, end) in ``buffer``."""
    bad: set[int] = field(default_factory=set)
    """Positions (in the arrays) of packets whose record was malformed (``--keep-going``)."""
    skipped: list[tuple[int, int]] = field(default_factory=list)
    """Unreadable byte ranges (start, end) in ``buffer`` that were skipped (``--keep-going``);
    when present, write the chunk record by record, never as raw bytes."""
    pcap: bool = False
    """Records are pcap records (``Packet.ts_fields`` is filled)."""

    def __len__(self) -> int:
        return len(self.data_offsets)

    def packets(self) -> Iterator[Packet | Block]:
        """The chunk's records as objects, blocks in their file position."""
        blocks = iter(self.blocks)
        pending = next(blocks, None)
        buf = self.buffer
        view = memoryview(buf)  # slices of it become bytes, whatever the buffer's type
        stamp = struct.Struct((">" if self.big_endian and self.big_endian[0] else "<") + "II")
        for i in range(len(self) + 1):
            while pending is not None and pending[0] == i:
                yield Block(self.file_offset + pending[1], bytes(view[pending[1] : pending[2]]))
                pending = next(blocks, None)
            if i == len(self):
                break
            start = int(self.data_offsets[i])
            record = int(self.record_offsets[i])
            o0, o1 = self.options[i]
            yield Packet(
                index=self.first_index + i,
                offset=self.file_offset + record,
                data=bytes(view[start : start + int(self.caplens[i])]),
                orig_len=int(self.origlens[i]),
                linktype=int(self.linktypes[i]),
                ts_ticks=self.ts_ticks[i],
                ticks_per_second=self.ticks_per_second[i],
                interface=self.interfaces[i],
                options=bytes(view[o0:o1]),
                big_endian=self.big_endian[i],
                ts_fields=stamp.unpack_from(buf, record) if self.pcap else None,
            )


class _Builder:
    """Collects the records of one chunk: pcapng record by record, pcap as column blocks."""

    def __init__(self) -> None:
        self.data: list[int] = []
        self.cap: list[int] = []
        self.orig: list[int] = []
        self.link: list[int] = []
        self.rec: list[int] = []
        self.ts: list[int] = []
        self.tps: list[int] = []
        self.iface: list[int] = []
        self.opts: list[tuple[int, int]] = []
        self.big: list[bool] = []
        self.blocks: list[tuple[int, int, int]] = []
        self.bad: set[int] = set()
        self.skipped: list[tuple[int, int]] = []
        self.pcap: Interface | None = None
        """pcap: the file's interface (every record's); records come in :attr:`runs`."""
        self.pcap_big = False
        self.runs: list[tuple[IntArray, IntArray]] = []
        """pcap: blocks of (record offsets, record headers as ``(k, 4)`` int64 columns:
        seconds, fraction, captured length, original length)."""
        self.rows = 0
        """pcap: records in :attr:`runs`."""

    def add(
        self, rec: int, data: int, cap: int, orig: int, iface: Interface, index: int,
        ts: int, opts: tuple[int, int] = (0, 0), big: bool = False,
    ) -> None:  # fmt: skip
        self.big.append(big)
        self.rec.append(rec)
        self.data.append(data)
        self.cap.append(cap)
        self.orig.append(orig)
        self.link.append(iface.linktype)
        self.ts.append(ts)
        self.tps.append(iface.ticks_per_second)
        self.iface.append(index)
        self.opts.append(opts)

    def add_pcap(self, recs: IntArray, heads: IntArray) -> None:
        self.runs.append((recs, heads))
        self.rows += len(recs)

    def build(self, buffer: bytes | bytearray, file_offset: int, first_index: int) -> Chunk:
        def arr(values: list[int]) -> IntArray:
            return np.array(values, dtype=np.int64)

        if self.pcap is not None:
            return self._build_pcap(self.pcap, buffer, file_offset, first_index)
        return Chunk(
            buffer, file_offset, first_index, arr(self.data), arr(self.cap), arr(self.orig),
            arr(self.link), arr(self.rec), self.ts, self.tps, self.iface, self.opts,
            self.big, self.blocks, self.bad, self.skipped, False,
        )  # fmt: skip

    def _build_pcap(
        self, iface: Interface, buffer: bytes | bytearray, file_offset: int, first_index: int
    ) -> Chunk:
        count = self.rows
        if self.runs:
            recs = np.concatenate([r for r, _ in self.runs])
            heads = np.concatenate([h for _, h in self.runs])
        else:
            recs, heads = np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.int64)
        tps = iface.ticks_per_second
        return Chunk(
            buffer, file_offset, first_index, recs + 16, heads[:, 2], heads[:, 3],
            np.full(count, iface.linktype, dtype=np.int64), recs,
            (heads[:, 0] * tps + heads[:, 1]).tolist(), [tps] * count, [0] * count,
            [(0, 0)] * count, [self.pcap_big] * count, self.blocks, self.bad, self.skipped,
            True,
        )  # fmt: skip


def _walk_pcap(
    buf: bytearray, pos: int, until: int, n: int, incl_at: Callable[[bytearray, int], tuple[int]]
) -> tuple[list[int], int]:
    """Offsets of the consecutive pcap records from ``pos`` that start before ``until``
    (``<= n - 15``) and end within ``n`` bytes; and where the walk stopped. The one loop a
    record costs in Python: the headers are then read for all of them at once."""
    recs: list[int] = []
    add = recs.append
    while pos < until:
        nxt = pos + 16 + incl_at(buf, pos + 8)[0]
        if nxt > n:
            break
        add(pos)
        pos = nxt
    return recs, pos


def _pcap_heads(buf: bytearray, recs: IntArray, big: bool) -> IntArray:
    """The 16-byte record headers at ``recs`` as ``(k, 4)`` int64 columns (one gather)."""
    rows = np.ndarray((len(buf) - 15,), dtype="V16", buffer=buf, strides=(1,))[recs]
    words = rows.view(">u4" if big else "<u4").reshape(-1, 4)
    return words.astype(np.int64)


PCAPNG_BLOCK_TYPES = frozenset({PCAPNG_SHB, PCAPNG_IDB, PCAPNG_OPB, PCAPNG_SPB, 4, 5, PCAPNG_EPB,
                                9, 0x0A, 0x0BAD, 0x40000BAD})  # fmt: skip
"""Block types a resynchronising reader accepts: section, interface, packets (enhanced,
simple, obsolete), name resolution (4), interface statistics (5), systemd journal (9),
decryption secrets (0x0A) and custom blocks."""
RESYNC_WINDOW = 1 << 20
"""Bytes examined per vectorized pass while looking for the next valid record."""
PLAUSIBLE_SECONDS = 366 * 86400
"""A resynchronised pcap record's timestamp is within this of the last good one."""


@dataclass(slots=True)
class _Lost:
    """An unreadable region being skipped (``--keep-going``)."""

    start: int
    """File offset where the damage starts."""
    frame_index: int
    reason: str
    want_section: bool = False
    """pcapng: the section header itself is lost, so only a new section can follow."""
    scan_from: int = 0
    """File offset from which candidates are still to be examined."""


def u32_every_offset(data: npt.NDArray[np.uint8], big: bool) -> IntArray:
    """The 32-bit word starting at every byte offset of ``data`` (``len - 3`` of them): the
    candidate header fields when looking for records in bytes of unknown alignment."""
    b = data.astype(np.int64)
    if big:
        return (b[:-3] << 24) | (b[1:-2] << 16) | (b[2:-1] << 8) | b[3:]
    return b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)


def pcap_max_incl(snaplen: int) -> int:
    """The largest captured length a plausible pcap record has in a file of ``snaplen``
    (some writers exceed a small snap length; never more than :data:`MAX_RECORD`)."""
    return min(MAX_RECORD, max(snaplen, 1 << 18))


def plausible_pcap(
    frac: IntArray, incl: IntArray, orig: IntArray, *, ticks_per_second: int, max_incl: int
) -> npt.NDArray[np.bool_]:
    """Which candidate pcap record headers (fields as arrays) could be records, as a reader
    that lost its place (``--keep-going``) or one cutting a file into pieces judges them: a
    fraction below one second, a captured length up to ``max_incl`` and to the original
    length, an original length up to :data:`MAX_RECORD`. (Their timestamps' distance to
    known records is the caller's test.)"""
    return np.asarray(
        (frac < ticks_per_second) & (incl <= max_incl) & (orig >= incl) & (orig <= MAX_RECORD),
        dtype=np.bool_,
    )


def plausible_pcapng(
    btype: IntArray, blen: IntArray, types: Iterable[int]
) -> npt.NDArray[np.bool_]:
    """Which candidate pcapng block headers could be blocks: a type among ``types`` and a
    length of at least 12, a multiple of 4 and at most :data:`MAX_RECORD`. (Whether the
    trailing copy of the length matches is the caller's test.)"""
    known = np.array(sorted(types), dtype=np.int64)
    return np.asarray(
        np.isin(btype, known) & (blen >= 12) & (blen % 4 == 0) & (blen <= MAX_RECORD),
        dtype=np.bool_,
    )


class CaptureReader:
    """Streams a pcap or pcapng file as :class:`Chunk` objects or single records.

    Malformed structure raises :class:`PacketError` (frame index, file offset). With
    ``keep_going`` the error is appended to :attr:`errors` instead and reading goes on: a bad
    packet block whose length is intact is skipped (kept in the chunk bytes, flagged in
    ``Chunk.bad``); after damage that hides where the next record starts, the reader
    resynchronises at the next offset holding a valid record — pcap: a header with a
    plausible length and timestamp followed by another such header (or the end of the file);
    pcapng: a known block type with a plausible length whose trailing copy matches, followed
    by another plausible block header — and reports the skipped bytes (``Chunk.skipped``).
    """

    def __init__(
        self, stream: BinaryIO, *, keep_going: bool = False, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self._stream = stream
        self.keep_going = keep_going
        self.chunk_bytes = chunk_bytes
        self.errors: list[PacketError] = []
        self.error_count = 0
        """Every error seen (``errors`` keeps the first :data:`MAX_ERRORS_KEPT`)."""
        self.frames = 0
        self.bytes_read = 0
        self.sections = 0
        """pcapng Section Header Blocks read intact (pcap: 1)."""
        self._lost: _Lost | None = None
        self._last_sec: int | None = None
        head = stream.read(24)
        if len(head) < 4:
            raise BackendError("not a capture file: shorter than any capture header")
        magic_le = struct.unpack_from("<I", head)[0]
        magic_be = struct.unpack_from(">I", head)[0]
        self._head = head
        self.header = b""
        self.interfaces: list[Interface] = []
        self._big = False
        if magic_le == PCAPNG_SHB:
            self.format: Format = "pcapng"
        elif PCAP_MAGIC_US in (magic_le, magic_be) or PCAP_MAGIC_NS in (magic_le, magic_be):
            self.format = "pcap"
            if len(head) < 24:
                raise PacketError("truncated pcap file header", offset=len(head))
            self._big = magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS)
            end = ">" if self._big else "<"
            magic, _, _, _, _, snaplen, network = struct.unpack(end + "IHHiIII", head)
            tps = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
            self.interfaces.append(Interface(network & 0x0FFFFFFF, snaplen, tps))
            self.header = head
            self.sections = 1
            self._max_incl = pcap_max_incl(snaplen)
        else:
            raise BackendError(f"not a pcap or pcapng file (magic 0x{magic_be:08x})")
        self._walk_span = WALK_SPAN
        self._rec = struct.Struct((">" if self._big else "<") + "IIII")
        self._incl = struct.Struct(">I" if self._big else "<I")

    @property
    def linktype(self) -> int | None:
        """The link type of the first interface (pcap: of every frame)."""
        return self.interfaces[0].linktype if self.interfaces else None

    def _fail(self, error: PacketError) -> None:
        if not self.keep_going:
            raise error
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)

    def _lose(self, start: int, frame_index: int, reason: str, *, section: bool = False) -> None:
        """Damage at file offset ``start``: raise, or (``keep_going``) start skipping."""
        if not self.keep_going:
            raise PacketError(reason, frame_index=frame_index, offset=start)
        want = section or (self.format == "pcapng" and not self.sections)
        self._lost = _Lost(start, frame_index, reason, want, start + 1)

    def _found(self, at: int) -> None:
        """The region lost since ``self._lost.start`` ends at file offset ``at``."""
        lost = self._lost
        assert lost is not None
        self._lost = None
        where = f"next valid record at offset {at}" if at >= 0 else "the end of the file"
        end = at if at >= 0 else self.bytes_read
        self._fail(
            PacketError(
                f"{lost.reason}; skipped bytes {lost.start}..{end - 1} ({end - lost.start} "
                f"bytes) to the {where}",
                frame_index=lost.frame_index,
                offset=lost.start,
            )
        )

    def chunks(self) -> Iterator[Chunk]:
        """The file as chunks of whole records (at most :data:`MAX_CHUNK_RECORDS` each)."""
        carry = bytearray(self._head)
        file_offset = 0
        eof = False
        stopped = False
        stalled = True
        while not stopped:
            if not eof and (stalled or len(carry) < self.chunk_bytes):
                buf = self._read_after(carry)
                eof = len(buf) == len(carry)
            else:
                buf = carry
            if not buf:
                break
            first = self.frames
            b = _Builder()
            if self.format == "pcap":
                pos, stopped = self._scan_pcap(buf, file_offset, b, eof)
            else:
                pos, stopped = self._scan_pcapng(buf, file_offset, b, eof)
            carry = buf[pos:]
            stalled = not pos
            if pos:
                self.bytes_read = file_offset + pos
                del buf[pos:]  # the chunk keeps the buffer itself: no copy of its bytes
                yield b.build(buf, file_offset, first)
                file_offset += pos
            if eof and stalled:
                if carry and not stopped:
                    self._fail(
                        PacketError(
                            f"truncated record: {len(carry)} trailing bytes end the file",
                            frame_index=self.frames,
                            offset=file_offset,
                        )
                    )
                break

    def _read_after(self, carry: bytearray) -> bytearray:
        """A new buffer: ``carry`` followed by up to :attr:`chunk_bytes` read from the file
        (read in place, so the bytes are copied once, by the kernel)."""
        buf = bytearray(len(carry) + self.chunk_bytes)
        buf[: len(carry)] = carry
        with memoryview(buf) as view:
            got = cast("io.BufferedIOBase", self._stream).readinto(view[len(carry) :]) or 0
        del buf[len(carry) + got :]
        return buf

    # -- pcap ------------------------------------------------------------------------------

    def _scan_pcap(self, buf: bytearray, base: int, b: _Builder, eof: bool) -> tuple[int, bool]:
        pos = 24 if base == 0 else 0
        iface = self.interfaces[0]
        b.pcap = iface
        b.pcap_big = self._big
        try:
            return self._pcap_records(buf, base, b, eof, pos, iface.ticks_per_second)
        finally:
            self.frames += b.rows
            if b.rows:
                self._last_sec = int(b.runs[-1][1][-1, 0])

    def _pcap_records(
        self, buf: bytearray, base: int, b: _Builder, eof: bool, pos: int, tps: int
    ) -> tuple[int, bool]:
        n = len(buf)
        whole = np.frombuffer(buf, dtype=np.uint8)
        incl_at = self._incl.unpack_from
        fast_after = pos  # try the vectorized run detection from here on
        while pos + 16 <= n and b.rows < MAX_CHUNK_RECORDS:
            room = MAX_CHUNK_RECORDS - b.rows
            if self._lost is not None:
                lo = max(pos, self._lost.scan_from - base)
                found, wait = self._pcap_resync(buf, whole, lo, n, eof, tps)
                pos, done = self._skip_to(b, pos, n, base, found, wait)
                if done is not None:
                    return done
                fast_after = pos
                continue
            if pos >= fast_after:
                run = self._pcap_run(buf, whole, pos, n, room)
                if run is not None:
                    b.add_pcap(*run)
                    pos = int(run[0][-1] + 16 + run[1][-1, 2])
                    self._walk_span = WALK_SPAN
                    continue
                # Mixed sizes: walk a while before retrying, twice as long each time.
                fast_after = pos + self._walk_span
                self._walk_span = min(2 * self._walk_span, MAX_WALK_SPAN)
            # Records are at least 16 bytes, so this bounds the walk to ``room`` records.
            until = min(n - 15, fast_after, pos + 16 * room)
            recs, stop = _walk_pcap(buf, pos, until, n, incl_at)
            if recs:
                starts = np.array(recs, dtype=np.int64)
                heads = _pcap_heads(buf, starts, self._big)
                huge = heads[:, 2] > MAX_RECORD
                if huge.any():  # corrupt: handled below, one record at a time
                    keep = int(np.argmax(huge))
                    starts, heads, stop = starts[:keep], heads[:keep], recs[keep]
                if len(starts):
                    b.add_pcap(starts, heads)
            pos = stop
            if pos >= until:
                continue
            sec, frac, incl, orig = self._rec.unpack_from(buf, pos)
            if incl > MAX_RECORD:
                self._lose(
                    base + pos,
                    self.frames + b.rows,
                    f"corrupt record header: captured length {incl} is not plausible",
                )
                continue
            if pos + 16 + incl <= n:
                continue  # cannot happen: the walk stops only at a record it cannot read
            if not eof:
                break
            self._lose(
                base + pos,
                self.frames + b.rows,
                f"truncated record: header says {incl} bytes, {n - pos - 16} left in the file",
            )
        if eof and pos < n and pos + 16 > n:
            if self._lost is None:
                self._lose(
                    base + pos,
                    self.frames + b.rows,
                    f"truncated record header: {n - pos} of 16 bytes",
                )
            b.skipped.append((pos, n))
            self.bytes_read = base + n
            self._found(-1)
            return n, True
        return pos, False

    def _pcap_plausible(
        self, sec: IntArray, frac: IntArray, incl: IntArray, orig: IntArray, tps: int,
        last: int | None,
    ) -> npt.NDArray[np.bool_]:  # fmt: skip
        ok = plausible_pcap(frac, incl, orig, ticks_per_second=tps, max_incl=self._max_incl)
        if last is not None:
            ok &= np.abs(sec - last) <= PLAUSIBLE_SECONDS
        return np.asarray(ok, dtype=np.bool_)

    def _pcap_resync(
        self, buf: bytearray, whole: npt.NDArray[np.uint8], pos: int, n: int, eof: bool, tps: int
    ) -> tuple[int, bool]:
        """(offset of the next valid record at or after ``pos`` in ``buf``, whether more
        data is needed to decide); (-1, False) when the file has none."""
        big = self._big
        lo = pos
        while lo + 16 <= n:
            hi = min(n - 15, lo + RESYNC_WINDOW)
            word = u32_every_offset(whole[lo : hi + 15], big)
            count = hi - lo
            sec, frac, incl, orig = (word[k : k + count] for k in (0, 4, 8, 12))
            ok = self._pcap_plausible(sec, frac, incl, orig, tps, self._last_sec)
            for cand in (np.flatnonzero(ok) + lo).tolist():
                s, _, length, _ = self._rec.unpack_from(buf, cand)
                nxt = cand + 16 + length
                if nxt == n and eof:
                    return cand, False
                if nxt + 16 > n:
                    if eof:
                        continue
                    return cand, True
                s2, f2, i2, o2 = self._rec.unpack_from(buf, nxt)
                if self._pcap_plausible(
                    np.array(s2), np.array(f2), np.array(i2), np.array(o2), tps, s
                ).all():
                    return cand, False
            lo = hi
        return (-1, False) if eof else (max(pos, n - 15), True)

    def _pcap_run(
        self, buf: bytearray, whole: npt.NDArray[np.uint8], pos: int, n: int, most: int
    ) -> tuple[IntArray, IntArray] | None:
        """Records from ``pos`` on that all have the captured length of the first one, read
        with a few numpy operations (captures of equal-sized frames are the common case):
        (record offsets, headers as for :func:`_pcap_heads`). ``None`` when fewer than 8
        such records follow; the caller then walks them."""
        (incl,) = self._incl.unpack_from(buf, pos + 8)
        stride = 16 + incl
        if incl > MAX_RECORD:
            return None
        count = min((n - pos) // stride, most)
        if count < 8:
            return None
        probe = self._incl.unpack_from
        if any(probe(buf, pos + k * stride + 8)[0] != incl for k in range(1, 8)):
            return None  # mixed sizes: do not copy the rest of the chunk to find out
        rows = np.lib.stride_tricks.as_strided(
            whole[pos:], shape=(count, 16), strides=(stride, 1), writeable=False
        )
        heads = np.ascontiguousarray(rows).view(">u4" if self._big else "<u4").astype(np.int64)
        same = heads[:, 2] == incl
        if not same.all():
            count = int(np.argmin(same))
            if count < 8:
                return None
            heads = heads[:count]
        return pos + stride * np.arange(count, dtype=np.int64), heads

    # -- pcapng ----------------------------------------------------------------------------

    def _block_at(self, buf: bytearray, pos: int, n: int) -> tuple[int, int, str] | str:
        """(type, length, byte order) of the block header at ``pos``, or why it is corrupt."""
        (btype,) = struct.unpack_from("<I", buf, pos)
        if btype == PCAPNG_SHB:
            if pos + 12 > n:
                return "truncated section header"
            (bom,) = struct.unpack_from("<I", buf, pos + 8)
            if bom not in (PCAPNG_BOM, 0x4D3C2B1A):
                return "bad pcapng byte-order magic"
            end = "<" if bom == PCAPNG_BOM else ">"
        else:
            end = ">" if self._big else "<"
        btype, blen = struct.unpack_from(end + "II", buf, pos)
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            return f"corrupt pcapng block length {blen}"
        return btype, blen, end

    def _pcapng_resync(
        self, buf: bytearray, pos: int, n: int, eof: bool, want_section: bool
    ) -> tuple[int, bool]:
        """Like :meth:`_pcap_resync` for pcapng blocks (only a section when ``want_section``)."""
        whole = np.frombuffer(buf, dtype=np.uint8)
        lo = pos
        while lo + 12 <= n:
            hi = min(n - 11, lo + RESYNC_WINDOW)
            count = hi - lo
            word = u32_every_offset(whole[lo : hi + 7], self._big)
            kind, blen = word[:count], word[4 : 4 + count]
            if want_section:
                ok = kind == PCAPNG_SHB
            else:
                ok = plausible_pcapng(kind, blen, PCAPNG_BLOCK_TYPES)
            for cand in (np.flatnonzero(ok) + lo).tolist():
                head = self._block_at(buf, cand, n)
                if isinstance(head, str):
                    continue
                _, size, end = head
                stop = cand + size
                if stop > n:
                    if eof:
                        continue
                    return cand, True
                if struct.unpack_from(end + "I", buf, stop - 4)[0] != size:
                    continue
                if stop + 12 <= n:
                    if isinstance(self._block_at(buf, stop, n), str):
                        continue
                elif not eof:
                    return cand, True
                return cand, False
            lo = hi
        return (-1, False) if eof else (max(pos, n - 11), True)

    def _skip_to(
        self, b: _Builder, pos: int, n: int, base: int, found: int, wait: bool
    ) -> tuple[int, tuple[int, bool] | None]:
        """After a resynchronisation search from ``pos`` (``found``: the next valid record,
        -1 for none up to the end of the file; ``wait``: more bytes are needed to tell):
        record the skipped bytes; (new position, what the scan returns now or ``None`` to
        go on reading records)."""
        assert self._lost is not None
        if found < 0:
            b.skipped.append((pos, n))
            self.bytes_read = base + n
            self._found(-1)
            return n, (n, True)
        if found > pos:
            b.skipped.append((pos, found))
            pos = found
        if wait:
            self._lost.scan_from = base + pos
            return pos, (pos, False)
        self._found(base + pos)
        return pos, None

    def _scan_pcapng(self, buf: bytearray, base: int, b: _Builder, eof: bool) -> tuple[int, bool]:
        pos = 0
        n = len(buf)
        while pos + 12 <= n and len(b.data) + len(b.blocks) < MAX_CHUNK_RECORDS:
            if self._lost is not None:
                lo = max(pos, self._lost.scan_from - base)
                found, wait = self._pcapng_resync(buf, lo, n, eof, self._lost.want_section)
                pos, done = self._skip_to(b, pos, n, base, found, wait)
                if done is not None:
                    return done
                continue
            head = self._block_at(buf, pos, n)
            if isinstance(head, str):
                (btype,) = struct.unpack_from("<I", buf, pos)
                self._lose(base + pos, self.frames, head, section=btype == PCAPNG_SHB)
                continue
            btype, blen, end = head
            if pos + blen > n:
                if eof:
                    self._lose(
                        base + pos,
                        self.frames,
                        f"truncated pcapng block: {blen} bytes declared, {n - pos} left",
                    )
                    continue
                break
            (trail,) = struct.unpack_from(end + "I", buf, pos + blen - 4)
            if trail != blen:
                self._lose(
                    base + pos,
                    self.frames,
                    f"pcapng block length {blen} and trailing length {trail} differ",
                    section=btype == PCAPNG_SHB,
                )
                continue
            if btype == PCAPNG_SHB:
                self._big = end == ">"
                self.interfaces = []
                self.sections += 1
            if btype in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OPB):
                self._packet_block(buf, pos, blen, btype, end, base, b)
            else:
                if btype == PCAPNG_IDB:
                    self._interface(buf, pos, blen, end, base)
                b.blocks.append((len(b.data), pos, pos + blen))
            pos += blen
        if eof and pos < n and pos + 12 > n:
            if self._lost is None:
                self._lose(
                    base + pos, self.frames, f"truncated pcapng block header: {n - pos} bytes"
                )
            b.skipped.append((pos, n))
            self.bytes_read = base + n
            self._found(-1)
            return n, True
        return pos, False

    def _interface(self, buf: bytearray, pos: int, blen: int, end: str, base: int) -> None:
        if blen < 20:
            self._fail(PacketError("Interface Description Block too short", offset=base + pos))
            return
        linktype, _, snaplen = struct.unpack_from(end + "HHI", buf, pos + 8)
        tps = 1_000_000
        opt = pos + 16
        stop = pos + blen - 4
        while opt + 4 <= stop:
            code, olen = struct.unpack_from(end + "HH", buf, opt)
            if code == 0:
                break
            if code == OPT_IF_TSRESOL and olen >= 1:
                res = buf[opt + 4]
                tps = 2 ** (res & 0x7F) if res & 0x80 else 10 ** (res & 0x7F)
            opt += 4 + olen + (-olen % 4)
        self.interfaces.append(Interface(linktype, snaplen, tps))

    def _packet_block(
        self, buf: bytearray, pos: int, blen: int, btype: int, end: str, base: int, b: _Builder
    ) -> None:
        index = self.frames
        self.frames += 1
        stop = pos + blen - 4
        if blen < (16 if btype == PCAPNG_SPB else 32):
            b.add(pos, pos, 0, 0, Interface(0, 0, 1), 0, 0, (stop, stop))
            b.bad.add(len(b.data) - 1)
            self._fail(
                PacketError(
                    f"packet block of {blen} bytes is too short",
                    frame_index=index,
                    offset=base + pos,
                )
            )
            return
        if btype == PCAPNG_SPB:
            iface_id, ts, (orig,) = 0, 0, struct.unpack_from(end + "I", buf, pos + 8)
            data = pos + 12
            cap = min(orig, stop - data)
            opts = (stop, stop)
        else:
            if btype == PCAPNG_EPB:
                iface_id, hi, lo, cap, orig = struct.unpack_from(end + "IIIII", buf, pos + 8)
            else:
                iface_id, _, hi, lo, cap, orig = struct.unpack_from(end + "HHIIII", buf, pos + 8)
            ts = (hi << 32) | lo
            data = pos + 28
            opts = (data + cap + (-cap % 4), stop)
        if data + cap > stop:
            b.add(pos, data, 0, 0, Interface(0, 0, 1), 0, 0, (stop, stop))
            b.bad.add(len(b.data) - 1)
            self._fail(
                PacketError(
                    f"packet data ({cap} bytes) overruns its {blen}-byte block",
                    frame_index=index,
                    offset=base + pos,
                )
            )
            return
        if iface_id >= len(self.interfaces):
            b.add(pos, data, 0, 0, Interface(0, 0, 1), 0, 0, (stop, stop))
            b.bad.add(len(b.data) - 1)
            self._fail(
                PacketError(
                    f"packet names interface {iface_id}; {len(self.interfaces)} are described",
                    frame_index=index,
                    offset=base + pos + 8,
                )
            )
            return
        b.add(pos, data, cap, orig, self.interfaces[iface_id], iface_id, ts, opts, self._big)

    def __iter__(self) -> Iterator[Packet | Block]:
        """Every record; non-packet pcapng blocks come as :class:`Block` in file order."""
        for chunk in self.chunks():
            for item in chunk.packets():
                if isinstance(item, Packet) and item.index - chunk.first_index in chunk.bad:
                    continue
                yield item


class CaptureWriter:
    """Writes records in the format and byte order of the capture they came from."""

    def __init__(
        self, stream: BinaryIO, fmt: Format, header: bytes = b"", *, write_header: bool = True
    ) -> None:
        self._stream = stream
        self.format = fmt
        self._big = False
        self._tps = 1_000_000
        self.frames = 0
        if fmt == "pcap":
            if len(header) != 24:
                raise BackendError("a pcap writer needs the 24-byte file header")
            self._big = struct.unpack_from(">I", header)[0] in (PCAP_MAGIC_US, PCAP_MAGIC_NS)
            magic = struct.unpack_from(">I" if self._big else "<I", header)[0]
            self._tps = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
            if write_header:
                stream.write(header)
        end = ">" if self._big else "<"
        self._rec = struct.Struct(end + "IIII")

    @classmethod
    def like(cls, stream: BinaryIO, reader: CaptureReader) -> CaptureWriter:
        """A writer producing the same format (and pcap header) as ``reader``'s file."""
        return cls(stream, reader.format, reader.header)

    def write_raw(self, data: bytes | bytearray | memoryview, frames: int = 0) -> None:
        """Bytes already in the file's encoding (a whole :class:`Chunk`, possibly patched)."""
        self._stream.write(data)
        self.frames += frames

    def write_block(self, block: Block) -> None:
        """A pcapng non-packet block, verbatim."""
        if self.format == "pcapng":
            self._stream.write(block.raw)

    def write_packet(self, packet: Packet, data: bytes | None = None) -> None:
        """``packet`` with ``data`` (default: its own) as payload; metadata kept."""
        payload = packet.data if data is None else data
        orig = packet.orig_len
        if data is not None:  # keep what the snap length cut off
            orig = len(data) + max(0, packet.orig_len - len(packet.data))
        if self.format == "pcap":
            if packet.ts_fields is not None and packet.ticks_per_second == self._tps:
                sec, frac = packet.ts_fields  # exactly as read, out-of-range fraction included
            else:
                sec, frac = divmod(
                    packet.ts_ticks * self._tps // packet.ticks_per_second, self._tps
                )
                if not 0 <= sec <= 0xFFFFFFFF:
                    raise PacketError(
                        f"timestamp {sec} s does not fit a pcap record", frame_index=packet.index
                    )
            self._stream.write(self._rec.pack(sec, frac, len(payload), orig))
            self._stream.write(payload)
        else:
            head, tail = self._epb(packet, len(payload), orig)
            self._stream.write(head)
            self._stream.write(payload + tail)
        self.frames += 1

    @staticmethod
    def _epb(packet: Packet, length: int, orig: int) -> tuple[bytes, bytes]:
        """The pcapng Enhanced Packet Block around a ``length``-byte packet of ``packet``'s
        interface, timestamp and options: its head, and its padding, options and trailing
        Block Total Length."""
        end = ">" if packet.big_endian else "<"
        pad = -length % 4
        blen = 32 + length + pad + len(packet.options)
        ts = packet.ts_ticks
        head = struct.pack(end + "IIIIIII", PCAPNG_EPB, blen, packet.interface,
                           (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, length, orig)  # fmt: skip
        return head, bytes(pad) + packet.options + struct.pack(end + "I", blen)

    def _segment_record(self, packet: Packet, length: int) -> tuple[bytes, bytes]:
        """What goes before and after each ``length``-byte segment of ``packet``: the pcap
        record header (timestamp normalized, seconds modulo 2**32), or the pcapng block's
        head and tail; the original length keeps what the snap length cut off."""
        orig = length + max(0, packet.orig_len - len(packet.data))
        if self.format == "pcapng":
            return self._epb(packet, length, orig)
        sec, frac = divmod(packet.ts_ticks * self._tps // packet.ticks_per_second, self._tps)
        return self._rec.pack(sec & 0xFFFFFFFF, frac, length, orig), b""

    def write_packets(self, packet: Packet, frames: list[bytes]) -> None:
        """``frames`` (the segments of ``packet``), each a record with ``packet``'s metadata,
        in one write.

        The segments of a send all have one length but the last, so one record header (and
        pcapng trailer) serves them all: the records are laid out by list slicing and one
        ``join``, with no Python work per segment."""
        count = len(frames)
        if not count:
            return
        lengths = set(map(len, frames[:-1]))
        if len(lengths) > 1:  # not the shape of a send: record by record
            for frame in frames:
                self.write_packets(packet, [frame])
            return
        last_head, last_tail = self._segment_record(packet, len(frames[-1]))
        head, tail = self._segment_record(packet, lengths.pop()) if lengths else (b"", b"")
        if self.format == "pcapng":  # head, frame, padding + options + trailing length
            parts = [head, b"", tail] * count
            parts[1::3] = frames
            parts[-3], parts[-1] = last_head, last_tail
        else:
            parts = [head, b""] * count
            parts[1::2] = frames
            parts[-2] = last_head
        self._stream.write(b"".join(parts))
        self.frames += count

    def write(self, item: Packet | Block) -> None:
        """A record as read."""
        if isinstance(item, Block):
            self.write_block(item)
        else:
            self.write_packet(item)


def open_capture(
    path: str | Path, *, keep_going: bool = False, chunk_bytes: int = CHUNK_BYTES
) -> tuple[BinaryIO, CaptureReader]:
    """Open ``path`` for streaming; the caller closes the returned file."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - handed to the caller
    except OSError as exc:
        raise BackendError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        return stream, CaptureReader(stream, keep_going=keep_going, chunk_bytes=chunk_bytes)
    except BaseException:
        stream.close()
        raise


__all__ = [
    "CHUNK_BYTES",
    "MAX_CHUNK_RECORDS",
    "MAX_ERRORS_KEPT",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "Block",
    "CaptureReader",
    "CaptureWriter",
    "Chunk",
    "Interface",
    "Packet",
    "open_capture",
]
