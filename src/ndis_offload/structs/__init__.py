"""Binary-exact NDIS structures: decode / encode / validate, one declaration each."""

from __future__ import annotations

from ndis_offload.structs.codec import NdisStruct
from ndis_offload.structs.encapsulation import (
    NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily,
)
from ndis_offload.structs.header import NdisObjectHeader
from ndis_offload.structs.nbl_info import (
    NdisLsoTransmit,
    NdisLsoV1Transmit,
    NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit,
    NdisLsoV2TransmitComplete,
    NdisRscNblInfo,
    NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive,
    NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisTcpLargeSendOffloadNetBufferListInfo,
    NdisUdpSegmentationOffloadNetBufferListInfo,
    NdisUsoTransmit,
)
from ndis_offload.structs.offload import (
    NdisEncapsulatedPacketTaskOffload,
    NdisEncapsulatedPacketTaskOffloadV2,
    NdisIpsecOffloadV1,
    NdisIpsecOffloadV2,
    NdisOffload,
    NdisRfc6877464XlatOffload,
    NdisTcpIpChecksumOffload,
    NdisTcpLargeSendOffloadV1,
    NdisTcpLargeSendOffloadV2,
    NdisTcpRecvSegCoalesceOffload,
    NdisUdpSegmentationOffload,
)
from ndis_offload.structs.parameters import NdisOffloadParameters
from ndis_offload.structs.statistics import NdisRscStatisticsInfo, NdisStatisticsInfo

STRUCTS: tuple[type[NdisStruct], ...] = (
    NdisObjectHeader,
    NdisOffloadEncapsulation,
    NdisTcpIpChecksumOffload,
    NdisTcpLargeSendOffloadV1,
    NdisTcpLargeSendOffloadV2,
    NdisIpsecOffloadV1,
    NdisIpsecOffloadV2,
    NdisTcpRecvSegCoalesceOffload,
    NdisEncapsulatedPacketTaskOffload,
    NdisEncapsulatedPacketTaskOffloadV2,
    NdisRfc6877464XlatOffload,
    NdisUdpSegmentationOffload,
    NdisOffload,
    NdisOffloadParameters,
    NdisTcpIpChecksumNetBufferListInfo,
    NdisTcpLargeSendOffloadNetBufferListInfo,
    NdisUdpSegmentationOffloadNetBufferListInfo,
    NdisRscNblInfo,
    NdisStatisticsInfo,
    NdisRscStatisticsInfo,
)
"""Every named (C ``typedef``) structure the package declares, in header order."""

__all__ = [
    "STRUCTS",
    "NdisStruct",
    "NdisObjectHeader",
    "NdisOffloadEncapsulation",
    "NdisOffloadEncapsulationFamily",
    "NdisOffload",
    "NdisOffloadParameters",
    "NdisTcpIpChecksumOffload",
    "NdisTcpLargeSendOffloadV1",
    "NdisTcpLargeSendOffloadV2",
    "NdisIpsecOffloadV1",
    "NdisIpsecOffloadV2",
    "NdisTcpRecvSegCoalesceOffload",
    "NdisEncapsulatedPacketTaskOffload",
    "NdisEncapsulatedPacketTaskOffloadV2",
    "NdisRfc6877464XlatOffload",
    "NdisUdpSegmentationOffload",
    "NdisTcpIpChecksumNetBufferListInfo",
    "NdisTcpIpChecksumNetBufferListInfoTransmit",
    "NdisTcpIpChecksumNetBufferListInfoReceive",
    "NdisTcpLargeSendOffloadNetBufferListInfo",
    "NdisLsoTransmit",
    "NdisLsoV1Transmit",
    "NdisLsoV1TransmitComplete",
    "NdisLsoV2Transmit",
    "NdisLsoV2TransmitComplete",
    "NdisUdpSegmentationOffloadNetBufferListInfo",
    "NdisUsoTransmit",
    "NdisRscNblInfo",
    "NdisRscNblInfoInfo",
    "NdisRscStatisticsInfo",
    "NdisStatisticsInfo",
]
