"""Binary-exact NDIS structures: decode / encode / validate, one declaration each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ndis_offload._lazy import lazy_exports

if TYPE_CHECKING:
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

    STRUCTS: tuple[type[NdisStruct], ...]
    """Every named (C ``typedef``) structure the package declares, in header order."""

_EXPORTS = {
    "NdisStruct": "ndis_offload.structs.codec",
    "NdisOffloadEncapsulation": "ndis_offload.structs.encapsulation",
    "NdisOffloadEncapsulationFamily": "ndis_offload.structs.encapsulation",
    "NdisObjectHeader": "ndis_offload.structs.header",
    "NdisLsoTransmit": "ndis_offload.structs.nbl_info",
    "NdisLsoV1Transmit": "ndis_offload.structs.nbl_info",
    "NdisLsoV1TransmitComplete": "ndis_offload.structs.nbl_info",
    "NdisLsoV2Transmit": "ndis_offload.structs.nbl_info",
    "NdisLsoV2TransmitComplete": "ndis_offload.structs.nbl_info",
    "NdisRscNblInfo": "ndis_offload.structs.nbl_info",
    "NdisRscNblInfoInfo": "ndis_offload.structs.nbl_info",
    "NdisTcpIpChecksumNetBufferListInfo": "ndis_offload.structs.nbl_info",
    "NdisTcpIpChecksumNetBufferListInfoReceive": "ndis_offload.structs.nbl_info",
    "NdisTcpIpChecksumNetBufferListInfoTransmit": "ndis_offload.structs.nbl_info",
    "NdisTcpLargeSendOffloadNetBufferListInfo": "ndis_offload.structs.nbl_info",
    "NdisUdpSegmentationOffloadNetBufferListInfo": "ndis_offload.structs.nbl_info",
    "NdisUsoTransmit": "ndis_offload.structs.nbl_info",
    "NdisEncapsulatedPacketTaskOffload": "ndis_offload.structs.offload",
    "NdisEncapsulatedPacketTaskOffloadV2": "ndis_offload.structs.offload",
    "NdisIpsecOffloadV1": "ndis_offload.structs.offload",
    "NdisIpsecOffloadV2": "ndis_offload.structs.offload",
    "NdisOffload": "ndis_offload.structs.offload",
    "NdisRfc6877464XlatOffload": "ndis_offload.structs.offload",
    "NdisTcpIpChecksumOffload": "ndis_offload.structs.offload",
    "NdisTcpLargeSendOffloadV1": "ndis_offload.structs.offload",
    "NdisTcpLargeSendOffloadV2": "ndis_offload.structs.offload",
    "NdisTcpRecvSegCoalesceOffload": "ndis_offload.structs.offload",
    "NdisUdpSegmentationOffload": "ndis_offload.structs.offload",
    "NdisOffloadParameters": "ndis_offload.structs.parameters",
    "NdisRscStatisticsInfo": "ndis_offload.structs.statistics",
    "NdisStatisticsInfo": "ndis_offload.structs.statistics",
}
"""Each public name and its module, imported on first use (PEP 562): building the layouts
costs a noticeable part of a second, which a ``pcap`` command should not pay."""

_STRUCT_NAMES = (
    "NdisObjectHeader",
    "NdisOffloadEncapsulation",
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
    "NdisOffload",
    "NdisOffloadParameters",
    "NdisTcpIpChecksumNetBufferListInfo",
    "NdisTcpLargeSendOffloadNetBufferListInfo",
    "NdisUdpSegmentationOffloadNetBufferListInfo",
    "NdisRscNblInfo",
    "NdisStatisticsInfo",
    "NdisRscStatisticsInfo",
)
"""The names of :data:`STRUCTS`, in header order."""

_lookup, _dir = lazy_exports(globals(), _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*_dir(), "STRUCTS"})


def __getattr__(name: str) -> Any:
    if name == "STRUCTS":
        value = tuple(_lookup(n) for n in _STRUCT_NAMES)
        globals()[name] = value
        return value
    return _lookup(name)


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
