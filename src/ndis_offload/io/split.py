"""Record-aligned pieces of a capture file, for processing a capture by parts in parallel.

A piece is a byte range ``[start, end)`` of the file that holds whole records. Boundaries
are found without reading the file from the start: from a nominal offset, :func:`sync`
looks for the first position where a chain of consecutive plausible record headers (pcap)
or blocks (pcapng: type, length, and the trailing copy of the length) begins. Because the
reader of piece ``k`` walks the true record chain from piece ``k``'s start, it must land
exactly on piece ``k + 1``'s start; :class:`PieceReader` checks that it does, so a boundary
found in the middle of a record's payload (a false sync) is detected, never silently used —
the caller then processes the capture serially. Piece 0 starts at the first record, so by
induction every boundary of a run that completes is a true record boundary.

Each piece is read through a :class:`Splice`: the file's header (pcap file header, or the
pcapng Section Header Block plus the Interface Description Blocks before the first packet)
followed by the piece's bytes, so the ordinary :class:`~ndis_offload.io.capture.CaptureReader`
reads it as a capture of its own.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ndis_offload.errors import BackendError
from ndis_offload.io.capture import (
    MAX_RECORD,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_BOM,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_OPB,
    PCAPNG_SHB,
    PCAPNG_SPB,
    plausible_pcap,
    plausible_pcapng,
    u32_every_offset,
)

CHAIN = 8
"""Consecutive plausible records a sync point needs (pcapng blocks: half as many)."""
WINDOW = 1 << 20
"""Bytes scanned per step while looking for a sync point."""
QUICK = 32 << 10
"""Bytes scanned first, with a short overlap: enough for chains of ordinary records, so a
boundary usually costs one small read (the full window follows when it finds none)."""
PCAPNG_ISB = 5
PCAPNG_NRB = 4
PCAPNG_DSB = 10
PCAPNG_CUSTOM = (0x00000BAD, 0x40000BAD)
PCAPNG_MID_FILE = (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_OPB, PCAPNG_ISB, PCAPNG_NRB, PCAPNG_DSB,
                   *PCAPNG_CUSTOM)  # fmt: skip
"""Block types that may follow the interfaces of a section (a piece must not hold a new
section or interface: those change how later blocks are read)."""


class SplitError(BackendError):
    """The capture cannot be cut into pieces (the caller falls back to one piece)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """What a piece reader needs from the start of the file."""

    format: str
    """``pcap`` or ``pcapng``."""
    prefix: bytes
    """The bytes every piece is read after: file header / section + interfaces."""
    first_record: int
    """File offset of the first record (or non-interface block)."""
    size: int
    big_endian: bool
    snaplen: int
    """pcap only: the file's snap length (0 = none given)."""
    nanoseconds: bool


@dataclass(frozen=True, slots=True)
class Piece:
    """Records whose header starts in ``[start, end)``; ``index`` is the piece's position."""

    index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def read_layout(path: str | Path) -> Layout:
    """The header of a capture file and where its records begin."""
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        head = stream.read(min(size, WINDOW))
    if len(head) < 12:
        raise SplitError(f"{path}: too short to be a capture")
    magic_le, magic_be = struct.unpack_from("<I", head)[0], struct.unpack_from(">I", head)[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        if len(head) < 24:
            raise SplitError(f"{path}: truncated pcap file header")
        big = magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS)
        magic, _, _, _, _, snaplen, _ = struct.unpack_from((">" if big else "<") + "IHHiIII", head)
        return Layout("pcap", head[:24], 24, size, big, snaplen, magic == PCAP_MAGIC_NS)
    if magic_le != PCAPNG_SHB:
        raise SplitError(f"{path}: not a pcap or pcapng file")
    (bom,) = struct.unpack_from("<I", head, 8)
    big = bom != PCAPNG_BOM
    end = ">" if big else "<"
    pos = 0
    while pos + 12 <= len(head):
        btype, blen = struct.unpack_from(end + "II", head, pos)
        if blen < 12 or blen % 4 or pos + blen > len(head):
            raise SplitError(f"{path}: cannot read the section header and interfaces")
        if pos and btype not in (PCAPNG_IDB,):
            break
        pos += blen
    return Layout("pcapng", head[:pos], pos, size, big, 0, False)


def _words(window: bytes, big_endian: bool) -> npt.NDArray[np.int64]:
    """The 32-bit word starting at every byte offset of ``window`` (``len - 3`` of them)."""
    return u32_every_offset(np.frombuffer(window, dtype=np.uint8), big_endian)


