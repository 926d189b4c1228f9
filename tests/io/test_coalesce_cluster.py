"""``pcap coalesce --queues N`` on a Dask cluster (a 2-worker ``LocalCluster``) gives the
serial ``--queues N`` output byte for byte: pcap and pcapng (blocks between frames), SCUs
that time out or are held to the end, a bad frame (the same error, no output), a second
pcapng section (the job goes serial), a killed worker (retried), Ctrl-C (no output, no
temporary file); without ``--queues`` a cluster run is refused with the reason."""

from __future__ import annotations

import io
import os
import signal
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from coalesce_frames import receive_frames, write_pcap, write_pcapng
from ndis_offload.cli.main import main
from ndis_offload.errors import BackendError, PacketError
from ndis_offload.io import distributed
from ndis_offload.io.cluster import ClusterSpec
from ndis_offload.io.coalesce import Steering, coalesce
from ndis_offload.io.pcap_jobs import Options

pytest.importorskip("distributed", reason="the dask extra is not installed")

PIECE = 128 << 10  # small pieces: many of them in a few-MB capture


@pytest.fixture(scope="module")
def frames() -> list[tuple[bytes, int]]:
    return receive_frames(flows=120, rounds=4)


def both(
    src: Path, tmp: Path, spec: ClusterSpec, queues: int, timeout: float, *, on_cluster: bool
) -> None:
    """The serial and the cluster run write the same bytes and count the same;
    ``on_cluster``: the cluster did the work (else the job had to fall back to one pass)."""
    steering = Steering(queues)
    serial = coalesce(src, tmp / "serial", timeout=timeout, steering=steering)
    fallbacks = []

    def one_pass(*args: Any, **kwargs: Any) -> Any:
        fallbacks.append(args)
        return coalesce(*args, **kwargs)

    bar: list[tuple[int, int]] = []
    opts = Options(progress=lambda frames, nbytes: bar.append((frames, nbytes)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed, "serial_coalesce", one_pass)
        parted = distributed.coalesce(src, tmp / "parted", spec, opts, timeout=timeout,
                                      steering=steering, piece_bytes=PIECE)  # fmt: skip
    assert len(fallbacks) == (0 if on_cluster else 1)
    assert bar == sorted(bar) and bar[-1] == (serial.frames_in, src.stat().st_size)
    assert (tmp / "parted").read_bytes() == (tmp / "serial").read_bytes()
    assert (parted.frames_in, parted.frames_out, parted.changed) == (
        serial.frames_in, serial.frames_out, serial.changed,
    )  # fmt: skip
    assert sorted(p.name for p in tmp.iterdir()) == sorted([src.name, "serial", "parted"])


@pytest.mark.parametrize("queues", [2, 5])
@pytest.mark.parametrize("timeout", [0.0005, 1000.0])
def test_pcap_is_byte_identical(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]], queues: int,
    timeout: float,
) -> None:  # fmt: skip
    src = write_pcap(tmp_path / "in.pcap", frames)
    assert src.stat().st_size > 8 * PIECE
    both(src, tmp_path, spec, queues, timeout, on_cluster=True)


def test_pcapng_with_blocks_is_byte_identical(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]]
) -> None:
    src = write_pcapng(tmp_path / "in.pcapng", frames, comment_every=97)
    both(src, tmp_path, spec, 3, 1000.0, on_cluster=True)


