"""``pcap coalesce --queues N`` on a Dask cluster: byte-identical to the serial run
(:mod:`ndis_offload.io.coalesce`), one receive queue's coalescer per task.

The queues are independent by construction (each has its own coalescer, SCU limit and
timer), so the run is a shuffle by queue and a merge:

1. :func:`steer_piece` per record-aligned piece (:mod:`ndis_offload.io.split`), in
   parallel: read the piece, steer every packet to its queue (:class:`~ndis_offload.io.
   coalesce.Steering`) and append it to the piece's part file of that queue; the records the
   serial run writes itself (pcapng blocks, packets of unsupported link types) go to the
   piece's event file, and their positions (where every queue is flushed) to the result.
2. :func:`coalesce_queue` per queue, in parallel: feed that queue's packets of every piece,
   in order, to one :class:`~ndis_offload.io.coalesce.Queues` of that queue, flushing at the
   event positions and at the end; write each indicated record with its order key.
3. :func:`merge_parts`: merge the queues' records and the events by order key into the
   output's temporary file.

Order key of a written record: (piece, item in the piece, queue, position in the
indication); an event sorts after every queue's flush at its position; the final flush
sorts after the last piece. The serial run writes in exactly this order.

Part files are written under a temporary name and renamed, so a task that runs again (a
worker died) never exposes a half-written file to a task still reading the old one. Any
damaged record, a pcapng section or interface after the file's first ones (the part files
carry the file's first header only) or ``--keep-going`` sends the job to the serial run;
a bad frame fails the run as the serial one does (the earliest, numbered across the file).
"""

from __future__ import annotations

import heapq
import io
import os
import pickle
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Analyzer
from ndis_offload.capture.linktype import SUPPORTED, add_frames_per_linktype
from ndis_offload.errors import PacketError
from ndis_offload.io.atomic import atomic_path
from ndis_offload.io.capture import Block, CaptureReader, CaptureWriter, Chunk, Packet
from ndis_offload.io.coalesce import Queues, Steering
from ndis_offload.io.pcap_jobs import JobResult, Options, unsupported_linktypes
from ndis_offload.io.pieces import Serial, Work
from ndis_offload.io.split import Layout, iter_pieces, open_piece, read_layout

_KEY = struct.Struct("<IIIII")
"""A record of a queue's output part: piece, item, queue, position, record length."""


@dataclass(slots=True)
class Steered:
    """What :func:`steer_piece` tells the client about a piece (the packets stay in files)."""

    frames: int = 0
    events: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    """Items (positions in the piece) where every queue is flushed and a record is written."""
    passed: int = 0
    """Packets among the events (passed through: unsupported link type)."""
    unsupported: dict[int, int] = field(default_factory=dict)
    new_section: bool = False
    nbytes: int = 0


def _part(parts: str, k: int, queue: int) -> str:
    return os.path.join(parts, f"{k:06d}.{queue:04d}")


def _events(parts: str, k: int) -> str:
    return os.path.join(parts, f"{k:06d}.events")


def _out(parts: str, queue: int) -> str:
    return os.path.join(parts, f"out.{queue:04d}")


def _remove(parts: str) -> None:
    """Remove the part files' directory; a task cancelled while running (Dask cannot stop
    it) may still create a file while the tree is removed: try again until the directory is
    gone (after that, its files cannot be created)."""
    for _ in range(100):
        shutil.rmtree(parts, ignore_errors=True)
        if not os.path.exists(parts):
            return
        time.sleep(0.05)


def _replace(tmp: str, final: str) -> None:
    os.replace(tmp, final)


def _writer(layout: Layout, out: BinaryIO) -> CaptureWriter:
    if layout.format == "pcap":
        return CaptureWriter(out, "pcap", layout.prefix, write_header=False)
    return CaptureWriter(out, "pcapng", b"", write_header=False)


