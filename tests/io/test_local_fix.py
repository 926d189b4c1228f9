"""``pcap fix`` in pieces on forked local processes writes exactly what one pass writes, and
anything that is not a clean run (a malformed frame, a false piece boundary, an interface
described inside a piece, an interruption) leaves no output, no temporary file and no child
behind, so the serial run decides."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from ndis_offload.errors import PacketError
from ndis_offload.io import local_fix, pcap_jobs, split
from ndis_offload.io.pcap_jobs import Options
from ndis_offload.io.split import Layout, Piece
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
PIECE = 64 << 10
"""Small pieces: several of them in a capture of a few hundred KB."""


def frames(count: int = 1200) -> list[bytes]:
    """Varied frames: TCP / UDP, IPv4 / IPv6, a VLAN tag; one in three left for offload and
    one in seven with a garbage checksum. Payloads are random: runs of zeros would look like
    chains of empty pcap records, and the piece plan would find false boundaries in them."""
    out: list[bytes] = []
    noise = np.random.default_rng(8).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes()
    for i in range(count):
        size = 40 + (i * 97) % 1400
        body = noise[i * 13 % 4096 :][:size]
        if i % 5 == 3:
            pkt = Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(
                sport=1, dport=2) / body  # fmt: skip
            out.append(bytes(pkt))
            continue
        link = Ether(**MAC) / Dot1Q(vlan=7) if i % 4 == 1 else Ether(**MAC)
        pkt = link / IP(src="10.0.0.1", dst="10.0.0.2", id=i) / TCP(
            sport=40000, dport=443, flags="PA", seq=i * 3000) / body  # fmt: skip
        raw = bytearray(bytes(pkt))
        ip = 18 if i % 4 == 1 else 14
        if i % 3 == 0:  # left for offload: IP checksum 0, TCP = pseudo-header sum
            raw[ip + 10 : ip + 12] = b"\0\0"
            pseudo = pseudo_header_sum_ipv4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 6,
                                            20 + size)  # fmt: skip
            struct.pack_into("!H", raw, ip + 36, pseudo)
        elif i % 7 == 0:
            raw[ip + 36 : ip + 38] = b"\x12\x34"
        out.append(bytes(raw))
    return out


def pcap(path: Path, data: list[bytes], linktype: int = 1) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for i, f in enumerate(data):
        out += struct.pack("<IIII", 1_700_000_000 + i // 100, i % 1_000_000, len(f), len(f)) + f
    path.write_bytes(bytes(out))
    return path


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng(path: Path, data: list[bytes], *, idb_at: int = -1) -> Path:
    """A pcapng capture; ``idb_at``: describe a second interface before that frame."""
    out = bytearray(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    out += _block(1, struct.pack("<HHI", 1, 0, 65535))
    for i, f in enumerate(data):
        if i == idb_at:
            out += _block(1, struct.pack("<HHI", 1, 0, 65535))
        out += _block(6, struct.pack("<IIIII", 0, i // 7, i, len(f), len(f)) + f)
    path.write_bytes(bytes(out))
    return path


def no_progress(frames: int, nbytes: int) -> None:
    del frames, nbytes


def in_pieces(src: Path, dst: Path, *, everything: bool = True) -> local_fix.PieceDone:
    return local_fix.fix(src, dst, everything=everything, count=3, chunk_bytes=32 << 10,
                         progress=no_progress, min_piece=PIECE)  # fmt: skip


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children forked during the test."""
    pids: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return pids


def assert_reaped(pids: list[int]) -> None:
    """Every child was waited for (none is left running or a zombie)."""
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("everything", [False, True])
def test_pieces_write_what_one_pass_writes(
    tmp_path: Path, fmt: str, everything: bool, forks: list[int]
) -> None:
    src = (pcap if fmt == "pcap" else pcapng)(tmp_path / f"in.{fmt}", frames())
    serial = pcap_jobs.fix(src, tmp_path / "serial", everything=everything)
    done = in_pieces(src, tmp_path / "pieces", everything=everything)
    assert (tmp_path / "pieces").read_bytes() == (tmp_path / "serial").read_bytes()
    assert (done.frames_out, done.changed, done.total_bytes, done.slow_frames) == (
        serial.frames_out, serial.changed, serial.total_bytes, serial.slow_frames)  # fmt: skip
    assert done.unsupported == serial.unsupported
    assert serial.changed > 400
    assert not leftovers(tmp_path)
    assert len(forks) == 2  # three pieces: this process and two children
    assert_reaped(forks)


def test_pieces_count_unsupported_link_types_like_one_pass(
    tmp_path: Path, forks: list[int]
) -> None:
    """The children's counters cross a pipe as JSON (link types become string keys there):
    the frames of a link type the checks cannot decode are counted per integer link type,
    as one pass counts them, and written as they are."""
    src = pcap(tmp_path / "in.pcap", frames(), linktype=147)  # LINKTYPE_USER0
    serial = pcap_jobs.fix(src, tmp_path / "serial", everything=True)
    done = in_pieces(src, tmp_path / "pieces")
    assert (tmp_path / "pieces").read_bytes() == (tmp_path / "serial").read_bytes()
    assert done.unsupported == serial.unsupported == {147: 1200}
    assert done.frames_out == serial.frames_out == 1200
    assert len(forks) == 2
    assert_reaped(forks)


