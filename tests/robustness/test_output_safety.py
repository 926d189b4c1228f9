"""Output files are never lost or replaced by something wrong (issue 13, items 1-3).

Each case runs the real tools (``main`` in process, or a child process for signals) and
checks the file system afterwards: the existing output, the input, and that no temporary
file is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from robust_support import pcap_of, reads_back, run_cli, sample_frames, spawn, temporaries

from ndis_offload.io.atomic import atomic_output, stale_temporaries

WRITERS = ("fix", "segment", "coalesce")


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "in.pcap"
    path.write_bytes(pcap_of(sample_frames()))
    return path


def _refused(code: int, err: str, name: str, reason: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and reason in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("tool", WRITERS)
def test_device_behind_a_symlink_is_refused(tool: str, capture: Path, tmp_path: Path) -> None:
    """A device (a null device node made here when root, else a FIFO) reached through a
    symbolic link in the temp dir stays what it is."""
    device = tmp_path / "device"
    if os.geteuid() == 0:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        reason = "character device"
    else:
        os.mkfifo(device)
        reason = "named pipe"
    link = tmp_path / "link.pcap"
    link.symlink_to(device)
    for target in (device, link):
        code, _, err = run_cli("pcap", tool, str(capture), str(target))
        _refused(code, err, target.name, reason)
    mode = device.lstat().st_mode
    assert stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
    assert link.is_symlink() and temporaries(tmp_path) == []


@pytest.mark.parametrize("tool", WRITERS)
def test_output_that_is_the_input_is_refused(tool: str, capture: Path, tmp_path: Path) -> None:
    original = capture.read_bytes()
    hard = tmp_path / "hard.pcap"
    os.link(capture, hard)
    soft = tmp_path / "soft.pcap"
    soft.symlink_to(capture.name)
    for target in (capture, hard, soft, tmp_path / "." / "in.pcap"):
        code, _, err = run_cli("pcap", tool, str(capture), str(target))
        _refused(code, err, str(target.name), "it is the input file")
    assert capture.read_bytes() == original and soft.is_symlink()
    assert temporaries(tmp_path) == []


def test_symlink_output_is_written_through(capture: Path, tmp_path: Path) -> None:
    """Documented: a link to a regular file is kept; the file it names gets the output."""
    real = tmp_path / "real.pcap"
    real.write_bytes(b"old")
    link = tmp_path / "link.pcap"
    link.symlink_to(real.name)
    code, _, err = run_cli("pcap", "fix", str(capture), str(link))
    assert code == 0, err
    assert link.is_symlink() and reads_back(real) == len(sample_frames())
    dangling = tmp_path / "dangling.pcap"
    dangling.symlink_to("nowhere/x.pcap")
    code, _, err = run_cli("pcap", "fix", str(capture), str(dangling))
    _refused(code, err, "dangling.pcap", "dangling symbolic link")


@pytest.mark.parametrize("tool", WRITERS)
def test_missing_directory_and_directory_target(tool: str, capture: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("pcap", tool, str(capture), str(tmp_path / "no" / "such" / "o.pcap"))
    _refused(code, err, "o.pcap", "does not exist")
    code, _, err = run_cli("pcap", tool, str(capture), str(tmp_path))
    _refused(code, err, str(tmp_path), "a directory")
    code, _, err = run_cli("pcap", tool, str(tmp_path / "missing.pcap"), str(tmp_path / "o.pcap"))
    _refused(code, err, "missing.pcap", "No such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcap"]


def test_unwritable_directory(capture: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere; the read-only file system case covers this")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli("pcap", "fix", str(capture), str(locked / "o.pcap"))
        _refused(code, err, "o.pcap", "Permission denied")
    finally:
        locked.chmod(0o700)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``where`` (root only; skipped when mounting is refused)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_read_only_file_system(capture: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m") as mnt:
        existing = mnt / "out.pcap"
        existing.write_bytes(b"existing output")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        for tool in WRITERS:
            code, _, err = run_cli("pcap", tool, str(capture), str(existing))
            _refused(code, err, "out.pcap", "Read-only file system")
        assert existing.read_bytes() == b"existing output"
        assert temporaries(mnt) == []


def test_full_file_system(tmp_path: Path) -> None:
    big = tmp_path / "big.pcap"
    big.write_bytes(pcap_of(sample_frames() * 40))  # ~450 KB, more than the tmpfs holds
    with tmpfs(tmp_path / "full", "64k") as mnt:
        existing = mnt / "out.pcap"
        existing.write_bytes(b"existing output")
        for tool in WRITERS:
            code, _, err = run_cli("pcap", tool, str(big), str(existing))
            _refused(code, err, "out.pcap", "No space left on device")
            assert existing.read_bytes() == b"existing output"
            assert temporaries(mnt) == []


# -- signals -----------------------------------------------------------------------------------


def _blocked_run(tmp_path: Path, tool: str) -> tuple[subprocess.Popen[bytes], Path, int]:
    """A child writing ``out.pcap`` from a FIFO it is blocked on, mid-run (temp file open)."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.pcap"
    out.write_bytes(b"existing output")
    child = spawn("pcap", tool, "-q", str(fifo), str(out),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    writer = os.open(fifo, os.O_WRONLY)
    data = pcap_of(sample_frames())
    os.write(writer, data[: len(data) // 2])
    deadline = time.monotonic() + 30
    while not temporaries(tmp_path):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never opened its temporary file"
        time.sleep(0.02)
    return child, out, writer


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                              (signal.SIGINT, 130)])  # fmt: skip
@pytest.mark.parametrize("tool", ["fix", "segment"])
def test_signal_mid_run_removes_the_temporary(
    signum: int, code: int, tool: str, tmp_path: Path
) -> None:
    child, out, writer = _blocked_run(tmp_path, tool)
    try:
        child.send_signal(signum)
        _, err = child.communicate(timeout=30)
    finally:
        os.close(writer)
        if child.poll() is None:
            child.kill()
    assert child.returncode == code, err
    assert b"Traceback" not in err
    assert out.read_bytes() == b"existing output"
    assert temporaries(tmp_path) == []


def test_sigkill_leftover_is_removed_by_the_next_run(tmp_path: Path) -> None:
    child, out, writer = _blocked_run(tmp_path, "fix")
    try:
        child.kill()
        child.wait(timeout=30)
    finally:
        os.close(writer)
    left = temporaries(tmp_path)
    assert len(left) == 1 and f"-{child.pid}." in left[0]
    assert stale_temporaries(out) == [tmp_path / left[0]]
    capture = tmp_path / "in.pcap"
    capture.write_bytes(pcap_of(sample_frames()))
    code, _, err = run_cli("pcap", "fix", str(capture), str(out))
    assert code == 0, err
    assert temporaries(tmp_path) == [] and reads_back(out) == len(sample_frames())


def test_a_live_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    """Only temporaries of processes that are gone count as stale."""
    target = tmp_path / "out.pcap"
    with atomic_output(target) as first:
        first.write(b"a")
        assert stale_temporaries(target) == []  # our own, still being written
    assert target.read_bytes() == b"a"


def test_closed_pipe_exits_141_quietly(tmp_path: Path) -> None:
    big = tmp_path / "big.pcap"
    frames = sample_frames()
    big.write_bytes(pcap_of(frames * 400))
    scenario = tmp_path / "binds.json"
    scenario.write_text(json.dumps({"steps": [{"bind": f"p{i}"} for i in range(2000)]}))
    # outputs larger than a pipe holds (or written long after the first line): the write
    # after the reader left must fail, whatever the timing
    for argv in (("run", "--json", str(scenario)), ("run", str(scenario)),
                 ("pcap", "verify", "--json", str(big))):  # fmt: skip
        child = spawn(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None and child.stderr is not None
        child.stdout.readline()
        child.stdout.close()
        err = child.stderr.read()
        child.wait(timeout=60)
        assert child.returncode == 141, (argv, err)
        assert err == b"", (argv, err)
