"""Process memory tuning for the capture tools: keep freed chunk memory for the next chunk.

The capture tools allocate and free buffers of a few MiB per chunk (the chunk's bytes, numpy
temporaries). glibc's allocator serves such sizes with fresh ``mmap`` pages, or trims them
off the heap when freed, so every chunk page-faults its memory in again: measured, about a
third of ``pcap verify``'s CPU time on a 256 MB capture (150,000 faults). Raising the mmap
and trim thresholds to 32 MiB keeps that memory in the heap for reuse; peak RSS does not
change (chunks are bounded; ``CHUNK_BYTES`` in ``io/capture.py``).
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc ``<malloc.h>`` ``mallopt`` parameters."""
KEEP_BYTES = 32 << 20
"""The largest ``M_MMAP_THRESHOLD`` glibc accepts on 64-bit systems (``HEAP_MAX_SIZE / 2``)."""


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to :data:`KEEP_BYTES` for reuse; False where
    there is no glibc ``mallopt`` (musl, macOS), which changes nothing but speed."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
    )


__all__ = ["reuse_freed_memory"]
