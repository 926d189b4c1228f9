"""The work on one piece of a capture, as the tasks of a scale-out run (worker side).

A run over a capture (or many) is a chain of pieces in frame order (:mod:`ndis_offload.io.
split`). Per piece:

* :func:`check_piece` (parallel, the expensive part): locate the headers and check every
  checksum of every record, read the MSS of SYNs; for ``fix``, patch the checksums and write
  the patched bytes into the output's temporary file at the piece's own offsets. The result,
  :class:`Checked`, stays in the memory of the worker that made it.
* :func:`feed_piece` (the chain, cheap): feed those checks to the flow-dependent
  :class:`~ndis_offload.capture.analyze.Analyzer`, starting from the state the previous piece
  left (:class:`Carry`: peer MSS, flow table, counters). It runs where the checks are, so the
  per-frame checks never leave that worker: only the carried state moves along the chain.
* :func:`cut_piece` (``segment``) and :func:`frames_piece` (``verify --frames``), parallel
  again: write the piece's part of the output from its checks and the decisions the feed took.

:func:`run_local` runs the same steps in one process, chunk by chunk, for inputs of many files
without a cluster. Nothing here talks to Dask: the tasks are plain functions.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Analyzer, SynEvents, syn_events
from ndis_offload.capture.checks import Checks
from ndis_offload.capture.report import frame_records
from ndis_offload.capture.rewrite import fix_chunk
from ndis_offload.errors import PacketError
from ndis_offload.io.capture import CaptureReader, CaptureWriter, Chunk, IntArray
from ndis_offload.io.counts import Counts
from ndis_offload.io.pcap_jobs import (
    JobResult,
    check,
    cut_sizes,
    frame_errors,
    note_linktypes,
    write_segmented,
)
from ndis_offload.io.split import Layout, Piece, open_piece, write_at

Mode = Literal["verify", "fix", "segment"]


class Serial(Exception):
    """This piece cannot be processed exactly on its own; the reason is the message (the
    caller runs the job in one pass)."""


@dataclass(frozen=True, slots=True)
class Work:
    """One piece of one input file, with where its output goes."""

    path: str
    layout: Layout
    piece: Piece
    file_index: int
    output: str | None = None
    """``fix``: the output's temporary file (written at the input's offsets)."""

    @property
    def first(self) -> bool:
        """The piece that starts at the file's first record."""
        return self.piece.start == self.layout.first_record


@dataclass(slots=True)
class Checked:
    """What :func:`check_piece` keeps on its worker: the piece's chunks and their checks."""

    chunks: list[tuple[Chunk, Checks, SynEvents]]
    frames: int = 0
    changed: int = 0
    """``fix``: checksum fields completed in this piece."""
    nbytes: int = 0
    new_section: bool = False
    """The piece holds a pcapng section or interface the file's header does not."""

    def __sizeof__(self) -> int:
        """Its real size, so that the scheduler runs the feed where the checks are."""
        return self.nbytes


@dataclass(slots=True)
class Carry(Counts):
    """The state passed along the chain of pieces (everything after a piece depends on), with
    the job's counters so far."""

    analyzer: Analyzer
    frames: int = 0
    """Frames fed so far (the next piece's first frame number)."""
    file_index: int = 0
    file_start: int = 0
    """The number of the current file's first frame."""
    files: list[int] = field(default_factory=list)
    """Frames per input file fed so far (the current one last)."""
    new_section: bool = False
    """A piece of the current file held a section or interface beyond the file's header:
    the pieces after it were read with a stale one (the job then runs in one pass)."""


@dataclass(slots=True)
class Fed:
    """What :func:`feed_piece` returns: the carried state, and per chunk of the piece the
    decisions its writers need (segment cuts as sparse rows; diagnoses for ``--frames`` or an
    observer)."""

    carry: Carry
    first_frame: int
    cuts: list[tuple[IntArray, IntArray, dict[int, str]]] = field(default_factory=list)
    diags: list[npt.NDArray[np.int8]] = field(default_factory=list)
    observed: list[tuple[Chunk, Checks, npt.NDArray[np.int8]]] = field(default_factory=list)


