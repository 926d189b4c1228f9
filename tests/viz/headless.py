"""Headless Chromium for the page tests: screenshots, DOM dumps, and a PNG reader built on
zlib and numpy (no imaging library needed) to tell a real picture from a blank one."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_browser() -> str | None:
    """``$CHROMIUM``, else the first Chromium-family browser on PATH."""
    given = os.environ.get("CHROMIUM")
    if given:
        return given
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_or_skip() -> str:
    path = find_browser()
    if path is None:
        pytest.skip("no headless browser: apt-get install chromium (or set CHROMIUM)")
    return path


def _run(browser: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="ndis-offload-chromium-") as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )


def render(
    browser: str, page: Path, out: Path, size: tuple[int, int] = (1280, 900)
) -> tuple[bytes, str]:
    """Load ``page`` once: a PNG screenshot of a window of ``size`` (written to ``out``) and
    the DOM the browser built, serialized (``--screenshot`` and ``--dump-dom`` together)."""
    done = _run(browser, "--dump-dom", f"--screenshot={out}",
                f"--window-size={size[0]},{size[1]}", page.resolve().as_uri())  # fmt: skip
    error = done.stderr.decode(errors="replace")[-2000:]
    assert done.returncode == 0 and out.exists(), error
    return out.read_bytes(), done.stdout.decode("utf-8")


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> npt.NDArray[np.uint8]:
    """Undo the PNG scanline filters (None, Sub, Up, Average, Paeth)."""
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int64)
        if kind == 0:
            row = line
        elif kind == 1:
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            row = (line + prev) % 256
        elif kind in (3, 4):
            cur = [0] * stride
            up = prev.tolist()
            data = line.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    cur[i] = (data[i] + (a + b) // 2) & 0xFF
                    continue
                c = up[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (data[i] + pred) & 0xFF
            row = np.array(cur, dtype=np.int64)
        else:
            raise ValueError(f"PNG row {y}: unknown filter {kind}")
        out[y] = row
        prev = row
    return out


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """Pixels (height, width, channels) of an 8-bit, non-interlaced RGB / RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    pixels = _unfilter(zlib.decompress(bytes(idat)), width, height, channels)
    return pixels.reshape(height, width, channels)


def colour_stats(png: bytes) -> tuple[int, float]:
    """(distinct colours, fraction of pixels that differ from the most common colour)."""
    pixels = decode_png(png)
    flat = pixels[..., :3].reshape(-1, 3)
    packed = (flat[:, 0].astype(np.int64) << 16) | (flat[:, 1].astype(np.int64) << 8) | flat[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    return len(values), 1.0 - counts.max() / len(packed)
