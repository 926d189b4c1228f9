"""Transmit offload: checksum insertion, LSO and USO, every frame verified by scapy."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import LLC, SNAP, Dot1Q, Dot3, Ether
from scapy.packet import Packet

from ndis_offload.engine.transmit import (
    insert_checksums,
    segment_tcp,
    segment_udp,
    transmit_checksum,
    transmit_lso,
    transmit_uso,
)
from ndis_offload.errors import PacketError
from ndis_offload.structs.nbl_info import (
    NdisLsoV1Transmit,
    NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = IP(src="192.0.2.1", dst="198.51.100.7", id=0xFFFE)
V6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
TS = [("NOP", None), ("NOP", None), ("Timestamp", (123, 456))]


def rebuilt(frame: bytes) -> bytes:
    """``frame`` as scapy rebuilds it with every checksum recomputed by scapy."""
    pkt = frame_to_scapy(frame)
    for layer in (IP, TCP, UDP):
        if layer in pkt:
            del pkt[layer].chksum
    return bytes(pkt.__class__(bytes(pkt)))


def frame_to_scapy(frame: bytes) -> Packet:
    return Dot3(frame) if int.from_bytes(frame[12:14], "big") <= 1500 else Ether(frame)


def assert_valid(frame: bytes) -> None:
    assert rebuilt(frame) == frame


def ndis_lso_input(pkt: Packet) -> bytes:
    """``pkt`` as the NDIS stack hands it to LSO: IP length 0, TCP csum = pseudo sum w/o length."""
    data = bytearray(bytes(pkt))
    parsed = Ether(bytes(pkt))
    ip_len_at = 14 + (2 if IP in parsed else 4)
    data[ip_len_at : ip_len_at + 2] = b"\0\0"
    tcp_at = len(data) - len(parsed[TCP])
    data[tcp_at + 16 : tcp_at + 18] = b"\x12\x34"
    return bytes(data)


def payload_of(frame: bytes, layer: type[Packet]) -> bytes:
    return bytes(frame_to_scapy(frame)[layer].payload)


# --- checksum insertion --------------------------------------------------------------------


@pytest.mark.parametrize(
    "pkt",
    [
        ETH / V4 / TCP(options=TS) / b"hello world",
        ETH / V4 / UDP() / b"odd",
        ETH / V6 / TCP() / b"x",
        ETH / V6 / UDP() / b"",
        ETH / Dot1Q(vlan=3) / V4 / TCP() / b"tagged",
        ETH / IP(options=[IPOption_RR(routers=["1.1.1.1"]), IPOption_NOP()]) / TCP() / b"o",
        ETH / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP() / b"ext",
        Dot3(src="02:00:00:00:00:01") / LLC() / SNAP(code=0x0800) / V4 / TCP() / b"snap",
    ],
)
def test_insert_checksums_garbage_fields(pkt: Packet) -> None:
    good = bytes(pkt)
    bad = bytearray(good)
    layout_l4 = len(good) - len(frame_to_scapy(good)[TCP if TCP in pkt else UDP])
    field = layout_l4 + (16 if TCP in pkt else 6)
    bad[field : field + 2] = b"\xde\xad"
    if IP in pkt:
        ip_at = len(good) - len(frame_to_scapy(good)[IP])
        bad[ip_at + 10 : ip_at + 12] = b"\xbe\xef"
    out = insert_checksums(bytes(bad))
    assert out == rebuilt(good) == good
    assert bytes(bad) != good  # the input was not modified in place


def test_routing_header_final_destination_in_pseudo_header() -> None:
    rh = IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=1)
    good = bytes(ETH / V6 / rh / TCP() / b"routed")  # scapy also uses the final destination
    out = insert_checksums(good[:-22] + b"\0\0" + good[-20:])
    assert out == good


def test_udp_zero_checksum_is_sent_as_ffff() -> None:
    # Find a payload whose UDP checksum computes to 0 by fixing two bytes.
    base = bytearray(bytes(ETH / V4 / UDP(sport=1, dport=2) / (b"\0\0" + b"abcdef")))
    base[40:42] = b"\0\0"
    need = struct.unpack("!H", insert_checksums(bytes(base))[40:42])[0]
    base[42:44] = need.to_bytes(2, "big")  # now the sum is 0xFFFF: computed csum 0
    out = insert_checksums(bytes(base))
    assert out[40:42] == b"\xff\xff"
    assert_valid(out)


def test_udp_length_zero_is_fixed_and_mismatch_rejected() -> None:
    frame = bytearray(bytes(ETH / V4 / UDP() / b"abc"))
    frame[38:40] = b"\0\0"
    out = insert_checksums(bytes(frame))
    assert out[38:40] == (11).to_bytes(2, "big")
    assert_valid(out)
    frame[38:40] = (50).to_bytes(2, "big")
    with pytest.raises(PacketError, match="UDP length"):
        insert_checksums(bytes(frame))


def test_checksum_rejects_fragment_and_offset_mismatch() -> None:
    with pytest.raises(PacketError, match="fragment"):
        insert_checksums(bytes(ETH / IP(flags="MF") / TCP() / b"x"))
    with pytest.raises(PacketError, match="offset"):
        insert_checksums(bytes(ETH / V4 / TCP()), l4_header_offset=30)


def test_transmit_checksum_info() -> None:
    frame = bytes(ETH / V4 / TCP() / b"abc")
    bad = frame[:50] + b"\0\0" + frame[52:]
    info = NdisTcpIpChecksumNetBufferListInfoTransmit(
        IsIPv4=1, TcpChecksum=1, IpHeaderChecksum=1, TcpHeaderOffset=34
    )
    assert transmit_checksum(bad, info) == frame
    only_ip = NdisTcpIpChecksumNetBufferListInfoTransmit(IsIPv4=1, IpHeaderChecksum=1)
    assert transmit_checksum(bad, only_ip) == bad
    with pytest.raises(PacketError, match="IPv6"):
        transmit_checksum(frame, NdisTcpIpChecksumNetBufferListInfoTransmit(IsIPv6=1))


# --- LSO ---------------------------------------------------------------------------------


def check_segments(
    frames: list[bytes], payload: bytes, mss: int, first: Packet, layer: type[Packet] = TCP
) -> None:
    assert b"".join(payload_of(f, layer) for f in frames) == payload
    for index, frame in enumerate(frames):
        assert_valid(frame)
        pkt = frame_to_scapy(frame)
        assert len(pkt[layer].payload) <= mss
        if IP in first:
            assert pkt[IP].id == (first[IP].id + index) & 0xFFFF
            assert pkt[IP].options == first[IP].options
        if layer is TCP:
            assert pkt[TCP].seq == (first[TCP].seq + index * mss) & 0xFFFFFFFF
            assert pkt[TCP].options == first[TCP].options
            flags = int(pkt[TCP].flags)
            original = int(first[TCP].flags)
            assert bool(flags & 0x80) == (bool(original & 0x80) and index == 0)
            is_last = index == len(frames) - 1
            assert bool(flags & 0x09) == (bool(original & 0x09) and is_last)


@pytest.mark.parametrize("ip", [V4, V6], ids=["v4", "v6"])
@pytest.mark.parametrize("options", [[], TS], ids=["plain", "timestamps"])
@pytest.mark.parametrize(
    ("size", "mss", "count"),
    [
        (0, 1448, 1),
        (100, 1448, 1),
        (1448, 1448, 1),
        (4344, 1448, 3),
        (5000, 1448, 4),
        (5000, 1447, 4),
        (999, 7, 143),
        (64000, 1448, 45),
    ],
)
def test_lso(
    ip: Packet, options: list[tuple[str, object]], size: int, mss: int, count: int
) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    pkt = ETH / ip / TCP(seq=0xFFFFF000, flags="FPAC", options=options) / payload
    for frame in (ndis_lso_input(pkt), bytes(pkt)):  # NDIS convention and fully formed
        result = segment_tcp(frame, mss)
        assert len(result.frames) == count and result.payload_bytes == size
        check_segments(result.frames, payload, mss, Ether(bytes(pkt)))


def test_lso_zero_payload_is_sent_as_is() -> None:
    pkt = ETH / V4 / TCP(flags="FA")
    (frame,) = segment_tcp(ndis_lso_input(pkt), 1448).frames
    assert frame == bytes(pkt)


def test_lso_ipv4_options_vlan_and_ipv6_extensions() -> None:
    payload = bytes(3000)
    for pkt in (
        ETH / Dot1Q(vlan=9) / IP(options=[IPOption_NOP()] * 4) / TCP(options=TS) / payload,
        ETH / V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(flags="PA") / payload,
    ):
        result = segment_tcp(bytes(pkt), 1000)
        check_segments(result.frames, payload, 1000, Ether(bytes(pkt)))
        assert len(result.frames) == 3


def test_lso_llc_snap() -> None:
    pkt = Dot3(src="02:00:00:00:00:01") / LLC() / SNAP(code=0x0800) / V4 / TCP() / bytes(3000)
    frames = segment_tcp(bytes(pkt), 1400).frames
    assert len(frames) == 3
    assert b"".join(payload_of(f, TCP) for f in frames) == bytes(3000)
    for frame in frames:
        assert int.from_bytes(frame[12:14], "big") == len(frame) - 14
        assert_valid(frame)


def test_lso_nbl_info() -> None:
    pkt = ETH / V4 / TCP(flags="PA") / bytes(3000)
    result, done = transmit_lso(
        ndis_lso_input(pkt), NdisLsoV1Transmit(MSS=1448, TcpHeaderOffset=34)
    )
    assert isinstance(done, NdisLsoV1TransmitComplete) and done.TcpPayload == 3000
    assert len(result.frames) == 3
    with pytest.raises(PacketError, match="offset"):
        transmit_lso(bytes(pkt), NdisLsoV1Transmit(MSS=1448, TcpHeaderOffset=38))
    with pytest.raises(PacketError, match="IPv"):
        transmit_lso(bytes(pkt), NdisLsoV2Transmit(MSS=1448, TcpHeaderOffset=34, IPVersion=1))
    v6 = ETH / V6 / TCP() / bytes(3000)
    with pytest.raises(PacketError, match="LSOv1"):
        transmit_lso(bytes(v6), NdisLsoV1Transmit(MSS=1448, TcpHeaderOffset=54))
    result, _ = transmit_lso(
        bytes(v6), NdisLsoV2Transmit(MSS=1440, TcpHeaderOffset=54, IPVersion=1)
    )
    check_segments(result.frames, bytes(3000), 1440, Ether(bytes(v6)))


def test_lso_errors() -> None:
    with pytest.raises(PacketError, match="MSS"):
        segment_tcp(bytes(ETH / V4 / TCP() / b"x"), 0)
    with pytest.raises(PacketError, match="no TCP"):
        segment_tcp(bytes(ETH / V4 / UDP() / b"x"), 100)
    with pytest.raises(PacketError, match="total length limit"):
        segment_tcp(ndis_lso_input(ETH / V4 / TCP()) + bytes(70000), 65530)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=6000), st.integers(1, 3000), st.booleans(), st.booleans())
def test_lso_property(payload: bytes, mss: int, v6: bool, ts: bool) -> None:
    pkt = ETH / (V6 if v6 else V4) / TCP(flags="PA", options=TS if ts else []) / payload
    result = segment_tcp(ndis_lso_input(pkt), mss)
    assert len(result.frames) == max(1, -(-len(payload) // mss))
    assert result.wire_bytes == sum(map(len, result.frames))
    check_segments(result.frames, payload, mss, Ether(bytes(pkt)))


# --- USO ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", [V4, V6], ids=["v4", "v6"])
@pytest.mark.parametrize(("size", "mss"), [(0, 1000), (10, 1000), (3000, 1000), (3001, 999)])
def test_uso(ip: Packet, size: int, mss: int) -> None:
    payload = bytes(range(251)) * (size // 251) + bytes(range(size % 251))
    pkt = ETH / ip / UDP(sport=5, dport=6) / payload
    frames = segment_udp(bytes(pkt), mss).frames
    assert len(frames) == max(1, -(-size // mss))
    check_segments(frames, payload, mss, Ether(bytes(pkt)), UDP)
    for frame in frames:
        assert frame_to_scapy(frame)[UDP].len == 8 + len(payload_of(frame, UDP))


def test_uso_nbl_info() -> None:
    pkt = ETH / V6 / UDP() / bytes(2500)
    result = transmit_uso(bytes(pkt), NdisUsoTransmit(MSS=1200, UdpHeaderOffset=54, IPVersion=1))
    assert len(result.frames) == 3 and result.payload_bytes == 2500
    with pytest.raises(PacketError, match="IPv"):
        transmit_uso(bytes(pkt), NdisUsoTransmit(MSS=1200, UdpHeaderOffset=54, IPVersion=0))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 4), st.integers(1, 100))
def test_fuzzed_frames_raise_only_packet_error(noise: bytes, kind: int, mss: int) -> None:
    heads = [
        bytes(ETH / V4 / TCP()),
        bytes(ETH / V6 / UDP()),
        bytes(ETH / V4)[:20],
        bytes(ETH / V6 / TCP()),
        bytes(ETH / Dot1Q() / V4 / UDP()),
    ]
    frame = heads[kind][: len(noise) % 80] + noise
    try:
        assert isinstance(insert_checksums(frame), bytes)
    except PacketError:
        pass
    for segment in (segment_tcp, segment_udp):
        try:
            assert all(isinstance(out, bytes) for out in segment(frame, mss).frames)
        except PacketError:
            pass


def scapy_cut(pkt: Packet, mss: int) -> list[bytes]:
    """Every segment of ``pkt`` built by scapy (lengths and checksums computed by scapy):
    IPv4 ID +1, sequence advanced, CWR first / FIN, PSH last (Linux tcp_gso_segment)."""
    pkt = Ether(bytes(pkt))
    l4: type[Packet] = TCP if TCP in pkt else UDP
    data = bytes(pkt[l4].payload)
    template = pkt.copy()
    template[l4].remove_payload()
    count = max(1, -(-len(data) // mss))
    out = []
    for index in range(count):
        seg = template.copy()
        if IP in seg:
            seg[IP].id = (pkt[IP].id + index) & 0xFFFF
            seg[IP].len = None
            seg[IP].chksum = None
        else:
            seg[IPv6].plen = None
        if l4 is TCP:
            flags = int(pkt[TCP].flags)
            keep = flags & ~0x89
            keep |= flags & 0x80 if index == 0 else 0
            keep |= flags & 0x09 if index == count - 1 else 0
            seg[TCP].seq = (pkt[TCP].seq + index * mss) & 0xFFFFFFFF
            seg[TCP].flags = keep
        else:
            seg[UDP].len = None
        seg[l4].chksum = None
        out.append(bytes(seg / data[index * mss : (index + 1) * mss]))
    return out


@settings(max_examples=120, deadline=None)
@given(
    st.binary(max_size=7000),
    st.integers(1, 2000),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFF),
)
def test_segmentation_equals_scapy_built_segments(
    payload: bytes, mss: int, v6: bool, udp: bool, ts: bool, ip_id: int, seq: int, flags: int
) -> None:
    """Byte for byte: the vectorized cut equals scapy building each segment (IDs and
    sequence numbers wrapping included)."""
    ip = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", id=ip_id)
    l4 = UDP(sport=7, dport=9) if udp else TCP(seq=seq, flags=flags, options=TS if ts else [])
    pkt = ETH / ip / l4 / payload
    segment = segment_udp if udp else segment_tcp
    frames = segment(ndis_lso_input(pkt) if not udp else bytes(pkt), mss).frames
    assert frames == scapy_cut(pkt, mss)
