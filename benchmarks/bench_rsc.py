"""RSC speed: ndis_offload.RscCoalescer vs a straightforward struct-based coalescer.

N interleaved IPv4 TCP flows, each a 64 000-byte burst cut by LSO into 1448-byte segments
with timestamps (PSH on the last): every segment's IPv4 and TCP checksums are validated and
the segments are coalesced under the NDIS rules. The reference is what a competent user
writes: ``struct.unpack_from`` per header and an ``int.from_bytes``-based RFC 1071 sum
(``x % 0xFFFF``; faster than ``dpkt.in_cksum``). Both must produce identical frames first.
Each figure is the median of interleaved rounds with its spread (``timing.compare``: CPU
time, the two sides alternating); the target is 5x for one, 8 and 32 flows. ``push``
(per frame) is checked for equal output but not timed: it has no target.
Run: python benchmarks/bench_rsc.py [--check]
"""

from __future__ import annotations

import gc
import struct
import sys
from functools import partial

import numpy as np
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from timing import HEADER, Report, compare

from ndis_offload.engine.rsc import RscCoalescer
from ndis_offload.engine.transmit import segment_tcp

MSS = 1448
BURST = 64_000
DPC = 64
"""Frames handed to ``push_batch`` at a time (one receive DPC)."""

_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_M32 = 0xFFFFFFFF


def cksum_valid(data: bytes) -> bool:
    """RFC 1071: data including its checksum field sums to 0 (mod 0xFFFF)."""
    if len(data) & 1:
        data += b"\0"
    return int.from_bytes(data, "big") % 0xFFFF == 0


def cksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    return (0xFFFF - int.from_bytes(data, "big") % 0xFFFF) % 0xFFFF


class Unit:
    __slots__ = ("head", "chunks", "nxt", "ack", "win", "psh", "ttl", "tsval", "ts0", "tsecr")

    def __init__(self, frame: bytes, nxt: int, fields: tuple[int, ...]) -> None:
        self.head = frame
        self.chunks = [frame[66:]]
        self.nxt = nxt
        self.ack, self.win, self.psh, self.ttl, self.tsval, self.tsecr = fields
        self.ts0 = self.tsval


def reference(frames: list[bytes]) -> list[bytes]:
    """IPv4 / TCP + timestamps coalescer: struct unpack and int.from_bytes checksums."""
    flows: dict[bytes, Unit] = {}
    out: list[bytes] = []

    def emit(unit: Unit) -> None:
        if len(unit.chunks) == 1:
            out.append(unit.head)
            return
        data = b"".join(unit.chunks)
        head = bytearray(unit.head[:66])
        struct.pack_into("!H", head, 16, 52 + len(data))
        head[22] = unit.ttl
        head[24:26] = b"\0\0"
        struct.pack_into("!H", head, 24, cksum(bytes(head[14:34])))
        struct.pack_into("!I", head, 42, unit.ack)
        head[47] |= unit.psh
        struct.pack_into("!H", head, 48, unit.win)
        struct.pack_into("!II", head, 58, unit.tsval, unit.tsecr)
        head[50:52] = b"\0\0"
        pseudo = bytes(head[26:34]) + struct.pack("!HH", 6, 32 + len(data))
        struct.pack_into("!H", head, 50, cksum(pseudo + bytes(head[34:]) + data))
        out.append(bytes(head) + data)

    for frame in frames:
        ver_ihl, tos, total, _, frag, ttl, proto, _, src, dst = _IP.unpack_from(frame, 14)
        sport, dport, seq, ack, off, flags, win, _, _ = _TCP.unpack_from(frame, 34)
        key = src + dst + frame[34:38]
        ok = (
            ver_ihl == 0x45
            and proto == 6
            and frag & 0x3FFF == 0
            and off == 0x80
            and frame[54:58] == b"\x01\x01\x08\x0a"
            and flags & ~0x18 == 0
            and flags & 0x10
            and cksum_valid(frame[14:34])
            and cksum_valid(src + dst + struct.pack("!HH", 6, total - 20) + frame[34 : 14 + total])
        )
        unit = flows.get(key)
        if not ok:
            if unit:
                emit(flows.pop(key))
            out.append(frame)
            continue
        tsval, tsecr = struct.unpack_from("!II", frame, 58)
        plen = total - 52
        fields = (ack, win, flags & 0x08, ttl, tsval, tsecr)
        if unit is not None and (
            seq != unit.nxt
            or not plen
            or (ack - unit.ack) & _M32 >= 1 << 31
            or (tsval - unit.tsval) & _M32 >= 1 << 31
            or (tsecr - unit.tsecr) & _M32 >= 1 << 31
            or 52 + sum(map(len, unit.chunks)) + plen > 0xFFFF
        ):
            emit(flows.pop(key))
            unit = None
        if unit is None:
            if not plen:
                out.append(frame)
                continue
            unit = flows[key] = Unit(frame, (seq + plen) & _M32, fields)
        else:
            unit.chunks.append(frame[66 : 14 + total])
            unit.nxt = (seq + plen) & _M32
            unit.ack, unit.win, unit.tsval, unit.tsecr = ack, win, tsval, tsecr
            unit.psh |= flags & 0x08
            unit.ttl = min(unit.ttl, ttl)
        if flags & 0x08:
            emit(flows.pop(key))
    for unit in flows.values():
        emit(unit)
    return out


