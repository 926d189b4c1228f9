"""All five pcap tools over randomly damaged captures (issue 13, "Verify").

Each damaged capture goes through ``verify``, ``stats``, ``fix``, ``segment`` and
``coalesce`` (with and without ``--keep-going``), in process through ``main``. Asserted for
every run: no exception escapes (no traceback), the exit code is in the documented set, no
temporary file is left, and the existing output is either untouched (on failure) or replaced
by a capture that an independent reader (dpkt) and ours read back without error.
The default run tries a few hundred captures; ``--run-slow`` tries thousands more.
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest
from robust_support import pcap_of, pcapng_section, reads_back, run_cli, sample_frames, temporaries

from ndis_offload.io.capture import CaptureReader

DEFAULT_CASES = 200
SLOW_CASES = 4000
WRITERS = ("fix", "segment", "coalesce")
ALLOWED = {0, 1, 2}
"""Documented exit codes of a pcap tool that was not interrupted."""


def _bases() -> list[bytes]:
    frames = sample_frames()
    sll = [struct.pack(">HHH", 4, 1, 6) + bytes(8) + f[12:14] + f[14:] for f in frames]
    return [
        pcap_of(frames),
        pcap_of(frames, nano=True),
        pcap_of(sll, linktype=113),
        pcapng_section(frames) + pcapng_section(frames[:3]),
    ]


def damage(rng: random.Random, data: bytes) -> bytes:
    """One to three random injuries: flipped bytes, a random 32-bit word, truncation,
    inserted / deleted / duplicated / zeroed ranges."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        n = len(out)
        if n < 8:
            break
        kind = rng.randrange(7)
        at = rng.randrange(n)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1 and at + 4 <= n:
            word = rng.choice([0, 1, 0xFFFFFFFF, rng.getrandbits(32), rng.randrange(64), 1 << 31])
            out[at : at + 4] = struct.pack("<I", word)
        elif kind == 2:
            del out[max(at, 1) :]
        elif kind == 3:
            out[at:at] = rng.randbytes(rng.randint(1, 300))
        elif kind == 4:
            del out[at : at + rng.randint(1, 300)]
        elif kind == 5:
            size = rng.randint(1, 400)
            out[at:at] = out[at : at + size]
        else:
            out[at : at + rng.randint(1, 64)] = bytes(min(64, n - at))
    return bytes(out)


def _check_output(out: Path, sentinel: bytes, code: int, what: str) -> None:
    data = out.read_bytes()
    if code == 2:
        assert data == sentinel, f"{what}: failed but the existing output changed"
        return
    assert data != sentinel, f"{what}: succeeded without writing its output"
    reads_back(out)  # dpkt reads it
    for _ in CaptureReader(io.BytesIO(data)):  # and so do we, strictly
        pass


def _one_case(seed: int, base: bytes, tmp_path: Path) -> None:
    rng = random.Random(seed)
    src = tmp_path / "in.cap"
    src.write_bytes(damage(rng, base))
    out = tmp_path / "out.cap"
    sentinel = pcap_of(sample_frames()[:1])
    keep = ["--keep-going"] if seed % 2 else []
    for tool in ("verify", "stats", *WRITERS):
        out.write_bytes(sentinel)
        argv = ["pcap", tool, *keep, str(src)] + ([str(out)] if tool in WRITERS else [])
        what = f"seed {seed}: {' '.join(argv[:-2] if tool in WRITERS else argv[:-1])}"
        try:
            code, text, err = run_cli(*argv)
        except Exception as exc:  # a traceback: say which case, then fail with it
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc
        assert code in ALLOWED, f"{what}: exit {code}\n{err}"
        assert "Traceback" not in text + err
        if code == 2:
            assert err.count("\n") == 1 and "error:" in err, f"{what}: {err!r}"
        if tool in WRITERS:
            _check_output(out, sentinel, code, what)
        assert temporaries(tmp_path) == [], what


def _run(cases: int, offset: int, tmp_path: Path) -> None:
    bases = _bases()
    for seed in range(offset, offset + cases):
        _one_case(seed, bases[seed % len(bases)], tmp_path)


def test_damaged_captures_through_every_tool(tmp_path: Path) -> None:
    _run(DEFAULT_CASES, 0, tmp_path)


@pytest.mark.slow
def test_damaged_captures_through_every_tool_long(tmp_path: Path) -> None:
    _run(SLOW_CASES, 100_000, tmp_path)
