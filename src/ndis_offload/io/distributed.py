"""``pcap verify`` / ``stats`` / ``fix`` / ``segment`` on a Dask cluster, and over many input
files as one job, with results identical to one pass.

Each input is cut into record-aligned pieces (:mod:`ndis_offload.io.split`); the pieces of all
inputs, in order, form one chain. Per piece the cluster runs the tasks of
:mod:`ndis_offload.io.pieces`: a *check* (parallel, the expensive part, its per-frame result
kept on the worker), a *feed* of the flow-dependent analyzer that takes the state the previous
piece's feed left (it runs where the checks are; only that state moves between workers) and,
for ``segment`` and ``verify --frames``, a parallel *writer* of the piece's part of the
output. The client only submits tasks, counts finished bytes for the progress bar and joins
part files; it never sees per-frame data (except for an observer such as the HTML report's
timeline, which gets every chunk's checks in frame order).

Many inputs (a directory or a glob, :func:`expand_inputs`) are one job: one report over all
of them, frames numbered across the files in order, the flow state (an MSS announced in one
file governs the next); ``fix`` and ``segment`` write one output per input into an output
directory. Without a cluster they run in one process, chunk by chunk.

Whenever exactness cannot be guaranteed, the job runs in one pass instead: a piece boundary
that turns out not to be a record boundary (detected, see ``split``), or any damaged record
(``--keep-going`` resynchronisation must see the file in one pass). A worker that dies
mid-run is replaced and its lost results recomputed by Dask (every task is idempotent).
Ctrl-C closes the cluster; the outputs' temporary files are removed (``atomic_path``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ndis_offload.errors import BackendError, PacketError
from ndis_offload.io import pcap_jobs
from ndis_offload.io.atomic import atomic_output, atomic_path
from ndis_offload.io.cluster import ClusterSpec, connect
from ndis_offload.io.coalesce import MAX_FLOWS, TIMEOUT, Steering
from ndis_offload.io.coalesce import coalesce as serial_coalesce
from ndis_offload.io.inputs import CAPTURE_SUFFIXES, InputError, expand_inputs, names_many
from ndis_offload.io.pcap_jobs import JobResult, Options
from ndis_offload.io.pieces import (
    Carry,
    Fed,
    Mode,
    Serial,
    Work,
    check_piece,
    cut_piece,
    feed_chunk,
    feed_piece,
    frames_of,
    frames_piece,
    part_writer,
    piece_chunks,
    start,
    write_cut,
)
from ndis_offload.io.split import Layout, Piece, SplitError, iter_pieces, read_layout

PIECE_BYTES = 256 << 20
"""The largest piece: large enough that the per-piece cost of Dask (about 7 ms of client and
scheduler CPU for a piece's two or three tasks, measured) stays near 2 % of its work (about
0.35 s of checking). Pieces shrink towards the end of a job (guided sizes, :func:`_plan`)
down to ``PIECE_BYTES / MIN_PIECE_PART``, so that the workers finish together."""
MIN_PIECE_PART = 16


Paths = str | Path | Sequence[str | Path]


@dataclass(slots=True)
class ManyResult(JobResult):
    """A job's result with its inputs: (path, first frame number, frames) per file."""

    files: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Job:
    """What to do with every piece."""

    mode: Mode
    opts: Options
    mss: int | None = None
    everything: bool = False
    frames: str | None = None
    """``verify --frames``: the JSON-lines output."""
    work_dir: str | None = None
    """Where part files go (storage every worker and the client see); default: next to the
    output."""
    into_dir: bool | None = None
    """Outputs go into a directory, one per input (default: when there are many inputs)."""


