"""``NDIS_OFFLOAD`` (revisions 1-7) and all its parts, as declared in ``ntddndis.h``.

Revision 1 = NDIS 6.0, 2 = 6.1 (IPsecV2), 3 = 6.30 (Rsc, GRE), 4 = 6.50 (VXLAN,
``EncapsulationTypes``: the size is odd), 5 = 6.70 (464XLAT), 6 = 6.83 (USO),
7 = 6.85 (``UsoSupported`` bits in existing parts; same size as 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from ndis_offload.constants import objects as o
from ndis_offload.constants.offload import NdisRfc6877XlatOffloadOptions
from ndis_offload.structs.codec import UCHAR, ULONG, USHORT, Bits, NdisStruct, Since, ndis_struct
from ndis_offload.structs.header import NdisObjectHeader

B2 = Bits(ULONG, 2)
B4 = Bits(ULONG, 4)


# --- NDIS_TCP_IP_CHECKSUM_OFFLOAD -------------------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class ChecksumIPv4(NdisStruct):
    """``IPv4Transmit`` / ``IPv4Receive``: ``{ULONG Encapsulation; ULONG IpOptionsSupported:2;
    TcpOptionsSupported:2; TcpChecksum:2; UdpChecksum:2; IpChecksum:2;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = (
        "IpOptionsSupported",
        "TcpOptionsSupported",
        "TcpChecksum",
        "UdpChecksum",
        "IpChecksum",
    )
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    IpOptionsSupported: Annotated[int, B2] = 0
    TcpOptionsSupported: Annotated[int, B2] = 0
    TcpChecksum: Annotated[int, B2] = 0
    UdpChecksum: Annotated[int, B2] = 0
    IpChecksum: Annotated[int, B2] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class ChecksumIPv6(NdisStruct):
    """``IPv6Transmit`` / ``IPv6Receive``: ``{ULONG Encapsulation;
    ULONG IpExtensionHeadersSupported:2; TcpOptionsSupported:2; TcpChecksum:2; UdpChecksum:2;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = (
        "IpExtensionHeadersSupported",
        "TcpOptionsSupported",
        "TcpChecksum",
        "UdpChecksum",
    )
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    IpExtensionHeadersSupported: Annotated[int, B2] = 0
    TcpOptionsSupported: Annotated[int, B2] = 0
    TcpChecksum: Annotated[int, B2] = 0
    UdpChecksum: Annotated[int, B2] = 0


@ndis_struct("NDIS_TCP_IP_CHECKSUM_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisTcpIpChecksumOffload(NdisStruct):
    """``NDIS_TCP_IP_CHECKSUM_OFFLOAD``: checksum support per IP version and direction."""

    IPv4Transmit: ChecksumIPv4 = field(default_factory=ChecksumIPv4)
    IPv4Receive: ChecksumIPv4 = field(default_factory=ChecksumIPv4)
    IPv6Transmit: ChecksumIPv6 = field(default_factory=ChecksumIPv6)
    IPv6Receive: ChecksumIPv6 = field(default_factory=ChecksumIPv6)


# --- NDIS_TCP_LARGE_SEND_OFFLOAD_V1 / V2 --------------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class LsoV1IPv4(NdisStruct):
    """``{ULONG Encapsulation; MaxOffLoadSize; MinSegmentCount; ULONG TcpOptions:2;
    IpOptions:2;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = ("TcpOptions", "IpOptions")
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    MaxOffLoadSize: Annotated[int, ULONG] = 0
    MinSegmentCount: Annotated[int, ULONG] = 0
    TcpOptions: Annotated[int, B2] = 0
    IpOptions: Annotated[int, B2] = 0


@ndis_struct("NDIS_TCP_LARGE_SEND_OFFLOAD_V1")
@dataclass(frozen=True, slots=True)
class NdisTcpLargeSendOffloadV1(NdisStruct):
    """``NDIS_TCP_LARGE_SEND_OFFLOAD_V1 { struct {...} IPv4; }``."""

    IPv4: LsoV1IPv4 = field(default_factory=LsoV1IPv4)


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class LsoV2IPv4(NdisStruct):
    """``{ULONG Encapsulation; MaxOffLoadSize; MinSegmentCount;}``."""

    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    MaxOffLoadSize: Annotated[int, ULONG] = 0
    MinSegmentCount: Annotated[int, ULONG] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class LsoV2IPv6(NdisStruct):
    """``{ULONG Encapsulation; MaxOffLoadSize; MinSegmentCount;
    ULONG IpExtensionHeadersSupported:2; TcpOptionsSupported:2;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = (
        "IpExtensionHeadersSupported",
        "TcpOptionsSupported",
    )
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    MaxOffLoadSize: Annotated[int, ULONG] = 0
    MinSegmentCount: Annotated[int, ULONG] = 0
    IpExtensionHeadersSupported: Annotated[int, B2] = 0
    TcpOptionsSupported: Annotated[int, B2] = 0


@ndis_struct("NDIS_TCP_LARGE_SEND_OFFLOAD_V2")
@dataclass(frozen=True, slots=True)
class NdisTcpLargeSendOffloadV2(NdisStruct):
    """``NDIS_TCP_LARGE_SEND_OFFLOAD_V2 { struct {...} IPv4; struct {...} IPv6; }``."""

    IPv4: LsoV2IPv4 = field(default_factory=LsoV2IPv4)
    IPv6: LsoV2IPv6 = field(default_factory=LsoV2IPv6)


# --- NDIS_IPSEC_OFFLOAD_V1 / V2 -----------------------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class IPsecV1Supported(NdisStruct):
    """``Supported {ULONG Encapsulation; AhEspCombined; TransportTunnelCombined; IPv4Options;
    Flags;}``."""

    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    AhEspCombined: Annotated[int, ULONG] = 0
    TransportTunnelCombined: Annotated[int, ULONG] = 0
    IPv4Options: Annotated[int, ULONG] = 0
    Flags: Annotated[int, ULONG] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class IPsecV1IPv4AH(NdisStruct):
    """``IPv4AH {ULONG Md5:2; Sha_1:2; Transport:2; Tunnel:2; Send:2; Receive:2;}``."""

    Md5: Annotated[int, B2] = 0
    Sha_1: Annotated[int, B2] = 0
    Transport: Annotated[int, B2] = 0
    Tunnel: Annotated[int, B2] = 0
    Send: Annotated[int, B2] = 0
    Receive: Annotated[int, B2] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class IPsecV1IPv4ESP(NdisStruct):
    """``IPv4ESP {ULONG Des:2; Reserved:2; TripleDes:2; NullEsp:2; Transport:2; Tunnel:2;
    Send:2; Receive:2;}``."""

    Des: Annotated[int, B2] = 0
    Reserved: Annotated[int, B2] = 0
    TripleDes: Annotated[int, B2] = 0
    NullEsp: Annotated[int, B2] = 0
    Transport: Annotated[int, B2] = 0
    Tunnel: Annotated[int, B2] = 0
    Send: Annotated[int, B2] = 0
    Receive: Annotated[int, B2] = 0


@ndis_struct("NDIS_IPSEC_OFFLOAD_V1")
@dataclass(frozen=True, slots=True)
class NdisIpsecOffloadV1(NdisStruct):
    """``NDIS_IPSEC_OFFLOAD_V1 { Supported; IPv4AH; IPv4ESP; }``."""

    Supported: IPsecV1Supported = field(default_factory=IPsecV1Supported)
    IPv4AH: IPsecV1IPv4AH = field(default_factory=IPsecV1IPv4AH)
    IPv4ESP: IPsecV1IPv4ESP = field(default_factory=IPsecV1IPv4ESP)


@ndis_struct("NDIS_IPSEC_OFFLOAD_V2")
@dataclass(frozen=True, slots=True)
class NdisIpsecOffloadV2(NdisStruct):
    """``NDIS_IPSEC_OFFLOAD_V2``: ``ULONG Encapsulation``, eleven BOOLEANs, four ULONGs."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = (
        "IPv6Supported",
        "IPv4Options",
        "IPv6NonIPsecExtensionHeaders",
        "Ah",
        "Esp",
        "AhEspCombined",
        "Transport",
        "Tunnel",
        "TransportTunnelCombined",
        "LsoSupported",
        "ExtendedSequenceNumbers",
    )
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)

    Encapsulation: Annotated[int, ULONG] = 0
    IPv6Supported: Annotated[int, UCHAR] = 0
    IPv4Options: Annotated[int, UCHAR] = 0
    IPv6NonIPsecExtensionHeaders: Annotated[int, UCHAR] = 0
    Ah: Annotated[int, UCHAR] = 0
    Esp: Annotated[int, UCHAR] = 0
    AhEspCombined: Annotated[int, UCHAR] = 0
    Transport: Annotated[int, UCHAR] = 0
    Tunnel: Annotated[int, UCHAR] = 0
    TransportTunnelCombined: Annotated[int, UCHAR] = 0
    LsoSupported: Annotated[int, UCHAR] = 0
    ExtendedSequenceNumbers: Annotated[int, UCHAR] = 0
    UdpEsp: Annotated[int, ULONG] = 0
    AuthenticationAlgorithms: Annotated[int, ULONG] = 0
    EncryptionAlgorithms: Annotated[int, ULONG] = 0
    SaOffloadCapacity: Annotated[int, ULONG] = 0