def _chain(
    start: int, plausible: npt.NDArray[np.bool_], nxt: npt.NDArray[np.int64], links: int
) -> bool:
    """Whether ``links`` plausible records follow each other from ``start``.

    A chain that reaches the end of the file first is no sync point, however few records
    are left: one plausible header whose length happens to end at the end of the file is
    a likely false sync (a header straddling a true one: found by hypothesis), and a tail
    of fewer than ``links`` records costs nothing to leave in the piece before it."""
    pos = start
    for _ in range(links):
        if pos >= plausible.size or not plausible[pos]:
            return False
        pos = int(nxt[pos])
    return True


def _pcap_sync(window: bytes, layout: Layout, base: int, scan: int) -> int | None:
    """The first offset among the first ``scan`` bytes of ``window`` where ``CHAIN``
    plausible pcap records follow each other (:func:`_chain`): fractions below one second,
    captured length within the snap length and no more than the original length, timestamps
    within a day of each other."""
    if len(window) < 16:
        return None
    words = _words(window, layout.big_endian)
    count = words.size - 12
    sec, frac, incl, orig = words[:count], words[4 : 4 + count], words[8 : 8 + count], words[12:]
    limit = layout.snaplen if 0 < layout.snaplen <= MAX_RECORD else MAX_RECORD
    tps = 1_000_000_000 if layout.nanoseconds else 1_000_000
    plausible = plausible_pcap(frac, incl, orig, ticks_per_second=tps, max_incl=limit)
    plausible &= incl > 0  # a run of zero bytes is no place to cut (records may be empty)
    nxt = np.arange(count, dtype=np.int64) + 16 + incl
    # the next record's timestamp within a day (where the next header is in the window)
    inside = nxt < count
    near = np.ones(count, dtype=np.bool_)
    near[inside] = np.abs(sec[nxt[inside]] - sec[inside]) <= 86_400
    plausible &= near
    for start in np.flatnonzero(plausible[:scan]).tolist():
        if _chain(start, plausible, nxt, CHAIN):
            return base + start
    return None


