"""Receive checksum validation: NDIS ``...Receive`` flags, scalar and vectorized batch."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, LLC, SNAP, Dot1Q, Dot3, Ether
from scapy.packet import Packet

from ndis_offload.engine.batch import validate_batch, validate_batch_words
from ndis_offload.engine.receive import validate_receive, validate_word
from ndis_offload.errors import PacketError
from ndis_offload.structs.nbl_info import NdisTcpIpChecksumNetBufferListInfoReceive as Receive

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = IP(src="192.0.2.1", dst="198.51.100.7")
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2")

GOOD: list[tuple[Packet, Receive]] = [
    (ETH / V4 / TCP() / b"hello", Receive(IpChecksumSucceeded=1, TcpChecksumSucceeded=1)),
    (ETH / V4 / UDP() / b"odd", Receive(IpChecksumSucceeded=1, UdpChecksumSucceeded=1)),
    (ETH / V6 / TCP() / b"x", Receive(TcpChecksumSucceeded=1)),
    (ETH / V6 / UDP() / b"", Receive(UdpChecksumSucceeded=1)),
    (
        ETH / Dot1Q(vlan=3) / V4 / TCP() / b"tag",
        Receive(IpChecksumSucceeded=1, TcpChecksumSucceeded=1),
    ),
    (
        ETH / IP(options=[IPOption_NOP()] * 4) / TCP() / b"o",
        Receive(IpChecksumSucceeded=1, TcpChecksumSucceeded=1),
    ),
    (ETH / V6 / IPv6ExtHdrHopByHop() / UDP() / b"ext", Receive(UdpChecksumSucceeded=1)),
    (
        Dot3(src="02:00:00:00:00:01") / LLC() / SNAP(code=0x0800) / V4 / TCP() / b"snap",
        Receive(IpChecksumSucceeded=1, TcpChecksumSucceeded=1),
    ),
    (ETH / IP(flags="MF") / TCP() / b"frag", Receive(IpChecksumSucceeded=1)),
    (ETH / IP(frag=10) / b"later fragment", Receive(IpChecksumSucceeded=1)),
    (ETH / ARP(), Receive()),
]


@pytest.mark.parametrize(("pkt", "expected"), GOOD)
def test_good_frames(pkt: Packet, expected: Receive) -> None:
    frame = bytes(pkt)
    assert validate_receive(frame) == expected
    assert validate_batch([frame, frame]) == [expected, expected]


@pytest.mark.parametrize(("pkt", "expected"), GOOD[:4])
def test_corrupt_l4_fails(pkt: Packet, expected: Receive) -> None:
    bad = bytearray(bytes(pkt))
    bad[-1 if len(pkt[TCP if TCP in pkt else UDP].payload) else -3] ^= 0x40
    info = validate_receive(bytes(bad))
    assert info.TcpChecksumFailed or info.UdpChecksumFailed
    assert not (info.TcpChecksumSucceeded or info.UdpChecksumSucceeded)
    assert info.IpChecksumSucceeded == expected.IpChecksumSucceeded
    assert validate_batch([bytes(bad)]) == [info]


def test_ipv4_header_checksum_failure() -> None:
    bad = bytearray(bytes(ETH / V4 / TCP() / b"x"))
    bad[24] ^= 1
    info = validate_receive(bytes(bad))
    assert info.IpChecksumFailed and not info.IpChecksumSucceeded and info.TcpChecksumSucceeded


def test_disabled_offloads_report_nothing() -> None:
    frame = bytes(ETH / V4 / TCP() / b"x")
    assert validate_receive(frame, ip=False, tcp=False) == Receive()
    assert validate_receive(frame, ip=False) == Receive(TcpChecksumSucceeded=1)
    frame = bytes(ETH / V4 / UDP() / b"x")
    assert validate_receive(frame, udp=False) == Receive(IpChecksumSucceeded=1)
    assert validate_batch([frame], udp=False, ip=False) == [Receive()]


def test_udp_zero_checksum_v4_none_v6_failed() -> None:
    v4 = bytearray(bytes(ETH / V4 / UDP() / b"hi"))
    v4[40:42] = b"\0\0"
    assert validate_receive(bytes(v4)) == Receive(IpChecksumSucceeded=1)
    v6 = bytearray(bytes(ETH / V6 / UDP() / b"hi"))
    v6[60:62] = b"\0\0"
    assert validate_receive(bytes(v6)) == Receive(UdpChecksumFailed=1)
    assert validate_batch([bytes(v4), bytes(v6)]) == [
        Receive(IpChecksumSucceeded=1),
        Receive(UdpChecksumFailed=1),
    ]


def test_received_ffff_equals_computed_zero() -> None:
    # Fix two payload bytes so the TCP checksum computes to 0, then send it as 0 and 0xFFFF.
    frame = bytearray(bytes(ETH / V4 / TCP() / (b"\0\0" + b"payload!")))
    frame[50:52] = b"\0\0"
    frame[54:56] = b"\0\0"
    need = dpkt.in_cksum(bytes(frame[26:34]) + struct.pack("!HH", 6, len(frame) - 34) + frame[34:])
    frame[54:56] = struct.pack("!H", need)  # now the data sums so the checksum computes to 0
    for field in (b"\0\0", b"\xff\xff"):
        frame[50:52] = field
        assert validate_receive(bytes(frame)).TcpChecksumSucceeded
        assert validate_batch([bytes(frame)])[0].TcpChecksumSucceeded


@pytest.mark.parametrize(
    "pkt", [ETH / V4 / TCP() / (b"x" * 30), ETH / V6 / UDP() / (b"y" * 30), ETH / V4 / UDP()]
)
def test_truncated_frames_fail_never_succeed(pkt: Packet) -> None:
    frame = bytes(pkt)
    for cut in range(15, len(frame)):
        info = validate_receive(frame[:cut])
        assert not (info.TcpChecksumSucceeded or info.UdpChecksumSucceeded)
        assert info.IpChecksumFailed or info.TcpChecksumFailed or info.UdpChecksumFailed
        assert validate_batch([frame[:cut]]) == [info]


@pytest.mark.parametrize(
    "frame",
    [
        b"\x02" * 10,  # runt
        bytes(ETH / V4 / TCP())[:14] + b"\x65" + bytes(ETH / V4 / TCP())[15:],  # version 6
        bytes(ETH / V4 / TCP())[:14] + b"\x44" + bytes(ETH / V4 / TCP())[15:],  # IHL 4
    ],
)
def test_malformed_raises_packet_error(frame: bytes) -> None:
    with pytest.raises(PacketError):
        validate_receive(frame)
    with pytest.raises(PacketError) as info:
        validate_batch([bytes(ETH / V4 / TCP()), frame])
    assert info.value.frame_index == 1


@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.binary(max_size=6)), max_size=12))
def test_batch_equals_scalar(picks: list[tuple[int, bytes]]) -> None:
    frames = []
    for index, noise in picks:
        buf = bytearray(bytes(GOOD[index][0]))
        for pos, byte in enumerate(noise):  # corrupt a few bytes anywhere, or cut the frame
            if pos == 0 and byte < 32:
                buf = buf[: len(buf) * byte // 32]
            elif buf:
                buf[(byte * 7 + pos * 31) % len(buf)] ^= 1 << (byte % 8)
        frames.append(bytes(buf))
    scalar: list[int | None] = []
    for frame in frames:
        try:
            scalar.append(validate_word(frame))
        except PacketError:
            scalar.append(None)
    for index, frame in enumerate(frames):
        try:
            got: int | None = int(validate_batch_words([frame])[0])
        except PacketError:
            got = None
        assert got == scalar[index]
    valid = [f for f, w in zip(frames, scalar, strict=True) if w is not None]
    assert validate_batch_words(valid).tolist() == [w for w in scalar if w is not None]