def test_unsupported_link_type_frames_flush_every_queue(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]]
) -> None:
    """Two interfaces, Ethernet and LINKTYPE_USER0 (147): the user frames are passed through
    where they are, after every queue's flush (events of the steering tasks)."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    data = bytearray(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    data += block(1, struct.pack("<HHI", 1, 0, 65535)) + block(1, struct.pack("<HHI", 147, 0, 0))
    for i, (frame, ts) in enumerate(frames):
        if i % 61 == 0:
            user = b"user frame %d" % i
            data += block(6, struct.pack("<IIIII", 1, ts >> 32, ts & 0xFFFFFFFF, len(user),
                                         len(user)) + user)  # fmt: skip
        data += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                     len(frame)) + frame)  # fmt: skip
    src = tmp_path / "two.pcapng"
    src.write_bytes(bytes(data))
    both(src, tmp_path, spec, 4, 1000.0, on_cluster=True)
    assert (tmp_path / "parted").read_bytes().count(b"user frame ") == len(frames[::61])


def test_a_bad_frame_fails_like_serial(tmp_path: Path, spec: ClusterSpec) -> None:
    """Raw-IP records; an empty one deep in the capture is malformed: the same error (frame
    number across the file, file offset), and no output."""
    raw = [(f[14:], ts) for f, ts in receive_frames(flows=40, rounds=4) if f[12:14] != b"\x08\x06"]
    raw[len(raw) * 3 // 4] = (b"", raw[len(raw) * 3 // 4][1])
    src = write_pcap(tmp_path / "raw.pcap", raw)
    data = bytearray(src.read_bytes())
    struct.pack_into("<I", data, 20, 101)  # LINKTYPE_RAW
    src.write_bytes(bytes(data))
    with pytest.raises(PacketError) as serial:
        coalesce(src, tmp_path / "serial", steering=Steering(3))
    with pytest.raises(PacketError) as parted:
        distributed.coalesce(src, tmp_path / "parted", spec, steering=Steering(3),
                             piece_bytes=PIECE)  # fmt: skip
    assert serial.value.frame_index == parted.value.frame_index == len(raw) * 3 // 4
    assert (serial.value.offset, serial.value.reason) == (parted.value.offset, parted.value.reason)
    assert sorted(os.listdir(tmp_path)) == ["raw.pcap"]


def test_a_second_pcapng_section_runs_serially(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]]
) -> None:
    first = write_pcapng(tmp_path / "a.pcapng", frames[: len(frames) // 2])
    second = write_pcapng(tmp_path / "b.pcapng", frames[len(frames) // 2 :])
    src = tmp_path / "two.pcapng"
    src.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    both(src, tmp_path, spec, 2, 1000.0, on_cluster=False)


@pytest.mark.parametrize("phase", ["steering", "coalescing"])
def test_killed_worker_is_retried(
    tmp_path: Path, spec: ClusterSpec, cluster: Any, frames: list[tuple[bytes, int]], phase: str
) -> None:
    """A worker killed once the first piece is steered, or once the first queue is
    coalesced: Dask recomputes what it held (every task rewrites its own files whole,
    renamed into place) and the output is the serial one."""
    from distributed import Client

    src = write_pcap(tmp_path / "in.pcap", frames)
    half = src.stat().st_size // 2
    coalesce(src, tmp_path / "serial", timeout=1000.0, steering=Steering(3))
    with Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = threading.Event()

    def progress(frames: int, nbytes: int) -> None:
        if not killed.is_set() and (phase == "steering" or nbytes > half):
            killed.set()
            os.kill(pids[0], signal.SIGKILL)

    distributed.coalesce(src, tmp_path / "parted", spec, Options(progress=progress),
                         timeout=1000.0, steering=Steering(3), piece_bytes=PIECE)  # fmt: skip
    assert killed.is_set()
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["in.pcap", "parted", "serial"]


@pytest.mark.parametrize("phase", ["steering", "coalescing"])
def test_interrupt_leaves_nothing(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]], phase: str
) -> None:
    """Ctrl-C while pieces are steered, or once the first queue is coalesced (the bar
    passes half the bytes): the old output stays, no part file or temporary file is left."""
    src = write_pcap(tmp_path / "in.pcap", frames)
    (tmp_path / "out").write_bytes(b"keep me")
    half = src.stat().st_size // 2

    def progress(frames: int, nbytes: int) -> None:
        if phase == "steering" or nbytes > half:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.coalesce(src, tmp_path / "out", spec, Options(progress=progress),
                             timeout=1000.0, steering=Steering(4), piece_bytes=PIECE)  # fmt: skip
    assert (tmp_path / "out").read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["in.pcap", "out"]


def test_one_queue_on_a_cluster_is_refused(tmp_path: Path, spec: ClusterSpec) -> None:
    src = write_pcap(tmp_path / "in.pcap", receive_frames(flows=4, rounds=1))
    with pytest.raises(BackendError, match="--queues N"):
        distributed.coalesce(src, tmp_path / "out", spec)
    assert not (tmp_path / "out").exists()


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), console=Console(file=out, width=200)), out.getvalue()


def test_cli(tmp_path: Path, spec: ClusterSpec) -> None:
    src = write_pcap(tmp_path / "in.pcap", receive_frames(flows=30, rounds=2))
    code, text = cli("pcap", "coalesce", str(src), str(tmp_path / "o"), "--workers", "2")
    assert code == 2 and "--queues N" in text and not (tmp_path / "o").exists()
    code, text = cli("pcap", "coalesce", "-q", str(src), str(tmp_path / "serial"), "--queues", "2")
    assert code == 0, text
    code, text = cli("pcap", "coalesce", "-q", str(src), str(tmp_path / "parted"), "--queues",
                     "2", "--scheduler", spec.scheduler or "")  # fmt: skip
    assert code == 0, text
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()


def test_part_files_go_to_the_work_dir(
    tmp_path: Path, spec: ClusterSpec, frames: list[tuple[bytes, int]]
) -> None:
    """``--work-dir``: the shuffle's part files live there during the run, and are gone
    after it; the output is the serial one."""
    src = write_pcap(tmp_path / "in.pcap", frames)
    work = tmp_path / "work"
    work.mkdir()
    seen: list[list[str]] = []

    def progress(frames: int, nbytes: int) -> None:
        seen.append([p.name for p in work.iterdir()])

    coalesce(src, tmp_path / "serial", steering=Steering(2))
    distributed.coalesce(src, tmp_path / "parted", spec, Options(progress=progress),
                         steering=Steering(2), piece_bytes=PIECE, work_dir=work)  # fmt: skip
    assert any(names and names[0].startswith(".parted.parts.") for names in seen)
    assert not list(work.iterdir())
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["in.pcap", "parted", "serial", "work"]
