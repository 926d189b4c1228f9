"""Record-aligned pieces (io/split.py): every piece reads as a capture of its own, the pieces
together hold exactly the records of the whole file (checked against dpkt's reader), and a
boundary that is not a record start is detected, never used."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ndis_offload.errors import PacketError
from ndis_offload.io.capture import CaptureReader, Packet
from ndis_offload.io.split import Piece, open_piece, plan, read_layout


def write_pcap(path: Path, frames: list[bytes], *, nanos: bool = False, big: bool = False) -> None:
    end = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = bytearray(struct.pack(end + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1))
    for i, frame in enumerate(frames):
        out += struct.pack(
            end + "IIII", 1_700_000_000 + i // 7, i * 13 % 1_000_000, len(frame), len(frame)
        )
        out += frame
    path.write_bytes(bytes(out))


def write_pcapng(path: Path, frames: list[bytes]) -> None:
    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535))
    for i, frame in enumerate(frames):
        out += block(6, struct.pack("<IIIII", 0, 0, i, len(frame), len(frame)) + frame)
    path.write_bytes(out)


def records(stream: object) -> list[tuple[bytes, int]]:
    reader = CaptureReader(stream, chunk_bytes=4096)  # type: ignore[arg-type]
    return [(p.data, p.ts_ticks) for p in reader if isinstance(p, Packet)]


def read_pieces(
    path: Path, count: int, min_piece: int
) -> tuple[list[Piece], list[tuple[bytes, int]]]:
    layout, pieces = plan(path, count, min_piece=min_piece)
    got: list[tuple[bytes, int]] = []
    for piece in pieces:
        splice, stream = open_piece(path, layout, piece)
        with stream:
            got += records(stream)
    return pieces, got


def _write(path: Path, frames: list[bytes], fmt: str) -> None:
    if fmt == "pcapng":
        write_pcapng(path, frames)
    else:
        write_pcap(path, frames, nanos=fmt == "pcap-ns", big=fmt == "pcap-be")


def _check_pieces(path: Path, pieces: list[Piece], got: list[tuple[bytes, int]]) -> None:
    with open(path, "rb") as stream:
        whole = records(stream)
    assert got == whole
    assert pieces[0].start == read_layout(path).first_record
    assert pieces[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:], strict=False))


FORMATS = st.sampled_from(["pcap", "pcap-ns", "pcap-be", "pcapng"])
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(
    frames=st.lists(st.binary(min_size=1, max_size=1600), min_size=1, max_size=300),
    count=st.integers(1, 6),
    fmt=FORMATS,
)
# a header straddling record 3's (one byte early) whose length ends at the end of the file
@example(frames=[bytes(n) for n in (1, 2, 17, 1, 1, 1, 2, 3, 4, 5, 8, 11, 11, 13, 19)],
         count=5, fmt="pcap")  # fmt: skip
def test_pieces_hold_every_record_once(
    tmp_path: Path, frames: list[bytes], count: int, fmt: str
) -> None:
    path = tmp_path / "x.cap"
    _write(path, frames, fmt)
    pieces, got = read_pieces(path, count, min_piece=1)
    _check_pieces(path, pieces, got)


# Payloads that look like record headers (the sync's worst case): a false sync may happen,
# but it must be detected (the piece before it ends in a cut record), never used silently.
lookalike = st.builds(
    lambda n, b: struct.pack("<IIII", 1_700_000_000, 5, n, n) + b,
    st.integers(1, 200),
    st.binary(max_size=300),
)


@SETTINGS
@given(
    frames=st.lists(
        st.one_of(st.binary(min_size=1, max_size=1600), lookalike), min_size=1, max_size=300
    ),
    count=st.integers(1, 6),
    fmt=FORMATS,
)
def test_false_syncs_are_detected(
    tmp_path: Path, frames: list[bytes], count: int, fmt: str
) -> None:
    path = tmp_path / "x.cap"
    _write(path, frames, fmt)
    try:
        pieces, got = read_pieces(path, count, min_piece=1)
    except PacketError:
        return
    _check_pieces(path, pieces, got)


def test_against_dpkt(tmp_path: Path) -> None:
    frames = [bytes([i % 256]) * (60 + (i * 37) % 1400) for i in range(5000)]
    path = tmp_path / "big.pcap"
    write_pcap(path, frames)
    pieces, got = read_pieces(path, 7, min_piece=1 << 16)
    assert len(pieces) == 7
    with open(path, "rb") as f:
        expected = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
    assert [data for data, _ in got] == expected


def test_false_boundary_is_detected(tmp_path: Path) -> None:
    frames = [bytes(200) for _ in range(100)]
    path = tmp_path / "x.pcap"
    write_pcap(path, frames)
    layout = read_layout(path)
    bogus = [
        Piece(0, layout.first_record, 24 + 216 * 10 + 50),
        Piece(1, 24 + 216 * 10 + 50, path.stat().st_size),
    ]
    splice, stream = open_piece(path, layout, bogus[0])
    with stream, pytest.raises(PacketError, match="truncated"):
        records(stream)