def _record_ends(chunk: Chunk) -> npt.NDArray[np.int64]:
    """Where each packet's record ends in ``chunk.buffer``."""
    if chunk.pcap:
        ends: npt.NDArray[np.int64] = chunk.data_offsets + chunk.caplens
        return ends
    big = bool(chunk.big_endian and chunk.big_endian[0])
    view = np.frombuffer(chunk.buffer, dtype=">u4" if big else "<u4", count=len(chunk.buffer) // 4)
    # pcapng blocks are 4-byte aligned: the Block Total Length follows the Block Type
    return chunk.record_offsets + view[(chunk.record_offsets + 4) // 4].astype(np.int64)


def steer_piece(work: Work, k: int, parts: str, steering: Steering, chunk_bytes: int) -> Steered:
    """Task: shuffle one piece's packets by queue. Each queue's packets go, verbatim, into a
    capture file of their own (the file's header, then their records) with a side file of
    (item, packet number in the piece, file offset) per record; the events go into the
    piece's event file."""
    out = Steered(nbytes=work.piece.size)
    files: dict[int, tuple[BinaryIO, BinaryIO]] = {}
    suffix = f".{os.getpid()}.tmp"
    splice, stream = open_piece(work.path, work.layout, work.piece)
    prefix = len(work.layout.prefix)
    shift = work.piece.start - prefix  # file offset of a splice offset past the prefix
    events = io.BytesIO()
    writer = _writer(work.layout, events)
    records: list[tuple[int, bytes]] = []
    positions: list[int] = []
    event_file = open(_events(parts, k) + suffix, "wb")  # noqa: SIM115 - closed below
    try:
        with stream:
            reader = CaptureReader(stream, chunk_bytes=chunk_bytes)
            interfaces, item = -1, 0
            for chunk in reader.chunks():
                if interfaces < 0:
                    interfaces = len(reader.interfaces)
                count = len(chunk)
                add_frames_per_linktype(out.unsupported, unsupported_linktypes(chunk.linktypes))
                # items: packets and blocks in file order, numbered across the piece
                at = np.array([b[0] for b in chunk.blocks], dtype=np.int64)
                rows = np.arange(count, dtype=np.int64)
                items = item + rows + np.searchsorted(at, rows, side="right")
                queues = steering.queues_of(chunk)
                passed = ~np.isin(chunk.linktypes, list(SUPPORTED))
                if chunk.blocks or passed.any():
                    blocks = [item + pos + i for i, (pos, _, _) in enumerate(chunk.blocks)]
                    kept = iter(blocks)
                    for thing in chunk.packets():
                        if isinstance(thing, Block):
                            where = next(kept)
                            if work.first or thing.offset >= prefix:  # not the spliced header
                                _event(out, records, positions, events, writer, where, thing)
                        elif passed[thing.index - chunk.first_index]:
                            row = thing.index - chunk.first_index
                            thing.offset = splice.file_offset(thing.offset)
                            _event(out, records, positions, events, writer, int(items[row]),
                                   thing)  # fmt: skip
                if records:  # written chunk by chunk: memory stays flat
                    pickle.dump(records, event_file, protocol=pickle.HIGHEST_PROTOCOL)
                    records.clear()
                item += count + len(chunk.blocks)
                out.frames += count
                starts = chunk.record_offsets
                ends = _record_ends(chunk)
                offsets = chunk.file_offset + starts
                offsets = np.where(offsets < prefix, offsets, offsets + shift)
                numbers = chunk.first_index + rows
                view = memoryview(chunk.buffer)
                for queue in np.unique(queues[~passed]).tolist():
                    pick = np.flatnonzero((queues == queue) & ~passed)
                    if queue not in files:
                        name = _part(parts, k, queue) + suffix
                        data = open(name, "wb", buffering=1 << 20)  # noqa: SIM115 - closed below
                        data.write(work.layout.prefix)
                        files[queue] = (data, open(name + ".meta", "wb"))  # noqa: SIM115
                    data, meta = files[queue]
                    data.write(b"".join(view[s:e] for s, e in zip(
                        starts[pick].tolist(), ends[pick].tolist(), strict=True)))  # fmt: skip
                    meta.write(np.stack([items[pick], numbers[pick], offsets[pick]], 1)
                               .astype("<i8").tobytes())  # fmt: skip
            if reader.errors:
                raise Serial(f"{work.path} piece {work.piece.index}: damaged records")
            out.new_section = reader.sections > 1 or len(reader.interfaces) > interfaces
        for queue, (data, meta) in files.items():
            data.close()
            meta.close()
            _replace(meta.name, _part(parts, k, queue) + ".meta")
            _replace(data.name, _part(parts, k, queue))
        event_file.close()
        _replace(event_file.name, _events(parts, k))
    except BaseException:
        for handle in [event_file, *(h for pair in files.values() for h in pair)]:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)
        raise
    out.events = np.array(positions, dtype=np.int64)
    return out


def _event(out: Steered, records: list[tuple[int, bytes]], positions: list[int],
           buffer: io.BytesIO, writer: CaptureWriter, item: int,
           thing: Packet | Block) -> None:  # fmt: skip
    """A record the run writes as it is, after flushing every queue."""
    buffer.seek(0)
    buffer.truncate()
    writer.write(thing)
    records.append((item, buffer.getvalue()))
    positions.append(item)
    out.passed += isinstance(thing, Packet)


@dataclass(slots=True)
class QueueDone:
    """What :func:`coalesce_queue` reports: packets fed, records written, or the first bad
    frame (reason, frame number across the file, file offset)."""

    frames: int = 0
    written: int = 0
    error: tuple[str, int, int] | None = None


def _packets(parts: str, k: int, queue: int, chunk_bytes: int) -> Iterator[tuple[int, Packet]]:
    """A queue's packets of piece ``k``: (item, packet numbered within the piece, at its
    file offset)."""
    name = _part(parts, k, queue)
    try:
        file = open(name, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    meta = np.fromfile(name + ".meta", dtype="<i8").reshape(-1, 3).tolist()
    with file:
        row = 0
        for chunk in CaptureReader(file, chunk_bytes=chunk_bytes).chunks():
            for thing in chunk.packets():
                if isinstance(thing, Packet):
                    item, thing.index, thing.offset = meta[row]
                    row += 1
                    yield item, thing


def coalesce_queue(
    queue: int, steered: list[Steered], parts: str, layout: Layout, timeout: float,
    max_flows: int, chunk_bytes: int,
) -> QueueDone:  # fmt: skip
    """Task: one receive queue's coalescer over its packets of every piece; its records
    go to the queue's output part, each behind its order key."""
    done = QueueDone()
    queues = Queues([queue], timeout=timeout, max_flows=max_flows)
    tmp = _out(parts, queue) + f".{os.getpid()}.tmp"
    base = 0
    with open(tmp, "wb", buffering=1 << 20) as out:
        record = io.BytesIO()
        writer = _writer(layout, record)

        def put(k: int, item: int, indicated: Any) -> None:
            for seq, (_, packet, data) in enumerate(indicated):
                record.seek(0)
                record.truncate()
                writer.write_packet(packet, data)
                body = record.getvalue()
                out.write(_KEY.pack(k, item, queue, seq, len(body)))
                out.write(body)
                done.written += 1

        try:
            for k, piece in enumerate(steered):
                flushes = iter(piece.events.tolist())
                at = next(flushes, None)
                for item, packet in _packets(parts, k, queue, chunk_bytes):
                    while at is not None and at < item:
                        put(k, at, queues.flush())
                        at = next(flushes, None)
                    done.frames += 1
                    try:
                        put(k, item, queues.push(queue, packet))
                    except PacketError as error:
                        done.error = (error.reason, base + packet.index, packet.offset)
                        break
                if done.error is not None:
                    break
                while at is not None:
                    put(k, at, queues.flush())
                    at = next(flushes, None)
                base += piece.frames
            else:
                put(len(steered), 0, queues.flush())
        except PacketError as error:  # a record that cannot be written (timestamp range)
            done.error = (error.reason, base + (error.frame_index or 0), 0)
    _replace(tmp, _out(parts, queue))
    return done


def _queue_records(path: str) -> Iterator[tuple[tuple[int, int, int, int], bytes]]:
    with open(path, "rb", buffering=1 << 20) as file:
        while head := file.read(_KEY.size):
            k, item, queue, seq, length = _KEY.unpack(head)
            yield (k, item, queue, seq), file.read(length)


def _event_records(
    parts: str, pieces: int, queues: int
) -> Iterator[tuple[tuple[int, int, int, int], bytes]]:
    for k in range(pieces):
        with open(_events(parts, k), "rb") as file:
            while True:
                try:
                    records: list[tuple[int, bytes]] = pickle.load(file)
                except EOFError:
                    break
                for item, body in records:
                    yield (k, item, queues, 0), body


def merge_parts(target: str, layout: Layout, parts: str, pieces: int, queues: int) -> int:
    """Task: the output file: the pcap header, then every queue's records and the events,
    by order key; the bytes written."""
    streams = [_queue_records(_out(parts, q)) for q in range(queues)]
    streams.append(_event_records(parts, pieces, queues))
    with open(target, "wb", buffering=1 << 20) as out:
        if layout.format == "pcap":
            out.write(layout.prefix)
        for _, body in heapq.merge(*streams, key=lambda r: r[0]):
            out.write(body)
        return out.tell()


def run(
    client: Any, src: Path, dst: Path, opts: Options, steering: Steering, *, timeout: float,
    max_flows: int, piece_bytes: int, work_dir: str | None,
) -> JobResult:  # fmt: skip
    """Drive the three steps on ``client``'s cluster (see the module)."""
    from distributed import as_completed

    layout = read_layout(src)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    total = layout.size
    done = 0
    futures: list[Any] = []
    with atomic_path(dst, [src]) as tmp:
        where = Path(tmp).parent if work_dir is None else Path(work_dir)
        parts = tempfile.mkdtemp(prefix=f".{Path(dst).name}.parts.", dir=where)
        try:
            pieces = list(iter_pieces(
                src, layout, 1, min_piece=max(piece_bytes // 16, 64 << 10),
                max_piece=piece_bytes, ahead=4 * workers,
            ))  # fmt: skip
            for k, piece in enumerate(pieces):
                work = Work(str(src), layout, piece, 0)
                futures.append(client.submit(steer_piece, work, k, parts, steering,
                                             opts.chunk_bytes, pure=False))  # fmt: skip
            frames = 0
            for future in as_completed(futures):
                steered_one: Steered = future.result()
                done += steered_one.nbytes // 2
                frames += steered_one.frames
                opts.progress(frames, done)
            steered: list[Steered] = client.gather(futures)
            if any(s.new_section for s in steered):  # the parts carry the first header only
                raise Serial(f"{src}: a pcapng section or interface after the file's first ones")
            queue_futures = [
                client.submit(
                    coalesce_queue,
                    q,
                    steered,
                    parts,
                    layout,
                    timeout,
                    max_flows,
                    opts.chunk_bytes,
                    pure=False,
                )  # fmt: skip
                for q in range(steering.queues)
            ]
            futures += queue_futures
            results: list[QueueDone] = []
            for future in as_completed(queue_futures):
                results.append(future.result())
                done += (total - done) // max(1, steering.queues - len(results) + 1)
                opts.progress(frames, done)
            errors = [r.error for r in results if r.error is not None]
            if errors:
                reason, index, offset = min(errors, key=lambda e: e[1])
                raise PacketError(reason, frame_index=index, offset=offset)
            merged = client.submit(merge_parts, str(tmp), layout, parts, len(pieces),
                                   steering.queues, pure=False)  # fmt: skip
            futures.append(merged)
            merged.result()
            opts.progress(frames, total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            _remove(parts)
    frames_in = sum(s.frames for s in steered)
    result = JobResult(Analyzer(mtu=opts.mtu), total_bytes=total, frames_in=frames_in)
    result.frames_out = sum(r.written for r in results) + sum(s.passed for s in steered)
    result.changed = frames_in - result.frames_out
    for piece_steered in steered:
        add_frames_per_linktype(result.unsupported, piece_steered.unsupported)
    return result


__all__ = ["QueueDone", "Steered", "coalesce_queue", "merge_parts", "run", "steer_piece"]
