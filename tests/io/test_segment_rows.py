"""``CaptureWriter.write_rows`` (the segments of a send as rows of one buffer) writes byte
for byte what the per-frame ``write_packets`` writes, in pcap (micro- and nanosecond magic,
both byte orders) and pcapng (both byte orders, packet options, any interface), with the
snap length's cut kept in the original length; and ``pcap segment`` writes the same file
whether its plain TCP sends go the rows way or the per-frame way. Oracle: the per-frame
writer and ``segment_gso`` path, themselves checked against scapy, tshark and tcprewrite
(tests/io/test_segment_writes.py, tests/cli/test_pcap.py)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from frame_recipes import MAC, inner_ip, link, payload, tunnel
from ndis_offload.engine import segment_tcp_rows
from ndis_offload.io import pcap_jobs
from ndis_offload.io.capture import (
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    CaptureWriter,
    Packet,
)


def _send(size: int, ipv6: bool, options: bool) -> bytes:
    tcp = TCP(sport=40000, dport=443, flags="PA",
              options=[("MSS", 1460), ("Timestamp", (1, 2))] if options else [])  # fmt: skip
    return bytes(Ether(**MAC) / inner_ip("ip6" if ipv6 else "ip4", tcp / payload(size)))


@settings(max_examples=150, deadline=None)
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
    opts=st.sampled_from([b"", b"\x01\x00\x05\x00hello\x00\x00\x00\x00\x00\x00\x00"]),
    interface=st.integers(0, 3),
)
def test_rows_writer_equals_per_frame_writer(
    size: int, mss: int, ipv6: bool, tcp_options: bool, fmt: str, nanoseconds: bool,
    big: bool, snap_cut: int, ts: int, opts: bytes, interface: int,
) -> None:  # fmt: skip
    data = _send(size, ipv6, tcp_options)
    tps = 1_000_000_000 if nanoseconds else 1_000_000
    packet = Packet(
        index=7, offset=24, data=data, orig_len=len(data) + snap_cut, linktype=1,
        ts_ticks=ts if fmt == "pcapng" else ts % ((1 << 32) * tps), ticks_per_second=tps,
        interface=interface, options=opts if fmt == "pcapng" else b"", big_endian=big,
    )  # fmt: skip
    segments = segment_tcp_rows(data, mss)
    magic = PCAP_MAGIC_NS if nanoseconds else PCAP_MAGIC_US
    header = struct.pack((">" if big else "<") + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
    outs = []
    for rows in (True, False):
        stream = io.BytesIO()
        writer = CaptureWriter(stream, "pcap" if fmt == "pcap" else "pcapng", header,
                               write_header=False)  # fmt: skip
        if rows:
            writer.write_rows(packet, segments)
        else:
            writer.write_packets(packet, segments.frames())
        outs.append((stream.getvalue(), writer.frames))
    assert outs[0] == outs[1]
    assert outs[0][1] == len(segments.frames())


def _frames(draw: st.DrawFn) -> list[bytes]:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["tcp", "tcp6", "udp", "vxlan", "gre", "small"]))
        size = draw(st.integers(0, 4000))
        if kind == "small":
            ack = TCP(sport=5000, dport=80, flags="A") / payload(10)
            out.append(link("eth", inner_ip("ip4", ack))[1])
            continue
        transport = (UDP(sport=5000, dport=53) if kind == "udp"
                     else TCP(sport=40000, dport=80, flags="PA")) / payload(size)  # fmt: skip
        inner = inner_ip("ip6" if kind == "tcp6" else "ip4", transport)
        if kind in ("vxlan", "gre"):
            inner = tunnel(kind, inner, "ip4")
        out.append(link(draw(st.sampled_from(["eth", "vlan", "qinq"])), inner)[1])
    return out


@settings(max_examples=25, deadline=None)
@given(frames=st.composite(_frames)(), mss=st.sampled_from([None, 100, 1000]))
def test_segment_job_same_file_with_and_without_rows(
    frames: list[bytes], mss: int | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("rows")
    src = tmp / "in.pcap"
    records = [Ether(f) for f in frames]
    for index, record in enumerate(records):
        record.time = 1_700_000_000 + index / 7
    wrpcap(str(src), records)
    fast, slow = tmp / "fast.pcap", tmp / "slow.pcap"
    fast_result = pcap_jobs.segment(src, fast, pcap_jobs.Options(keep_going=True), mss=mss)
    with pytest.MonkeyPatch.context() as patch:

        def nothing_plain(chunk: object, checks: object) -> np.ndarray:
            return np.zeros(len(frames), dtype=bool)

        patch.setattr(pcap_jobs, "_plain_tcp", nothing_plain)
        slow_result = pcap_jobs.segment(src, slow, pcap_jobs.Options(keep_going=True), mss=mss)
    assert fast.read_bytes() == slow.read_bytes()
    assert (fast_result.frames_out, fast_result.changed, fast_result.error_count) == (
        slow_result.frames_out, slow_result.changed, slow_result.error_count)  # fmt: skip


def test_rows_way_is_taken_for_plain_tcp_only(tmp_path: Path) -> None:
    """The fast path is really used for a plain send, and never for a tunnelled one."""
    plain = link("eth", inner_ip("ip4", TCP(flags="PA") / payload(3000)))[1]
    vxlan = link("eth", tunnel("vxlan", inner_ip("ip4", TCP(flags="PA") / payload(3000)),
                               "ip4"))[1]  # fmt: skip
    src = tmp_path / "in.pcap"
    wrpcap(str(src), [Ether(plain), Ether(vxlan)])
    seen: list[int] = []
    original = CaptureWriter.write_rows

    def spy(self: CaptureWriter, packet: Packet, segments: object) -> None:
        seen.append(packet.index)
        original(self, packet, segments)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CaptureWriter, "write_rows", spy)
        result = pcap_jobs.segment(src, tmp_path / "out.pcap", mss=1000)
    assert seen == [0]
    assert result.changed == 2 and result.frames_out == 6
