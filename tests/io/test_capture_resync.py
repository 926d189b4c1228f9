"""The reader on damaged captures: strict mode fails only with located errors; --keep-going
never fails, keeps every record before the damage, and resynchronises after it."""

from __future__ import annotations

import io
import struct

from hypothesis import given
from hypothesis import strategies as st

from ndis_offload.errors import BackendError, PacketError
from ndis_offload.io.capture import CaptureReader, Packet

FRAMES = [bytes([0x41 + i]) * (60 + 37 * i) for i in range(12)]


def pcap(frames: list[bytes]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, i, len(f), len(f)) + f)
    return b"".join(out)


def pcapng(frames: list[bytes]) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 65535))]  # fmt: skip
    for i, f in enumerate(frames):
        out.append(block(6, struct.pack("<IIIII", 0, 0, i, len(f), len(f)) + f))
    return b"".join(out)


def offsets(data: bytes, ng: bool) -> list[tuple[int, int]]:
    """(start, end) file offsets of each frame's record."""
    out, pos = [], 24 if not ng else 0
    while pos < len(data):
        kind, size = struct.unpack_from("<II", data, pos)
        if not ng:
            size = 16 + struct.unpack_from("<I", data, pos + 8)[0]
        if kind == 6 or not ng:
            out.append((pos, pos + size))
        pos += size
    return out


def read(data: bytes, keep_going: bool, chunk: int) -> tuple[list[bytes], CaptureReader]:
    reader = CaptureReader(io.BytesIO(data), keep_going=keep_going, chunk_bytes=chunk)
    return [p.data for p in reader if isinstance(p, Packet)], reader


@given(
    ng=st.booleans(),
    at=st.integers(0, 10_000),
    garbage=st.binary(min_size=0, max_size=200),
    cut=st.integers(0, 200),
    chunk=st.sampled_from([64, 333, 4096, 1 << 20]),
)
def test_damage_anywhere(ng: bool, at: int, garbage: bytes, cut: int, chunk: int) -> None:
    clean = pcapng(FRAMES) if ng else pcap(FRAMES)
    at = min(at, len(clean))
    damaged = clean[:at] + garbage + clean[at + cut :]
    try:
        strict, _ = read(damaged, False, chunk)
    except (PacketError, BackendError) as error:
        assert "not a" in str(error) or isinstance(error, PacketError)
    try:
        got, reader = read(damaged, True, chunk)
    except BackendError:  # the file header itself is gone: not a capture
        assert at < 24
        return
    # records ending before the damage, with room for the next header (12 / 16 bytes)
    intact = [i for i, (_, end) in enumerate(offsets(clean, ng)) if end + 16 <= at]
    assert got[: len(intact)] == [FRAMES[i] for i in intact]
    if damaged == clean:
        assert got == FRAMES and not reader.errors
    for found in reader.errors:
        assert found.offset is not None and 0 <= found.offset <= len(damaged)


@given(frame=st.integers(0, len(FRAMES) - 1), junk=st.integers(1, 3000))
def test_resync_recovers_everything_after_a_smashed_header(frame: int, junk: int) -> None:
    """0xFF bytes over one record header (and into its data) cost that record only. (Zeros
    would not do: sixteen zero bytes are a valid empty record.)"""
    clean = pcap(FRAMES)
    at = offsets(clean, False)[frame][0]
    size = 12 + junk % (4 + len(FRAMES[frame]))
    damaged = clean[:at] + b"\xff" * size + clean[at + size :]
    got, reader = read(damaged, True, 4096)
    assert got == FRAMES[:frame] + FRAMES[frame + 1 :]
    assert reader.errors[0].frame_index == frame and reader.errors[0].offset == at
