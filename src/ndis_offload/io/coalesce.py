"""``pcap coalesce``: the NDIS RSC rules over a capture, as a NIC with one or ``N`` receive
queues applies them.

A NIC with RSS hardware queuing steers each received frame to a receive queue by its RSS
hash, and each queue's data is processed by that queue's DPC ("RSS with hardware
queuing"); an SCU is indicated by the receive processing of its segments ("Indicating
Coalesced Segments"), so a queue's SCUs are its own. How a NIC divides its SCU resources
the pages leave open: here each queue has a whole coalescer (its own SCU limit and timer).
``--queues N`` models that:

* **Steering** (:class:`Steering`): the NDIS Toeplitz hash ("RSS hashing functions") with
  the default key (the key of "Verifying the RSS hash calculation") over the hash types
  ``NDIS_HASH_TCP_IPV4 | NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV6 | NDIS_HASH_IPV6`` ("RSS hashing
  types": the TCP 4-tuple when the frame carries TCP and is not a fragment, else the two
  addresses), then the indirection table (``--table-size`` entries, round robin over the
  queues, as ``ndis-offload rss`` builds it). A frame RSS cannot hash (not IP, malformed)
  goes to queue 0: "Indicating RSS Receive Data" assigns such data to the default CPU.
* **Coalescing**: one :class:`~ndis_offload.engine.rsc.RscCoalescer` per queue, with its
  own ``max_flows`` SCU limit (eviction) and its own timer: a queue's SCUs expire when that
  queue next receives a frame (its receive DPC), or at a flush.
* **Order of the output**: every frame a queue indicates is written when the frame that
  made it leave arrives, i.e. the output is ordered by (index of the frame whose arrival
  indicated it, its position in that indication). Each indicated frame carries the capture
  record (timestamp, interface, options) of the last frame its queue received. At a pcapng
  block, a frame of an unsupported link type, a bad frame (``--keep-going``) and the end of
  the capture every queue is flushed, queue 0 first, before that record is written.

With one queue (the default) this is the single coalescer of a NIC without RSS, and the
output is what ``pcap coalesce`` always wrote. The same order key lets a cluster coalesce
the queues apart and merge them back byte for byte (:mod:`ndis_offload.io.coalesce_cluster`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ndis_offload.capture.analyze import Analyzer
from ndis_offload.capture.flows import flow_keys_chunk
from ndis_offload.capture.linktype import SUPPORTED, from_ethernet, to_ethernet
from ndis_offload.engine.rss import (
    FRAME_HASH_TYPES,
    VERIFICATION_KEY,
    IndirectionTable,
    Toeplitz,
    hash_flows,
)
from ndis_offload.errors import PacketError
from ndis_offload.io.atomic import atomic_output
from ndis_offload.io.capture import Block, CaptureWriter, Chunk, Packet, open_capture
from ndis_offload.io.pcap_jobs import JobResult, Options, _readable, note_linktypes

DEFAULT_QUEUE = 0
"""Where a frame RSS does not hash goes ("Indicating RSS Receive Data": the default CPU)."""
TIMEOUT = 0.0005
"""The SCU timeout, seconds (``--timeout``)."""
MAX_FLOWS = 64
"""SCUs one queue's coalescer holds before it evicts the oldest (exception 1)."""


@dataclass(frozen=True, slots=True)
class Steering:
    """How frames are spread over receive queues: ``queues`` queues behind a round-robin
    indirection table of ``table_size`` entries, the Toeplitz hash with ``key``."""

    queues: int = 1
    table_size: int = 128
    key: bytes = VERIFICATION_KEY

    def __post_init__(self) -> None:
        if self.queues < 1:
            raise ValueError("at least one receive queue")
        self.table()  # validates the table size

    def table(self) -> IndirectionTable:
        return IndirectionTable.round_robin(self.table_size, self.queues)

    def queues_of(self, chunk: Chunk) -> npt.NDArray[np.int64]:
        """The receive queue of every packet of ``chunk``."""
        count = len(chunk)
        if self.queues == 1:
            return np.zeros(count, dtype=np.int64)
        keys = flow_keys_chunk(chunk.buffer, chunk.data_offsets, chunk.caplens, chunk.linktypes)
        hashes, types = hash_flows(keys, FRAME_HASH_TYPES, _toeplitz(self.key))
        queues = self.table().queue_of(hashes)
        queues[types == 0] = DEFAULT_QUEUE
        return queues


