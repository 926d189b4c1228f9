"""Checksum speed: ndis_offload vs a gcc -O3 C reference, scapy and dpkt (ratios, same data).

Every row is the median of interleaved rounds (see timing.py), printed with its spread.
Run: python benchmarks/bench_checksum.py [--check]
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import dpkt
import numpy as np
from scapy.utils import checksum as scapy_checksum
from timing import HEADER, Report, compare

from ndis_offload.packet.checksum import batch_checksums, internet_checksum

C_SOURCE = Path(__file__).with_name("c_ref") / "csum.c"


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


def main() -> int:
    rng = np.random.default_rng(2024)
    data = rng.integers(0, 256, 65536, dtype=np.uint8).tobytes()
    print(HEADER)
    report = Report()

    def ours() -> int:
        return internet_checksum(data)

    with tempfile.TemporaryDirectory() as tmp:
        c_ref = load_c_reference(Path(tmp))
        label = "64 KiB vs C gcc -O3 (ctypes, incl. call)"
        if isinstance(c_ref, str):
            report.skip(label, c_ref)
        else:
            assert c_ref(data) == internet_checksum(data)
            report.add(compare(label, ours, lambda: c_ref(data), 0.5, rounds=31))
    assert scapy_checksum(data) == internet_checksum(data)
    report.add(compare("64 KiB vs scapy.utils.checksum", ours, lambda: scapy_checksum(data), 60))

    frames, size = 100_000, 1500
    buf = rng.integers(0, 256, frames * size, dtype=np.uint8).tobytes()
    offsets = np.arange(frames, dtype=np.int64) * size
    lengths = np.full(frames, size, dtype=np.int64)
    got = batch_checksums(buf, offsets, lengths)
    mv = memoryview(buf)

    def dpkt_all() -> list[int]:
        return [dpkt.in_cksum(mv[o : o + size]) for o in range(0, frames * size, size)]

    assert got.tolist() == dpkt_all()
    report.add(
        compare(
            "batch 100k x 1500 B vs dpkt.in_cksum loop",
            lambda: batch_checksums(buf, offsets, lengths),
            dpkt_all,
            25,
            rounds=5,
        )
    )
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