def piece_chunks(
    work: Work, chunk_bytes: int, *, everything: bool = False, keep_buffers: bool = False,
    strict: bool = True, into: Checked | None = None,
) -> Iterator[tuple[Chunk, Checks, SynEvents, int]]:  # fmt: skip
    """Each chunk of the piece with its checks, SYN MSS announcements and, for ``fix``
    (``work.output``), the checksum fields completed (the patched bytes written in place).
    Chunk file offsets are the input file's; ``first_index`` counts from the piece's start;
    without ``keep_buffers`` the chunk comes without its bytes. ``strict``: raise
    :class:`Serial` for anything a piece cannot judge alone; else the reader's own error.
    ``into.new_section`` is set when the piece holds a pcapng section header or interface
    beyond the file's first ones."""
    splice, stream = open_piece(work.path, work.layout, work.piece)
    fd = os.open(work.output, os.O_WRONLY) if work.output is not None else -1
    # file offset of a chunk's buffer start: the splice's prefix sits before the piece
    shift = work.piece.start - len(work.layout.prefix)
    try:
        with stream:
            reader = CaptureReader(stream, chunk_bytes=chunk_bytes)
            interfaces = -1
            try:
                for chunk in reader.chunks():
                    if interfaces < 0:  # those of the prefix (the file's first section)
                        interfaces = len(reader.interfaces)
                    checks = check(chunk, epb_flags=work.layout.format == "pcapng")
                    changed = 0
                    if fd >= 0:
                        patched, changed = fix_chunk(chunk.buffer, checks, everything=everything)
                        write_at(fd, splice, work.layout, work.piece, chunk.file_offset, patched)
                    syns = syn_events(chunk.buffer, checks)
                    placed = replace(
                        chunk, buffer=chunk.buffer if keep_buffers else b"",
                        file_offset=chunk.file_offset + shift,
                    )  # fmt: skip
                    yield placed, checks, syns, changed
            except PacketError as error:
                if strict:
                    raise Serial(f"{work.path} piece {work.piece.index}: {error.reason}") from None
                raise
            if reader.errors:
                raise Serial(f"{work.path} piece {work.piece.index}: damaged records")
            if into is not None and (reader.sections > 1 or len(reader.interfaces) > interfaces):
                into.new_section = True  # later pieces would be read with a stale header
    finally:
        if fd >= 0:
            os.close(fd)


def check_piece(
    work: Work, chunk_bytes: int, everything: bool = False, keep_buffers: bool = False
) -> Checked:
    """Task: check every record of a piece (see :func:`piece_chunks`)."""
    out = Checked([])
    for chunk, checks, syns, changed in piece_chunks(
        work, chunk_bytes, everything=everything, keep_buffers=keep_buffers, into=out
    ):
        out.chunks.append((chunk, checks, syns))
        out.frames += len(chunk)
        out.changed += changed
        out.nbytes += len(chunk.buffer) + _checks_bytes(checks)
    return out


def frames_of(checked: Checked) -> int:
    """Task: a checked piece's frame count (the progress bar's, without moving the checks)."""
    return checked.frames


def _checks_bytes(checks: Checks) -> int:
    values = (getattr(checks, name) for name in checks.__slots__)
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    return sum(a.nbytes for a in arrays) + 64 * len(arrays)


def start(mtu: int) -> Carry:
    """The state before the first piece."""
    return Carry(Analyzer(mtu=mtu))


def feed_chunk(
    carry: Carry, fed: Fed, work: Work, chunk: Chunk, checks: Checks, syns: SynEvents,
    mode: Mode, mss: int | None, keep_diags: bool, observe: bool,
) -> Chunk:  # fmt: skip
    """Feed one chunk of the piece ``fed`` describes (``first_index`` counted from the
    piece's start, ``fed.first_frame`` the piece's first frame) in frame order; raise the first
    malformed frame's error for ``fix`` / ``segment`` (as one pass does without
    ``--keep-going``), numbered within its file. Returns the chunk as numbered in the run."""
    if work.file_index != carry.file_index or not carry.files:
        carry.file_index, carry.file_start = work.file_index, carry.frames
        carry.files.append(0)
    placed = replace(chunk, first_index=chunk.first_index + fed.first_frame)
    analyzer = carry.analyzer
    diag = analyzer.feed_checked(checks, chunk.caplens, placed.first_index, syns)
    carry.slow_frames += checks.slow
    note_linktypes(carry, chunk)
    if mode != "verify":
        found = frame_errors(placed, diag, checks.kind, checks.errors)
        if found:
            first = found[0]
            index = None if first.frame_index is None else first.frame_index - carry.file_start
            raise PacketError(first.reason, frame_index=index, offset=first.offset)
        carry.frames_out += len(chunk)
    if mode == "segment":
        sizes, problems = cut_sizes(checks, diag, analyzer, mss, analyzer.mtu)
        rows = np.flatnonzero(sizes)
        fed.cuts.append((rows, sizes[rows], problems))
    if keep_diags:
        fed.diags.append(diag)
    if observe:
        fed.observed.append((placed, checks, diag))
    carry.frames += len(chunk)
    carry.files[-1] += len(chunk)
    return placed


