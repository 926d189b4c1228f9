"""The pcap / pcapng codec: byte-exact rewrites, timestamps, errors, atomic output."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapNgReader, rdpcap, wrpcap

from ndis_offload.errors import PacketError
from ndis_offload.io.atomic import atomic_output
from ndis_offload.io.capture import Block, CaptureReader, CaptureWriter, Packet

MAC: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def frames(count: int = 5) -> list[bytes]:
    return [
        bytes(Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(seq=i) / (b"d" * i))
        for i in range(count)
    ]


def rewrite(data: bytes, chunk_bytes: int = 64) -> bytes:
    reader = CaptureReader(io.BytesIO(data), chunk_bytes=chunk_bytes)
    out = io.BytesIO()
    writer = CaptureWriter.like(out, reader)
    for item in reader:
        writer.write(item)
    return out.getvalue()


def pcap_bytes(big: bool, nano: bool, records: list[tuple[int, int, bytes]]) -> bytes:
    end = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(end + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, frac, data in records:
        out += struct.pack(end + "IIII", sec, frac, len(data), len(data)) + data
    return out


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_both_byte_orders_and_resolutions(big: bool, nano: bool) -> None:
    frac = 999_999_999 if nano else 999_999
    data = pcap_bytes(big, nano, [(1_700_000_000, frac, f) for f in frames()])
    assert rewrite(data) == data
    packets = [p for p in CaptureReader(io.BytesIO(data)) if isinstance(p, Packet)]
    assert [p.data for p in packets] == frames()
    scale = 1 if nano else 1000
    assert packets[0].timestamp_ns == 1_700_000_000 * 10**9 + frac * scale


def test_scapy_pcap_reads_and_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "a.pcap"
    wrpcap(str(path), [Ether(f) for f in frames(50)])
    data = path.read_bytes()
    assert rewrite(data, chunk_bytes=100) == data
    assert [bytes(p) for p in rdpcap(str(path))] == frames(50)


def _opt(end: str, code: int, value: bytes) -> bytes:
    return struct.pack(end + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(end: str, btype: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return struct.pack(end + "II", btype, size) + body + struct.pack(end + "I", size)


def pcapng_bytes(end: str) -> bytes:
    """Two sections' worth of features: two interfaces (Ethernet ns, SLL us), comments."""
    shb = _block(end, 0x0A0D0D0A, struct.pack(end + "IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + _opt(end, 1, b"section comment") + _opt(end, 0, b""))  # fmt: skip
    idb0 = _block(end, 1, struct.pack(end + "HHI", 1, 0, 262144) + _opt(end, 9, b"\x09")
                  + _opt(end, 0, b""))  # fmt: skip
    idb1 = _block(end, 1, struct.pack(end + "HHI", 113, 0, 262144))
    out = shb + idb0 + idb1
    sll = struct.pack("!HHH8sH", 4, 1, 6, b"\2\0\0\0\0\1\0\0", 0x0800)
    for i, frame in enumerate(frames(6)):
        iface = i % 2
        data = frame if iface == 0 else sll + frame[14:]
        ts = 1_700_000_000_123_456_789 + i if iface == 0 else 1_700_000_000_123_456 + i
        opts = _opt(end, 1, f"comment {i}".encode()) + _opt(end, 0, b"") if i % 3 == 0 else b""
        body = struct.pack(end + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out += _block(end, 6, body + data + bytes(-len(data) % 4) + opts)
    out += _block(end, 0xBAD, b"custom!!")
    return out


@pytest.mark.parametrize("end", ["<", ">"])
def test_pcapng_interfaces_comments_nanoseconds_survive(end: str, tmp_path: Path) -> None:
    data = pcapng_bytes(end)
    assert rewrite(data) == data
    items = list(CaptureReader(io.BytesIO(data), chunk_bytes=40))
    packets = [p for p in items if isinstance(p, Packet)]
    assert [p.linktype for p in packets] == [1, 113] * 3
    assert packets[0].timestamp_ns == 1_700_000_000_123_456_789
    assert packets[1].timestamp_ns == 1_700_000_000_123_457_000
    assert b"comment 0" in packets[0].options
    assert sum(isinstance(i, Block) for i in items) == 4
    if end == "<":  # an independent reader agrees
        path = tmp_path / "x.pcapng"
        path.write_bytes(rewrite(data))
        got = [(pkt, meta) for pkt, meta in RawPcapNgReader(str(path))]
        assert [pkt for pkt, _ in got] == [p.data for p in packets]


def test_truncated_record_names_frame_and_offset() -> None:
    data = pcap_bytes(False, False, [(1, 0, f) for f in frames(4)])
    cut = data[:-7]
    with pytest.raises(PacketError) as info:
        list(CaptureReader(io.BytesIO(cut), chunk_bytes=32))
    assert info.value.frame_index == 3
    last_record = len(data) - 16 - len(frames(4)[3])
    assert info.value.offset == last_record
    reader = CaptureReader(io.BytesIO(cut), keep_going=True, chunk_bytes=32)
    assert len(list(reader)) == 3
    assert [e.frame_index for e in reader.errors] == [3]


def test_corrupt_pcapng_block_is_reported() -> None:
    data = bytearray(pcapng_bytes("<"))
    # Make the 3rd packet block's captured length overrun its block.
    pos = data.find(b"comment 0") - 200
    pos = data.index(struct.pack("<I", 6), max(pos, 0))
    data[pos + 20 : pos + 24] = struct.pack("<I", 9999)
    with pytest.raises(PacketError, match="overruns"):
        list(CaptureReader(io.BytesIO(bytes(data))))
    reader = CaptureReader(io.BytesIO(bytes(data)), keep_going=True)
    assert sum(isinstance(p, Packet) for p in reader) == 5
    assert reader.errors and reader.errors[0].offset is not None


def test_atomic_output_leaves_nothing_on_interrupt(tmp_path: Path) -> None:
    target = tmp_path / "out.pcap"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as out:
        out.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as out:
        out.write(b"whole")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.pcap"]


@pytest.mark.parametrize("big", [False, True])
def test_pcap_runs_of_equal_sizes_read_like_dpkt(big: bool) -> None:
    """The vectorized equal-size run path and the record walk agree with dpkt, across runs
    that start, break and resume at chunk edges."""
    import dpkt
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None)
    @given(
        runs=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 30)), min_size=1, max_size=6),
        chunk=st.sampled_from([64, 1000, 4096, 1 << 20]),
    )
    def check(runs: list[tuple[int, int]], chunk: int) -> None:
        records = []
        for size, count in runs:
            for i in range(count):
                records.append((1_700_000_000 + i, i * 7, bytes([i & 0xFF]) * size))
        data = pcap_bytes(big, False, records)
        ours = [
            p for p in CaptureReader(io.BytesIO(data), chunk_bytes=chunk) if isinstance(p, Packet)
        ]
        theirs = list(dpkt.pcap.Reader(io.BytesIO(data)))
        assert [p.data for p in ours] == [bytes(buf) for _, buf in theirs]
        assert [p.timestamp_ns for p in ours] == [
            (sec * 10**9 + frac * 1000) for sec, frac, _ in records
        ]
        assert rewrite(data, chunk) == data

    check()