# --- NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD (RSC) ----------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class RscFamily(NdisStruct):
    """``{BOOLEAN Enabled;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = ("Enabled",)

    Enabled: Annotated[int, UCHAR] = 0


@ndis_struct("NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisTcpRecvSegCoalesceOffload(NdisStruct):
    """``NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD { struct {BOOLEAN Enabled;} IPv4, IPv6; }``."""

    IPv4: RscFamily = field(default_factory=RscFamily)
    IPv6: RscFamily = field(default_factory=RscFamily)


# --- Encapsulated packet (GRE / VXLAN) task offload ----------------------------------------
@ndis_struct("NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisEncapsulatedPacketTaskOffload(NdisStruct):
    """``NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD``: five 4-bit masks (``UsoSupported`` since
    NDIS 6.85), ``Reserved:8``, ``ULONG MaxHeaderSizeSupported``."""

    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved",)

    TransmitChecksumOffloadSupported: Annotated[int, B4] = 0
    ReceiveChecksumOffloadSupported: Annotated[int, B4] = 0
    LsoV2Supported: Annotated[int, B4] = 0
    RssSupported: Annotated[int, B4] = 0
    VmqSupported: Annotated[int, B4] = 0
    UsoSupported: Annotated[int, B4] = 0
    Reserved: Annotated[int, Bits(ULONG, 8)] = 0
    MaxHeaderSizeSupported: Annotated[int, ULONG] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class VxlanInfo(NdisStruct):
    """``struct _VXLAN_INFO {USHORT VxlanUDPPortNumber; USHORT
    VxlanUDPPortNumberConfigurable:1;}`` (a view of ``EncapsulationProtocolInfo``)."""

    VxlanUDPPortNumber: Annotated[int, USHORT] = 0
    VxlanUDPPortNumberConfigurable: Annotated[int, Bits(USHORT, 1)] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class EncapsulationProtocolInfo(NdisStruct):
    """``union _ENCAPSULATION_PROTOCOL_INFO {struct _VXLAN_INFO VxlanInfo; ULONG Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {"VxlanInfo": VxlanInfo}

    Value: Annotated[int, ULONG] = 0


@ndis_struct("NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_V2")
@dataclass(frozen=True, slots=True)
class NdisEncapsulatedPacketTaskOffloadV2(NdisStruct):
    """``NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD_V2``: the V1 masks, ``MaxHeaderSizeSupported``,
    ``EncapsulationProtocolInfo`` (VXLAN port), ``Reserved1``, ``Reserved2``."""

    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved", "Reserved1", "Reserved2")

    TransmitChecksumOffloadSupported: Annotated[int, B4] = 0
    ReceiveChecksumOffloadSupported: Annotated[int, B4] = 0
    LsoV2Supported: Annotated[int, B4] = 0
    RssSupported: Annotated[int, B4] = 0
    VmqSupported: Annotated[int, B4] = 0
    UsoSupported: Annotated[int, B4] = 0
    Reserved: Annotated[int, Bits(ULONG, 8)] = 0
    MaxHeaderSizeSupported: Annotated[int, ULONG] = 0
    EncapsulationProtocolInfo: EncapsulationProtocolInfo = field(
        default_factory=EncapsulationProtocolInfo
    )
    Reserved1: Annotated[int, ULONG] = 0
    Reserved2: Annotated[int, ULONG] = 0


@ndis_struct("NDIS_RFC6877_464XLAT_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisRfc6877464XlatOffload(NdisStruct):
    """``NDIS_RFC6877_464XLAT_OFFLOAD {NDIS_RFC6877_464XLAT_OFFLOAD_OPTIONS XlatOffload;
    ULONG Flags;}``."""

    ENUM_FIELDS: ClassVar[dict[str, frozenset[int]]] = {
        "XlatOffload": frozenset(int(v) for v in NdisRfc6877XlatOffloadOptions)
    }
    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Flags",)

    XlatOffload: Annotated[int, ULONG] = 0
    Flags: Annotated[int, ULONG] = 0


# --- NDIS_UDP_SEGMENTATION_OFFLOAD (USO) ---------------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class UsoIPv4(NdisStruct):
    """``{ULONG Encapsulation; MaxOffLoadSize; ULONG MinSegmentCount:6;
    SubMssFinalSegmentSupported:1; Reserved:25;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = ("SubMssFinalSegmentSupported",)
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)
    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved",)

    Encapsulation: Annotated[int, ULONG] = 0
    MaxOffLoadSize: Annotated[int, ULONG] = 0
    MinSegmentCount: Annotated[int, Bits(ULONG, 6)] = 0
    SubMssFinalSegmentSupported: Annotated[int, Bits(ULONG, 1)] = 0
    Reserved: Annotated[int, Bits(ULONG, 25)] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class UsoIPv6(NdisStruct):
    """``{ULONG Encapsulation; MaxOffLoadSize; ULONG MinSegmentCount:6;
    SubMssFinalSegmentSupported:1; Reserved1:25; ULONG IpExtensionHeadersSupported:2;
    Reserved2:30;}``."""

    BOOLEAN_FIELDS: ClassVar[tuple[str, ...]] = (
        "SubMssFinalSegmentSupported",
        "IpExtensionHeadersSupported",
    )
    ENCAPSULATION_FIELDS: ClassVar[tuple[str, ...]] = ("Encapsulation",)
    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved1", "Reserved2")

    Encapsulation: Annotated[int, ULONG] = 0
    MaxOffLoadSize: Annotated[int, ULONG] = 0
    MinSegmentCount: Annotated[int, Bits(ULONG, 6)] = 0
    SubMssFinalSegmentSupported: Annotated[int, Bits(ULONG, 1)] = 0
    Reserved1: Annotated[int, Bits(ULONG, 25)] = 0
    IpExtensionHeadersSupported: Annotated[int, B2] = 0
    Reserved2: Annotated[int, Bits(ULONG, 30)] = 0


@ndis_struct("NDIS_UDP_SEGMENTATION_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisUdpSegmentationOffload(NdisStruct):
    """``NDIS_UDP_SEGMENTATION_OFFLOAD { struct {...} IPv4; struct {...} IPv6; }``."""

    IPv4: UsoIPv4 = field(default_factory=UsoIPv4)
    IPv6: UsoIPv6 = field(default_factory=UsoIPv6)


# --- NDIS_OFFLOAD -------------------------------------------------------------------------
def _offload_header(revision: int = o.NDIS_OFFLOAD_REVISION_7) -> NdisObjectHeader:
    return NdisObjectHeader(o.NDIS_OBJECT_TYPE_OFFLOAD, revision, NDIS_OFFLOAD_SIZES[revision])


NDIS_OFFLOAD_SIZES: dict[int, int] = {
    o.NDIS_OFFLOAD_REVISION_1: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1,
    o.NDIS_OFFLOAD_REVISION_2: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_2,
    o.NDIS_OFFLOAD_REVISION_3: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3,
    o.NDIS_OFFLOAD_REVISION_4: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_4,
    o.NDIS_OFFLOAD_REVISION_5: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_5,
    o.NDIS_OFFLOAD_REVISION_6: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_6,
    o.NDIS_OFFLOAD_REVISION_7: o.NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_7,
}


@ndis_struct("NDIS_OFFLOAD")
@dataclass(frozen=True, slots=True)
class NdisOffload(NdisStruct):
    """``NDIS_OFFLOAD``: a miniport's hardware capabilities or current configuration."""

    OBJECT_TYPE: ClassVar[int | None] = o.NDIS_OBJECT_TYPE_OFFLOAD
    REVISION_SIZES: ClassVar[dict[int, int]] = NDIS_OFFLOAD_SIZES

    Header: NdisObjectHeader = field(default_factory=_offload_header)
    Checksum: NdisTcpIpChecksumOffload = field(default_factory=NdisTcpIpChecksumOffload)
    LsoV1: NdisTcpLargeSendOffloadV1 = field(default_factory=NdisTcpLargeSendOffloadV1)
    IPsecV1: NdisIpsecOffloadV1 = field(default_factory=NdisIpsecOffloadV1)
    LsoV2: NdisTcpLargeSendOffloadV2 = field(default_factory=NdisTcpLargeSendOffloadV2)
    Flags: Annotated[int, ULONG] = 0
    IPsecV2: Annotated[NdisIpsecOffloadV2, Since(2)] = field(default_factory=NdisIpsecOffloadV2)
    Rsc: Annotated[NdisTcpRecvSegCoalesceOffload, Since(3)] = field(
        default_factory=NdisTcpRecvSegCoalesceOffload
    )
    EncapsulatedPacketTaskOffloadGre: Annotated[NdisEncapsulatedPacketTaskOffload, Since(3)] = (
        field(default_factory=NdisEncapsulatedPacketTaskOffload)
    )
    EncapsulatedPacketTaskOffloadVxlan: Annotated[NdisEncapsulatedPacketTaskOffloadV2, Since(4)] = (
        field(default_factory=NdisEncapsulatedPacketTaskOffloadV2)
    )
    EncapsulationTypes: Annotated[int, UCHAR, Since(4)] = 0
    Rfc6877Xlat: Annotated[NdisRfc6877464XlatOffload, Since(5)] = field(
        default_factory=NdisRfc6877464XlatOffload
    )
    UdpSegmentation: Annotated[NdisUdpSegmentationOffload, Since(6)] = field(
        default_factory=NdisUdpSegmentationOffload
    )

    @classmethod
    def header_for(cls, revision: int) -> NdisObjectHeader:
        """A correct ``Header`` for ``revision`` (type ``NDIS_OBJECT_TYPE_OFFLOAD``)."""
        return _offload_header(revision)