def output_paths(inputs: Sequence[Path], output: str | Path) -> list[Path]:
    """One output per input, named like it, in directory ``output`` (created if missing)."""
    names = [p.name for p in inputs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BackendError(f"inputs share a file name ({', '.join(twice)}): their outputs "
                           f"would collide in {output}")  # fmt: skip
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise BackendError(f"{output}: with many inputs the output must be a directory")
    clash = [p for p in inputs if Path(os.path.realpath(p)).parent == out.resolve()]
    if clash:
        raise BackendError(f"{output}: is the directory of input {clash[0]}; pick another one")
    out.mkdir(parents=True, exist_ok=True)
    return [out / n for n in names]


def _as_list(paths: Paths) -> list[Path]:
    return [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]


def verify(
    paths: Paths, spec: ClusterSpec | None = None, opts: Options | None = None, *,
    frames: str | Path | None = None, piece_bytes: int = PIECE_BYTES,
    work_dir: str | Path | None = None,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.verify`` over one or many files, on a cluster when ``spec`` names one;
    ``frames``: also write the per-frame JSON lines there."""
    job = Job("verify", opts or Options(), frames=None if frames is None else str(frames),
              work_dir=_dir(work_dir))  # fmt: skip
    return _job(_as_list(paths), None, spec, job, piece_bytes)


def fix(
    src: Paths, dst: str | Path, spec: ClusterSpec | None = None, opts: Options | None = None,
    *, everything: bool = False, piece_bytes: int = PIECE_BYTES,
    work_dir: str | Path | None = None, into_dir: bool | None = None,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.fix``: workers write the patched pieces into the output's temporary file,
    renamed only when every piece is done and no error stops the run. Many inputs: ``dst``
    is a directory, one output per input."""
    job = Job("fix", opts or Options(), everything=everything, work_dir=_dir(work_dir),
              into_dir=into_dir)  # fmt: skip
    return _job(_as_list(src), dst, spec, job, piece_bytes)


def segment(
    src: Paths, dst: str | Path, spec: ClusterSpec | None = None, opts: Options | None = None,
    *, mss: int | None = None, piece_bytes: int = PIECE_BYTES,
    work_dir: str | Path | None = None, into_dir: bool | None = None,
) -> JobResult:  # fmt: skip
    """``pcap_jobs.segment``: the feed decides in frame order which frames to cut at which MSS
    (the flow state); workers cut their pieces into part files joined in order."""
    job = Job("segment", opts or Options(), mss=mss, work_dir=_dir(work_dir), into_dir=into_dir)
    return _job(_as_list(src), dst, spec, job, piece_bytes)


def coalesce(
    src: str | Path, dst: str | Path, spec: ClusterSpec | None = None,
    opts: Options | None = None, *, timeout: float = TIMEOUT, max_flows: int = MAX_FLOWS,
    steering: Steering | None = None, piece_bytes: int = PIECE_BYTES,
    work_dir: str | Path | None = None,
) -> JobResult:  # fmt: skip
    """``pcap coalesce --queues N`` (:mod:`ndis_offload.io.coalesce`), on a cluster when
    ``spec`` names one: each receive queue coalesced by its own task, merged back byte for
    byte (:mod:`ndis_offload.io.coalesce_cluster`). One queue cannot be cut: refused."""
    opts = opts or Options()
    steering = steering or Steering()
    if spec is not None and spec.distributed:
        if steering.queues < 2:
            raise BackendError(QUEUES_HINT)
        if not opts.keep_going:
            from ndis_offload.io import coalesce_cluster

            try:
                with connect(spec) as client:
                    return coalesce_cluster.run(
                        client, Path(src), Path(dst), opts, steering, timeout=timeout,
                        max_flows=max_flows, piece_bytes=piece_bytes, work_dir=_dir(work_dir),
                    )  # fmt: skip
            except (Serial, SplitError):
                pass  # exactness needs one pass
    return serial_coalesce(src, dst, opts, timeout=timeout, max_flows=max_flows,
                           steering=steering)  # fmt: skip


QUEUES_HINT = (
    "pcap coalesce runs on a cluster only with --queues N (N >= 2): one coalescer's SCU "
    "limit (eviction) and timers span every flow, so cutting its frames apart would change "
    "the output; --queues N models a NIC with N receive queues, each coalescing on its own, "
    "and each queue runs on a worker"
)


def _dir(path: str | Path | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_dir():
        raise BackendError(f"--work-dir {path}: not a directory")
    return str(path)


def _job(
    inputs: list[Path], dst: str | Path | None, spec: ClusterSpec | None, job: Job,
    piece_bytes: int,
) -> JobResult:  # fmt: skip
    many = len(inputs) > 1
    if not inputs:
        raise BackendError("no input files")
    outputs: list[Path] | None = None
    if dst is not None:
        into_dir = many if job.into_dir is None else job.into_dir
        outputs = output_paths(inputs, dst) if into_dir else [Path(dst)]
    if spec is not None and spec.distributed and not job.opts.keep_going:
        try:
            with connect(spec) as client:
                return _on_cluster(client, inputs, outputs, job, piece_bytes)
        except (Serial, SplitError):
            pass  # exactness needs one pass
    if not many:
        return _one_pass(inputs[0], None if outputs is None else outputs[0], job)
    return _local(inputs, outputs, job)  # one pass over many files


def _one_pass(src: Path, dst: Path | None, job: Job) -> JobResult:
    """The serial tools of ``pcap_jobs`` (the reference every other run must equal)."""
    opts = job.opts
    if job.mode == "verify":
        if job.frames is None:
            return pcap_jobs.verify(src, opts)
        from dataclasses import replace

        from ndis_offload.capture.report import frame_records

        with atomic_output(job.frames) as out:
            also = opts.observe

            def sink(chunk: Any, checks: Any, diag: Any) -> None:
                records = frame_records(checks, diag, chunk.first_index)
                out.write("".join(_json_line(r) for r in records).encode())
                if also is not None:
                    also(chunk, checks, diag)

            return pcap_jobs.verify(src, replace(opts, observe=sink))
    assert dst is not None
    if job.mode == "fix":
        return pcap_jobs.fix(src, dst, opts, everything=job.everything)
    return pcap_jobs.segment(src, dst, opts, mss=job.mss)


def _json_line(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record) + "\n"


def _finish(carry: Carry, inputs: list[Path], total: int, changed: int | None = None,
            frames_out: int | None = None) -> ManyResult:  # fmt: skip
    result = ManyResult(carry.analyzer)
    result.total_bytes = total
    result.frames_in = carry.frames
    result.add_counts(carry)
    result.changed = carry.changed if changed is None else changed
    result.frames_out = carry.frames_out if frames_out is None else frames_out
    first = 0
    counts = carry.files + [0] * (len(inputs) - len(carry.files))
    for path, count in zip(inputs, counts, strict=True):
        result.files.append((str(path), first, count))
        first += count
    return result


def _whole(path: Path, index: int, output: Path | None) -> Work:
    layout = read_layout(path)
    return Work(str(path), layout, Piece(0, layout.first_record, layout.size), index,
                None if output is None else str(output))  # fmt: skip


class _Dropped(Exception):
    """Thrown into an output's ``atomic_path`` to remove its temporary file unused."""


@dataclass(slots=True)
class _Temps:
    """The temporary files of a job's outputs: ``paths[i]`` for input ``i`` (None when the
    job writes no output, or once :meth:`drop` removed it) and ``frames`` for ``--frames``."""

    paths: list[Path | None]
    frames: Path | None
    holders: dict[int, Any] = field(default_factory=dict)

    def drop(self, index: int) -> None:
        """Remove input ``index``'s temporary file: that output is not written."""
        holder = self.holders.pop(index, None)
        if holder is not None:
            holder.__exit__(_Dropped, _Dropped(), None)  # removes the file, target untouched
        self.paths[index] = None


@contextmanager
def _outputs(inputs: list[Path], outputs: list[Path] | None, job: Job) -> Iterator[_Temps]:
    """Temporary files for every output (renamed together at the end, removed on any error),
    and for ``--frames``; an output can be dropped (``--keep-going`` leaves a bad file out)."""
    temps = _Temps([None] * len(inputs), None)
    with ExitStack() as stack:

        def finish() -> None:
            pending = list(temps.holders.values())
            temps.holders.clear()
            for done, holder in enumerate(pending, 1):
                try:
                    holder.__exit__(None, None, None)
                except BaseException:
                    for rest in pending[done:]:
                        rest.__exit__(_Dropped, _Dropped(), None)
                    raise

        def discard(*_: object) -> None:
            for holder in temps.holders.values():
                holder.__exit__(_Dropped, _Dropped(), None)

        if outputs is not None:
            for i, (src, dst) in enumerate(zip(inputs, outputs, strict=True)):
                holder = atomic_path(dst, [src])
                temps.holders[i] = holder
                temps.paths[i] = holder.__enter__()
        if job.frames is not None:
            temps.frames = stack.enter_context(atomic_path(job.frames))
        try:
            yield temps
        except BaseException:
            discard()
            raise
        finish()


def _local(inputs: list[Path], outputs: list[Path] | None, job: Job) -> JobResult:
    """Many inputs in one process, chunk by chunk, through the steps the cluster runs."""
    opts = job.opts
    carry = start(opts.mtu)
    done = 0
    skipped: list[PacketError] = []
    with _outputs(inputs, outputs, job) as outs, ExitStack() as stack:
        temps, frames_tmp = outs.paths, outs.frames
        frames_out = None if frames_tmp is None else stack.enter_context(open(frames_tmp, "wb"))
        changed = written = 0
        for index, path in enumerate(inputs):
            if not opts.keep_going:
                counts = _local_file(carry, index, path, temps[index], job, frames_out, done)
            else:  # a bad file is reported and left out whole, as if it were absent
                before = pickle.dumps(carry, protocol=pickle.HIGHEST_PROTOCOL)
                mark = None if frames_out is None else frames_out.tell()
                try:
                    counts = _local_file(carry, index, path, temps[index], job, frames_out, done)
                except (InputError, SplitError, Serial) as error:
                    skipped.append(_as_input_error(path, error))
                    carry = pickle.loads(before)
                    carry.file_index = index
                    carry.files += [0] * (index + 1 - len(carry.files))
                    outs.drop(index)
                    if frames_out is not None and mark is not None:
                        frames_out.seek(mark)
                        frames_out.truncate()
                    counts = (0, 0)
            changed += counts[0]
            written += counts[1]
            done += path.stat().st_size
            opts.progress(carry.frames, done)
        if frames_out is not None:
            frames_out.close()
    frames_written = written if job.mode == "segment" else None
    result = _finish(carry, inputs, done, changed, frames_written)
    result.add_errors(skipped)
    return result


def _as_input_error(path: Path, error: Exception) -> InputError:
    """A bad file's error, named by the file (its frame number within it, if known)."""
    if isinstance(error, InputError):
        return error
    if isinstance(error, PacketError):
        return InputError(str(path), error)
    return InputError(str(path), PacketError(str(error)))


def _local_file(
    carry: Carry, index: int, path: Path, target: Path | None, job: Job,
    frames_out: BinaryIO | None, done: int,
) -> tuple[int, int]:  # fmt: skip
    """One input of :func:`_local` (``done``: bytes of the inputs before it); (changed,
    frames written)."""
    opts = job.opts
    changed = written = 0
    fix_tmp = target if job.mode == "fix" else None
    work = _whole(path, index, fix_tmp)
    if fix_tmp is not None:
        os.truncate(fix_tmp, work.layout.size)
    seg: BinaryIO | None = None
    if job.mode == "segment":
        assert target is not None
        seg = open(target, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
        if work.layout.format == "pcap":
            seg.write(work.layout.prefix)
    try:
        writer = None if seg is None else part_writer(seg, work.layout)
        chunks = piece_chunks(work, opts.chunk_bytes, everything=job.everything,
                              keep_buffers=seg is not None or opts.observe is not None,
                              strict=False)  # fmt: skip
        base = carry.frames  # the file is one piece: its first frame
        try:
            for chunk, checks, syns, count in chunks:
                fed = Fed(carry, base)
                placed = feed_chunk(carry, fed, work, chunk, checks, syns, job.mode, job.mss,
                                    True, False)  # fmt: skip
                changed += count
                if writer is not None:
                    changed += write_cut(writer, work, chunk, checks, fed.cuts[0], 0)
                if frames_out is not None:
                    _write_frames(frames_out, checks, fed.diags[0], placed.first_index)
                if opts.observe is not None:
                    opts.observe(placed, checks, fed.diags[0])
                opts.progress(carry.frames, done + chunk.file_offset + len(chunk.buffer))
        except PacketError as error:
            raise InputError(str(path), error) from error
        if writer is not None:
            written += writer.frames
    finally:
        if seg is not None:
            seg.close()
    return changed, written


def _write_frames(out: BinaryIO, checks: Any, diag: Any, first: int) -> None:
    from ndis_offload.capture.report import frame_records

    out.write("".join(_json_line(r) for r in frame_records(checks, diag, first)).encode())


@dataclass(slots=True)
class _Slot:
    """The futures of one piece, dropped as soon as nothing needs them."""

    work: Work
    part: str | None = None
    check: Any = None
    feed: Any = None
    after: Any = None
    checked: bool = False
    fed: bool = False
    after_value: Any = None
    count: Any = None
    """The piece's frame count (for the progress bar), a small task after the check."""
    where: dict[str, Any] = field(default_factory=dict)
    """Where the piece's tasks run (the worker that holds its checks)."""


def _plan(
    inputs: list[Path], temps: list[Path | None], job: Job, piece_bytes: int, workers: int
) -> Iterator[Work]:
    """Every piece of every input in order, each boundary found only when needed; guided
    sizes (:func:`~ndis_offload.io.split.iter_pieces`): at most ``piece_bytes``, each about
    1 / (4 x workers) of what is left of the job."""
    sizes = [p.stat().st_size for p in inputs]
    for index, path in enumerate(inputs):
        fix_tmp = temps[index] if job.mode == "fix" else None
        if fix_tmp is not None:
            os.truncate(fix_tmp, sizes[index])
        layout = read_layout(path)
        out = None if fix_tmp is None else str(fix_tmp)
        for piece in iter_pieces(
            path, layout, 1, min_piece=max(piece_bytes // MIN_PIECE_PART, 64 << 10),
            max_piece=piece_bytes, ahead=4 * workers, after=sum(sizes[index + 1 :]),
        ):  # fmt: skip
            yield Work(str(path), layout, piece, index, out)


def _on_cluster(
    client: Any, inputs: list[Path], outputs: list[Path] | None, job: Job, piece_bytes: int
) -> JobResult:
    with _outputs(inputs, outputs, job) as outs:
        temps, frames_tmp = outs.paths, outs.frames
        parts_dir = None
        if job.mode == "segment" or frames_tmp is not None:
            anchor = Path(temps[0] if frames_tmp is None else frames_tmp)  # type: ignore[arg-type]
            where = anchor.parent if job.work_dir is None else Path(job.work_dir)
            parts_dir = Path(tempfile.mkdtemp(prefix=f".{anchor.name}.parts.", dir=where))
        try:
            total = sum(p.stat().st_size for p in inputs)
            driver = _Driver(client, job, parts_dir)
            works = _plan(inputs, temps, job, piece_bytes, max(1, len(driver.load)))
            slots, last = driver.run(works)
            result = _finish(last.carry, inputs, total)
            if job.mode == "segment":
                result.frames_out = sum(s.after_value[0] for s in slots)
                result.changed = sum(s.after_value[1] for s in slots)
                _join_segments(slots, temps)
            if frames_tmp is not None:
                with open(frames_tmp, "wb") as out_file:
                    for slot in slots:
                        assert slot.part is not None
                        _append(out_file, slot.part)
            return result
        finally:
            if parts_dir is not None:
                shutil.rmtree(parts_dir, ignore_errors=True)


class _Driver:
    """Submits the pieces' tasks a window ahead of the feed chain, runs each feed and writer
    on the worker that holds the piece's checks, counts finished bytes, and stops at the first
    error in frame order."""

    def __init__(self, client: Any, job: Job, parts_dir: Path | None) -> None:
        from distributed import as_completed

        self.client = client
        self.job = job
        self.parts_dir = parts_dir
        self.window = _window(client)
        self.queue = as_completed(loop=client.loop)
        self.tags: dict[str, tuple[str, int]] = {}
        self.slots: list[_Slot] = []
        self.previous: Any = start(job.opts.mtu)
        self.fed = self.feeding = self.observed = 0
        self.done = self.frames = 0
        workers = list(client.scheduler_info().get("workers", {}))
        self.load: dict[str, int] = dict.fromkeys(workers, 0)
        """Checks submitted and not finished, per worker."""

    def _place(self) -> dict[str, Any]:
        """The least loaded worker, loosely (Dask may run the task elsewhere, as when that
        worker dies): a piece's check, feed and writer go to the same one, so its checks
        never move."""
        if not self.load:
            return {}
        worker = min(self.load, key=lambda w: self.load[w])
        self.load[worker] += 1
        return {"workers": [worker], "allow_other_workers": True}

    def _add(self, tag: str, k: int, future: Any) -> Any:
        self.tags[future.key] = (tag, k)
        self.queue.add(future)
        return future

    def _submit_checks(self, works: Iterator[Work]) -> None:
        job = self.job
        while len(self.slots) - self.fed < self.window:
            work = next(works, None)
            if work is None:
                return
            k = len(self.slots)
            part = None if self.parts_dir is None else str(self.parts_dir / f"{k:08d}")
            slot = _Slot(work, part)
            self.slots.append(slot)
            if work.first:
                self.done += work.layout.first_record
            slot.where = self._place()
            slot.check = self._add("check", k, self.client.submit(
                check_piece, work, job.opts.chunk_bytes, job.everything,
                job.mode == "segment", pure=False, priority=0, **slot.where,
            ))  # fmt: skip
            slot.count = self._add("count", k, self.client.submit(
                frames_of, slot.check, pure=False, priority=0, **slot.where,
            ))  # fmt: skip

    def _submit_feeds(self) -> None:
        """Feeds in frame order, each where its checks are (loosely: a dead worker's piece
        is recomputed elsewhere)."""
        job, client = self.job, self.client
        observe = job.opts.observe is not None
        while self.feeding < len(self.slots) and self.slots[self.feeding].checked:
            k, slot = self.feeding, self.slots[self.feeding]
            where = slot.where
            slot.feed = self._add("feed", k, client.submit(
                feed_piece, slot.check, self.previous, slot.work, job.mode, job.mss,
                job.frames is not None, observe, pure=False, priority=10, **where,
            ))  # fmt: skip
            if job.mode == "segment":
                slot.after = client.submit(cut_piece, slot.check, slot.feed, slot.work,
                                           slot.part, pure=False, priority=5, **where)  # fmt: skip
            elif job.frames is not None:
                slot.after = client.submit(frames_piece, slot.check, slot.feed, slot.part,
                                           pure=False, priority=5, **where)  # fmt: skip
            if slot.after is not None:
                self._add("after", k, slot.after)
            slot.check = None  # the workers free it once its feed and writer are done
            self.previous = slot.feed
            self.feeding += 1

    def run(self, works: Iterator[Work]) -> tuple[list[_Slot], Fed]:
        opts = self.job.opts
        try:
            self._submit_checks(works)
            for future in self.queue:
                tag, k = self.tags.pop(future.key)
                slot = self.slots[k]
                if future.status != "finished":
                    self._raise_first(k)
                if tag == "check":
                    slot.checked = True
                    for worker in slot.where.get("workers", ()):
                        self.load[worker] = self.load.get(worker, 1) - 1
                    self.done += slot.work.piece.size
                    opts.progress(self.frames, self.done)
                    self._submit_feeds()
                elif tag == "count":
                    self.frames += future.result()
                    slot.count = None
                    opts.progress(self.frames, self.done)
                elif tag == "feed":
                    slot.fed = True
                    self.fed += 1
                else:
                    slot.after_value = future.result()
                    slot.after = None
                self._release(k)
                self._submit_checks(works)
            last = self.slots[-1].feed.result() if self.slots else Fed(start(opts.mtu), 0)
        except BaseException:
            for slot in self.slots:
                for future in (slot.check, slot.feed, slot.after, slot.count):
                    if future is not None:
                        future.cancel()
            raise
        return self.slots, last

    def _release(self, k: int) -> None:
        """A feed is needed until the next one is done (and, observing, until seen)."""
        slots, observe = self.slots, self.job.opts.observe is not None
        while observe and self.observed < len(slots) and slots[self.observed].fed:
            _observe(self.job.opts, slots[self.observed].feed.result())
            self.observed += 1
        for j in (k - 1, k):
            if 0 <= j < len(slots) - 1 and slots[j + 1].fed and (not observe or j < self.observed):
                slots[j].feed = None

    def _raise_first(self, upto: int) -> None:
        """Raise the error of the earliest piece (in frame order) that has one, waiting for
        the pieces before ``upto`` (an error of a later piece stands only if none came
        before). Futures already dropped had finished without error."""
        for slot in self.slots[: upto + 1]:
            for future in (slot.check, slot.feed, slot.after):
                if future is None:
                    continue
                try:
                    future.result()
                except PacketError as error:
                    raise InputError(slot.work.path, error) from error
        raise BackendError("a cluster task failed without an error")  # pragma: no cover


def _observe(opts: Options, fed: Fed) -> None:
    assert opts.observe is not None
    for chunk, checks, diag in fed.observed:
        opts.observe(chunk, checks, diag)


def _append(out: BinaryIO, part: str) -> None:
    """Append file ``part`` to ``out`` (in the kernel where it can) and remove it."""
    out.flush()
    with open(part, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        try:
            sent = 0
            while sent < size:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - sent)
                if n == 0:
                    break
                sent += n
            out.seek(0, os.SEEK_END)
        except OSError:
            src.seek(0)
            shutil.copyfileobj(src, out, 1 << 20)
    os.unlink(part)


def _join_segments(slots: list[_Slot], temps: list[Path | None]) -> None:
    """Each output: the pcap file header, then its pieces' parts in order."""
    by_file: dict[int, list[_Slot]] = {}
    for slot in slots:
        by_file.setdefault(slot.work.file_index, []).append(slot)
    for index, group in by_file.items():
        target = temps[index]
        assert target is not None
        with open(target, "wb") as out:
            layout: Layout = group[0].work.layout
            if layout.format == "pcap":
                out.write(layout.prefix)
            for slot in group:
                assert slot.part is not None
                _append(out, slot.part)


def _window(client: Any) -> int:
    """Pieces in flight: enough to keep every worker busy while the feed chain catches up."""
    workers = len(client.scheduler_info().get("workers", {})) or 1
    return 2 * workers + 2


__all__ = [
    "CAPTURE_SUFFIXES", "PIECE_BYTES", "QUEUES_HINT", "InputError", "ManyResult", "Serial",
    "coalesce", "expand_inputs", "fix", "names_many", "output_paths", "segment", "verify",
]  # fmt: skip