def test_the_job_uses_pieces_and_reports_like_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = pcap(tmp_path / "in.pcap", frames())
    serial = pcap_jobs.fix(src, tmp_path / "serial", Options(diagnose=False), everything=True)
    monkeypatch.setattr(local_fix, "MIN_PIECE", PIECE)
    calls: list[int] = []
    real = local_fix.fix

    def spy(*args: object, **kwargs: object) -> local_fix.PieceDone:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(local_fix, "fix", spy)
    parted = pcap_jobs.fix(src, tmp_path / "parted", Options(diagnose=False, processes=2),
                           everything=True)  # fmt: skip
    assert calls
    assert (tmp_path / "parted").read_bytes() == (tmp_path / "serial").read_bytes()
    fields = ("frames_in", "frames_out", "changed", "total_bytes", "error_count", "unsupported")
    assert [getattr(parted, f) for f in fields] == [getattr(serial, f) for f in fields]


def test_a_malformed_frame_in_a_later_piece_gives_the_serial_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    data = frames()
    bad = bytearray(data[1000])
    bad[14] = 0x4F  # IHL 15: the IPv4 header claims 60 bytes
    bad[16:18] = (30).to_bytes(2, "big")  # and a total length shorter than that
    data[1000] = bytes(bad)
    src = pcap(tmp_path / "in.pcap", data)
    with pytest.raises(local_fix.Serial):
        in_pieces(src, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    assert_reaped(forks)
    with pytest.raises(PacketError) as serial:
        pcap_jobs.fix(src, tmp_path / "out")
    monkeypatch.setattr(local_fix, "MIN_PIECE", PIECE)
    with pytest.raises(PacketError) as parted:
        pcap_jobs.fix(src, tmp_path / "out", Options(diagnose=False, processes=3))
    assert (parted.value.frame_index, parted.value.reason) == (
        serial.value.frame_index, serial.value.reason) == (1000, serial.value.reason)  # fmt: skip


def test_an_interface_described_inside_a_piece_goes_serial(
    tmp_path: Path, forks: list[int]
) -> None:
    src = pcapng(tmp_path / "in.pcapng", frames(), idb_at=300)
    with pytest.raises(local_fix.Serial):
        in_pieces(src, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    assert_reaped(forks)


def test_a_false_piece_boundary_goes_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """A boundary inside a record's bytes: the piece before it ends on a cut record."""
    src = pcap(tmp_path / "in.pcap", frames())
    size = src.stat().st_size
    real = split.plan

    def false_sync(
        path: object, count: int, *, min_piece: int, largest: int
    ) -> tuple[Layout, list[Piece]]:
        layout, _ = real(src, count, min_piece=min_piece, largest=largest)
        middle = size // 2 + 5  # almost surely not a record boundary
        return layout, [Piece(0, layout.first_record, middle), Piece(1, middle, size)]

    monkeypatch.setattr(local_fix, "plan", false_sync)
    with pytest.raises(local_fix.Serial):
        in_pieces(src, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    assert_reaped(forks)


def test_an_interruption_leaves_nothing(tmp_path: Path, forks: list[int]) -> None:
    src = pcap(tmp_path / "in.pcap", frames(3000))

    def interrupt(frames: int, nbytes: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        local_fix.fix(src, tmp_path / "out", everything=True, count=3, chunk_bytes=32 << 10,
                      progress=interrupt, min_piece=PIECE)  # fmt: skip
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    assert forks
    assert_reaped(forks)


@pytest.mark.parametrize(
    ("cores", "load", "want"),
    [(2, 0.1, 2), (2, 1.0, 2), (2, 1.6, 1), (2, 7.5, 1), (16, 4.0, 8), (1, 0.0, 1)],
)
def test_processes_leave_a_busy_machine_alone(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, want: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(local_fix, "cpu_contention", lambda: None)  # no PSI: the load decides
    assert local_fix.processes() == want


@pytest.mark.parametrize(
    ("pressure", "load", "want"),
    [("some avg10=0.00 avg60=3.10 avg300=1.00 total=12", 1.9, 2),  # our own runs' load
     ("some avg10=24.99 avg60=0.00 avg300=0.00 total=1", 1.6, 2),
     ("some avg10=26.07 avg60=37.10 avg300=22.38 total=10462453672", 1.6, 1),  # 3 on 2 cores
     ("some avg10=80.00 avg60=60.00 avg300=40.00 total=10", 0.5, 2),  # the load decides
     ("some garbled", 1.6, 1), (None, 1.6, 1)],
)  # fmt: skip
def test_processes_use_every_core_when_none_is_contended(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pressure: str | None, load: float, want: int
) -> None:
    """Linux PSI (``/proc/pressure/cpu``): no task waited for a processor in the last 10 s,
    so the load average (our own earlier runs, tasks in disk wait) does not hold us back."""
    psi = tmp_path / "cpu"
    if pressure is not None:
        psi.write_text(pressure + "\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    monkeypatch.setattr(local_fix, "PRESSURE", str(psi))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert local_fix.processes() == want