_TOEPLITZ: dict[bytes, Toeplitz] = {}


def _toeplitz(key: bytes) -> Toeplitz:
    if key not in _TOEPLITZ:
        _TOEPLITZ[key] = Toeplitz(key)
    return _TOEPLITZ[key]


Indicated = tuple[int, Packet, bytes]
"""(queue, the record whose metadata it carries, the record's bytes as the link type
carries them)."""


class Queues:
    """Receive queues, each with its own coalescer, and the last record each received
    (whose metadata what the queue indicates carries)."""

    def __init__(self, queues: Iterable[int], *, timeout: float = TIMEOUT,
                 max_flows: int = MAX_FLOWS) -> None:  # fmt: skip
        from ndis_offload.engine.rsc import RscCoalescer  # only coalesce needs the RSC engine

        self._rsc = {q: RscCoalescer(timeout=timeout, max_flows=max_flows) for q in queues}
        self._last: dict[int, tuple[Packet, bytes]] = {}

    def push(self, queue: int, packet: Packet) -> list[Indicated]:
        """``packet`` arrives on ``queue``: what the queue indicates as a result, in order."""
        header, eth = to_ethernet(packet.linktype, packet.data)
        now = packet.ts_ticks / packet.ticks_per_second
        indicated = [c.frame for c in self._rsc[queue].push(eth, now)]
        self._last[queue] = (packet, header)
        return self._records(queue, indicated)

    def flush(self) -> Iterator[Indicated]:
        """Every SCU held, queue by queue in queue order."""
        for queue in sorted(self._rsc):
            if queue in self._last:
                yield from self._records(queue, [c.frame for c in self._rsc[queue].flush()])

    def _records(self, queue: int, frames: list[bytes]) -> list[Indicated]:
        if not frames:
            return []
        packet, header = self._last[queue]
        return [(queue, packet, from_ethernet(packet.linktype, header, f)) for f in frames]


def coalesce(src: str | Path, dst: str | Path, opts: Options | None = None, *,
             timeout: float = TIMEOUT, max_flows: int = MAX_FLOWS,
             steering: Steering | None = None) -> JobResult:  # fmt: skip
    """Apply the NDIS RSC rules to the capture, per receive queue (see the module)."""
    opts = opts or Options()
    steering = steering or Steering()
    result = JobResult(Analyzer(mtu=opts.mtu))
    queues = Queues(range(steering.queues), timeout=timeout, max_flows=max_flows)
    stream, reader = open_capture(src, keep_going=opts.keep_going, chunk_bytes=opts.chunk_bytes)
    with stream, atomic_output(dst, [src]) as out:
        writer = CaptureWriter.like(out, reader)
        frames_in = 0

        def emit(indicated: Iterable[Indicated]) -> None:
            for _, packet, data in indicated:
                writer.write_packet(packet, data)

        for chunk in reader.chunks():
            note_linktypes(result, chunk)
            steered = steering.queues_of(chunk).tolist()
            for item in chunk.packets():
                if isinstance(item, Block):
                    emit(queues.flush())
                    writer.write_block(item)
                    continue
                row = item.index - chunk.first_index
                if row in chunk.bad:
                    continue
                frames_in += 1
                if item.linktype not in SUPPORTED:  # passed through, like the other tools
                    emit(queues.flush())
                    writer.write_packet(item)
                    continue
                try:
                    indicated = queues.push(steered[row], item)
                except PacketError as error:
                    located = PacketError(error.reason, frame_index=item.index, offset=item.offset)
                    if not opts.keep_going:
                        raise located from error
                    result.add_errors([located])
                    emit(queues.flush())
                    writer.write_packet(item)
                    continue
                emit(indicated)
            result.total_bytes = reader.bytes_read
            opts.progress(reader.frames, reader.bytes_read)
        emit(queues.flush())
        _readable(reader)
        result.frames_out = writer.frames
        result.changed = frames_in - writer.frames
    return result.finish(reader)


__all__ = ["DEFAULT_QUEUE", "MAX_FLOWS", "TIMEOUT", "Queues", "Steering", "coalesce"]
