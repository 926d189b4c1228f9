"""Public names of ``ndis_offload.structs``, listed once: type checkers read them here,
and ``__init__.py`` imports each on first use (``lazy_loader.attach_stub``)."""

from .codec import NdisStruct as NdisStruct
from .encapsulation import (
    NdisOffloadEncapsulation as NdisOffloadEncapsulation,
    NdisOffloadEncapsulationFamily as NdisOffloadEncapsulationFamily,
)
from .header import NdisObjectHeader as NdisObjectHeader
from .nbl_info import (
    NdisLsoTransmit as NdisLsoTransmit,
    NdisLsoV1Transmit as NdisLsoV1Transmit,
    NdisLsoV1TransmitComplete as NdisLsoV1TransmitComplete,
    NdisLsoV2Transmit as NdisLsoV2Transmit,
    NdisLsoV2TransmitComplete as NdisLsoV2TransmitComplete,
    NdisRscNblInfo as NdisRscNblInfo,
    NdisRscNblInfoInfo as NdisRscNblInfoInfo,
    NdisTcpIpChecksumNetBufferListInfo as NdisTcpIpChecksumNetBufferListInfo,
    NdisTcpIpChecksumNetBufferListInfoReceive as NdisTcpIpChecksumNetBufferListInfoReceive,
    NdisTcpIpChecksumNetBufferListInfoTransmit as NdisTcpIpChecksumNetBufferListInfoTransmit,
    NdisTcpLargeSendOffloadNetBufferListInfo as NdisTcpLargeSendOffloadNetBufferListInfo,
    NdisUdpSegmentationOffloadNetBufferListInfo as NdisUdpSegmentationOffloadNetBufferListInfo,
    NdisUsoTransmit as NdisUsoTransmit,
)
from .offload import (
    NdisEncapsulatedPacketTaskOffload as NdisEncapsulatedPacketTaskOffload,
    NdisEncapsulatedPacketTaskOffloadV2 as NdisEncapsulatedPacketTaskOffloadV2,
    NdisIpsecOffloadV1 as NdisIpsecOffloadV1,
    NdisIpsecOffloadV2 as NdisIpsecOffloadV2,
    NdisOffload as NdisOffload,
    NdisRfc6877464XlatOffload as NdisRfc6877464XlatOffload,
    NdisTcpIpChecksumOffload as NdisTcpIpChecksumOffload,
    NdisTcpLargeSendOffloadV1 as NdisTcpLargeSendOffloadV1,
    NdisTcpLargeSendOffloadV2 as NdisTcpLargeSendOffloadV2,
    NdisTcpRecvSegCoalesceOffload as NdisTcpRecvSegCoalesceOffload,
    NdisUdpSegmentationOffload as NdisUdpSegmentationOffload,
)
from .parameters import NdisOffloadParameters as NdisOffloadParameters
from .statistics import (
    NdisRscStatisticsInfo as NdisRscStatisticsInfo,
    NdisStatisticsInfo as NdisStatisticsInfo,
)

STRUCTS: tuple[type[NdisStruct], ...]
