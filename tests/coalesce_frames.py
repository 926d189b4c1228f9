"""Receive traffic for the coalesce tests: many interleaved TCP flows (IPv4 and IPv6, more
than one coalescer's 64 SCUs), segments with timestamps, pure ACKs, a retransmission, UDP and
ARP frames, timestamps that let some SCUs time out."""

from __future__ import annotations

import functools
import random
import struct
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def receive_frames(flows: int = 96, rounds: int = 12, seed: int = 7) -> list[tuple[bytes, int]]:
    """(frame, timestamp in microseconds) in arrival order."""
    return list(_receive_frames(flows, rounds, seed))


@functools.lru_cache(maxsize=32)
def _receive_frames(flows: int, rounds: int, seed: int) -> tuple[tuple[bytes, int], ...]:
    rng = random.Random(seed)
    seqs = [1000 * f for f in range(flows)]
    out: list[tuple[bytes, int]] = []
    now = 1_700_000_000_000_000
    for r in range(rounds):
        order = list(range(flows))
        rng.shuffle(order)
        for f in order:
            v6 = f % 3 == 0
            ip = (
                IPv6(src=f"2001:db8::{f + 1:x}", dst="2001:db8::ffff")
                if v6
                else IP(src=f"10.{f // 200}.{f % 200}.1", dst="10.9.9.9", id=r)
            )
            for _ in range(rng.randint(1, 4)):
                size = 1448 if rng.random() < 0.8 else rng.randint(1, 1448)
                flags = "PA" if rng.random() < 0.1 else "A"
                tcp = TCP(sport=40000 + f, dport=443, flags=flags, seq=seqs[f], ack=5,
                          window=512, options=[("NOP", None), ("NOP", None),
                                               ("Timestamp", (r * 10 + 1, 7))])  # fmt: skip
                payload = bytes((f + i) & 0xFF for i in range(size))
                out.append((bytes(Ether(**MAC) / ip / tcp / payload), now))
                seqs[f] += size
                now += rng.choice((1, 2, 3, 400))
            if rng.random() < 0.05:  # a pure ACK, a window update
                tcp = TCP(sport=40000 + f, dport=443, flags="A", seq=seqs[f], ack=5, window=600)
                out.append((bytes(Ether(**MAC) / ip / tcp), now))
                now += 1
        out.append((bytes(Ether(**MAC) / IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=5, dport=6)
                          / bytes(64)), now))  # fmt: skip
        out.append((bytes(Ether(src=MAC["src"], dst="ff:ff:ff:ff:ff:ff") / ARP()), now))
        now += 700
    return tuple(out)


def write_pcap(path: Path, frames: list[tuple[bytes, int]]) -> Path:
    data = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for frame, ts in frames:
        data += struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame))
        data += frame
    path.write_bytes(bytes(data))
    return path


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def write_pcapng(path: Path, frames: list[tuple[bytes, int]], comment_every: int = 0) -> Path:
    """A pcapng file (microsecond interface); ``comment_every``: a custom block (type
    0x00000BAD, verbatim in the output) after every that many frames."""
    data = bytearray(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    data += _block(1, struct.pack("<HHI", 1, 0, 65535))
    for i, (frame, ts) in enumerate(frames):
        head = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame))
        data += _block(6, head + frame)
        if comment_every and (i + 1) % comment_every == 0:
            data += _block(0x00000BAD, struct.pack("<I", 32473) + b"note%d" % i)
    path.write_bytes(bytes(data))
    return path