def feed_piece(
    checked: Checked, previous: Fed | Carry, work: Work, mode: Mode, mss: int | None = None,
    keep_diags: bool = False, observe: bool = False,
) -> Fed:  # fmt: skip
    """Task: feed a checked piece, starting from the state the previous piece left (never
    changed in place: a task may run twice)."""
    before = previous.carry if isinstance(previous, Fed) else previous
    carry: Carry = pickle.loads(pickle.dumps(before, protocol=pickle.HIGHEST_PROTOCOL))
    if work.first:
        carry.new_section = False
    elif carry.new_section:
        raise Serial(f"{work.path}: a pcapng section or interface after the file's first ones")
    carry.new_section = checked.new_section
    fed = Fed(carry, carry.frames)
    for chunk, checks, syns in checked.chunks:
        feed_chunk(carry, fed, work, chunk, checks, syns, mode, mss, keep_diags, observe)
    if mode == "fix":
        carry.changed += checked.changed
    carry.analyzer.cut_mss = carry.analyzer.cut_mss[:0]  # per chunk only: not carried
    return fed


def dense_cuts(
    length: int, cuts: tuple[IntArray, IntArray, dict[int, str]]
) -> tuple[IntArray, dict[int, str]]:
    """:func:`~ndis_offload.io.pcap_jobs.cut_sizes`' answer from its sparse form."""
    rows, values, problems = cuts
    sizes = np.zeros(length, dtype=np.int64)
    sizes[rows] = values
    return sizes, problems


def write_cut(
    writer: CaptureWriter, work: Work, chunk: Chunk, checks: Checks,
    cuts: tuple[IntArray, IntArray, dict[int, str]], first_frame: int,
) -> int:  # fmt: skip
    """Write one chunk of a piece segmented (see :func:`~ndis_offload.io.pcap_jobs.
    write_segmented`); frames cut. Frame numbers in errors count within the file."""
    result = JobResult(Analyzer())
    placed = replace(chunk, first_index=chunk.first_index + first_frame)
    write_segmented(writer, placed, checks, dense_cuts(len(chunk), cuts), result, False,
                    blocks_from=0 if work.first else work.piece.start)  # fmt: skip
    return result.changed


def part_writer(out: BinaryIO, layout: Layout) -> CaptureWriter:
    """A writer of records in ``layout``'s format that writes no file header."""
    if layout.format == "pcap":
        return CaptureWriter(out, "pcap", layout.prefix, write_header=False)
    return CaptureWriter(out, "pcapng", b"", write_header=False)


def cut_piece(checked: Checked, fed: Fed, work: Work, part: str) -> tuple[int, int]:
    """Task (``segment``): write the piece's records to ``part`` (no file header), offload
    checksums completed, each frame the feed chose cut at its MSS; (frames, frames cut)."""
    changed = 0
    first = fed.first_frame - fed.carry.file_start  # frames of the file before the piece
    with open(part, "wb", buffering=1 << 20) as out:
        writer = part_writer(out, work.layout)
        for (chunk, checks, _), cuts in zip(checked.chunks, fed.cuts, strict=True):
            changed += write_cut(writer, work, chunk, checks, cuts, first)
            first += len(chunk)
    return writer.frames, changed


def frames_piece(checked: Checked, fed: Fed, part: str) -> int:
    """Task (``verify --frames``): the piece's per-frame JSON lines into ``part``."""
    number = fed.first_frame
    with open(part, "wb") as out:
        for (chunk, checks, _), diag in zip(checked.chunks, fed.diags, strict=True):
            lines = (json.dumps(r) + "\n" for r in frame_records(checks, diag, number))
            out.write("".join(lines).encode())
            number += len(chunk)
    return number - fed.first_frame


__all__ = [
    "Carry", "Checked", "Fed", "Mode", "Serial", "Work", "check_piece", "cut_piece",
    "dense_cuts", "feed_chunk", "feed_piece", "frames_of", "frames_piece", "part_writer",
    "piece_chunks",
    "start", "write_cut",
]  # fmt: skip
