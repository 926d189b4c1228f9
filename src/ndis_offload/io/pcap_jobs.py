"""The capture tools as functions: stream a file through the sans-IO analysis and rewriters.

Each job reads chunk by chunk (memory stays flat), reports progress through a callback
``progress(frames, bytes)`` after every chunk (a callback that raises, e.g. on Ctrl-C, stops
the job) and writes its output through :func:`~ndis_offload.io.atomic.atomic_output`, so a
failed or interrupted run leaves no output file behind.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Analyzer, Diagnosis
from ndis_offload.capture.checks import Checks, Kind, check_chunk
from ndis_offload.capture.linktype import SUPPORTED, add_frames_per_linktype, epb_direction
from ndis_offload.capture.rewrite import fix_chunk, segment_record
from ndis_offload.errors import PacketError
from ndis_offload.io import local_fix
from ndis_offload.io.atomic import atomic_output, background_writes
from ndis_offload.io.capture import (
    CHUNK_BYTES,
    MAX_ERRORS_KEPT,
    Block,
    CaptureReader,
    CaptureWriter,
    Chunk,
    IntArray,
    Packet,
    open_capture,
)
from ndis_offload.io.counts import Counts

Progress = Callable[[int, int], None]
"""``progress(frames_done, bytes_done)``."""
Observer = Callable[[Chunk, Checks, npt.NDArray[np.int8]], None]
"""``observe(chunk, checks, diagnoses)``: sees every chunk as it is diagnosed, in frame
order (``pcap verify --frames`` records, the HTML report's timeline)."""


def _no_progress(frames: int, nbytes: int) -> None:
    del frames, nbytes


@dataclass(slots=True)
class JobResult(Counts):
    """What a job did; ``errors`` holds structural and per-frame errors (``--keep-going``)."""

    analyzer: Analyzer
    total_bytes: int = 0
    errors: list[PacketError] = field(default_factory=list)
    """The first :data:`MAX_ERRORS_KEPT` errors, in file order."""
    error_count: int = 0
    """Every error: structural (skipped regions, bad records) and per-frame."""
    frames_in: int = 0
    """Frames read from the input."""

    def add_errors(self, errors: list[PacketError], count: int | None = None) -> None:
        """Count ``count`` (default: ``len(errors)``) errors, keeping the first few."""
        room = MAX_ERRORS_KEPT - len(self.errors)
        self.errors.extend(errors[: max(room, 0)])
        self.error_count += len(errors) if count is None else count

    def finish(self, reader: CaptureReader) -> JobResult:
        """Merge the reader's structural errors (they come first) and its frame count."""
        self.errors = (reader.errors + self.errors)[:MAX_ERRORS_KEPT]
        self.error_count += reader.error_count
        self.frames_in = reader.frames
        self.total_bytes = reader.bytes_read
        return self


@dataclass(frozen=True, slots=True)
class Options:
    """Settings shared by the jobs."""

    mtu: int = 1500
    keep_going: bool = False
    chunk_bytes: int = CHUNK_BYTES
    progress: Progress = _no_progress
    observe: Observer | None = None
    diagnose: bool = True
    """Feed the analyzer (diagnoses, flows, sizes in :attr:`JobResult.analyzer`). ``fix``
    can do without: the checksums it completes depend on the checks only; ``segment`` and
    an ``observe`` callback always diagnose."""
    processes: int = 1
    """``fix`` without diagnosis, observer or ``keep_going``: fix pieces of a large capture
    in this many local processes (:mod:`ndis_offload.io.local_fix`; same output)."""


def unsupported_linktypes(linktypes: npt.NDArray[np.int64]) -> dict[int, int]:
    """Frames per link type in ``linktypes`` that the capture checks cannot decode (the one
    place that asks; support lives in :data:`ndis_offload.capture.linktype.SUPPORTED`)."""
    if len(linktypes) and (linktypes == linktypes[0]).all():  # one link type: no sort
        first = int(linktypes[0])
        return {} if first in SUPPORTED else {first: len(linktypes)}
    kinds, counts = np.unique(linktypes, return_counts=True)
    return {
        int(k): int(c) for k, c in zip(kinds.tolist(), counts.tolist(), strict=True)
        if int(k) not in SUPPORTED
    }  # fmt: skip


def note_linktypes(result: Counts, chunk: Chunk) -> None:
    """Count ``chunk``'s frames of unsupported link types into ``result.unsupported``."""
    add_frames_per_linktype(result.unsupported, unsupported_linktypes(chunk.linktypes))


def malformed_rows(chunk: Chunk, kind: np.ndarray) -> list[int]:
    """Rows of ``chunk`` whose frame is malformed (records already flagged bad excluded)."""
    return [r for r in np.flatnonzero(kind == Kind.MALFORMED).tolist() if r not in chunk.bad]


def frame_errors(chunk: Chunk, diag: np.ndarray, kind: np.ndarray, errors: dict[int, PacketError],
                 room: int | None = None) -> list[PacketError]:  # fmt: skip
    """The malformed frames' errors, located in the file (the first ``room`` when given)."""
    out: list[PacketError] = []
    rows = malformed_rows(chunk, kind)
    for row in rows if room is None else rows[: max(room, 0)]:
        error = errors.get(row)
        reason = error.reason if error is not None else "malformed frame"
        offset = None if error is None or error.offset is None else error.offset
        at = chunk.file_offset + int(chunk.data_offsets[row]) + (offset or 0)
        out.append(PacketError(reason, frame_index=chunk.first_index + row, offset=at))
    del diag
    return out


def check(chunk: Chunk, *, epb_flags: bool = True, analysis: bool = True) -> Checks:
    """The checks of every record of a chunk (directions from pcapng ``epb_flags`` too,
    unless ``epb_flags`` is False: a pcap file has none; ``analysis``: see
    :func:`~ndis_offload.capture.checks.check_chunk`)."""
    return check_chunk(
        chunk.buffer, chunk.data_offsets, chunk.caplens, chunk.origlens, chunk.linktypes,
        chunk.bad, directions=_directions(chunk) if epb_flags else None, analysis=analysis,
    )  # fmt: skip


def _chunks(
    reader: CaptureReader, result: JobResult, opts: Options
) -> Iterator[tuple[Chunk, Checks, npt.NDArray[np.int8]]]:
    """Chunks with their checks and diagnoses (all UNCHECKED without ``opts.diagnose``)."""
    diagnose = opts.diagnose or opts.observe is not None
    for chunk in reader.chunks():
        checks = check(chunk, epb_flags=reader.format == "pcapng", analysis=diagnose)
        if diagnose:
            diag = result.analyzer.feed(chunk.buffer, checks, chunk.caplens, chunk.first_index)
        else:
            diag = np.full(len(chunk), Diagnosis.UNCHECKED, dtype=np.int8)
        result.slow_frames += checks.slow
        if opts.observe is not None:
            opts.observe(chunk, checks, diag)
        result.total_bytes = reader.bytes_read
        note_linktypes(result, chunk)
        yield chunk, checks, diag
        opts.progress(reader.frames, reader.bytes_read)


def _directions(chunk: Chunk) -> npt.NDArray[np.int8] | None:
    """Directions from pcapng ``epb_flags`` (None when no packet has options)."""
    rows = [i for i, (o0, o1) in enumerate(chunk.options) if o1 > o0]
    if not rows:
        return None
    out = np.full(len(chunk), -1, dtype=np.int8)
    view = memoryview(chunk.buffer)
    for i in rows:
        o0, o1 = chunk.options[i]
        out[i] = epb_direction(view[o0:o1], chunk.big_endian[i])
    return out


def verify(path: str | Path, opts: Options | None = None) -> JobResult:
    """Diagnose every frame (``stats`` uses the same pass)."""
    opts = opts or Options()
    result = JobResult(Analyzer(mtu=opts.mtu))
    stream, reader = open_capture(path, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream:
        for _chunk, _checks, _diag in _chunks(reader, result, opts):
            pass
    return result.finish(reader)


def _strict(chunk: Chunk, checks_kind: np.ndarray, diag: np.ndarray, errors: dict[int, PacketError],
            result: JobResult, keep_going: bool) -> None:  # fmt: skip
    room = MAX_ERRORS_KEPT - len(result.errors) if keep_going else 1
    found = frame_errors(chunk, diag, checks_kind, errors, room)
    count = len(malformed_rows(chunk, checks_kind)) if found else 0
    if count and not keep_going:
        raise found[0]
    result.add_errors(found, count)


def fix(src: str | Path, dst: str | Path, opts: Options | None = None, *,
        everything: bool = False) -> JobResult:  # fmt: skip
    """Complete the checksums left for offload (``everything``: all wrong ones too)."""
    opts = opts or Options()
    result = JobResult(Analyzer(mtu=opts.mtu))
    if opts.processes > 1 and not (opts.diagnose or opts.observe or opts.keep_going):
        try:
            done = local_fix.fix(src, dst, everything=everything, count=opts.processes,
                                 chunk_bytes=opts.chunk_bytes, progress=opts.progress)  # fmt: skip
        except local_fix.Serial:
            pass
        else:
            result.add_counts(done)
            result.frames_in, result.total_bytes = done.frames_out, done.total_bytes
            return result
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    size = _regular_size(src)  # fixing keeps the size (but dropped broken records)
    with stream, atomic_output(dst, [src], size=size) as raw, background_writes(raw) as out:
        writer = CaptureWriter.like(out, reader)
        for chunk, checks, diag in _chunks(reader, result, opts):
            _strict(chunk, checks.kind, diag, checks.errors, result, opts.keep_going)
            patched, count = fix_chunk(chunk.buffer, checks, everything=everything, in_place=True)
            result.changed += count
            if chunk.bad or chunk.skipped:  # drop what is broken, keep the rest byte for byte
                _write_records(writer, _with_buffer(chunk, patched))
            else:  # the pcap file header was written by the writer
                skip = len(reader.header) if chunk.file_offset == 0 else 0
                writer.write_raw(memoryview(patched)[skip:], len(chunk))
        _readable(reader)
        result.frames_out = writer.frames
    return result.finish(reader)


def _regular_size(path: str | Path) -> int:
    """The size of ``path`` if it is a regular file, else 0."""
    try:
        info = os.stat(path)
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _readable(reader: CaptureReader) -> None:
    """Refuse to commit an output without a capture header (nothing of the input was
    readable): the existing output, if any, stays."""
    if not reader.sections:
        why = f" ({reader.errors[0].reason})" if reader.errors else ""
        raise PacketError(f"no intact pcapng section header{why}: nothing readable, nothing "
                          "written", offset=0)  # fmt: skip


def _with_buffer(chunk: Chunk, buffer: bytes | bytearray) -> Chunk:
    """``chunk`` over a patched copy of its bytes (same layout)."""
    return replace(chunk, buffer=bytes(buffer))


def _write_records(writer: CaptureWriter, chunk: Chunk) -> None:
    for item in chunk.packets():
        if isinstance(item, Packet) and item.index - chunk.first_index in chunk.bad:
            continue
        writer.write(item)


def cut_sizes(
    checks: Checks, diag: npt.NDArray[np.int8], analyzer: Analyzer, mss: int | None, mtu: int
) -> tuple[IntArray, dict[int, str]]:
    """Per frame of a fed chunk: the MSS to cut it at, 0 to keep it whole; and the frames
    that cannot be cut, with why. Oversized frames are cut at ``mss`` if given, else at the
    MSS known for their flow when they were sent, else to fit ``mtu``."""
    sizes = np.zeros(len(diag), dtype=np.int64)
    problems: dict[int, str] = {}
    oversize = (diag == Diagnosis.GIANT) | (diag == Diagnosis.COALESCED)
    for row in np.flatnonzero(oversize).tolist():
        headers = int(checks.ip_len[row] - checks.payload_len[row])
        size = mss or analyzer.cut_mss_of(row) or mtu - headers
        if size < 1:
            problems[row] = (
                f"the MTU {mtu} leaves no room for this frame's {headers} bytes of IP and "
                "TCP/UDP headers"
            )
        sizes[row] = max(size, 1)
    return sizes, problems


def write_segmented(
    writer: CaptureWriter, chunk: Chunk, checks: Checks, cuts: tuple[IntArray, dict[int, str]],
    result: JobResult, keep_going: bool, *, blocks_from: int = 0,
) -> None:  # fmt: skip
    """Write a chunk with its offload checksums completed (what was on the wire) and every
    frame with a nonzero size (:func:`cut_sizes`) cut into segments of that MSS; pcapng
    blocks before file offset ``blocks_from`` are left out (a piece's copy of the header).

    Frames that are cut are not completed first (the cut writes every checksum of their
    headers); one that cannot be cut is written completed, as it was on the wire.
    """
    sizes, problems = cuts
    cut = sizes != 0
    rest = replace(checks, kind=np.where(cut, np.int8(Kind.OTHER), checks.kind))
    patched, _ = fix_chunk(chunk.buffer, rest)
    source = chunk if patched is chunk.buffer else _with_buffer(chunk, patched)
    completed: bytes | bytearray | None = None
    """The chunk with every frame completed, made for the first frame that cannot be cut."""
    # pcap records are contiguous and written back as read: runs of frames kept whole go
    # out as one raw write each.
    raw = writer.format == "pcap" and chunk.pcap and not chunk.skipped
    data = memoryview(source.buffer)
    run = [0, 0, 0]
    """The pending run of whole records: start, end in the buffer, record count."""

    def flush() -> None:
        if run[2]:
            writer.write_raw(data[run[0] : run[1]], run[2])
            run[2] = 0

    for item in source.packets():
        if isinstance(item, Block):
            if item.offset >= blocks_from:
                writer.write_block(item)
            continue
        row = item.index - chunk.first_index
        if row in chunk.bad:
            flush()
            continue
        size = int(sizes[row])
        if not size:
            if not raw:
                writer.write_packet(item)
            elif run[2]:
                run[1], run[2] = int(chunk.data_offsets[row]) + len(item.data), run[2] + 1
            else:
                start = int(chunk.record_offsets[row])
                run[:] = start, int(chunk.data_offsets[row]) + len(item.data), 1
            continue
        flush()
        try:
            if row in problems:
                raise PacketError(problems[row])
            frames = segment_record(item.linktype, item.data, size)
        except PacketError as error:
            located = PacketError(error.reason, frame_index=item.index, offset=item.offset)
            if not keep_going:
                raise located from error
            result.add_errors([located])
            if completed is None:
                completed, _ = fix_chunk(chunk.buffer, checks)
            at = int(chunk.data_offsets[row])
            frames = [bytes(completed[at : at + len(item.data)])]
        result.changed += len(frames) > 1
        writer.write_packets(item, frames)
    flush()


def segment(src: str | Path, dst: str | Path, opts: Options | None = None, *,
            mss: int | None = None) -> JobResult:  # fmt: skip
    """Cut oversized (LSO / coalesced) frames into wire-sized segments."""
    opts = replace(opts or Options(), diagnose=True)  # the cuts need the flows' MSS
    result = JobResult(Analyzer(mtu=opts.mtu))
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream, atomic_output(dst, [src]) as out:
        writer = CaptureWriter.like(out, reader)
        for chunk, checks, diag in _chunks(reader, result, opts):
            _strict(chunk, checks.kind, diag, checks.errors, result, opts.keep_going)
            sizes = cut_sizes(checks, diag, result.analyzer, mss, opts.mtu)
            write_segmented(writer, chunk, checks, sizes, result, opts.keep_going)
        _readable(reader)
        result.frames_out = writer.frames
    return result.finish(reader)


__all__ = [
    "Counts",
    "JobResult",
    "Observer",
    "Options",
    "Progress",
    "fix",
    "segment",
    "unsupported_linktypes",
    "verify",
]