def _pcapng_sync(window: bytes, layout: Layout, base: int, scan: int) -> int | None:
    """The first 4-byte aligned offset among the first ``scan`` bytes of ``window`` where
    ``CHAIN // 2`` blocks follow each other, each of a type that may follow a section's
    interfaces, with a sane length that its trailing copy repeats."""
    if len(window) < 12:
        return None
    words = _words(window, layout.big_endian)
    first = (-(base - layout.first_record)) % 4
    starts = np.arange(first, words.size - 4, 4, dtype=np.int64)
    if starts.size == 0:
        return None
    btype, blen = words[starts], words[starts + 4]
    sane = plausible_pcapng(btype, blen, PCAPNG_MID_FILE)
    tail = starts + blen - 4
    fits = sane & (tail < words.size)
    trailer_ok = np.zeros(starts.size, dtype=np.bool_)
    trailer_ok[fits] = words[tail[fits]] == blen[fits]
    plausible = np.zeros(words.size + 4, dtype=np.bool_)
    nxt = np.zeros(words.size + 4, dtype=np.int64)
    plausible[starts] = trailer_ok
    nxt[starts] = starts + blen
    for start in starts[trailer_ok & (starts < scan)].tolist():
        if _chain(int(start), plausible, nxt, CHAIN // 2):
            return base + int(start)
    return None


def sync(stream: BinaryIO, layout: Layout, nominal: int) -> int:
    """The first record boundary (as :func:`_pcap_sync` / :func:`_pcapng_sync` judge it) at or
    after ``nominal``; the file size when none follows. A quick look at the first
    :data:`QUICK` bytes comes first; any boundary it finds is checked like every other one
    (by the walk of the piece before it)."""
    pos = max(nominal, layout.first_record)
    finder = _pcap_sync if layout.format == "pcap" else _pcapng_sync
    if pos < layout.size:
        stream.seek(pos)
        window = stream.read(2 * QUICK)
        found = finder(window, layout, pos, QUICK)
        if found is not None:
            return found
    limit = layout.snaplen if 0 < layout.snaplen <= MAX_RECORD else 262_144
    overlap = min(2 * MAX_RECORD, (CHAIN + 1) * (16 + limit))  # room for a whole chain
    while pos < layout.size:
        stream.seek(pos)
        window = stream.read(WINDOW + overlap)
        last = pos + len(window) >= layout.size
        found = finder(window, layout, pos, WINDOW)
        if found is not None:
            return found
        if last:
            break
        pos += WINDOW
    return layout.size


def iter_pieces(
    path: str | Path, layout: Layout, count: int, *, min_piece: int = 16 << 20,
    max_piece: int | None = None, ahead: int = 0, after: int = 0, largest: int = 0,
) -> Iterator[Piece]:  # fmt: skip
    """Record-aligned pieces of ``path``, each boundary found only when the piece is needed
    (a caller can start on the first pieces while later boundaries are still to be found).

    Fixed sizes (``count`` pieces of at least ``min_piece`` bytes), or, with ``ahead``,
    guided sizes: each piece ``1 / ahead`` of the bytes left (``after``: bytes of later
    inputs of the same job), between ``min_piece`` and ``max_piece``, so the run starts with
    large pieces (little per-piece cost) and ends with small ones (workers finish together).
    ``largest``: the largest record to expect while looking for boundaries (default: the
    snap length), which sizes the windows read.
    """
    body = layout.size - layout.first_record
    count = max(1, min(count, body // max(1, min_piece)))
    step = body // count
    probe = dataclasses.replace(layout, snaplen=largest) if largest else layout
    start, index, k = layout.first_record, 0, 1
    with open(path, "rb") as stream:
        while start < layout.size:
            if ahead:
                left = layout.size - start + after
                size = min(max(left // ahead, min_piece), max_piece or left)
                nominal = start + size
            else:
                nominal = layout.first_record + k * step if k < count else layout.size
                k += 1
            at = layout.size if nominal >= layout.size else sync(stream, probe, nominal)
            if at <= start:
                continue
            if layout.size - at < min_piece // 4 and ahead:  # no sliver at the end
                at = layout.size
            yield Piece(index, start, at)
            start, index = at, index + 1


def plan(
    path: str | Path, pieces: int, *, min_piece: int = 16 << 20, largest: int = 0
) -> tuple[Layout, list[Piece]]:
    """Cut ``path`` into at most ``pieces`` record-aligned pieces of at least ``min_piece``
    bytes (the last may be smaller). ``largest``: the largest record to expect while
    looking for boundaries (default: the snap length), which sizes the windows read."""
    layout = read_layout(path)
    return layout, list(iter_pieces(path, layout, pieces, min_piece=min_piece, largest=largest))


def write_at(
    fd: int, splice: Splice, layout: Layout, piece: Piece, offset: int, data: bytes | bytearray
) -> None:
    """Write chunk bytes that start at splice ``offset`` of ``piece`` to their place in an
    output laid out like the input (``fix`` in pieces). The file header comes first in every
    splice; only the piece at the first record writes it (its splice offsets are file
    offsets)."""
    view = memoryview(data)
    skip = 0 if piece.start == layout.first_record else max(0, len(layout.prefix) - offset)
    at = splice.file_offset(offset + skip)
    while skip < len(view):
        done = os.pwrite(fd, view[skip:], at)
        skip += done
        at += done


class Splice(io.RawIOBase):
    """``layout.prefix`` followed by bytes ``[piece.start, piece.end)`` of the file: a
    capture of its own, read-only. Offset ``o >= len(prefix)`` of the splice is file offset
    ``o - len(prefix) + piece.start`` (:meth:`file_offset`)."""

    def __init__(self, path: str | Path, layout: Layout, piece: Piece) -> None:
        super().__init__()
        if piece.start < layout.first_record:
            raise SplitError("a piece starts at or after the first record")
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the splice
        self._file.seek(piece.start)
        self._prefix = memoryview(layout.prefix)
        self._sent = 0
        self._left = piece.end - piece.start
        self._start = piece.start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        done = 0
        if self._sent < len(self._prefix):
            take = min(len(out), len(self._prefix) - self._sent)
            out[:take] = self._prefix[self._sent : self._sent + take]
            self._sent += take
            done = take
        if done < len(out) and self._left > 0:
            take = min(len(out) - done, self._left)
            got = self._file.readinto(out[done : done + take]) or 0
            self._left -= got
            done += got
        return done

    def close(self) -> None:
        self._file.close()
        super().close()

    def file_offset(self, offset: int) -> int:
        """The file offset of splice offset ``offset`` (one inside the prefix maps to the
        same offset, where the file's own header holds the same bytes)."""
        if offset < len(self._prefix):
            return offset
        return offset - len(self._prefix) + self._start


def open_piece(path: str | Path, layout: Layout, piece: Piece) -> tuple[Splice, BinaryIO]:
    """The piece as a buffered stream a ``CaptureReader`` can read (close the stream)."""
    splice = Splice(path, layout, piece)
    return splice, io.BufferedReader(splice, buffer_size=1 << 20)
