"""``pcap verify`` / ``stats`` / ``fix`` on a Dask cluster, with results identical to one pass.

The capture is cut into record-aligned pieces (:mod:`ndis_offload.io.split`). Each worker
reads its piece and does the expensive, frame-local work: locating headers and checking
every checksum (``check_chunk``), reading the MSS of SYNs, and for ``fix`` patching the
checksums and writing the patched bytes straight into the output's temporary file at the
piece's own offset (``fix`` never changes a record's size). The client feeds the checks to one
:class:`~ndis_offload.capture.analyze.Analyzer` in frame order — the cheap, flow-dependent part
(an MSS announced in one piece governs frames in later ones) — so the diagnoses, the flow
table and the errors are those of the serial run, whatever the piece boundaries.

Whenever exactness cannot be guaranteed, the job runs serially instead and says why: a
piece boundary that turns out not to be a record boundary (detected, see ``split``), or any
damaged record (``--keep-going`` resynchronisation must see the file in one pass).

A worker that dies mid-run is replaced and its piece re-run by Dask (pieces are idempotent:
re-running one rewrites the same bytes at the same offsets). Ctrl-C closes the cluster; the
output's temporary file is removed (``atomic_path``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndis_offload.capture.analyze import Analyzer, SynEvents, syn_events
from ndis_offload.capture.checks import Checks
from ndis_offload.capture.rewrite import fix_chunk
from ndis_offload.errors import PacketError
from ndis_offload.io import pcap_jobs
from ndis_offload.io.atomic import atomic_output, atomic_path
from ndis_offload.io.capture import CaptureReader, CaptureWriter, Chunk, IntArray
from ndis_offload.io.cluster import ClusterSpec, connect
from ndis_offload.io.pcap_jobs import (
    JobResult,
    Options,
    check,
    cut_sizes,
    frame_errors,
    write_segmented,
)
from ndis_offload.io.split import Layout, Piece, Splice, SplitError, open_piece, plan

PIECE_BYTES = 64 << 20
"""Nominal piece size: small enough to spread and to report progress, large enough that the
per-task cost (a few ms) stays far below 1 %."""


class Serial(Exception):
    """This run cannot be distributed exactly; the reason is the message."""


@dataclass(slots=True)
class PieceResult:
    """What a worker returns for one piece."""

    index: int
    frames: int = 0
    changed: int = 0
    chunks: list[tuple[Chunk, Checks, SynEvents]] = field(default_factory=list)


def check_piece(
    path: str, layout: Layout, piece: Piece, chunk_bytes: int, output: str | None,
    everything: bool,
) -> PieceResult:  # fmt: skip
    """Worker side: check every record of ``piece``; for ``fix`` (``output``) write the
    patched bytes into ``output`` at the same file offsets. Raises :class:`Serial` when the
    piece cannot be processed exactly on its own."""
    result = PieceResult(piece.index)
    splice, stream = open_piece(path, layout, piece)
    fd = os.open(output, os.O_WRONLY) if output is not None else -1
    try:
        with stream:
            try:
                reader = CaptureReader(stream, chunk_bytes=chunk_bytes)
                for chunk in reader.chunks():
                    checks = check(chunk)
                    if fd >= 0:
                        patched, count = fix_chunk(chunk.buffer, checks, everything=everything)
                        result.changed += count
                        _write_at(fd, splice, layout, piece, chunk.file_offset, patched)
                    # file offset of the chunk's buffer start, so that it plus a position
                    # in the buffer is a file offset (the prefix sits before the piece)
                    shift = piece.start - len(layout.prefix)
                    slim = dataclasses.replace(
                        chunk, buffer=b"", file_offset=chunk.file_offset + shift
                    )
                    result.chunks.append((slim, checks, syn_events(chunk.buffer, checks)))
                    result.frames += len(chunk)
            except PacketError as error:
                raise Serial(f"piece {piece.index}: {error.reason}") from None
            if reader.errors:
                raise Serial(f"piece {piece.index}: damaged records")
    finally:
        if fd >= 0:
            os.close(fd)
    return result


def _write_at(
    fd: int, splice: Splice, layout: Layout, piece: Piece, offset: int, data: bytes | bytearray
) -> None:
    """Write chunk bytes that start at splice ``offset`` to their place in the output. The
    file header comes first in every splice; only the piece at the first record writes it
    (its splice offsets are file offsets)."""
    view = memoryview(data)
    skip = 0
    if piece.start != layout.first_record:
        skip = max(0, len(layout.prefix) - offset)
    at = splice.file_offset(offset + skip)
    while skip < len(view):
        done = os.pwrite(fd, view[skip:], at)
        skip += done
        at += done


Feed = Callable[[Chunk, Checks, SynEvents, JobResult], Any]
"""Client side, per chunk in frame order: feed the checks; may return something per chunk."""
Then = Callable[[Layout, Piece, Any, list[Any], int], None]
"""Client side, after a piece is fed: ``(layout, piece, its check future, what feed returned
per chunk, frames before the piece)``; it owns the future from then on."""


def _run_pieces(
    client: Any, path: str, opts: Options, output: str | None, everything: bool,
    feed: Feed, result: JobResult, piece_bytes: int, then: Then | None = None,
) -> Layout:  # fmt: skip
    from distributed import as_completed

    window = _window(client)
    count = max(1, os.path.getsize(path) // piece_bytes)
    layout, pieces = plan(path, count, min_piece=min(piece_bytes, 1 << 20))
    ready: dict[int, tuple[PieceResult, Any]] = {}
    submitted = fed = frames = 0
    done_bytes = layout.first_record
    queue = as_completed()

    def submit() -> None:
        nonlocal submitted
        while submitted < len(pieces) and submitted - fed < window:
            piece = pieces[submitted]
            queue.add(
                client.submit(
                    check_piece,
                    path,
                    layout,
                    piece,
                    opts.chunk_bytes,
                    output,
                    everything,
                    retries=2,
                    pure=False,
                )  # fmt: skip
            )
            submitted += 1

    submit()
    try:
        for future in queue:
            piece_result: PieceResult = future.result()
            ready[piece_result.index] = (piece_result, future)
            while fed in ready:
                current, current_future = ready.pop(fed)
                outputs = []
                for chunk, checks, syns in current.chunks:
                    chunk = dataclasses.replace(chunk, first_index=chunk.first_index + frames)
                    outputs.append(feed(chunk, checks, syns, result))
                if then is None:
                    current_future.release()
                else:
                    then(layout, pieces[fed], current_future, outputs, frames)
                frames += current.frames
                result.changed += current.changed
                done_bytes += pieces[fed].size
                result.total_bytes = done_bytes
                opts.progress(frames, done_bytes)
                fed += 1
            submit()
    except BaseException:
        for future in list(queue.futures):
            future.cancel()
        raise
    return layout


def verify(
    path: str | Path, spec: ClusterSpec, opts: Options | None = None, *,
    piece_bytes: int = PIECE_BYTES,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.verify`` on a cluster (or serially when exactness needs it)."""
    opts = opts or Options()
    if opts.keep_going:
        return pcap_jobs.verify(path, opts)

    def feed(chunk: Chunk, checks: Checks, syns: SynEvents, result: JobResult) -> None:
        diag = result.analyzer.feed_checked(checks, chunk.caplens, chunk.first_index, syns)
        if opts.observe is not None:  # in frame order, as in one pass
            opts.observe(chunk, checks, diag)
        result.slow_frames += checks.slow

    try:
        with connect(spec) as client:
            result = JobResult(Analyzer(mtu=opts.mtu))
            _run_pieces(client, str(path), opts, None, False, feed, result, piece_bytes)
            return result
    except (Serial, SplitError):
        return pcap_jobs.verify(path, opts)


