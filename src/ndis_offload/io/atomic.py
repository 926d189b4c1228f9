"""Atomic output files: write a temporary file next to the target, rename only on success."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The path of a new empty temporary file next to ``path`` that becomes ``path`` only
    when the block completes (any process may write it meanwhile).

    The temporary file lives in the target's directory (so :func:`os.replace` is atomic);
    on any exception, ``KeyboardInterrupt`` included, it is removed and the target untouched.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only when the block completes
    (:func:`atomic_path`, opened for writing)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield handle
        handle.flush()


class _Background:
    """Writes on a worker thread so disk I/O overlaps the next chunk's work (GIL released)."""

    def __init__(self, stream: BinaryIO, depth: int) -> None:
        self._stream = stream
        self._queue: queue.Queue[bytes | bytearray | memoryview | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._stream.write(item)
                except BaseException as exc:  # re-raised in the producer
                    self._error = exc

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._error is not None:
            raise self._error
        self._queue.put(data)
        return len(data)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def background_writes(stream: BinaryIO, depth: int = 4) -> Iterator[BinaryIO]:
    """``stream`` behind a bounded queue (``depth`` buffers) drained by a writer thread.

    Buffers handed to ``write`` must not be modified afterwards. The thread is always joined
    before this returns, so the caller may remove the file on failure.
    """
    writer = _Background(stream, depth)
    try:
        yield writer  # type: ignore[misc]
    finally:
        writer.close()


__all__ = ["atomic_output", "background_writes"]