def ours_batch(frames: list[bytes], dpc: int = DPC) -> list[bytes]:
    rsc = RscCoalescer(timeout=1.0)
    out = []
    for start in range(0, len(frames), dpc):
        out += rsc.push_batch(frames[start : start + dpc], 0.0)
    out += rsc.flush()
    return [o.frame for o in out]


def ours_single(frames: list[bytes]) -> list[bytes]:
    rsc = RscCoalescer(timeout=1.0)
    out = [o for frame in frames for o in rsc.push(frame, 0.0)]
    out += rsc.flush()
    return [o.frame for o in out]


def workload(flows: int, bursts: int = 1) -> list[bytes]:
    """``flows`` interleaved flows, each sending ``bursts`` 64,000-byte sends (PSH at the end
    of each, so each send is one coalesced unit) back to back."""
    payload = np.random.default_rng(1448).integers(0, 256, BURST, dtype=np.uint8).tobytes()
    per_flow = []
    for index in range(flows):
        frames: list[bytes] = []
        for burst in range(bursts):
            pkt = (
                Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                / IP(src="192.0.2.1", dst="198.51.100.7", id=index + burst * 64, flags="DF")
                / TCP(
                    sport=40000 + index,
                    dport=443,
                    seq=index * 1000 + burst * BURST,
                    ack=1,
                    flags="PA",
                    options=[("NOP", None), ("NOP", None), ("Timestamp", (7 + burst, 9))],
                )
                / payload
            )
            frames += segment_tcp(bytes(pkt), MSS).frames
        per_flow.append(frames)
    return [seg for group in zip(*per_flow, strict=True) for seg in group]  # interleaved


def main() -> int:
    print(f"RSC over {DPC}-frame DPC batches: push_batch vs the struct-based coalescer")
    print(HEADER)
    report = Report()
    for flows, bursts in ((1, 1), (8, 1), (32, 1), (1, 16)):
        frames = workload(flows, bursts)
        expected = reference(frames)
        assert len(expected) == flows * bursts
        assert ours_batch(frames) == expected, "push_batch output differs"
        assert ours_single(frames) == expected, "push output differs"
        sends = f"{flows} flow{'s' if flows > 1 else ''} x {bursts} x 64 KB"
        label = f"{sends} ({len(frames)} frames, DPC {DPC})"
        # Scapy's objects (built above) out of the collector's way: else a full collection,
        # which walks them all (~10 ms), now and then lands in one side's round.
        gc.collect()
        gc.freeze()
        report.add(compare(label, partial(ours_batch, frames), partial(reference, frames), 5))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
