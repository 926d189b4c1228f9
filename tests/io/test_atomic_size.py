"""Output files whose size is known up front get their disk blocks first (io/atomic.py).

The writer's bytes are what ends up in the file whatever the size announced: fewer (the
file is cut where the writing ended), more (it grows), or none at all; and a file system or
descriptor without ``fallocate(2)`` changes nothing but speed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndis_offload.io.atomic import atomic_output, atomic_path, preallocate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(st.binary(min_size=0, max_size=3000), max_size=6),
    announced=st.integers(min_value=0, max_value=20000),
)
def test_the_file_holds_exactly_what_was_written(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], announced: int
) -> None:
    out = tmp_path_factory.mktemp("out") / "out.bin"
    out.write_bytes(b"the previous output, longer than some of the new ones" * 50)
    with atomic_output(out, size=announced) as handle:
        for part in parts:
            handle.write(part)
    assert out.read_bytes() == b"".join(parts)
    assert [p.name for p in out.parent.iterdir()] == ["out.bin"]  # no temporary left


def test_a_failed_run_leaves_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(out, size=1 << 20) as handle:
        handle.write(b"new, but cut short")
        raise RuntimeError
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_path_gives_a_file_of_the_size_with_its_blocks(tmp_path: Path) -> None:
    size = 3 << 20
    with atomic_path(tmp_path / "out.bin", size=size) as tmp:
        info = os.stat(tmp)
        probe = tmp_path / "probe"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT)
        try:
            supported = preallocate(fd, 4096)
        finally:
            os.close(fd)
        if not supported:
            pytest.skip(f"no fallocate(2) on the file system of {tmp_path}")
        assert info.st_size == size
        assert info.st_blocks * 512 >= size  # allocated, not a sparse hole
        assert tmp.read_bytes() == bytes(size)  # reads as zeros until written
        fd = os.open(tmp, os.O_WRONLY)
        try:
            os.pwrite(fd, b"tail", size - 4)
            os.pwrite(fd, b"head", 0)
        finally:
            os.close(fd)
    data = (tmp_path / "out.bin").read_bytes()
    assert len(data) == size and data[:4] == b"head" and data[-4:] == b"tail"


def test_without_fallocate_nothing_changes(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # fallocate(2) on a pipe: ESPIPE
    try:
        assert preallocate(write_end, 4096) is False
        assert preallocate(write_end, 0) is False
    finally:
        os.close(read_end)
        os.close(write_end)
