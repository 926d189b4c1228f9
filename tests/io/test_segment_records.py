"""``CaptureWriter.write_packets`` (the segments of one send, laid out by list slicing and
one ``join``) writes byte for byte the records the pcap / pcapng formats lay out field by
field: pcap with micro- and nanosecond magic, pcapng with packet options and any interface,
both byte orders, the snap length's cut kept in the original length. Oracles: a
field-by-field ``struct`` encoder written here from the format descriptions (pcap-savefile(5),
draft-ietf-opsawg-pcapng section 4.3 Enhanced Packet Block), and for a whole ``pcap segment``
run over pcapng, editcap (Wireshark) converting the pcap result and scapy reading both.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapNgReader, RawPcapReader, wrpcap

from frame_recipes import MAC, inner_ip, payload
from ndis_offload.engine import segment_tcp
from ndis_offload.io.capture import PCAP_MAGIC_NS, PCAP_MAGIC_US, CaptureWriter, Packet
from ndis_offload.io.pcap_jobs import segment


def _send(size: int, ipv6: bool, options: bool) -> bytes:
    tcp = TCP(sport=40000, dport=443, flags="PA",
              options=[("MSS", 1460), ("Timestamp", (1, 2))] if options else [])  # fmt: skip
    return bytes(Ether(**MAC) / inner_ip("ip6" if ipv6 else "ip4", tcp / payload(size)))


def _record(fmt: str, packet: Packet, frame: bytes, big: bool, tps: int) -> bytes:
    """One segment's record, every field packed on its own."""
    end = ">" if big else "<"
    orig = len(frame) + packet.orig_len - len(packet.data)
    if fmt == "pcap":
        sec, frac = divmod(packet.ts_ticks, tps)
        return struct.pack(end + "IIII", sec, frac, len(frame), orig) + frame
    pad = bytes(-len(frame) % 4)
    size = 32 + len(frame) + len(pad) + len(packet.options)
    ts = packet.ts_ticks
    head = struct.pack(end + "7I", 6, size, packet.interface, ts >> 32, ts & 0xFFFFFFFF,
                       len(frame), orig)  # fmt: skip
    return head + frame + pad + packet.options + struct.pack(end + "I", size)


OPTIONS = (b"", b"\x01\x00\x05\x00hello\x00\x00\x00\x00\x00\x00\x00")
"""No packet options, or an ``opt_comment`` and ``opt_endofopt`` (little-endian)."""


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 3000),
    mss=st.integers(1, 1500),
    ipv6=st.booleans(),
    tcp_options=st.booleans(),
    fmt=st.sampled_from(["pcap", "pcapng"]),
    nanoseconds=st.booleans(),
    big=st.booleans(),
    snap_cut=st.integers(0, 70000),
    ts=st.integers(0, (1 << 64) - 1),
    opts=st.sampled_from(OPTIONS),
    interface=st.integers(0, 3),
    shuffle=st.booleans(),
)
def test_segments_written_as_the_format_lays_them_out(
    size: int, mss: int, ipv6: bool, tcp_options: bool, fmt: str, nanoseconds: bool,
    big: bool, snap_cut: int, ts: int, opts: bytes, interface: int, shuffle: bool,
) -> None:  # fmt: skip
    data = _send(size, ipv6, tcp_options)
    tps = 1_000_000_000 if nanoseconds else 1_000_000
    packet = Packet(
        index=7, offset=24, data=data, orig_len=len(data) + snap_cut, linktype=1,
        ts_ticks=ts if fmt == "pcapng" else ts % ((1 << 32) * tps), ticks_per_second=tps,
        interface=interface, options=opts if fmt == "pcapng" else b"", big_endian=big,
    )  # fmt: skip
    frames = segment_tcp(data, mss).frames
    if shuffle:  # frames of several lengths (not a send's shape) take the per-record way
        frames = frames[::-1] + [data]
    magic = PCAP_MAGIC_NS if nanoseconds else PCAP_MAGIC_US
    header = struct.pack((">" if big else "<") + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
    stream = io.BytesIO()
    writer = CaptureWriter(stream, "pcap" if fmt == "pcap" else "pcapng", header,
                           write_header=False)  # fmt: skip
    writer.write_packets(packet, frames)
    expected = b"".join(_record(fmt, packet, frame, big, tps) for frame in frames)
    assert stream.getvalue() == expected
    assert writer.frames == len(frames)


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (Wireshark) not installed")
def test_pcapng_segment_matches_pcap_segment(tmp_path: Path) -> None:
    """The same sends cut from a pcapng copy (made by editcap) and from the pcap: the same
    frames, timestamps and original lengths (scapy reads both results)."""
    sends = [Ether(_send(size, size % 2 == 1, size % 3 == 0)) for size in (5000, 3001, 64, 9000)]
    for index, send in enumerate(sends):
        send.time = 1_700_000_000 + index / 3
    src = tmp_path / "in.pcap"
    wrpcap(str(src), sends)
    src_ng = tmp_path / "in.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(src), str(src_ng)], check=True)
    out, out_ng = tmp_path / "out.pcap", tmp_path / "out.pcapng"
    assert segment(src, out, mss=1000).frames_out == segment(src_ng, out_ng, mss=1000).frames_out
    ours = [(bytes(pkt), meta.sec, meta.usec, meta.wirelen)
            for pkt, meta in RawPcapReader(str(out))]  # fmt: skip
    theirs = []
    for pkt, meta in RawPcapNgReader(str(out_ng)):
        fields: Any = meta  # pcapng metadata: tshigh, tslow, tsresol, wirelen
        ticks = (fields.tshigh << 32) | fields.tslow
        theirs.append((bytes(pkt), *divmod(ticks * 1_000_000 // fields.tsresol, 1_000_000),
                       fields.wirelen))  # fmt: skip
    assert len(ours) == 5 + 4 + 1 + 9
    assert ours == theirs
