"""Per-packet ``NET_BUFFER_LIST`` out-of-band info words for checksum, LSO, USO and RSC.

Each C type is a union of bit-field views with ``PVOID Value`` (8 bytes on x64). The union
classes store ``Value``; the view classes (``...Transmit``, ``...Receive``) are what a
protocol driver or miniport fills in. Use ``View.from_int(word)`` / ``view.to_int()`` to go
between a view and the info word, as ``NET_BUFFER_LIST_INFO(nbl, TcpIpChecksumNetBufferListInfo)``
is read and written. Bit positions are MSVC's: least significant bit first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from ndis_offload.structs.codec import ULONG, ULONG64, USHORT, Bits, NdisStruct, ndis_struct

B1 = Bits(ULONG, 1)


# --- NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO ---------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisTcpIpChecksumNetBufferListInfoTransmit(NdisStruct):
    """``Transmit {IsIPv4:1; IsIPv6:1; TcpChecksum:1; UdpChecksum:1; IpHeaderChecksum:1;
    Reserved:11; TcpHeaderOffset:10;}``: what the protocol asks the miniport to fill in."""

    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved",)

    IsIPv4: Annotated[int, B1] = 0
    IsIPv6: Annotated[int, B1] = 0
    TcpChecksum: Annotated[int, B1] = 0
    UdpChecksum: Annotated[int, B1] = 0
    IpHeaderChecksum: Annotated[int, B1] = 0
    Reserved: Annotated[int, Bits(ULONG, 11)] = 0
    TcpHeaderOffset: Annotated[int, Bits(ULONG, 10)] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisTcpIpChecksumNetBufferListInfoReceive(NdisStruct):
    """``Receive {TcpChecksumFailed:1; UdpChecksumFailed:1; IpChecksumFailed:1;
    TcpChecksumSucceeded:1; UdpChecksumSucceeded:1; IpChecksumSucceeded:1; Loopback:1;
    TcpChecksumValueInvalid:1; IpChecksumValueInvalid:1;}``: what the miniport reports."""

    TcpChecksumFailed: Annotated[int, B1] = 0
    UdpChecksumFailed: Annotated[int, B1] = 0
    IpChecksumFailed: Annotated[int, B1] = 0
    TcpChecksumSucceeded: Annotated[int, B1] = 0
    UdpChecksumSucceeded: Annotated[int, B1] = 0
    IpChecksumSucceeded: Annotated[int, B1] = 0
    Loopback: Annotated[int, B1] = 0
    TcpChecksumValueInvalid: Annotated[int, B1] = 0
    IpChecksumValueInvalid: Annotated[int, B1] = 0


@ndis_struct("NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO")
@dataclass(frozen=True, slots=True)
class NdisTcpIpChecksumNetBufferListInfo(NdisStruct):
    """``union {struct {...} Transmit; struct {...} Receive; PVOID Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {
        "Transmit": NdisTcpIpChecksumNetBufferListInfoTransmit,
        "Receive": NdisTcpIpChecksumNetBufferListInfoReceive,
    }

    Value: Annotated[int, ULONG64] = 0


# --- NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO --------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisLsoTransmit(NdisStruct):
    """``Transmit {Unused:30; Type:1; Reserved2:1;}``: read ``Type`` to pick the view."""

    Unused: Annotated[int, Bits(ULONG, 30)] = 0
    Type: Annotated[int, B1] = 0
    Reserved2: Annotated[int, B1] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisLsoV1Transmit(NdisStruct):
    """``LsoV1Transmit {MSS:20; TcpHeaderOffset:10; Type:1; Reserved2:1;}``,
    ``Type = NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE`` (0)."""

    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved2",)

    MSS: Annotated[int, Bits(ULONG, 20)] = 0
    TcpHeaderOffset: Annotated[int, Bits(ULONG, 10)] = 0
    Type: Annotated[int, B1] = 0
    Reserved2: Annotated[int, B1] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisLsoV1TransmitComplete(NdisStruct):
    """``LsoV1TransmitComplete {TcpPayload:30; Type:1; Reserved2:1;}``: the miniport writes the
    number of TCP payload bytes it sent."""

    TcpPayload: Annotated[int, Bits(ULONG, 30)] = 0
    Type: Annotated[int, B1] = 0
    Reserved2: Annotated[int, B1] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisLsoV2Transmit(NdisStruct):
    """``LsoV2Transmit {MSS:20; TcpHeaderOffset:10; Type:1; IPVersion:1;}``,
    ``Type = NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE`` (1),
    ``IPVersion = NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4`` (0) or ``_IPv6`` (1)."""

    MSS: Annotated[int, Bits(ULONG, 20)] = 0
    TcpHeaderOffset: Annotated[int, Bits(ULONG, 10)] = 0
    Type: Annotated[int, B1] = 1
    IPVersion: Annotated[int, B1] = 0


@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisLsoV2TransmitComplete(NdisStruct):
    """``LsoV2TransmitComplete {Reserved:30; Type:1; Reserved2:1;}``."""

    Reserved: Annotated[int, Bits(ULONG, 30)] = 0
    Type: Annotated[int, B1] = 1
    Reserved2: Annotated[int, B1] = 0


@ndis_struct("NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO")
@dataclass(frozen=True, slots=True)
class NdisTcpLargeSendOffloadNetBufferListInfo(NdisStruct):
    """``union {Transmit; LsoV1Transmit; LsoV1TransmitComplete; LsoV2Transmit;
    LsoV2TransmitComplete; PVOID Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {
        "Transmit": NdisLsoTransmit,
        "LsoV1Transmit": NdisLsoV1Transmit,
        "LsoV1TransmitComplete": NdisLsoV1TransmitComplete,
        "LsoV2Transmit": NdisLsoV2Transmit,
        "LsoV2TransmitComplete": NdisLsoV2TransmitComplete,
    }

    Value: Annotated[int, ULONG64] = 0


# --- NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO (NDIS 6.83) ------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisUsoTransmit(NdisStruct):
    """``Transmit {MSS:20; UdpHeaderOffset:10; Reserved:1; IPVersion:1;}``,
    ``IPVersion = NDIS_UDP_SEGMENTATION_OFFLOAD_IPV4`` (0) or ``_IPV6`` (1)."""

    RESERVED_FIELDS: ClassVar[tuple[str, ...]] = ("Reserved",)

    MSS: Annotated[int, Bits(ULONG, 20)] = 0
    UdpHeaderOffset: Annotated[int, Bits(ULONG, 10)] = 0
    Reserved: Annotated[int, B1] = 0
    IPVersion: Annotated[int, B1] = 0


@ndis_struct("NDIS_UDP_SEGMENTATION_OFFLOAD_NET_BUFFER_LIST_INFO")
@dataclass(frozen=True, slots=True)
class NdisUdpSegmentationOffloadNetBufferListInfo(NdisStruct):
    """``union {struct {...} Transmit; PVOID Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {"Transmit": NdisUsoTransmit}

    Value: Annotated[int, ULONG64] = 0


# --- NDIS_RSC_NBL_INFO (NDIS 6.30) ---------------------------------------------------------
@ndis_struct(None)
@dataclass(frozen=True, slots=True)
class NdisRscNblInfoInfo(NdisStruct):
    """``Info {USHORT CoalescedSegCount; USHORT DupAckCount;}``."""

    CoalescedSegCount: Annotated[int, USHORT] = 0
    DupAckCount: Annotated[int, USHORT] = 0


@ndis_struct("NDIS_RSC_NBL_INFO")
@dataclass(frozen=True, slots=True)
class NdisRscNblInfo(NdisStruct):
    """``typedef union _NDIS_RSC_NBL_INFO {struct {...} Info; PVOID Value;}``."""

    VIEWS: ClassVar[dict[str, type[NdisStruct]]] = {"Info": NdisRscNblInfoInfo}

    Value: Annotated[int, ULONG64] = 0
