"""``pcap segment`` output: frames that are cut are cut from the bytes as captured (their
checksums all come from the cut); a frame that cannot be cut is written completed, as it
was on the wire; frames left whole are completed. Oracle: scapy recomputes every checksum
of every output frame (and of the inner frame of a GRE tunnel) and must find them equal.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import rdpcap, wrpcap

from ndis_offload.io.pcap_jobs import Options, segment
from ndis_offload.packet.checksum import pseudo_header_sum_ipv4

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def left_for_offload(pkt: Packet) -> bytes:
    """``pkt`` with its (innermost) TCP checksum holding the pseudo-header sum, as a sender
    with checksum offload hands it to the capture."""
    frame = bytearray(bytes(pkt))
    parsed = Ether(bytes(frame))
    ip = parsed[TCP].underlayer
    tcp_len = len(parsed[TCP])
    at = len(frame) - tcp_len
    seed = pseudo_header_sum_ipv4(bytes(map(int, ip.src.split("."))),
                                  bytes(map(int, ip.dst.split("."))), 6, tcp_len)  # fmt: skip
    frame[at + 16 : at + 18] = seed.to_bytes(2, "big")
    return bytes(frame)


def all_checksums_right(frame: bytes) -> bool:
    pkt = Ether(frame)
    for layer in (IP, TCP):
        for nb in (1, 2):
            found = pkt.getlayer(layer, nb=nb)
            if found is not None:
                del found.chksum
    return bytes(Ether(bytes(pkt))) == frame


def test_cut_uncuttable_and_whole_frames(tmp_path: Path) -> None:
    payload = bytes(range(250)) * 2
    send = left_for_offload(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(flags="PA") / payload)
    # 40 bytes of TCP options: an MTU of 50 leaves no room for its payload.
    wide = left_for_offload(ETH / IP(src="192.0.2.1", dst="192.0.2.3")
                            / TCP(options=[("NOP", None)] * 40) / payload)  # fmt: skip
    small = left_for_offload(
        ETH / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=5000, flags="A") / b"ack"
    )
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    records = [Ether(f) for f in (small, send, wide, small, small)]
    for index, record in enumerate(records):
        record.time = 1_700_000_000 + index / 8
    wrpcap(str(src), records)
    result = segment(src, dst, Options(mtu=50, keep_going=True))
    assert result.error_count == 1 and "no room" in result.errors[0].reason
    out = rdpcap(str(dst))
    frames = [bytes(p) for p in out]
    assert len(frames) == 1 + 50 + 1 + 2
    assert [float(p.time) - 1_700_000_000 for p in out] == [0] + [1 / 8] * 50 + [
        2 / 8,
        3 / 8,
        4 / 8,
    ]
    assert all(all_checksums_right(f) for f in frames)
    assert b"".join(bytes(Ether(f)[TCP].payload) for f in frames[1:51]) == payload
    assert frames[51] != wide and frames[51][:50] == wide[:50]  # completed, not cut
    for index in (0, 52, 53):  # kept whole (written as runs of records), completed
        assert frames[index] != small and frames[index][:50] == small[:50]
