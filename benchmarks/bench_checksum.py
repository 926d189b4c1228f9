"""Checksum speed: ndis_offload vs a gcc -O3 C reference, scapy and dpkt (ratios, same data).

Every row is the median of interleaved rounds (see timing.py), printed with its spread.
Run: python benchmarks/bench_checksum.py [--check] [--formulations]

``--formulations`` adds rows for other numpy ways to sum the 64 KiB buffer, each against the
same C call (issue 14): the exact ones all stay near or below 0.5x; rows marked "part" or
"estimate" are pieces of a formulation, not checksums (lower bounds of its time).
"""

from __future__ import annotations

import ctypes
import shutil
import struct
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
_M32 = 0xFFFFFFFF
_U8 = np.dtype("<u8")


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


def two_pass_checksum(data: bytes) -> int:
    """RFC 1071 from two wrapping ``uint64`` sums (no cast): ``s0`` over the words and ``s1``
    over the words shifted by 4 bytes, each 32-bit lane once low and once high, which fixes
    every carry. Lanes ``l_k``: ``s0 = E + 2**32 O`` and ``s1 = O + 2**32 E'`` (mod 2**64)
    with ``E``/``O`` the even/odd lane sums and ``E' = E - l_0 + l_2N``; so ``E >> 32`` and
    ``O >> 32`` follow from the low halves (``2**32 == 1 (mod 0xFFFF)``). Len >= 12."""
    n = len(data)
    words = (n - 4) >> 3
    s0 = int(np.add.reduce(np.frombuffer(data, _U8, words)))
    s1 = int(np.add.reduce(np.frombuffer(data, _U8, words, 4)))  # misaligned: numpy copies
    tail = int.from_bytes(data[8 * words :], "little")
    a0, a1 = s0 & _M32, s1 & _M32
    head = int.from_bytes(data[:4], "little")
    total = a0 + a1 + (((s0 >> 32) - a1) & _M32) + tail
    total += ((s1 >> 32) - a0 + head - (tail & _M32)) & _M32
    total = ((total << 8) - 1) % 0xFFFF + 1 if total else 0
    return 0xFFFE - (total - 1) % 0xFFFF if total else 0xFFFF


def one_call_checksum(data: bytes) -> int:
    """RFC 1071 from one wrapping ``uint64`` reduction of a 2-D view whose rows are the words
    and the words 12 bytes on (misaligned: numpy copies it): ``z = P + 2**32 Q`` with ``P``
    and ``Q`` the lane sums ``X`` of the first ``8m`` bytes plus edge lanes ``a`` / ``b``, so
    ``P >> 32 == (z >> 32) - z + a - b (mod 2**32)``. Len >= 12."""
    n = len(data)
    m = (n - 12) >> 3
    z = int(np.add.reduce(np.ndarray((2, m), _U8, data, 0, (12, 8)), axis=None))
    tail = int.from_bytes(data[8 * m :], "little")  # lanes 2m, 2m + 1, 2m + 2, ...
    l0, l1, l2 = struct.unpack_from("<3I", data)
    a = ((tail >> 32) & _M32) - l1
    b = (tail & _M32) + ((tail >> 64) & _M32) - l0 - l2
    low = z & _M32
    total = low + ((((z >> 32) - low + a - b) & _M32) << 32) - a + tail
    total = ((total << 8) - 1) % 0xFFFF + 1 if total else 0
    return 0xFFFE - (total - 1) % 0xFFFF if total else 0xFFFF


def formulations(data: bytes, c_ref: Callable[[bytes], int], report: Report) -> None:
    """Rows for other ways to sum ``data`` with numpy, each against the C call. Whole exact
    checksums are report rows (target 0.5x); pieces and estimates (the time of one step of a
    formulation, no checksum) are printed without a verdict."""
    for size in (12, 13, 19, 20, 21, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 65539, 1 << 20):
        for probe in (data * (1 + size // len(data)), b"\xff" * size, bytes(size)):
            want = internet_checksum(probe[:size])
            assert two_pass_checksum(probe[:size]) == one_call_checksum(probe[:size]) == want
    reduce = np.add.reduce
    u16 = np.frombuffer(data, "<u2")
    u64 = np.frombuffer(data, _U8)
    n = len(u64)
    shifted = np.frombuffer(data, _U8, n - 1, 4)
    both = np.ndarray((2, n - 2), _U8, data, 0, (12, 8))
    stride4 = np.ndarray((2 * n - 1,), _U8, data, 0, (4,))

    def cast_only() -> int:  # internet_checksum's reduction with nothing around it
        return int(reduce(np.frombuffer(data, "<u4"), dtype=np.uint64))

    rows: list[tuple[str, Callable[[], object]]] = [
        ("whole: exact two-pass (wrap + shifted wrap)", lambda: two_pass_checksum(data)),
        ("whole: exact one-call (2-D view, rows 12 B on)", lambda: one_call_checksum(data)),
        ("piece: our uint32 -> uint64 reduction alone", cast_only),
        ("piece: uint16 -> uint32 reduction (to 128 KiB)", lambda: reduce(u16, dtype=np.uint32)),
        ("piece: the wrapping uint64 sum alone", lambda: reduce(u64)),
        ("piece: the shifted (misaligned) sum alone", lambda: reduce(shifted)),
        ("piece: both as one 2-D view, rows 12 B apart", lambda: reduce(both, axis=None)),
        ("piece: a uint64 view at a 4-byte stride", lambda: reduce(stride4)),
        ("estimate: top half-words [3::4] -> uint32", lambda: reduce(u16[3::4], dtype=np.uint32)),
        ("estimate: uint64 >> 48, then the sum", lambda: reduce(u64 >> np.uint64(48))),
        ("whole: int.from_bytes(data) % 0xFFFF", lambda: int.from_bytes(data, "little") % 0xFFFF),
    ]
    for label, func in rows:
        row = compare(label, func, lambda: c_ref(data), 0.5, rounds=11)
        if label.startswith("whole"):
            report.add(row)
        else:
            print(row.line().rsplit(">=", 1)[0] + " (a piece: no target)", flush=True)


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
            if "--formulations" in sys.argv[1:]:
                formulations(data, c_ref, report)
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
