"""``pcap fix`` on this machine's cores: record-aligned pieces fixed by forked processes.

Completing a checksum needs only its own frame, so record-aligned pieces of a capture
(:func:`~ndis_offload.io.split.plan`) can be fixed independently and written in place into
the output's temporary file, one piece per process: this process fixes the first piece
while forked children fix the others. Only a clean run is kept. A damaged record, a
malformed frame, a piece boundary that is not a record boundary (the reader of the piece
before it then fails on a record cut short), or a new pcapng section or interface inside a
piece (later pieces would be read with the wrong interfaces) make :func:`fix` raise
:class:`Serial`, and the caller runs the serial job: its output, errors and frame numbers
are then exactly the serial ones. Children never return into the caller's stack: they
report through a pipe and leave with ``os._exit``.
"""

from __future__ import annotations

import gc
import io
import json
import os
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ndis_offload.capture.linktype import add_frames_per_linktype
from ndis_offload.capture.rewrite import fix_chunk
from ndis_offload.errors import PacketError
from ndis_offload.io.atomic import atomic_path
from ndis_offload.io.capture import MAX_RECORD, CaptureReader, open_capture
from ndis_offload.io.counts import Counts
from ndis_offload.io.split import Layout, Piece, SplitError, open_piece, plan, write_at

MIN_PIECE = 32 << 20
"""Smaller captures are fixed in one process (a fork and a piece plan cost a few ms)."""
MAX_PROCESSES = 8


class Serial(Exception):
    """This capture is fixed serially; the message says why."""


@dataclass(slots=True, kw_only=True)
class PieceDone(Counts):
    """What fixing pieces did: the job's counters (``frames_out``: the frames read, each
    written) and the bytes of the pieces."""

    total_bytes: int = 0


def processes() -> int:
    """Processes worth using now: the processors this process may run on (at most
    :data:`MAX_PROCESSES`), all of them when the kernel saw no contention for them lately
    (:func:`cpu_contention` below :data:`QUIET`), else those the 1-minute load average
    leaves idle, plus this one. On a busy machine another process only competes for the
    same cores (and costs its own page faults), so a loaded machine gets one. (The load
    average alone is no guide on a quiet machine: it counts this tool's own earlier runs
    and the tasks flushing their output to disk, so back-to-back runs would go serial.)"""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    count = min(cores, MAX_PROCESSES)
    contention = cpu_contention()
    if contention is not None and contention < QUIET:
        return count
    try:
        idle = cores + 1 - os.getloadavg()[0]
    except OSError:  # no load average
        idle = cores
    return max(1, min(count, int(idle)))


QUIET = 25.0
"""Percent of the last 10 s in which some runnable task waited for a processor, below
which a machine counts as quiet (this tool's own processes and writeback threads waiting
now and then stay below it; three busy processes on two cores measured 26-75)."""
PRESSURE = "/proc/pressure/cpu"
"""Linux pressure stall information (PSI, Linux 4.20+): ``some avg10=...`` is that
percentage."""


def cpu_contention(path: str | None = None) -> float | None:
    """The ``some avg10`` figure of ``path`` (default :data:`PRESSURE`); None where the
    kernel has none (not Linux, PSI disabled)."""
    try:
        with open(path or PRESSURE, "rb") as handle:
            line = handle.readline()
    except OSError:
        return None
    for word in line.split():
        if word.startswith(b"avg10="):
            try:
                return float(word[6:])
            except ValueError:
                return None
    return None


def fix(
    src: str | Path, dst: str | Path, *, everything: bool, count: int, chunk_bytes: int,
    progress: Callable[[int, int], None], min_piece: int = 0,
) -> PieceDone:  # fmt: skip
    """Fix ``src`` into ``dst`` with ``count`` processes, in pieces of at least
    ``min_piece`` bytes (default :data:`MIN_PIECE`); :class:`Serial` when it cannot be done
    exactly this way (nothing is written then)."""
    min_piece = min_piece or MIN_PIECE
    if not hasattr(os, "fork") or count < 2:
        raise Serial("one process")
    if not os.path.isfile(src) or os.path.getsize(src) < 2 * min_piece:
        raise Serial("small or not a regular file")
    try:
        layout, pieces = plan(src, count, min_piece=min_piece, largest=_largest(src, chunk_bytes))
    except (SplitError, OSError, PacketError) as error:
        raise Serial(str(error)) from None
    if len(pieces) < 2:
        raise Serial("one piece")
    with atomic_path(dst, [src], size=layout.size) as tmp:  # the output is the input's size
        children: list[tuple[int, int]] = []
        gc.freeze()  # collections must not write to every object page shared with children
        try:
            for piece in pieces[1:]:
                try:
                    children.append(
                        _fork(str(src), str(tmp), layout, piece, chunk_bytes, everything)
                    )
                except OSError as error:  # no process to be had
                    raise Serial(str(error)) from None
            total = _fix_piece(str(src), str(tmp), layout, pieces[0], chunk_bytes, everything,
                               progress)  # fmt: skip
            while children:
                done = _collect(*children.pop(0))
                total.add_counts(done)
                total.total_bytes += done.total_bytes
                progress(total.frames_out, layout.first_record + total.total_bytes)
        finally:
            _reap(children)
            gc.unfreeze()
    total.total_bytes += layout.first_record
    return total


