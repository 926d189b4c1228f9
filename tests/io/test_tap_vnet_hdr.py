"""virtio_net_hdr decoding and its mapping to NDIS per-packet info; TUNSETOFFLOAD mapping.

Layouts from include/uapi/linux/virtio_net.h and if_tun.h; the NDIS side from the pages
"NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO",
"NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO" and
"NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO" (learn.microsoft.com).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tap_frames import ipv4_tcp, ipv6_udp

from ndis_offload.errors import PacketError
from ndis_offload.io.tap.linux import (
    TUN_OFFLOAD_FEATURES,
    TunOffload,
    ndis_features_for,
    tun_offload_flags,
)
from ndis_offload.io.tap.vnet_hdr import (
    PLAIN,
    VIRTIO_NET_HDR_LEN,
    VirtioNetHdr,
    VirtioNetHdrFlags,
    VirtioNetHdrGso,
    receive_header,
    send_info,
)
from ndis_offload.stack.features import FEATURES
from ndis_offload.structs.nbl_info import (
    NdisLsoV2Transmit,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)


def test_header_layout() -> None:
    hdr = VirtioNetHdr(1, 4, 54, 1448, 34, 16)
    assert hdr.encode() == bytes([1, 4, 54, 0, 0xA8, 5, 34, 0, 16, 0])
    assert len(hdr.encode()) == VIRTIO_NET_HDR_LEN
    assert VirtioNetHdr.decode(hdr.encode()) == hdr


def test_tso4_becomes_lsov2() -> None:
    frame = ipv4_tcp(3000)
    hdr = VirtioNetHdr(VirtioNetHdrFlags.NEEDS_CSUM, VirtioNetHdrGso.TCPV4, 54, 1448, 34, 16)
    info = send_info(hdr, frame)
    assert info.feature == "lsov2_4"
    lso = NdisLsoV2Transmit.from_int(info.TcpLargeSendNetBufferListInfo)
    assert (lso.MSS, lso.TcpHeaderOffset, lso.Type, lso.IPVersion) == (1448, 34, 1, 0)


def test_uso6_and_checksum() -> None:
    frame = ipv6_udp(3000)
    hdr = VirtioNetHdr(1, VirtioNetHdrGso.UDP_L4, 62, 1200, 54, 6)
    info = send_info(hdr, frame)
    uso = NdisUsoTransmit.from_int(info.UdpSegmentationOffloadInfo)
    assert info.feature == "uso6" and (uso.MSS, uso.UdpHeaderOffset, uso.IPVersion) == (1200, 54, 1)
    csum = send_info(VirtioNetHdr(1, 0, 0, 0, 34, 16), ipv4_tcp())
    word = NdisTcpIpChecksumNetBufferListInfoTransmit.from_int(csum.TcpIpChecksumNetBufferListInfo)
    assert csum.feature == "tcp4_tx"
    assert (word.IsIPv4, word.TcpChecksum, word.UdpChecksum, word.TcpHeaderOffset) == (1, 1, 0, 34)
    assert send_info(VirtioNetHdr(), ipv4_tcp()) is PLAIN


@pytest.mark.parametrize(
    "hdr",
    [
        VirtioNetHdr(1, VirtioNetHdrGso.UDP, 0, 1000, 34, 6),  # UFO: no NDIS counterpart
        VirtioNetHdr(0, VirtioNetHdrGso.TCPV4, 54, 1448, 34, 16),  # GSO without NEEDS_CSUM
        VirtioNetHdr(1, VirtioNetHdrGso.TCPV6, 54, 1448, 34, 16),  # TCPV6 on IPv4
        VirtioNetHdr(1, 0, 0, 0, 34, 2),  # a checksum NDIS cannot place
        VirtioNetHdr(0x40, 0, 0, 0, 0, 0),  # unknown flag
        VirtioNetHdr(1, 9, 0, 0, 34, 16),  # unknown GSO type
        VirtioNetHdr(1, VirtioNetHdrGso.TCPV4, 54, 0, 34, 16),  # gso_size 0
    ],
)
def test_no_counterpart_or_malformed(hdr: VirtioNetHdr) -> None:
    with pytest.raises(PacketError):
        send_info(hdr, ipv4_tcp(3000))


@given(st.binary(min_size=0, max_size=VIRTIO_NET_HDR_LEN + 80))
def test_any_bytes_decode_or_packet_error(data: bytes) -> None:
    try:
        hdr = VirtioNetHdr.decode(data)
    except PacketError:
        assert len(data) < VIRTIO_NET_HDR_LEN
        return
    assert hdr.encode() == data[:VIRTIO_NET_HDR_LEN]
    try:
        info = send_info(hdr, data[VIRTIO_NET_HDR_LEN:])
    except PacketError:
        return
    assert info.feature in ("", *FEATURES)


@given(st.sets(st.sampled_from(FEATURES)), st.booleans())
def test_tunsetoffload_never_exceeds_ndis(features: set[str], uso: bool) -> None:
    current = frozenset(features)
    flags = tun_offload_flags(current, uso_supported=uso)
    assert ndis_features_for(flags) <= current
    for bit, needs in TUN_OFFLOAD_FEATURES.items():
        if bit in (TunOffload.USO4, TunOffload.USO6) and not uso:
            assert not flags & bit
        elif bit == TunOffload.TSO_ECN:
            assert bool(flags & bit) == bool(flags & (TunOffload.TSO4 | TunOffload.TSO6))
        else:
            assert bool(flags & bit) == (needs <= current)
    assert not flags & TunOffload.UFO
    if flags & (TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.USO4):
        assert flags & TunOffload.CSUM  # tun.c ignores TSO/USO without CSUM


def test_receive_headers() -> None:
    assert receive_header(validated=True)[0] == VirtioNetHdrFlags.DATA_VALID
    hdr = VirtioNetHdr.decode(
        receive_header(validated=True, coalesced_mss=1448, ip_version=6, hdr_len=86)
    )
    assert (hdr.gso_type, hdr.gso_size, hdr.hdr_len) == (VirtioNetHdrGso.TCPV6, 1448, 86)
    assert receive_header(validated=False) == bytes(VIRTIO_NET_HDR_LEN)


def test_every_feature_is_mapped_or_says_why_not() -> None:
    from ndis_offload.io.tap.linux import NO_TUN_COUNTERPART

    mapped = set().union(*TUN_OFFLOAD_FEATURES.values())
    assert mapped.isdisjoint(NO_TUN_COUNTERPART)
    assert mapped | set(NO_TUN_COUNTERPART) == set(FEATURES)