def fix(
    src: str | Path, dst: str | Path, spec: ClusterSpec, opts: Options | None = None, *,
    everything: bool = False, piece_bytes: int = PIECE_BYTES,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.fix`` on a cluster: workers write the patched pieces into the output's
    temporary file; renamed only when every piece is done and no error stops the run."""
    opts = opts or Options()
    if opts.keep_going:
        return pcap_jobs.fix(src, dst, opts, everything=everything)

    def feed(chunk: Chunk, checks: Checks, syns: SynEvents, result: JobResult) -> None:
        diag = result.analyzer.feed_checked(checks, chunk.caplens, chunk.first_index, syns)
        result.slow_frames += checks.slow
        found = frame_errors(chunk, diag, checks.kind, checks.errors)
        if found:
            raise found[0]  # what the serial run stops at (no --keep-going here)
        result.frames_out += len(chunk)

    try:
        with connect(spec) as client, atomic_path(dst, [src]) as tmp:
            os.truncate(tmp, os.path.getsize(src))
            result = JobResult(Analyzer(mtu=opts.mtu))
            _run_pieces(client, str(src), opts, str(tmp), everything, feed, result, piece_bytes)
            return result
    except (Serial, SplitError):
        return pcap_jobs.fix(src, dst, opts, everything=everything)


def cut_piece(
    path: str, layout: Layout, piece: Piece, chunk_bytes: int, checked: PieceResult,
    sizes: list[tuple[IntArray, dict[int, str]]], first_frame: int, part: str,
) -> tuple[int, int]:  # fmt: skip
    """Worker side of ``segment``: write the piece's records to ``part`` (no file header),
    checksums completed and each frame with a nonzero size cut at it; (frames, frames cut)."""
    result = JobResult(Analyzer())
    _, stream = open_piece(path, layout, piece)
    shift = piece.start - len(layout.prefix)
    header = layout.prefix if layout.format == "pcap" else b""
    first = piece.start == layout.first_record
    with stream, open(part, "wb") as out:
        writer = CaptureWriter(out, "pcap" if header else "pcapng", header, write_header=False)
        reader = CaptureReader(stream, chunk_bytes=chunk_bytes)
        for chunk, (_, checks, _) in zip(reader.chunks(), checked.chunks, strict=True):
            placed = dataclasses.replace(
                chunk, file_offset=chunk.file_offset + shift,
                first_index=chunk.first_index + first_frame,
            )  # fmt: skip
            write_segmented(writer, placed, checks, sizes.pop(0), result, False,
                            blocks_from=0 if first else piece.start)  # fmt: skip
    return writer.frames, result.changed


def segment(
    src: str | Path, dst: str | Path, spec: ClusterSpec, opts: Options | None = None, *,
    mss: int | None = None, piece_bytes: int = PIECE_BYTES,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.segment`` on a cluster: workers check their pieces; the client decides,
    in frame order, which frames to cut at which MSS (the flow state); workers then cut and
    write their pieces; the client joins the pieces into the output."""
    opts = opts or Options()
    if opts.keep_going:
        return pcap_jobs.segment(src, dst, opts, mss=mss)

    def feed(
        chunk: Chunk, checks: Checks, syns: SynEvents, result: JobResult
    ) -> tuple[IntArray, dict[int, str]]:
        diag = result.analyzer.feed_checked(checks, chunk.caplens, chunk.first_index, syns)
        result.slow_frames += checks.slow
        found = frame_errors(chunk, diag, checks.kind, checks.errors)
        if found:
            raise found[0]
        return cut_sizes(checks, diag, result.analyzer, mss, opts.mtu)

    try:
        with connect(spec) as client, atomic_output(dst) as out:
            parts_dir = Path(dst).parent / f".{Path(dst).name}.parts.{os.getpid()}"
            parts_dir.mkdir()
            try:
                cuts: list[Any] = []

                def then(
                    layout: Layout, piece: Piece, checked: Any, sizes: list[Any], before: int
                ) -> None:
                    part = str(parts_dir / f"{piece.index:08d}")
                    cuts.append((part, client.submit(
                        cut_piece, str(src), layout, piece, opts.chunk_bytes, checked, sizes,
                        before, part, retries=2, pure=False,
                    )))  # fmt: skip

                result = JobResult(Analyzer(mtu=opts.mtu))
                layout = _run_pieces(
                    client, str(src), opts, None, False, feed, result, piece_bytes, then
                )
                result.changed = 0
                if layout.format == "pcap":
                    out.write(layout.prefix)
                for part, future in cuts:
                    frames, changed = future.result()
                    result.frames_out += frames
                    result.changed += changed
                    with open(part, "rb") as piece_out:
                        shutil.copyfileobj(piece_out, out, 1 << 20)
                    os.unlink(part)
                return result
            finally:
                shutil.rmtree(parts_dir, ignore_errors=True)
    except (Serial, SplitError):
        return pcap_jobs.segment(src, dst, opts, mss=mss)


def _window(client: Any) -> int:
    """Pieces in flight: enough to keep every worker busy while the client catches up."""
    workers = len(client.scheduler_info().get("workers", {})) or 1
    return 2 * workers + 2


__all__ = [
    "PIECE_BYTES", "PieceResult", "Serial", "check_piece", "cut_piece", "fix", "segment",
    "verify",
]  # fmt: skip
