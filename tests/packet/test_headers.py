"""Header location: L2 variants, IPv4 options/fragments, IPv6 extension headers, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Packet, Raw

from ndis_offload.errors import PacketError
from ndis_offload.packet.headers import FrameLayout, parse_frame

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def layout(pkt: Packet) -> FrameLayout:
    return parse_frame(bytes(pkt))


def test_ipv4_tcp_with_options() -> None:
    pkt = (
        ETH
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP(options=[("Timestamp", (1, 2))])
        / (b"x" * 10)
    )
    got = layout(pkt)
    assert (got.l3_offset, got.ip_version, got.l3_len, got.l4_proto) == (14, 4, 20, 6)
    assert (got.l4_offset, got.l4_len, got.payload_offset, got.payload_len) == (34, 32, 66, 10)
    assert got.pseudo_src == bytes([10, 0, 0, 1]) and got.pseudo_dst == bytes([10, 0, 0, 2])
    assert not got.is_fragment and got.vlan_tags == () and not got.llc_snap


def test_ipv4_options_move_l4() -> None:
    pkt = ETH / IP(options=[IPOption_RR(routers=["1.1.1.1"]), IPOption_NOP()]) / UDP() / b"abc"
    got = layout(pkt)
    assert got.l3_len == 28 and got.l4_offset == 42 and got.l4_len == 8 and got.payload_len == 3


def test_ethernet_padding_is_not_payload() -> None:
    got = parse_frame(bytes(ETH / IP() / TCP()) + bytes(6))
    assert got.payload_len == 0 and got.ip_end == 54


def test_vlan_and_qinq() -> None:
    one = layout(ETH / Dot1Q(vlan=5, prio=3) / IP() / TCP())
    assert one.l3_offset == 18 and one.vlan_tags == (0x6005,) and one.l4_offset == 38
    two = layout(Ether() / Dot1AD(vlan=7) / Dot1Q(vlan=9) / IPv6() / UDP())
    assert two.l3_offset == 22 and two.vlan_tags == (7, 9) and two.l4_offset == 62


def test_llc_snap() -> None:
    pkt = Dot3(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / LLC() / SNAP(code=0x0800)
    got = layout(pkt / IP() / TCP() / b"hello")
    assert got.llc_snap and got.l3_offset == 22 and got.l4_offset == 42 and got.payload_len == 5


def test_llc_without_snap_is_rejected() -> None:
    pkt = Dot3() / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(b"\0" * 40)
    with pytest.raises(PacketError, match="LLC/SNAP"):
        layout(pkt)


def test_ipv4_fragments() -> None:
    first = layout(ETH / IP(flags="MF") / TCP() / (b"x" * 8))
    assert first.is_fragment and first.l4_len == 20
    later = layout(ETH / IP(frag=100) / Raw(b"y" * 30))
    assert later.is_fragment and later.l4_len == 0 and later.l4_proto == 0
    assert later.payload_len == 30


def test_ipv6_extension_chain() -> None:
    pkt = (
        ETH
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=1)
        / IPv6ExtHdrDestOpt()
        / AH(nh=6, payloadlen=4, icv=b"\0" * 12)
        / TCP()
        / b"data"
    )
    data = bytes(pkt)
    got = parse_frame(data)
    assert got.l4_proto == 6
    assert got.l3_len == 40 + 8 + 24 + 8 + 24
    assert got.l4_offset == 14 + got.l3_len and got.payload_len == 4
    assert got.pseudo_dst == bytes.fromhex("20010db8" + "0" * 22 + "99")


def test_ipv6_home_address_option_and_rh2() -> None:
    hao = IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8::77")])
    rh2 = IPv6ExtHdrRouting(type=2, addresses=["2001:db8::88"], segleft=1)
    got = layout(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2") / rh2 / hao / UDP() / b"z")
    assert got.pseudo_src == bytes.fromhex("20010db8" + "0" * 22 + "77")
    assert got.pseudo_dst == bytes.fromhex("20010db8" + "0" * 22 + "88")
    assert got.l4_proto == 17 and got.payload_len == 1


def test_ipv6_fragments() -> None:
    first = layout(ETH / IPv6() / IPv6ExtHdrFragment(m=1, nh=17) / UDP() / (b"a" * 8))
    assert first.is_fragment and first.l4_len == 8 and first.l3_len == 48
    later = layout(ETH / IPv6() / IPv6ExtHdrFragment(offset=10, nh=17) / Raw(b"b" * 16))
    assert later.is_fragment and later.l4_len == 0 and later.l4_proto == 17


def test_ipv6_esp_and_no_next_stop() -> None:
    esp = layout(ETH / IPv6(nh=50) / Raw(b"\1" * 24))
    assert esp.l4_proto == 50 and esp.l4_len == 0 and esp.payload_len == 24
    none = layout(ETH / IPv6(nh=59))
    assert none.l4_proto == 59 and none.payload_len == 0


def test_zero_lengths_for_lso() -> None:
    v4 = bytearray(bytes(ETH / IP() / TCP() / (b"p" * 3000)))
    v4[16:18] = b"\0\0"
    with pytest.raises(PacketError):
        parse_frame(v4)
    assert parse_frame(v4, zero_length_ok=True).payload_len == 3000
    v6 = bytearray(bytes(ETH / IPv6() / TCP() / (b"p" * 3000)))
    v6[18:20] = b"\0\0"
    assert parse_frame(v6, zero_length_ok=True).payload_len == 3000


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\0" * 10, "Ethernet header"),
        (bytes(ETH / IP())[:30], "IPv4 header"),
        (bytes(ETH / IP(ihl=4) / TCP()), "IHL"),
        (bytes(ETH / IP(len=200) / TCP()), "total length"),
        (bytes(ETH / IP(version=6) / TCP()), "version"),
        (bytes(ETH / IP() / TCP(dataofs=3)), "data offset"),
        (bytes(ETH / IP() / TCP(dataofs=15)), "TCP options"),
        (bytes(ETH / IP(proto=17) / b"abc"), "UDP header"),
        (bytes(Ether(type=0x0806) / (b"\0" * 28)), "not IPv4 or IPv6"),
        (bytes(ETH / IPv6(nh=0) / b"\0\0"), "extension header"),
        (bytes(ETH / IPv6(plen=500)), "payload length"),
    ],
)
def test_malformed(frame: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason) as info:
        parse_frame(frame)
    assert info.value.offset is not None


@given(st.binary(max_size=120), st.integers(0, 3))
def test_fuzz_raises_only_packet_error(tail: bytes, kind: int) -> None:
    heads = [
        bytes(ETH)[:12] + b"\x08\x00",
        bytes(ETH)[:12] + b"\x86\xdd",
        bytes(ETH)[:12] + b"\x81\x00",
        bytes(ETH)[:12] + b"\x00\x40",
    ]
    try:
        parse_frame(heads[kind] + tail)
    except PacketError:
        pass


@given(st.binary(max_size=200))
def test_fuzz_truncations_of_a_valid_frame(noise: bytes) -> None:
    frame = bytes(
        ETH / Dot1Q() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP() / noise
    )
    for cut in range(0, len(frame), 7):
        try:
            parse_frame(frame[:cut])
        except PacketError:
            pass
