"""``struct virtio_net_hdr`` (``include/uapi/linux/virtio_net.h``) and its mapping to and from
the NDIS per-packet info words, sans-IO.

A TAP opened with ``IFF_VNET_HDR`` prefixes every frame with this 10-byte header
(little-endian on a little-endian host, the virtio 1.0 layout). On a read (the kernel
transmitting: the NDIS send path) it says what offload work the frame still needs; on a write
(the NDIS receive path) it tells the kernel the checksum was validated or that the frame is a
coalesced (GSO) unit. :func:`send_info` turns a read header into the ``NET_BUFFER_LIST`` info
words a miniport's send path sees; :func:`receive_header` turns a receive indication into the
header the kernel gets. The full table, both ways, is ``docs/linux-mapping.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ndis_offload.constants.offload import NdisLsoIpVersion, NdisUsoIpVersion
from ndis_offload.errors import PacketError
from ndis_offload.stack.features import feature_for
from ndis_offload.structs.nbl_info import (
    NdisLsoV2Transmit,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisUsoTransmit,
)

VIRTIO_NET_HDR_LEN = 10
"""``sizeof(struct virtio_net_hdr)``: the TAP default (``TUNSETVNETHDRSZ`` not called)."""

TCP_CSUM_OFFSET = 16
"""``offsetof(struct tcphdr, check)``."""
UDP_CSUM_OFFSET = 6
"""``offsetof(struct udphdr, check)``."""


class VirtioNetHdrFlags(IntFlag):
    """``VIRTIO_NET_HDR_F_*``."""

    NEEDS_CSUM = 1
    DATA_VALID = 2
    RSC_INFO = 4


class VirtioNetHdrGso(IntEnum):
    """``VIRTIO_NET_HDR_GSO_*`` (``ECN`` is a flag ORed into the others)."""

    NONE = 0
    TCPV4 = 1
    UDP = 3
    TCPV6 = 4
    UDP_L4 = 5
    ECN = 0x80


VIRTIO_NET_HDR_F_NEEDS_CSUM = VirtioNetHdrFlags.NEEDS_CSUM
VIRTIO_NET_HDR_F_DATA_VALID = VirtioNetHdrFlags.DATA_VALID
VIRTIO_NET_HDR_F_RSC_INFO = VirtioNetHdrFlags.RSC_INFO
VIRTIO_NET_HDR_GSO_NONE = VirtioNetHdrGso.NONE
VIRTIO_NET_HDR_GSO_TCPV4 = VirtioNetHdrGso.TCPV4
VIRTIO_NET_HDR_GSO_UDP = VirtioNetHdrGso.UDP
VIRTIO_NET_HDR_GSO_TCPV6 = VirtioNetHdrGso.TCPV6
VIRTIO_NET_HDR_GSO_UDP_L4 = VirtioNetHdrGso.UDP_L4
VIRTIO_NET_HDR_GSO_ECN = VirtioNetHdrGso.ECN

HDR = struct.Struct("<BBHHHH")
"""``{__u8 flags; __u8 gso_type; __virtio16 hdr_len, gso_size, csum_start, csum_offset;}``."""

_KNOWN_FLAGS = int(VirtioNetHdrFlags.NEEDS_CSUM | VirtioNetHdrFlags.DATA_VALID)
_GSO_TYPES = frozenset(VirtioNetHdrGso) - {VirtioNetHdrGso.ECN}


@dataclass(frozen=True, slots=True)
class VirtioNetHdr:
    """``struct virtio_net_hdr``; field names as in the Linux header."""

    flags: int = 0
    gso_type: int = 0
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    def encode(self) -> bytes:
        return HDR.pack(
            self.flags, self.gso_type, self.hdr_len, self.gso_size, self.csum_start,
            self.csum_offset,
        )  # fmt: skip

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> VirtioNetHdr:
        """Decode the header at ``offset``; :class:`PacketError` when fewer than 10 bytes."""
        if len(data) - offset < VIRTIO_NET_HDR_LEN:
            raise PacketError(
                f"virtio_net_hdr needs {VIRTIO_NET_HDR_LEN} bytes, got {len(data) - offset}"
            )
        return cls(*HDR.unpack_from(data, offset))


@dataclass(frozen=True, slots=True)
class SendInfo:
    """The ``NET_BUFFER_LIST`` info words a header asks for, and the feature it needs.

    ``feature`` is the :class:`~ndis_offload.stack.features.Feature` the current
    configuration must have on (``""`` for a plain frame); the words are 0 when not
    requested.
    """

    feature: str
    TcpIpChecksumNetBufferListInfo: int = 0
    TcpLargeSendNetBufferListInfo: int = 0
    UdpSegmentationOffloadInfo: int = 0


PLAIN = SendInfo("")


def _ip_version(frame: bytes | bytearray | memoryview) -> int:
    """4 or 6 from the Ethertype after up to two VLAN tags; 0 otherwise."""
    offset = 12
    for _ in range(3):
        if len(frame) < offset + 2:
            return 0
        ethertype = (frame[offset] << 8) | frame[offset + 1]
        if ethertype in (0x8100, 0x88A8):
            offset += 4
            continue
        return 4 if ethertype == 0x0800 else 6 if ethertype == 0x86DD else 0
    return 0


def send_info(hdr: VirtioNetHdr, frame: bytes | bytearray | memoryview) -> SendInfo:
    """Map a header read from the TAP (the kernel's transmit) to NDIS send info.

    - ``GSO_TCPV4`` / ``GSO_TCPV6`` -> ``NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO``
      ``LsoV2Transmit`` (``MSS = gso_size``, ``TcpHeaderOffset = csum_start``);
    - ``GSO_UDP_L4`` -> ``NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO`` (USO);
    - ``NEEDS_CSUM`` alone -> ``NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Transmit`` with
      ``TcpChecksum`` (``csum_offset`` 16) or ``UdpChecksum`` (6);
    - no flags -> a plain send.

    :class:`PacketError` for what has no NDIS counterpart or is malformed: ``GSO_UDP`` (UFO,
    IP fragmentation), a GSO header without ``NEEDS_CSUM``, a checksum at another offset,
    unknown flag or GSO bits, a ``csum_start`` beyond the frame or the 10-bit offset field,
    or a GSO/checksum request on a frame that is neither IPv4 nor IPv6.
    """
    if hdr.flags & ~_KNOWN_FLAGS:
        raise PacketError(f"virtio_net_hdr flags 0x{hdr.flags:02x} has unknown bits")
    gso = hdr.gso_type & ~VirtioNetHdrGso.ECN
    if gso not in _GSO_TYPES:
        raise PacketError(f"virtio_net_hdr gso_type 0x{hdr.gso_type:02x} is unknown")
    needs_csum = bool(hdr.flags & VirtioNetHdrFlags.NEEDS_CSUM)
    if gso == VirtioNetHdrGso.NONE and not needs_csum:
        return PLAIN
    if gso == VirtioNetHdrGso.UDP:
        raise PacketError("GSO_UDP (UFO, IP fragmentation) has no NDIS counterpart")
    if not needs_csum:
        raise PacketError("a GSO virtio_net_hdr without VIRTIO_NET_HDR_F_NEEDS_CSUM")
    version = _ip_version(frame)
    if version == 0:
        raise PacketError("offload requested for a frame that is neither IPv4 nor IPv6")
    start, where = hdr.csum_start, hdr.csum_offset
    if start >= len(frame) or start > 0x3FF:
        raise PacketError(f"csum_start {start} is outside the frame or the 10-bit NDIS offset")
    if gso in (VirtioNetHdrGso.TCPV4, VirtioNetHdrGso.TCPV6):
        want = 4 if gso == VirtioNetHdrGso.TCPV4 else 6
        if version != want or where != TCP_CSUM_OFFSET:
            raise PacketError(f"GSO_TCPV{want} header on an IPv{version} frame or not TCP")
        if not 0 < hdr.gso_size < 1 << 20:
            raise PacketError(f"gso_size {hdr.gso_size} does not fit the 20-bit NDIS MSS")
        ip = NdisLsoIpVersion.IPv6 if want == 6 else NdisLsoIpVersion.IPv4
        word = NdisLsoV2Transmit(MSS=hdr.gso_size, TcpHeaderOffset=start, IPVersion=ip).to_int()
        return SendInfo(feature_for("lsov2", want), TcpLargeSendNetBufferListInfo=word)
    if gso == VirtioNetHdrGso.UDP_L4:
        if where != UDP_CSUM_OFFSET or not 0 < hdr.gso_size < 1 << 20:
            raise PacketError("GSO_UDP_L4 header without a UDP checksum or with a bad gso_size")
        uso_ip = NdisUsoIpVersion.IPV6 if version == 6 else NdisUsoIpVersion.IPV4
        word = NdisUsoTransmit(MSS=hdr.gso_size, UdpHeaderOffset=start, IPVersion=uso_ip).to_int()
        return SendInfo(feature_for("uso", version), UdpSegmentationOffloadInfo=word)
    if where == TCP_CSUM_OFFSET:
        member = "TcpChecksum"
    elif where == UDP_CSUM_OFFSET:
        member = "UdpChecksum"
    else:
        raise PacketError(
            f"partial checksum at csum_offset {where}: NDIS checksum offload is TCP or UDP only"
        )
    word = NdisTcpIpChecksumNetBufferListInfoTransmit(
        IsIPv4=int(version == 4),
        IsIPv6=int(version == 6),
        TcpChecksum=int(member == "TcpChecksum"),
        UdpChecksum=int(member == "UdpChecksum"),
        TcpHeaderOffset=start,
    ).to_int()
    return SendInfo(
        feature_for("checksum", version, "Tx", member), TcpIpChecksumNetBufferListInfo=word
    )


def header_length(frame: bytes | bytearray | memoryview, l4_offset: int, tcp: bool) -> int:
    """``hdr_len``: the bytes up to the end of the TCP (data offset) or UDP header."""
    if tcp:
        if len(frame) < l4_offset + 13:
            raise PacketError("frame too short for a TCP header")
        return l4_offset + (frame[l4_offset + 12] >> 4) * 4
    return l4_offset + 8


def receive_header(
    *, validated: bool, coalesced_mss: int = 0, ip_version: int = 0, hdr_len: int = 0
) -> bytes:
    """The header written with a received frame.

    A frame whose checksums the receive path validated gets ``VIRTIO_NET_HDR_F_DATA_VALID``
    (``TcpChecksumSucceeded`` / ``UdpChecksumSucceeded``); a coalesced unit (RSC
    ``CoalescedSegCount > 0``) also gets ``GSO_TCPV4`` / ``GSO_TCPV6`` with ``gso_size`` the
    segment size, so the kernel treats it as a GRO packet. Anything else gets an all-zero
    header: the kernel checks the checksums itself.
    """
    flags = int(VirtioNetHdrFlags.DATA_VALID) if validated else 0
    if coalesced_mss:
        gso = VirtioNetHdrGso.TCPV6 if ip_version == 6 else VirtioNetHdrGso.TCPV4
        return HDR.pack(flags, gso, hdr_len, coalesced_mss, 0, 0)
    return HDR.pack(flags, 0, 0, 0, 0, 0)


ZERO_HDR = bytes(VIRTIO_NET_HDR_LEN)
VALID_HDR = receive_header(validated=True)

__all__ = [
    "HDR",
    "PLAIN",
    "VALID_HDR",
    "VIRTIO_NET_HDR_LEN",
    "ZERO_HDR",
    "SendInfo",
    "VirtioNetHdr",
    "VirtioNetHdrFlags",
    "VirtioNetHdrGso",
    "header_length",
    "receive_header",
    "send_info",
]