def _fork(
    src: str, tmp: str, layout: Layout, piece: Piece, chunk_bytes: int, everything: bool
) -> tuple[int, int]:
    """Start a child fixing ``piece``; (its pid, the pipe its report arrives on)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without unwinding the caller's stack
        status = 1
        try:
            os.close(read_end)
            done = _fix_piece(src, tmp, layout, piece, chunk_bytes, everything, None)
            report = json.dumps(asdict(done)).encode()
            view = memoryview(report)
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        except BaseException:  # any failure: the parent sees no report and goes serial
            pass
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, pipe: int) -> PieceDone:
    """The report of child ``pid`` (waited for; its pipe closed); :class:`Serial` when it
    failed."""
    parts = []
    try:
        while chunk := os.read(pipe, 1 << 16):
            parts.append(chunk)
    finally:
        os.close(pipe)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not parts:
        raise Serial("a piece could not be fixed on its own")
    fields = json.loads(b"".join(parts))
    fields["unsupported"] = {int(k): v for k, v in fields["unsupported"].items()}  # (JSON keys)
    return PieceDone(**fields)


def _reap(children: list[tuple[int, int]]) -> None:
    """Stop and wait for every child not collected (after an error or a signal)."""
    for pid, pipe in children:
        os.close(pipe)
        os.kill(pid, signal.SIGKILL)  # not waited for yet, so the pid is still this child
        os.waitpid(pid, 0)


def _fix_piece(
    src: str, tmp: str, layout: Layout, piece: Piece, chunk_bytes: int, everything: bool,
    progress: Callable[[int, int], None] | None,
) -> PieceDone:  # fmt: skip
    """Fix the records of ``piece`` into ``tmp`` at their own file offsets."""
    from ndis_offload.io.pcap_jobs import check, malformed_rows, unsupported_linktypes

    done = PieceDone()
    splice, stream = open_piece(src, layout, piece)
    fd = os.open(tmp, os.O_WRONLY)
    try:
        with stream:
            reader = CaptureReader(stream, chunk_bytes=chunk_bytes)
            for chunk in reader.chunks():
                checks = check(chunk, epb_flags=reader.format == "pcapng", analysis=False)
                if malformed_rows(chunk, checks.kind):
                    raise Serial("a malformed frame")
                patched, count = fix_chunk(chunk.buffer, checks, everything=everything,
                                           in_place=True)  # fmt: skip
                write_at(fd, splice, layout, piece, chunk.file_offset, patched)
                done.frames_out += len(chunk)
                done.changed += count
                done.slow_frames += checks.slow
                add_frames_per_linktype(done.unsupported, unsupported_linktypes(chunk.linktypes))
                if progress is not None:
                    progress(done.frames_out, piece.start + reader.bytes_read - len(layout.prefix))
            if reader.errors or reader.sections > 1 or len(reader.interfaces) > _described(layout):
                raise Serial("a damaged record, or a new section or interface in a piece")
            done.total_bytes = piece.size
    except PacketError as error:
        raise Serial(error.reason) from None
    except OSError as error:  # the serial run reports it, naming the output
        raise Serial(str(error)) from None
    finally:
        os.close(fd)
    return done


def _largest(src: str | Path, chunk_bytes: int) -> int:
    """Twice the largest record among the first chunk's, and at least 64 KiB (an LSO
    send): the largest record piece boundaries are looked for with. The usual 256 KiB snap
    length means windows of 3.4 MB and about 100 MB of temporaries (0.15 s before the
    first fork); a boundary found either way is checked by the reader of the piece before
    it."""
    stream, reader = open_capture(src, chunk_bytes=min(chunk_bytes, 1 << 20))
    with stream:
        first = next(reader.chunks(), None)
    seen = int(first.caplens.max(initial=0)) if first is not None else 0
    return min(MAX_RECORD, max(2 * seen, 65535))


def _described(layout: Layout) -> int:
    """The interfaces the file's prefix describes (pcap: one)."""
    reader = CaptureReader(io.BytesIO(layout.prefix))
    for _ in reader.chunks():
        pass
    return len(reader.interfaces)


__all__ = ["MIN_PIECE", "QUIET", "PieceDone", "Serial", "cpu_contention", "fix", "processes"]
