"""The capture tools as functions: stream a file through the sans-IO analysis and rewriters.

Each job reads chunk by chunk (memory stays flat), reports progress through a callback
``progress(frames, bytes)`` after every chunk (a callback that raises, e.g. on Ctrl-C, stops
the job) and writes its output through :func:`~ndis_offload.io.atomic.atomic_output`, so a
failed or interrupted run leaves no output file behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Analyzer, Diagnosis
from ndis_offload.capture.checks import Checks, Kind, check_chunk
from ndis_offload.capture.linktype import epb_direction, from_ethernet, to_ethernet
from ndis_offload.capture.rewrite import fix_chunk, segment_record
from ndis_offload.engine.rsc import RscCoalescer
from ndis_offload.errors import PacketError
from ndis_offload.io.atomic import atomic_output, background_writes
from ndis_offload.io.capture import (
    CHUNK_BYTES,
    Block,
    CaptureReader,
    CaptureWriter,
    Chunk,
    Packet,
    open_capture,
)

Progress = Callable[[int, int], None]
"""``progress(frames_done, bytes_done)``."""
FrameSink = Callable[["Chunk", Checks, npt.NDArray[np.int8]], None]


def _no_progress(frames: int, nbytes: int) -> None:
    del frames, nbytes


@dataclass(slots=True)
class JobResult:
    """What a job did; ``errors`` holds structural and per-frame errors (``--keep-going``)."""

    analyzer: Analyzer
    total_bytes: int = 0
    frames_out: int = 0
    changed: int = 0
    """Checksum fields completed (fix), frames cut (segment), frames merged away (coalesce)."""
    errors: list[PacketError] = field(default_factory=list)
    slow_frames: int = 0


@dataclass(frozen=True, slots=True)
class Options:
    """Settings shared by the jobs."""

    mtu: int = 1500
    keep_going: bool = False
    chunk_bytes: int = CHUNK_BYTES
    progress: Progress = _no_progress
    frames: FrameSink | None = None
    """Called with every chunk, its checks and diagnoses (``pcap verify --frames``)."""


def frame_errors(chunk: Chunk, diag: np.ndarray, kind: np.ndarray, errors: dict[int, PacketError]
                  ) -> list[PacketError]:  # fmt: skip
    out = []
    for row in np.flatnonzero(kind == Kind.MALFORMED).tolist():
        if row in chunk.bad:
            continue
        error = errors.get(row)
        reason = error.reason if error is not None else "malformed frame"
        offset = None if error is None or error.offset is None else error.offset
        at = chunk.file_offset + int(chunk.data_offsets[row]) + (offset or 0)
        out.append(PacketError(reason, frame_index=chunk.first_index + row, offset=at))
    del diag
    return out


def check(chunk: Chunk, *, epb_flags: bool = True) -> Checks:
    """The checks of every record of a chunk (directions from pcapng ``epb_flags`` too,
    unless ``epb_flags`` is False: a pcap file has none)."""
    return check_chunk(
        chunk.buffer, chunk.data_offsets, chunk.caplens, chunk.origlens, chunk.linktypes,
        chunk.bad, directions=_directions(chunk) if epb_flags else None,
    )  # fmt: skip


def _chunks(
    reader: CaptureReader, result: JobResult, opts: Options
) -> Iterator[tuple[Chunk, Checks, npt.NDArray[np.int8]]]:
    """Chunks with their checks and diagnoses; raises on malformed frames unless keep_going."""
    for chunk in reader.chunks():
        checks = check(chunk, epb_flags=reader.format == "pcapng")
        diag = result.analyzer.feed(chunk.buffer, checks, chunk.caplens, chunk.first_index)
        if opts.frames is not None:
            opts.frames(chunk, checks, diag)
        result.slow_frames += checks.slow
        result.total_bytes = reader.bytes_read
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
    result.errors = reader.errors + result.errors
    return result


def _strict(chunk: Chunk, checks_kind: np.ndarray, diag: np.ndarray, errors: dict[int, PacketError],
            result: JobResult, keep_going: bool) -> None:  # fmt: skip
    found = frame_errors(chunk, diag, checks_kind, errors)
    if found and not keep_going:
        raise found[0]
    result.errors.extend(found)


def fix(src: str | Path, dst: str | Path, opts: Options | None = None, *,
        everything: bool = False) -> JobResult:  # fmt: skip
    """Complete the checksums left for offload (``everything``: all wrong ones too)."""
    opts = opts or Options()
    result = JobResult(Analyzer(mtu=opts.mtu))
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream, atomic_output(dst) as raw, background_writes(raw) as out:
        # The pcap header travels in chunk 0's bytes.
        writer = CaptureWriter(out, reader.format, reader.header, write_header=False)
        for chunk, checks, diag in _chunks(reader, result, opts):
            _strict(chunk, checks.kind, diag, checks.errors, result, opts.keep_going)
            patched, count = fix_chunk(chunk.buffer, checks, everything=everything)
            result.changed += count
            if chunk.bad:  # drop the broken records, keep everything else byte for byte
                _write_records(writer, _with_buffer(chunk, patched))
            else:
                writer.write_raw(patched, len(chunk))
        result.frames_out = writer.frames
    result.errors = reader.errors + result.errors
    return result


def _with_buffer(chunk: Chunk, buffer: bytes | bytearray) -> Chunk:
    """``chunk`` over a patched copy of its bytes (same layout)."""
    return Chunk(
        bytes(buffer), chunk.file_offset, chunk.first_index, chunk.data_offsets, chunk.caplens,
        chunk.origlens, chunk.linktypes, chunk.record_offsets, chunk.ts_ticks,
        chunk.ticks_per_second, chunk.interfaces, chunk.options, chunk.big_endian,
        chunk.blocks, chunk.bad,
    )  # fmt: skip


def _write_records(writer: CaptureWriter, chunk: Chunk) -> None:
    for item in chunk.packets():
        if isinstance(item, Packet) and item.index - chunk.first_index in chunk.bad:
            continue
        writer.write(item)


def segment(src: str | Path, dst: str | Path, opts: Options | None = None, *,
            mss: int | None = None) -> JobResult:  # fmt: skip
    """Cut oversized (LSO / coalesced) frames into wire-sized segments."""
    opts = opts or Options()
    result = JobResult(Analyzer(mtu=opts.mtu))
    analyzer = result.analyzer
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream, atomic_output(dst) as out:
        writer = CaptureWriter.like(out, reader)
        for chunk, checks, diag in _chunks(reader, result, opts):
            _strict(chunk, checks.kind, diag, checks.errors, result, opts.keep_going)
            oversize = (diag == Diagnosis.GIANT) | (diag == Diagnosis.COALESCED)
            cut = set(np.flatnonzero(oversize).tolist())
            # What was on the wire: checksums left for offload completed too.
            patched, _ = fix_chunk(chunk.buffer, checks)
            for item in _with_buffer(chunk, patched).packets():
                if isinstance(item, Block):
                    writer.write_block(item)
                    continue
                row = item.index - chunk.first_index
                if row in chunk.bad:
                    continue
                if row not in cut:
                    writer.write_packet(item)
                    continue
                headers = int(checks.ip_len[row] - checks.payload_len[row])
                size = mss or analyzer.cut_mss_of(row) or opts.mtu - headers
                try:
                    frames = segment_record(item.linktype, item.data, size)
                except PacketError as error:
                    located = PacketError(error.reason, frame_index=item.index, offset=item.offset)
                    if not opts.keep_going:
                        raise located from error
                    result.errors.append(located)
                    frames = [item.data]
                result.changed += len(frames) > 1
                for frame in frames:
                    writer.write_packet(item, frame)
        result.frames_out = writer.frames
    result.errors = reader.errors + result.errors
    return result


def coalesce(src: str | Path, dst: str | Path, opts: Options | None = None, *,
             timeout: float = 0.0005, max_flows: int = 64) -> JobResult:  # fmt: skip
    """Apply the NDIS RSC rules to the capture (the engine's ``RscCoalescer``)."""
    opts = opts or Options()
    result = JobResult(Analyzer(mtu=opts.mtu))
    rsc = RscCoalescer(timeout=timeout, max_flows=max_flows)
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream, atomic_output(dst) as out:
        writer = CaptureWriter.like(out, reader)
        last: tuple[Packet, bytes] | None = None
        frames_in = 0

        def emit(frames: list[bytes]) -> None:
            assert last is not None
            packet, header = last
            for frame in frames:
                writer.write_packet(packet, from_ethernet(packet.linktype, header, frame))

        for chunk in reader.chunks():
            for item in chunk.packets():
                if isinstance(item, Block):
                    if last is not None:
                        emit([c.frame for c in rsc.flush()])
                    writer.write_block(item)
                    continue
                if item.index - chunk.first_index in chunk.bad:
                    continue
                frames_in += 1
                now = item.ts_ticks / item.ticks_per_second
                try:
                    header, eth = to_ethernet(item.linktype, item.data)
                    indicated = [c.frame for c in rsc.push(eth, now)]
                except PacketError as error:
                    located = PacketError(error.reason, frame_index=item.index, offset=item.offset)
                    if not opts.keep_going:
                        raise located from error
                    result.errors.append(located)
                    if last is not None:
                        emit([c.frame for c in rsc.flush()])
                    writer.write_packet(item)
                    continue
                last = (item, header)
                emit(indicated)
            result.total_bytes = reader.bytes_read
            opts.progress(reader.frames, reader.bytes_read)
        if last is not None:
            emit([c.frame for c in rsc.flush()])
        result.frames_out = writer.frames
        result.changed = frames_in - writer.frames
    result.errors = reader.errors + result.errors
    return result


__all__ = [
    "FrameSink", "JobResult", "Options", "Progress", "coalesce", "fix", "segment", "verify",
]  # fmt: skip
