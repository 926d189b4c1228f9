"""RSS Toeplitz speed: the batched table-driven hash (engine.rss.hash_flows) vs a per-frame
pure-Python loop (the same per-byte tables, one frame at a time — the fastest pure-Python
form; the bit-by-bit pseudocode is ~20x slower still and shown for scale).

Each figure is the median of interleaved rounds (ours and the baseline alternating), with its
spread (min..max). Target: batched >= 50x the per-frame loop (IPv4 and IPv6 with TCP ports).

Run: python benchmarks/bench_rss.py [--check]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from ndis_offload.constants.rss import NdisHashType
from ndis_offload.engine.rss import FlowKeys, Toeplitz, hash_flows

FRAMES = 100_000
ROUNDS = 7
TARGET = 50.0


def keys_for(version: int, count: int, seed: int = 1) -> FlowKeys:
    rng = np.random.default_rng(seed)
    keys = FlowKeys.empty(count)
    keys.ip_version[:] = version
    keys.l4_proto[:] = 6
    keys.src[:] = rng.integers(0, 256, keys.src.shape, dtype=np.uint8)
    keys.dst[:] = rng.integers(0, 256, keys.dst.shape, dtype=np.uint8)
    keys.sport[:] = rng.integers(0, 65536, count, dtype=np.uint16)
    keys.dport[:] = rng.integers(0, 65536, count, dtype=np.uint16)
    return keys


def per_frame_loop(keys: FlowKeys, toeplitz: Toeplitz) -> list[int]:
    """One frame at a time in pure Python over the same per-byte tables."""
    table = toeplitz.table.tolist()
    width = 4 if keys.ip_version[0] == 4 else 16
    src, dst = keys.src.tolist(), keys.dst.tolist()
    sports, dports = keys.sport.tolist(), keys.dport.tolist()
    out = []
    for i in range(len(keys)):
        data = (
            src[i][:width] + dst[i][:width]
            + [sports[i] >> 8, sports[i] & 0xFF, dports[i] >> 8, dports[i] & 0xFF]
        )  # fmt: skip
        value = 0
        for position, byte in enumerate(data):
            value ^= table[position][byte]
        out.append(value)
    return out


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    toeplitz = Toeplitz()
    missed = 0
    print(f"{'input':<12} {'batched ns/frame':>18} {'loop ns/frame':>15} {'ratio (spread)':>24}")
    for version in (4, 6):
        keys = keys_for(version, FRAMES)
        types = NdisHashType.TCP_IPV4 if version == 4 else NdisHashType.TCP_IPV6
        ours, _ = hash_flows(keys, types, toeplitz)
        assert ours.tolist() == per_frame_loop(keys, toeplitz)  # same answers first
        fast, slow = [], []
        for _ in range(ROUNDS):
            fast.append(timed(partial(hash_flows, keys, types, toeplitz)))
            slow.append(timed(partial(per_frame_loop, keys, toeplitz)))
        ratios = sorted(s / f for s, f in zip(slow, fast, strict=True))
        ratio = statistics.median(ratios)
        label = f"TCP/IPv{version}"
        print(
            f"{label:<12} {statistics.median(fast) / FRAMES * 1e9:>18.1f} "
            f"{statistics.median(slow) / FRAMES * 1e9:>15.1f} "
            f"{ratio:>8.1f}x ({ratios[0]:.1f}..{ratios[-1]:.1f})"
            f"  target {TARGET:.0f}x {'met' if ratio >= TARGET else 'MISSED'}"
        )
        missed += ratio < TARGET
    return 1 if missed and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
