"""Checksum speed: ndis_offload vs a gcc -O3 C reference, scapy and dpkt (ratios, same data).

Run: python benchmarks/bench_checksum.py
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dpkt
import numpy as np
from scapy.utils import checksum as scapy_checksum

from ndis_offload.packet.checksum import batch_checksums, internet_checksum

C_SOURCE = Path(__file__).with_name("c_ref") / "csum.c"


def best_of(func: Callable[[], object], repeat: int, number: int) -> float:
    """Best time per call in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def load_c_reference(tmp: Path) -> Callable[[bytes], int] | str:
    """The C ``csum`` via ctypes, or the reason it is unavailable."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return "gcc not found"
    lib_path = tmp / "libcsum.so"
    build = subprocess.run(
        [gcc, "-O3", "-shared", "-fPIC", "-o", str(lib_path), str(C_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode:
        return f"gcc failed: {build.stderr.strip()}"
    lib = ctypes.CDLL(str(lib_path))
    lib.csum.restype = ctypes.c_uint16
    lib.csum.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lambda data: int(lib.csum(data, len(data)))


def row(name: str, ours: float, theirs: float, target: float) -> str:
    ratio = theirs / ours
    verdict = "ok" if ratio >= target else "BELOW TARGET"
    times = f"{ours * 1e6:>11.1f} {theirs * 1e6:>12.1f}"
    return f"{name:<44} {times} {ratio:>8.2f}x  >= {target:g}x {verdict}"


def main() -> None:
    rng = np.random.default_rng(2024)
    data = rng.integers(0, 256, 65536, dtype=np.uint8).tobytes()
    print(f"{'benchmark':<44} {'ours (us)':>11} {'theirs (us)':>12} {'ratio':>9}  target")
    ours = best_of(lambda: internet_checksum(data), 7, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        c_ref = load_c_reference(Path(tmp))
        if isinstance(c_ref, str):
            print(f"{'64 KiB vs C gcc -O3 (ctypes)':<44} skipped: {c_ref}")
        else:
            assert c_ref(data) == internet_checksum(data)
            c_time = best_of(lambda: c_ref(data), 7, 2000)
            print(row("64 KiB vs C gcc -O3 (ctypes, incl. call)", ours, c_time, 0.25))
    assert scapy_checksum(data) == internet_checksum(data)
    print(
        row(
            "64 KiB vs scapy.utils.checksum", ours, best_of(lambda: scapy_checksum(data), 5, 50), 60
        )
    )

    frames, size = 100_000, 1500
    buf = rng.integers(0, 256, frames * size, dtype=np.uint8).tobytes()
    offsets = np.arange(frames, dtype=np.int64) * size
    lengths = np.full(frames, size, dtype=np.int64)
    got = batch_checksums(buf, offsets, lengths)
    mv = memoryview(buf)

    def dpkt_all() -> list[int]:
        return [dpkt.in_cksum(mv[o : o + size]) for o in range(0, frames * size, size)]

    assert got.tolist() == dpkt_all()
    batch = best_of(lambda: batch_checksums(buf, offsets, lengths), 5, 1)
    print(row("batch 100k x 1500 B vs dpkt.in_cksum loop", batch, best_of(dpkt_all, 2, 1), 20))


if __name__ == "__main__":
    main()
