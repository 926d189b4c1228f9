"""The capture files a command names: one file (or a pipe / device to stream), a directory's
capture files, or a glob pattern's files; many of them are one job (``io/distributed.py``).

Kept apart from the cluster code so a one-file command does not import it."""

from __future__ import annotations

import errno
import glob
import os
from pathlib import Path

from ndis_offload.errors import BackendError, PacketError

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".ntar")
"""Files a directory input contributes (a glob takes what it matches)."""


class InputError(PacketError):
    """A frame error in one of many inputs; ``path`` names the file, ``frame_index`` counts
    within it."""

    def __init__(self, path: str, error: PacketError) -> None:
        super().__init__(error.reason, frame_index=error.frame_index, offset=error.offset,
                         status=error.status)  # fmt: skip
        self.path = path


def expand_inputs(spec: str | Path) -> list[Path]:
    """The capture files ``spec`` names: itself if a file; a directory's files with a capture
    suffix (:data:`CAPTURE_SUFFIXES`), by name; or a glob pattern's regular files, sorted."""
    path = Path(spec)
    if path.exists() and not path.is_dir():  # a file, or a named pipe / device to stream
        return [path]
    if path.is_dir():
        found = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES
        )
        if not found:
            raise BackendError(f"{spec}: no capture files ({', '.join(CAPTURE_SUFFIXES)}) in it")
        return found
    if glob.has_magic(str(spec)):
        matched = sorted(Path(p) for p in glob.glob(str(spec), recursive=True))
        files = [p for p in matched if p.is_file()]
        if not files:
            raise BackendError(f"{spec}: matches no file")
        return files
    raise BackendError(f"cannot open {spec}: {os.strerror(errno.ENOENT)}")


def names_many(spec: str | Path) -> bool:
    """Whether ``spec`` is a directory or a glob pattern (its outputs go into a directory)."""
    path = Path(spec)
    return path.is_dir() or (not path.exists() and glob.has_magic(str(spec)))
